package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mcert/mcert/authn"
)

// componentPage is a page that uses MOICA's card component as government sites do: a click
// opens the component's popup; the page answers its getTbs with window.request, posted to "*"
// as those sites post it, and keeps the answer. It keeps every message it hears too.
const componentPage = `<!doctype html>
<meta charset="utf-8"><title>component page</title>
<button id="open">自然人憑證登入</button>
<script>
const component = %q;
window.heard = [];
window.request = null;
window.answer = null;
let popup = null;
document.getElementById("open").addEventListener("click", () => {
  window.answer = null;
  popup = window.open(component + "/popupForm", "card", "width=320,height=240");
});
window.addEventListener("message", (e) => {
  heard.push(e.origin + " " + e.data);
  if (e.origin !== component) return;
  const msg = JSON.parse(e.data);
  if (msg.func === "getTbs") popup.postMessage(window.request, "*");
  else window.answer = msg;
});
</script>`

// startComponentPage serves componentPage on 127.0.0.1 and returns its origin as the browser
// names it, http://localhost:PORT.
func startComponentPage(t *testing.T, componentOrigin string) string {
	t.Helper()
	page := fmt.Sprintf(componentPage, componentOrigin)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return "http://localhost:" + u.Port()
}

// startCardAgent runs a real `mcert card agent` process with args and returns its log.
func startCardAgent(t *testing.T, bin string, card []byte, addr string, args ...string) *syncBuffer {
	t.Helper()
	cardFile := filepath.Join(t.TempDir(), "card.pem")
	if err := os.WriteFile(cardFile, card, 0o600); err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	cmd := exec.Command(bin, append([]string{"card", "agent", "--card", cardFile, "--addr", addr}, args...)...)
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	waitForLog(t, log, "card agent listening on http://"+addr)
	return log
}

func waitForLog(t *testing.T, log *syncBuffer, want string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(log.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the card agent's log does not say %q:\n%s", want, log)
		}
	}
}

// TestBrowserCardAgentPopup runs the component's popup protocol in headless Chromium against a
// real card agent with a MOICA-shaped card: the page of the agent's origin signs with the
// right PIN and is told of a wrong one; a page of another origin hears nothing, and the popup
// ignores what it sends.
func TestBrowserCardAgentPopup(t *testing.T) {
	browser := newChrome(t)
	bin := buildMcert(t)
	now := time.Now()
	ca, _, err := authn.LoadOrCreateDevCA(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	card, err := ca.Issue("王小明", "A123456789", authn.IssueOptions{Now: now, MOICA: true, PIN: "123456"})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := authn.NewCardVerifier(ca.CertPEM(), nil)
	if err != nil {
		t.Fatal(err)
	}
	agentAddr := freeAddr(t)
	_, agentPort, _ := net.SplitHostPort(agentAddr)
	component := "http://localhost:" + agentPort
	origin := startComponentPage(t, component)
	log := startCardAgent(t, bin, card, agentAddr, "--origin", origin)

	tab := browser.tab(t, 1024, 768, false)
	browse(t, tab, chromedp.Navigate(origin+"/"))
	// ask has the page answer the popup's getTbs with request, and returns what it is told.
	ask := func(tab context.Context, request any) string {
		t.Helper()
		js, _ := json.Marshal(request)
		eval[bool](t, tab, fmt.Sprintf(`(window.request = %q, true)`, js))
		browse(t, tab, chromedp.Click(chromedp.ID("open")))
		waitFor(t, tab, "the component's answer", `window.answer !== null`)
		waitFor(t, tab, "the popup closing itself", `popup.closed`)
		return eval[string](t, tab, `JSON.stringify(window.answer)`)
	}
	tbs := authn.CardLoginTBS(origin, "q83vEjRWeJA")
	login := func(pin string) answerOfComponent {
		t.Helper()
		var a answerOfComponent
		if err := json.Unmarshal([]byte(ask(tab, makeSignature(tbs, pin))), &a); err != nil {
			t.Fatal(err)
		}
		return a
	}

	a := login("123456")
	der, err := base64.StdEncoding.DecodeString(a.Signature)
	if a.Func != "sign" || a.RetCode != 0 || err != nil {
		t.Fatalf("the answer to the right PIN: %+v", a)
	}
	citizen, err := verifier.VerifyPKCS7(context.Background(), der, []byte(tbs), time.Now())
	if err != nil || citizen.LastFour != "6789" || citizen.Name != "王小明" {
		t.Fatalf("the signature verifies as %+v, %v", citizen, err)
	}
	if a := login("000000"); a.Func != "sign" || a.RetCode != 0x76100006 || a.LastError != 0xA0 || a.Signature != "" {
		t.Fatalf("the answer to a wrong PIN: %+v, want ret_code 0x76100006 with last_error 0xA0", a)
	}
	var info struct {
		Slots []struct {
			Token struct {
				Certs []struct{ CertB64 string }
			}
		}
	}
	if err := json.Unmarshal([]byte(ask(tab, map[string]string{"func": "GetUserCert"})), &info); err != nil || len(info.Slots) != 1 ||
		len(info.Slots[0].Token.Certs) != 1 || info.Slots[0].Token.Certs[0].CertB64 != base64.StdEncoding.EncodeToString(citizen.Certificate.Raw) {
		t.Fatalf("GetUserCert: %+v, %v", info, err)
	}
	if heard := eval[[]string](t, tab, `heard`); len(heard) != 6 || !strings.HasPrefix(heard[0], component+` {"func":"getTbs"}`) {
		t.Fatalf("the page heard %q, want getTbs and an answer from %s, three times", heard, component)
	}

	// A page of another origin, as when the agent runs with the wrong --origin.
	other := startComponentPage(t, component)
	otherTab := browser.tab(t, 1024, 768, false)
	browse(t, otherTab, chromedp.Navigate(other+"/"))
	js, _ := json.Marshal(makeSignature(authn.CardLoginTBS(other, "q83vEjRWeJA"), "123456"))
	eval[bool](t, otherTab, fmt.Sprintf(`(window.request = %q, true)`, js))
	browse(t, otherTab, chromedp.Click(chromedp.ID("open")))
	waitForLog(t, log, "a page of "+other+" opened the card popup, but the agent signs only for "+origin)
	// The page sends MakeSignature unasked, until the popup has run and ignored one.
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(log.String(), "the card popup ignored a message from a page of "+other); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the popup never reported ignoring the page of %s:\n%s", other, log)
		}
		eval[bool](t, otherTab, `(popup.postMessage(window.request, "*"), true)`)
	}
	time.Sleep(500 * time.Millisecond) // what a late answer would need to arrive
	if heard := eval[[]string](t, otherTab, `heard`); len(heard) != 0 {
		t.Fatalf("the page of another origin heard %q", heard)
	}
	if strings.Count(log.String(), "refused to sign: wrong PIN") != 1 || strings.Contains(log.String(), "refused to sign for "+other) {
		t.Fatalf("the page of another origin reached the card:\n%s", log)
	}
}

// makeSignature is the component's MakeSignature message, as government sites send it.
func makeSignature(tbs, pin string) map[string]string {
	return map[string]string{"func": "MakeSignature", "signatureType": "PKCS7", "tbs": tbs, "tbsEncoding": "NONE",
		"hashAlgorithm": "SHA256", "withCardSN": "false", "pin": pin, "nonce": ""}
}

// answerOfComponent is the component's sign answer as the page reads it.
type answerOfComponent struct {
	Func      string `json:"func"`
	RetCode   uint32 `json:"ret_code"`
	LastError uint32 `json:"last_error"`
	Signature string `json:"signature"`
}
