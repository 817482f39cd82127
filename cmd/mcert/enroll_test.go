package main

import (
	"context"
	"github.com/mcert/mcert/storage"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/qr"
)

// enrolled is a citizen who has registered, with a binding QR code on the desktop.
type enrolled struct {
	browser *browser
	binding map[string]any
}

// registerAndShowQR walks the desktop side: card login, registration, "bind a phone".
func registerAndShowQR(t testing.TB, s *server, card *authn.Card) enrolled {
	t.Helper()
	b := s.browser(t)
	login := b.cardLogin(card)
	if login["account"] != nil {
		t.Fatalf("a new citizen has an account: %v", login)
	}
	acct := b.do("POST", "/api/v1/account", map[string]string{"email": "wang@example.tw", "phone": "0912-345-678"}).want(t, 201).json(t)
	if acct["phone"] != "0912345678" || acct["status"] != "active" || acct["id_masked"] != "A12****789" {
		t.Fatalf("account: %v", acct)
	}
	bind := b.do("POST", "/api/v1/bindings", nil).want(t, 201).json(t)
	return enrolled{browser: b, binding: bind}
}

func TestEnrollEndToEnd(t *testing.T) {
	s := startServer(t)
	card := s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})
	e := registerAndShowQR(t, s, card)
	b, bind := e.browser, e.binding
	if got := b.do("GET", "/api/v1/bindings/"+bind["id"].(string), nil).want(t, 200).json(t)["status"]; got != "pending" {
		t.Fatalf("new binding status %v, want pending", got)
	}

	// The phone scans the real PNG the page shows.
	png := b.do("GET", bind["qr_png"].(string), nil).want(t, 200)
	if ct := png.Header.Get("Content-Type"); ct != "image/png" {
		t.Fatalf("qr.png content type %q", ct)
	}
	text, err := qr.DecodePNG(png.Body)
	if err != nil {
		t.Fatal(err)
	}
	if text != bind["qr_text"] {
		t.Fatalf("QR image says %q, qr_text is %q", text, bind["qr_text"])
	}

	boundAt := s.clock.Now()
	p, err := phone.Open(t.TempDir() + "/phone.json")
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&phone.Client{HTTP: http.DefaultClient, Phone: p}).Bind(context.Background(), text, "Pixel 8", phone.CreateOptions{})
	if err != nil {
		t.Fatalf("bind: %v", err)
	}

	st := b.do("GET", "/api/v1/bindings/"+bind["id"].(string), nil).want(t, 200).json(t)
	dev, _ := st["device"].(map[string]any)
	if st["status"] != "bound" || dev == nil || dev["id"] != res.DeviceID || dev["name"] != "Pixel 8" || dev["status"] != "active" {
		t.Fatalf("desktop sees %v after binding", st)
	}
	acct := b.do("GET", "/api/v1/account", nil).want(t, 200).json(t)
	if devs := acct["devices"].([]any); len(devs) != 1 {
		t.Fatalf("account devices: %v", devs)
	}

	stored, err := storage.Get(context.Background(), s.store, func(tx storage.ReadTx) (storage.Device, error) { return tx.Device(res.DeviceID) })
	if err != nil {
		t.Fatal(err)
	}
	if want := boundAt.AddDate(0, 0, 365); !stored.ExpiresAt.Equal(want) || !res.ExpiresAt.Equal(want) {
		t.Fatalf("device expires %v (phone told %v), want binding time + 365 days = %v", stored.ExpiresAt, res.ExpiresAt, want)
	}
	if stored.TokenHash == nil || string(stored.TokenHash) == res.DeviceToken {
		t.Fatal("the device token must be stored only as a hash")
	}

	// The device lives on its own: a year less a day later it is still active, a year later
	// it has expired, and the card's fate plays no part in either.
	deviceStatus := func() any {
		b := s.browser(t)
		b.cardLogin(s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
		return b.do("GET", "/api/v1/account", nil).want(t, 200).json(t)["devices"].([]any)[0].(map[string]any)["status"]
	}
	s.clock.Advance(364 * 24 * time.Hour)
	if got := deviceStatus(); got != "active" {
		t.Fatalf("device on day 364: %v", got)
	}
	s.clock.Advance(24 * time.Hour)
	if got := deviceStatus(); got != "expired" {
		t.Fatalf("device on day 365: %v", got)
	}
}

