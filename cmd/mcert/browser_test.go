package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/pki"
	"github.com/mcert/mcert/qr"
	"github.com/mcert/mcert/signing"
	"github.com/mcert/mcert/storage"
)

// chromiumPath finds Debian's Chromium, which .ci/run installs. Without it the browser tests
// cannot run: in CI that is a failure, elsewhere a skip that says how to get it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("Chromium is missing; .ci/run installs it with apt-get install chromium")
	}
	t.Skip("Chromium is not installed: run .ci/run (it installs it) or apt-get install chromium fonts-noto-cjk")
	return ""
}

// chrome is one headless Chromium with a fresh profile, started with the flags this machine
// needs (without them it stalls on refused connections to Google's services).
type chrome struct {
	ctx context.Context
}

func newChrome(t *testing.T) *chrome {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", "zh-TW"),
		chromedp.Flag("accept-lang", "zh-TW,zh"),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		cancel()
		cancelAlloc()
		t.Fatalf("start Chromium: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return &chrome{ctx: ctx}
}

// tab opens a tab of the given size; a phone tab emulates a phone's screen and touch.
func (c *chrome) tab(t *testing.T, width, height int64, phone bool) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(c.ctx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelTimeout)
	scale := 1.0
	if phone {
		scale = 2
	}
	browse(t, ctx, chromedp.EmulateViewport(width, height, func(p *emulation.SetDeviceMetricsOverrideParams, s *emulation.SetTouchEmulationEnabledParams) {
		p.DeviceScaleFactor, p.Mobile, s.Enabled = scale, phone, phone
	}))
	return ctx
}

// withAuthenticator gives a tab a platform authenticator, as a phone's fingerprint or face
// unlock: user verification as given.
func withAuthenticator(t *testing.T, ctx context.Context, userVerification bool) {
	t.Helper()
	if _, err := chromedp.Call(ctx, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn domain: %v", err)
	}
	_, err := chromedp.Call(ctx, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{
		Options: &cdpwebauthn.VirtualAuthenticatorOptions{
			Protocol: cdpwebauthn.AuthenticatorProtocolCtap2, Transport: cdpwebauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: userVerification, IsUserVerified: userVerification,
			AutomaticPresenceSimulation: true,
		},
	})
	if err != nil {
		t.Fatalf("virtual authenticator: %v", err)
	}
}

func browse(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// eval runs JavaScript in the page and returns its value.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition in the page until it holds. It polls by hand rather
// than with chromedp.Poll, which gives up when a navigation replaces the page under it.
func waitFor(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			msg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector("#message")||{}).textContent || document.body.innerText.slice(0, 400)`))
			t.Fatalf("waiting for %s: %v; the page says: %s", what, err, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// click clicks the element the CSS selector finds, as a person would, once it is there: with
// the mouse, through the DevTools protocol, so that the click counts as the user's gesture
// (the card login's popup is allowed only from one).
func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	waitFor(t, ctx, sel, fmt.Sprintf(`!!document.querySelector(%q) && !document.querySelector(%q).closest("[hidden]")`, sel, sel))
	browse(t, ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// fill types value into the form field the CSS selector finds.
func fill(t *testing.T, ctx context.Context, sel, value string) {
	t.Helper()
	waitFor(t, ctx, sel, fmt.Sprintf(`!!document.querySelector(%q)`, sel))
	eval[bool](t, ctx, fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q; e.dispatchEvent(new Event("input", {bubbles: true})); return true })()`, sel, value))
}

// textOf reads an element's text.
func textOf(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return strings.TrimSpace(eval[string](t, ctx, fmt.Sprintf(`(document.querySelector(%q)||{}).textContent || ""`, sel)))
}

