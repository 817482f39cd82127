package main

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
)

// loggedIn is a desktop browser with a fresh card login of the citizen.
func (s *server) loggedIn(t *testing.T, card *authn.Card) *browser {
	t.Helper()
	b := s.browser(t)
	b.cardLogin(card)
	return b
}

func TestDeviceManagement(t *testing.T) {
	s := startServer(t)
	ph, card := boundCitizen(t, s)
	b := s.loggedIn(t, card)
	id := ph.Phone.Credentials()[0].DeviceID

	list := b.do("GET", "/api/v1/devices", nil).want(t, 200).json(t)["devices"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != id || list[0].(map[string]any)["expires_soon"] != false {
		t.Fatalf("devices: %v", list)
	}
	if d := b.do("PATCH", "/api/v1/devices/"+id, map[string]string{"name": "舊手機"}).want(t, 200).json(t); d["name"] != "舊手機" {
		t.Fatalf("renamed: %v", d)
	}
	s.refused(t, b, "PATCH", "/api/v1/devices/"+id, map[string]string{"name": strings.Repeat("x", 65)}, 400, "invalid_device_name")
	s.refused(t, b, "PATCH", "/api/v1/devices/"+id, map[string]string{}, 400, "malformed_body")
	s.refused(t, b, "DELETE", "/api/v1/devices/nope", nil, 404, "device_not_found")

	// Another citizen cannot touch the device.
	other := s.loggedIn(t, s.issueCard(t, "林小華", "B234567894", authn.IssueOptions{}))
	other.do("POST", "/api/v1/account", map[string]string{"email": "lin@example.tw", "phone": "0987654321"}).want(t, 201)
	s.refused(t, other, "DELETE", "/api/v1/devices/"+id, nil, 404, "device_not_found")

	if d := b.do("DELETE", "/api/v1/devices/"+id, nil).want(t, 200).json(t); d["status"] != "revoked" {
		t.Fatalf("revoked: %v", d)
	}
	if d := b.do("DELETE", "/api/v1/devices/"+id, nil).want(t, 200).json(t); d["status"] != "revoked" {
		t.Fatalf("revoking twice: %v", d)
	}
	if _, err := ph.Inbox(context.Background(), s.PublicURL); !isAPIError(err, 403, "device_revoked") {
		t.Fatalf("inbox of a revoked device: %v", err)
	}
}

func TestDeviceLimit(t *testing.T) {
	s := startServer(t)
	card := s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})
	e := registerAndShowQR(t, s, card)
	bind := func(qrText string) error {
		p, err := phone.Open(t.TempDir() + "/phone.json")
		if err != nil {
			t.Fatal(err)
		}
		_, err = (&phone.Client{HTTP: http.DefaultClient, Phone: p}).Bind(context.Background(), qrText, "phone", phone.CreateOptions{})
		return err
	}
	pending := e.browser.do("POST", "/api/v1/bindings", nil).want(t, 201).json(t) // made while there was room
	for i := 0; i < 5; i++ {
		qrText := e.binding["qr_text"].(string)
		if i > 0 {
			qrText = e.browser.do("POST", "/api/v1/bindings", nil).want(t, 201).json(t)["qr_text"].(string)
		}
		if err := bind(qrText); err != nil {
			t.Fatalf("bind %d: %v", i+1, err)
		}
	}
	s.refused(t, e.browser, "POST", "/api/v1/bindings", nil, 409, "device_limit")
	if err := bind(pending["qr_text"].(string)); !isAPIError(err, 409, "device_limit") {
		t.Fatalf("a sixth phone through a QR code made earlier: %v", err)
	}
	// Revoking one makes room again.
	id := e.browser.do("GET", "/api/v1/devices", nil).want(t, 200).json(t)["devices"].([]any)[0].(map[string]any)["id"].(string)
	e.browser.do("DELETE", "/api/v1/devices/"+id, nil).want(t, 200)
	e.browser.do("POST", "/api/v1/bindings", nil).want(t, 201)
}