func TestBindOptions(t *testing.T) {
	s := startServer(t)
	e := registerAndShowQR(t, s, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	begin := e.browser.do("POST", "/api/v1/phone/bind/begin", map[string]any{"token": tokenOf(t, e.binding["qr_text"].(string))}).want(t, 200).json(t)
	pk := begin["publicKey"].(map[string]any)
	sel := pk["authenticatorSelection"].(map[string]any)
	if sel["userVerification"] != "required" || sel["residentKey"] != "required" || sel["requireResidentKey"] != true {
		t.Errorf("authenticatorSelection %v: user verification and a discoverable credential must be required", sel)
	}
	var algs []float64
	for _, p := range pk["pubKeyCredParams"].([]any) {
		algs = append(algs, p.(map[string]any)["alg"].(float64))
	}
	if len(algs) != 3 || algs[0] != -7 || algs[1] != -257 || algs[2] != -8 {
		t.Errorf("pubKeyCredParams algorithms %v, want ES256, RS256, EdDSA", algs)
	}
	if rp := pk["rp"].(map[string]any); rp["id"] != "localhost" {
		t.Errorf("RP ID %v, want the public URL's host", rp["id"])
	}
	if user := pk["user"].(map[string]any); user["name"] != "A12****789" {
		t.Errorf("user name %v: the phone must see only the masked ID", user["name"])
	}
}

func TestGarbageCollection(t *testing.T) {
	s := startServer(t)
	e := registerAndShowQR(t, s, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	ctx := context.Background()

	// Within the grace hour, expired records stay, so a replay is told "expired", not "unknown".
	s.clock.Advance(30 * time.Minute)
	if n, err := s.service.GarbageCollect(ctx); err != nil || n.Challenges+n.Sessions+n.Bindings != 0 {
		t.Fatalf("collected %+v, %v within the grace period", n, err)
	}
	s.clock.Advance(time.Hour)
	n, err := s.service.GarbageCollect(ctx)
	// Only the challenge a login used was stored: issuing one writes nothing.
	if err != nil || n.Challenges != 1 || n.Sessions != 1 || n.Bindings != 1 {
		t.Fatalf("collected %+v, %v; want the used challenge, the session and the binding", n, err)
	}
	r := e.browser.do("POST", "/api/v1/phone/bind/begin", map[string]any{"token": tokenOf(t, e.binding["qr_text"].(string))})
	if r.Status != 404 || r.errorCode(t) != "binding_not_found" {
		t.Fatalf("a collected binding answers %d %s", r.Status, r.Body)
	}
	if _, err := storage.Get(ctx, s.store, func(tx storage.ReadTx) (storage.Account, error) { return tx.AccountByCitizen("A123456789") }); err != nil {
		t.Fatalf("the account must survive garbage collection: %v", err)
	}
}

func TestPages(t *testing.T) {
	s := startServer(t)
	b := s.browser(t)
	for _, tc := range []struct{ path, contentType, contains string }{
		{"/", "text/html", "以自然人憑證登入"},
		{"/m/bind", "text/html", "註冊裝置"},
		{"/static/app.js", "javascript", "/api/v1/card/challenge"},
		{"/m/login", "text/html", "mcert"},
		{"/static/login.js", "javascript", "/api/v1/logins/"},
		{"/static/style.css", "text/css", "body"},
	} {
		r := b.do("GET", tc.path, nil).want(t, 200)
		if ct := r.Header.Get("Content-Type"); !strings.Contains(ct, tc.contentType) || !strings.Contains(string(r.Body), tc.contains) {
			t.Errorf("GET %s: %s without %q", tc.path, ct, tc.contains)
		}
		if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.path, csp)
		}
	}
	if r := b.do("GET", "/api/v1/nothing", nil); r.Status != 404 || r.errorCode(t) != "not_found" {
		t.Errorf("unknown API path: %d %s", r.Status, r.Body)
	}
	if r := b.do("DELETE", "/api/v1/account", nil); r.Status != 405 || r.errorCode(t) != "method_not_allowed" {
		t.Errorf("wrong method: %d %s", r.Status, r.Body)
	}
	if r := b.do("GET", "/healthz", nil); r.Status != 200 {
		t.Errorf("healthz: %d", r.Status)
	}
}