// screenshot saves the page as docs/screenshots/<name>.png when MCERT_SCREENSHOTS names that
// directory, and always checks the picture is not blank and the page, in the state it shows,
// accessible (axe-core): every state worth a picture is checked.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	checkAccessible(t, ctx, name)
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if len(png) < 5000 {
		t.Fatalf("screenshot %s is %d bytes: the page is blank", name, len(png))
	}
	if dir := os.Getenv("MCERT_SCREENSHOTS"); dir != "" {
		if !filepath.IsAbs(dir) { // relative to the repository, not to this package's directory
			dir = filepath.Join("..", "..", dir)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// cardPEM issues a development card from the server's CA, as `mcert card issue` does.
func (s *server) cardPEM(t *testing.T, name, id string, opts authn.IssueOptions) []byte {
	t.Helper()
	opts.Now = s.clock.Now()
	data, err := s.ca.Issue(name, id, opts)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(data); b == nil {
		t.Fatal("the card is not PEM")
	}
	return data
}

// scanQR is a phone camera pointed at the page's QR image: the page fetches the image it
// shows, and the bytes are decoded as the phone would.
func scanQR(t *testing.T, ctx context.Context) string {
	t.Helper()
	waitFor(t, ctx, "the QR image", `(() => { const i = document.querySelector("#qr"); return !!i && i.complete && i.naturalWidth > 0 })()`)
	b64, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch(document.querySelector("#qr").src).then(r => r.arrayBuffer()).then(b => btoa(String.fromCharCode(...new Uint8Array(b))))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("read the QR image: %v", err)
	}
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	text, err := qr.DecodePNG(png)
	if err != nil {
		t.Fatalf("the page's QR image: %v", err)
	}
	return text
}

// freeAddr is a loopback address nothing listens on, for a process to take.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestBrowserJourney is the whole journey in real browsers: a desktop tab logs in with a
// MOICA-shaped card through the card component's popup (a real card agent process), with the
// national ID and the PIN typed on the page, a wrong PIN first; it registers and shows the
// binding QR; a phone-sized tab with a platform authenticator opens the QR's link and binds; the
// desktop sees "bound" without a reload; then a login at the demo relying party, approved on
// the phone, returns logged in. A phone without user verification is refused with a visible
// message.
func TestBrowserJourney(t *testing.T) {
	browser := newChrome(t)
	bin := buildMcert(t)
	agentAddr := freeAddr(t)
	_, agentPort, _ := net.SplitHostPort(agentAddr)
	s := startServer(t, func(c *Config) { c.CardAgentURL = "http://localhost:" + agentPort })
	startCardAgent(t, bin, s.cardPEM(t, "王小明", "A123456789", authn.IssueOptions{MOICA: true, PIN: "123456"}), agentAddr, "--origin", s.PublicURL)
	desk := browser.tab(t, 1280, 900, false)

	browse(t, desk, chromedp.Navigate(s.PublicURL+"/"))
	fill(t, desk, "#login-id", "A123456789")
	fill(t, desk, "#login-pin", "654321")
	click(t, desk, "#login-button")
	waitFor(t, desk, "the wrong PIN explained", `(document.querySelector("#message")?.textContent || "").includes("PIN碼錯誤")`)
	screenshot(t, desk, "card-wrong-pin-zh")
	fill(t, desk, "#login-pin", "123456")
	click(t, desk, "#login-button")
	waitFor(t, desk, "the registration form", `!!document.querySelector("#register-form") && !document.querySelector("#register").hidden`)
	screenshot(t, desk, "register-zh")
	fill(t, desk, `#register-form input[name="email"]`, "wang@example.tw")
	fill(t, desk, `#register-form input[name="phone"]`, "0912345678")
	eval[bool](t, desk, `(document.querySelector("#register-form").requestSubmit(), true)`)
	waitFor(t, desk, "the account", `!!document.querySelector("#account") && !document.querySelector("#account").hidden`)
	click(t, desk, "#bind-button")
	waitFor(t, desk, "a pending binding", `document.querySelector("#bind-status")?.dataset.status === "pending"`)
	screenshot(t, desk, "bind-qr-zh")
	bindLink := scanQR(t, desk)
	if !strings.HasPrefix(bindLink, s.PublicURL+"/m/bind#") {
		t.Fatalf("binding QR code reads %q", bindLink)
	}

	phoneTab := browser.tab(t, 390, 844, true)
	withAuthenticator(t, phoneTab, true)
	browse(t, phoneTab, chromedp.Navigate(bindLink))
	fill(t, phoneTab, "#device-name", "Pixel 8")
	screenshot(t, phoneTab, "phone-bind-zh")
	click(t, phoneTab, "#bind-button")
	waitFor(t, phoneTab, "the phone bound", `document.querySelector("#result")?.dataset.status === "bound"`)
	screenshot(t, phoneTab, "phone-bound-zh")
	waitFor(t, desk, "the desktop seeing bound", `document.querySelector("#bind-status")?.dataset.status === "bound"`)
	waitFor(t, desk, "the device in the list", `[...document.querySelectorAll("#devices [data-device-id]")].some(li => li.textContent.includes("Pixel 8"))`)
	screenshot(t, desk, "account-zh")

	// A relying-party login: the demo website, the QR code, the phone approving.
	browse(t, desk, chromedp.Navigate(s.PublicURL+"/demo"))
	screenshot(t, desk, "demo-zh")
	click(t, desk, "#demo-login")
	waitFor(t, desk, "the login page", `location.pathname.startsWith("/login/") && document.querySelector("#login-status")?.dataset.status === "pending"`)
	screenshot(t, desk, "login-zh")
	loginLink := scanQR(t, desk)
	browse(t, phoneTab, chromedp.Navigate(loginLink))
	waitFor(t, phoneTab, "the login request on the phone", `(document.querySelector("#code")?.textContent || "").trim().length === 4`)
	if phoneCode, deskCode := textOf(t, phoneTab, "#code"), textOf(t, desk, "#code"); phoneCode != deskCode {
		t.Fatalf("the phone shows code %q, the page %q", phoneCode, deskCode)
	}
	if name := textOf(t, phoneTab, "#client-name"); !strings.Contains(name, "Demo") {
		t.Fatalf("the phone names the website %q", name)
	}
	screenshot(t, phoneTab, "phone-login-zh")
	click(t, phoneTab, "#approve-button")
	waitFor(t, phoneTab, "the phone approved", `document.querySelector("#result")?.dataset.status === "approved"`)
	waitFor(t, desk, "the demo logged in", `location.pathname === "/demo/callback" && (document.querySelector("#claims")?.textContent || "").includes("王小明")`)
	screenshot(t, desk, "demo-done-zh")

	// A signing request shown as a QR code on a website's page, approved on the phone's page.
	signer := storage.Client{ID: "land-office", Name: "地政事務所", Sign: true}
	digest := sha256.Sum256([]byte("土地買賣契約書"))
	started, err := s.service.StartSign(context.Background(), signer, binding.SignRequest{
		Text: "簽署土地買賣契約", Format: "cms", Documents: []signing.Document{{Name: "買賣契約.pdf", Digest: digest[:]}},
	})
	if err != nil {
		t.Fatal(err)
	}
	browse(t, phoneTab, chromedp.Navigate(qr.SignText(s.PublicURL, started.QRToken)))
	waitFor(t, phoneTab, "the signing request on the phone", `(document.querySelector("#documents")?.textContent || "").includes("買賣契約.pdf")`)
	if text := textOf(t, phoneTab, "#sign-text"); text != "簽署土地買賣契約" {
		t.Fatalf("the phone shows the text %q", text)
	}
	screenshot(t, phoneTab, "phone-sign-zh")
	click(t, phoneTab, "#approve-button")
	waitFor(t, phoneTab, "the phone signed", `document.querySelector("#result")?.dataset.status === "approved"`)
	screenshot(t, phoneTab, "phone-signed-zh")
	st, err := s.service.SignStatus(context.Background(), signer.ID, started.ID)
	if err != nil || st.Status != "approved" || len(st.Signatures) != 1 {
		t.Fatalf("the signing request after the phone's page approved: %+v, %v", st, err)
	}
	if _, err := pki.VerifyCMS(st.Signatures[0], []byte("土地買賣契約書"), caPool(t, s)); err != nil {
		t.Fatalf("the signature made on the phone's page: %v", err)
	}

	// On the phone itself, no QR code: the login page opens the approval page for the same
	// login, which returns to it, and it to the website.
	browse(t, phoneTab, chromedp.Navigate(s.PublicURL+"/demo"))
	click(t, phoneTab, "#demo-login")
	waitFor(t, phoneTab, "the login page on the phone", `location.pathname.startsWith("/login/") && document.querySelector("#login-status")?.dataset.status === "pending"`)
	screenshot(t, phoneTab, "login-same-phone-zh")
	click(t, phoneTab, "#same-phone")
	waitFor(t, phoneTab, "the approval page on the same phone", `location.pathname === "/m/login" && (document.querySelector("#code")?.textContent || "").trim().length === 4`)
	click(t, phoneTab, "#approve-button")
	waitFor(t, phoneTab, "the demo logged in on the phone", `location.pathname === "/demo/callback" && (document.querySelector("#claims")?.textContent || "").includes("王小明")`)

	// In English from here on (the cookie holds for every tab): a phone without user
	// verification is refused, visibly.
	browse(t, desk, chromedp.Navigate(s.PublicURL+"/?lang=en"))
	waitFor(t, desk, "the account in English", `document.documentElement.lang === "en" && !document.querySelector("#account").hidden`)
	screenshot(t, desk, "account-en")
	click(t, desk, "#bind-button")
	waitFor(t, desk, "a second pending binding", `document.querySelector("#bind-status")?.dataset.status === "pending"`)
	screenshot(t, desk, "bind-qr-en")
	weak := browser.tab(t, 390, 844, true)
	withAuthenticator(t, weak, false)
	browse(t, weak, chromedp.Navigate(scanQR(t, desk)))
	waitFor(t, weak, "the bind page", `!!document.querySelector("#bind-button")`)
	screenshot(t, weak, "phone-bind-en")
	click(t, weak, "#bind-button")
	waitFor(t, weak, "a visible refusal", `(document.querySelector("#message")?.textContent || "").trim().length > 0 && document.querySelector("#message").offsetParent !== null`)
	if status := eval[string](t, weak, `document.querySelector("#result")?.dataset.status || ""`); status == "bound" {
		t.Fatal("a phone without user verification was bound")
	}
	screenshot(t, weak, "phone-bind-refused-en")
}

// TestBrowserPagesInEnglish shows the pages in the other language, and the card-login page's
// message, with the download link, when no card component runs.
func TestBrowserPagesInEnglish(t *testing.T) {
	browser := newChrome(t)
	_, port, _ := net.SplitHostPort(freeAddr(t))
	s := startServer(t, func(c *Config) { c.CardAgentURL = "http://localhost:" + port }) // nothing listens there
	desk := browser.tab(t, 1280, 900, false)

	browse(t, desk, chromedp.Navigate(s.PublicURL+"/?lang=en"))
	waitFor(t, desk, "the English page", `document.documentElement.lang === "en"`)
	screenshot(t, desk, "home-en")
	fill(t, desk, "#login-id", "A123456789")
	fill(t, desk, "#login-pin", "123456")
	click(t, desk, "#login-button")
	waitFor(t, desk, "the missing card component explained", `(document.querySelector("#message")?.textContent || "").includes("cross-platform web component") && !document.querySelector("#component-help").hidden`)
	screenshot(t, desk, "card-agent-missing-en")

	browse(t, desk, chromedp.Navigate(s.PublicURL+"/demo"))
	screenshot(t, desk, "demo-en")
	click(t, desk, "#demo-login")
	waitFor(t, desk, "the login page", `location.pathname.startsWith("/login/") && document.querySelector("#login-status")?.dataset.status === "pending"`)
	screenshot(t, desk, "login-en")
	phoneTab := browser.tab(t, 390, 844, true) // the same browser: the language cookie too
	browse(t, phoneTab, chromedp.Navigate(scanQR(t, desk)))
	waitFor(t, phoneTab, "the login request on the phone", `(document.querySelector("#code")?.textContent || "").trim().length === 4`)
	screenshot(t, phoneTab, "phone-login-en")

	browse(t, desk, chromedp.Navigate(s.PublicURL+"/nothing/here"))
	waitFor(t, desk, "the error page", `!!document.querySelector("#error-heading")`)
	screenshot(t, desk, "not-found-en")

	browse(t, desk, chromedp.Navigate(s.PublicURL+"/?lang=zh-TW"))
	waitFor(t, desk, "the Chinese page", `document.documentElement.lang.startsWith("zh")`)
	screenshot(t, desk, "home-zh")
}

// caPool is the server's signing CA, as relying parties trust it.
func caPool(t *testing.T, s *server) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(get(t, s.PublicURL+"/pki/ca.pem", "application/x-pem-file")) {
		t.Fatal("GET /pki/ca.pem holds no certificate")
	}
	return pool
}