// TestDeviceYear: a device works on day 364 of its year and is refused on day 366, at QR
// login and at CIBA; the inbox and the account warn in its last 30 days; a new card changes
// nothing for the device.
func TestDeviceYear(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	ctx := context.Background()
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	ciba := cibaClient{t: t, rp: s.relyingParty(t, "健保署", provider.ClientSpec{CIBA: true})}
	qrLogin := func() error {
		a := rp.startLogin()
		_, err := ph.Login(ctx, a.scan(t), phone.GetOptions{})
		return err
	}

	s.clock.Advance(334 * 24 * time.Hour) // 31 days left
	if soon := s.loggedIn(t, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})).do("GET", "/api/v1/devices", nil).want(t, 200).json(t)["devices"].([]any)[0].(map[string]any)["expires_soon"]; soon != false {
		t.Fatalf("expires_soon 31 days before expiry: %v", soon)
	}
	s.clock.Advance(30 * 24 * time.Hour) // day 364, with a new card: the old one has been replaced
	b := s.loggedIn(t, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	if soon := b.do("GET", "/api/v1/devices", nil).want(t, 200).json(t)["devices"].([]any)[0].(map[string]any)["expires_soon"]; soon != true {
		t.Fatalf("expires_soon on day 364: %v", soon)
	}
	if err := qrLogin(); err != nil {
		t.Fatalf("QR login on day 364: %v", err)
	}
	id := ciba.start("A123456789", "day 364")
	inbox := phoneInbox(t, s, ph)
	if dev := inbox["device"].(map[string]any); dev["expires_soon"] != true {
		t.Fatalf("the inbox does not warn of the expiry: %v", dev)
	}
	token := inbox["requests"].([]any)[0].(map[string]any)["token"].(string)
	if _, err := ph.Approve(ctx, s.PublicURL, token, phone.GetOptions{}); err != nil {
		t.Fatalf("CIBA approval on day 364: %v", err)
	}
	s.clock.Advance(5 * time.Second)
	if code, _ := ciba.poll(id); code != "" {
		t.Fatalf("CIBA token on day 364: %s", code)
	}

	s.clock.Advance(2 * 24 * time.Hour) // day 366
	if err := qrLogin(); !isAPIError(err, 403, "device_expired") {
		t.Fatalf("QR login on day 366: %v", err)
	}
	status, body := ciba.post("/oidc/bc-authorize", url.Values{"scope": {"openid"}, "login_hint": {"A123456789"}})
	if status != 400 || body["error"] != "unknown_user_id" {
		t.Fatalf("CIBA on day 366: %d %v", status, body)
	}
	if _, err := ph.Inbox(ctx, s.PublicURL); !isAPIError(err, 403, "device_expired") {
		t.Fatalf("inbox on day 366: %v", err)
	}
}

func phoneInbox(t *testing.T, s *server, ph *phone.Client) map[string]any {
	t.Helper()
	b := s.browser(t)
	req, _ := http.NewRequest("GET", s.PublicURL+"/api/v1/phone/inbox", nil)
	req.Header.Set("Authorization", "Bearer "+ph.Phone.Credentials()[0].DeviceToken)
	res, err := b.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := readAll(res)
	return reply{Status: res.StatusCode, Body: body}.want(t, 200).json(t)
}

func TestSuspendAndReinstate(t *testing.T) {
	s := startServer(t)
	ph, card := boundCitizen(t, s)
	ctx := context.Background()
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	ciba := cibaClient{t: t, rp: s.relyingParty(t, "健保署", provider.ClientSpec{CIBA: true})}
	ciba.start("A123456789", "before suspension")
	pendingToken := phoneInbox(t, s, ph)["requests"].([]any)[0].(map[string]any)["token"].(string)

	// The phone is lost: the citizen suspends everything with a card login.
	b := s.loggedIn(t, card)
	if a := b.do("POST", "/api/v1/account/suspend", nil).want(t, 200).json(t); a["status"] != "suspended" {
		t.Fatalf("suspend: %v", a)
	}
	a := rp.startLogin()
	if _, err := ph.Login(ctx, a.scan(t), phone.GetOptions{}); !isAPIError(err, 403, "account_suspended") {
		t.Fatalf("QR login while suspended: %v", err)
	}
	if _, err := ph.Approve(ctx, s.PublicURL, pendingToken, phone.GetOptions{}); !isAPIError(err, 403, "no_usable_device") && !isAPIError(err, 403, "account_suspended") {
		t.Fatalf("CIBA approval while suspended: %v", err)
	}
	if status, body := ciba.post("/oidc/bc-authorize", url.Values{"scope": {"openid"}, "login_hint": {"A123456789"}}); status != 400 || body["error"] != "unknown_user_id" {
		t.Fatalf("CIBA while suspended: %d %v", status, body)
	}
	s.refused(t, b, "POST", "/api/v1/bindings", nil, 403, "account_suspended")

	if a := b.do("POST", "/api/v1/account/reinstate", nil).want(t, 200).json(t); a["status"] != "active" {
		t.Fatalf("reinstate: %v", a)
	}
	a = rp.startLogin()
	if _, err := ph.Login(ctx, a.scan(t), phone.GetOptions{}); err != nil {
		t.Fatalf("QR login after reinstatement: %v", err)
	}
}

func TestAuditLog(t *testing.T) {
	s := startServer(t)
	ph, card := boundCitizen(t, s)
	ctx := context.Background()
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	a := rp.startLogin()
	if _, err := ph.Login(ctx, a.scan(t), phone.GetOptions{NoUserVerification: true}); err == nil {
		t.Fatal("login without UV succeeded")
	}
	a = rp.startLogin()
	if _, err := ph.Login(ctx, a.scan(t), phone.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	b := s.loggedIn(t, card)
	b.do("POST", "/api/v1/account/suspend", nil).want(t, 200)

	var all []map[string]any
	next := ""
	for page := 0; ; page++ {
		path := "/api/v1/account/events?limit=2"
		if next != "" {
			path += "&before=" + url.QueryEscape(next)
		}
		p := b.do("GET", path, nil).want(t, 200).json(t)
		for _, e := range p["events"].([]any) {
			all = append(all, e.(map[string]any))
		}
		n, _ := p["next"].(string)
		if n == "" || page > 20 {
			break
		}
		next = n
	}
	var seen []string
	for _, e := range all {
		seen = append(seen, e["type"].(string)+"/"+e["outcome"].(string)+"/"+e["reason"].(string))
		if strings.Contains(mustJSON(t, e), "A123456789") || strings.Contains(mustJSON(t, e), "127.0.0.1") {
			t.Fatalf("an event shows an unmasked identifier: %v", e)
		}
	}
	// Newest first. The very first card login came before the account and belongs to no one.
	want := []string{"account_suspend/ok/", "card_login/ok/", "login/ok/", "login/refused/user_not_verified", "bind/ok/", "account_create/ok/"}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Fatalf("audit log\n got %v\nwant %v", seen, want)
	}
	s.refused(t, b, "GET", "/api/v1/account/events?before=%25%25", nil, 400, "bad_cursor")

	// Operators see every account's events with the admin token, citizens only their own.
	ops := s.admin(t)("GET", "/api/v1/admin/events?limit=100", nil).want(t, 200).json(t)["events"].([]any)
	if len(ops) < len(all) {
		t.Fatalf("the operator sees %d events, the citizen %d", len(ops), len(all))
	}
}

func TestRateLimits(t *testing.T) {
	s := startServer(t)
	card := s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})
	b := s.browser(t)
	limits := binding.DefaultLimits
	// Per citizen.
	for i := 0; i < limits.CardLoginPerCitizen.N; i++ {
		b.do("POST", "/api/v1/card/login", signedLogin(t, b, card)).want(t, 200)
	}
	r := b.do("POST", "/api/v1/card/login", signedLogin(t, b, card))
	retry, _ := strconv.Atoi(r.Header.Get("Retry-After"))
	if r.Status != 429 || r.errorCode(t) != "rate_limited" || retry <= 0 || retry > 60 {
		t.Fatalf("one card login over the citizen's allowance: %d Retry-After %q: %s", r.Status, r.Header.Get("Retry-After"), r.Body)
	}
	s.clock.Advance(time.Minute)
	b.do("POST", "/api/v1/card/login", signedLogin(t, b, card)).want(t, 200)
}

// TestPhoneBeginLimit checks the limit on guessing QR tokens: an address may have its
// allowance of phone requests refused a minute (begins, finishes and denies with unknown
// tokens); once it is spent, further guesses are answered 429 and write nothing, while a right
// token from the same address still works: a junk client cannot lock out the citizens behind
// its NAT.
func TestPhoneBeginLimit(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	ctx := context.Background()
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	for range 3 {
		if _, err := ph.Login(ctx, rp.startLogin().scan(t), phone.GetOptions{}); err != nil {
			t.Fatalf("login before any guess: %v", err)
		}
	}
	b := s.browser(t)
	guesses := []string{"/api/v1/phone/bind/begin", "/api/v1/phone/login/begin", "/api/v1/phone/login/finish", "/api/v1/phone/login/deny", "/api/v1/phone/bind/finish"}
	for i := 0; i < binding.DefaultLimits.PhoneBeginPerIP.N; i++ {
		body := map[string]any{"token": "guess-" + strconv.Itoa(i), "credential": map[string]any{}}
		b.do("POST", guesses[i%len(guesses)], body).want(t, 404)
	}
	for _, path := range guesses {
		before := s.snapshotAll(t)
		r := b.do("POST", path, map[string]any{"token": "guess", "credential": map[string]any{}})
		if r.Status != 429 || r.Header.Get("Retry-After") == "" || r.errorCode(t) != "rate_limited" {
			t.Fatalf("%s over the address's allowance: %d %s", path, r.Status, r.Body)
		}
		if !bytes.Equal(before, s.snapshotAll(t)) {
			t.Fatalf("%s over the address's allowance wrote to the store", path)
		}
	}
	if _, err := ph.Login(ctx, rp.startLogin().scan(t), phone.GetOptions{}); err != nil {
		t.Fatalf("a right token from the same address after its allowance is spent: %v", err)
	}
}
