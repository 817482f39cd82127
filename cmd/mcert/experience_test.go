package main

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
)

func newPhone(t *testing.T) *phone.Client {
	t.Helper()
	p, err := phone.Open(t.TempDir() + "/phone.json")
	if err != nil {
		t.Fatal(err)
	}
	return &phone.Client{HTTP: http.DefaultClient, Phone: p}
}

// TestRefusalStates checks that a login or binding whose phone is refused for a reason that
// trying again cannot mend moves to "refused" with the reason, which the desktop page reads at
// once, and that the website is told access_denied.
func TestRefusalStates(t *testing.T) {
	ctx := context.Background()
	t.Run("login of a revoked phone", func(t *testing.T) {
		s := startServer(t)
		ph, card := boundCitizen(t, s)
		b := s.browser(t)
		b.cardLogin(card)
		device := b.do("GET", "/api/v1/devices", nil).want(t, 200).json(t)["devices"].([]any)[0].(map[string]any)
		b.do("DELETE", "/api/v1/devices/"+device["id"].(string), nil).want(t, 200)

		rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
		a := rp.startLogin()
		if _, err := ph.Login(ctx, a.scan(t), phone.GetOptions{}); !isAPIError(err, 403, "device_revoked") {
			t.Fatalf("a revoked phone's login: %v", err)
		}
		st := a.browser.do("GET", "/api/v1/logins/"+a.loginID, nil).want(t, 200).json(t)
		if st["status"] != "refused" || st["reason"] != "device_revoked" || st["continue"] == nil {
			t.Fatalf("login page after the refusal: %v", st)
		}
		r := a.browser.do("GET", st["continue"].(string), nil)
		back, _ := url.Parse(r.Header.Get("Location"))
		if r.Status != http.StatusFound || back.Query().Get("error") != "access_denied" || back.Query().Get("state") != a.state {
			t.Fatalf("continue after a refusal: %d %s", r.Status, r.Header.Get("Location"))
		}
	})
	t.Run("binding of a suspended account, and one over the device limit", func(t *testing.T) {
		s := startServer(t, func(c *Config) { c.DeviceLimit = 1 })
		card := s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})
		e := registerAndShowQR(t, s, card)
		second := e.browser.do("POST", "/api/v1/bindings", nil).want(t, 201).json(t)
		if _, err := newPhone(t).Bind(ctx, e.binding["qr_text"].(string), "Pixel 8", phone.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := newPhone(t).Bind(ctx, second["qr_text"].(string), "iPhone", phone.CreateOptions{}); !isAPIError(err, 409, "device_limit") {
			t.Fatalf("a second phone over the limit of one: %v", err)
		}
		if st := e.browser.do("GET", "/api/v1/bindings/"+second["id"].(string), nil).want(t, 200).json(t); st["status"] != "refused" || st["reason"] != "device_limit" {
			t.Fatalf("binding after the refusal: %v", st)
		}

		third := e.browser.do("POST", "/api/v1/bindings", nil)
		if third.Status != 409 { // the limit is reached: no QR code at all
			t.Fatalf("a binding at the limit: %d %s", third.Status, third.Body)
		}
	})
	t.Run("binding refused because the account was suspended", func(t *testing.T) {
		s := startServer(t)
		e := registerAndShowQR(t, s, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
		e.browser.do("POST", "/api/v1/account/suspend", nil).want(t, 200)
		if _, err := newPhone(t).Bind(ctx, e.binding["qr_text"].(string), "Pixel 8", phone.CreateOptions{}); !isAPIError(err, 403, "account_suspended") {
			t.Fatalf("binding to a suspended account: %v", err)
		}
		if st := e.browser.do("GET", "/api/v1/bindings/"+e.binding["id"].(string), nil).want(t, 200).json(t); st["status"] != "refused" || st["reason"] != "account_suspended" {
			t.Fatalf("binding after the refusal: %v", st)
		}
	})
}

// TestLoginCancel: the citizen cancels on the login page and the website gets access_denied.
func TestLoginCancel(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	a := rp.startLogin()
	qrText := a.page["qr_text"].(string)
	s.refused(t, s.browser(t), "POST", "/api/v1/logins/"+a.loginID+"/cancel", nil, 404, "login_not_found")
	st := a.browser.do("POST", "/api/v1/logins/"+a.loginID+"/cancel", nil).want(t, 200).json(t)
	if st["status"] != "denied" || st["reason"] != "login_cancelled" || st["continue"] == nil {
		t.Fatalf("after cancelling: %v", st)
	}
	r := a.browser.do("GET", st["continue"].(string), nil)
	if back, _ := url.Parse(r.Header.Get("Location")); back.Query().Get("error") != "access_denied" {
		t.Fatalf("continue after cancelling: %s", r.Header.Get("Location"))
	}
	if _, err := ph.Login(context.Background(), qrText, phone.GetOptions{}); !isAPIError(err, 409, "login_used") {
		t.Fatalf("the phone after the page cancelled: %v", err)
	}
}

// TestBindInvite: the phone sees whose account it joins before it types a name, and an unknown,
// used or expired code is refused at once.
func TestBindInvite(t *testing.T) {
	s := startServer(t)
	e := registerAndShowQR(t, s, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	b := s.browser(t)
	token := tokenOf(t, e.binding["qr_text"].(string))
	inv := b.do("POST", "/api/v1/phone/bind/info", map[string]string{"token": token}).want(t, 200).json(t)
	if acct := inv["account"].(map[string]any); acct["name"] != "王*明" || acct["id_masked"] != "A12****789" || inv["expires_at"] == nil {
		t.Fatalf("invite: %v", inv)
	}
	s.refused(t, b, "POST", "/api/v1/phone/bind/info", map[string]string{"token": "made-up"}, 404, "binding_not_found")
	if _, err := newPhone(t).Bind(context.Background(), e.binding["qr_text"].(string), "Pixel 8", phone.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s.refused(t, b, "POST", "/api/v1/phone/bind/info", map[string]string{"token": token}, 409, "binding_used")
	late := tokenOf(t, e.browser.do("POST", "/api/v1/bindings", nil).want(t, 201).json(t)["qr_text"].(string))
	s.clock.Advance(6 * time.Minute)
	s.refused(t, b, "POST", "/api/v1/phone/bind/info", map[string]string{"token": late}, 410, "binding_expired")
}

// TestSessionExtend: the page can extend a card session before it ends, within a bound, and the
// old cookie stops working.
func TestSessionExtend(t *testing.T) {
	s := startServer(t)
	b := s.browser(t)
	login := b.cardLogin(s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	if sess := login["session"].(map[string]any); sess["expires_at"] != rfc3339(s.clock.Now().Add(15*time.Minute)) || sess["expires_in"] != 900.0 {
		t.Fatalf("card login: %v", login)
	}
	stale := s.browser(t)
	u, _ := url.Parse(s.PublicURL)
	stale.http.Jar.SetCookies(u, b.http.Jar.Cookies(u))
	start := s.clock.Now()
	for i := 1; i <= 8; i++ {
		s.clock.Advance(14 * time.Minute)
		want := s.clock.Now().Add(15 * time.Minute)
		if limit := start.Add(2 * time.Hour); want.After(limit) {
			want = limit
		}
		if got := b.do("POST", "/api/v1/card/session", nil).want(t, 200).json(t)["expires_at"]; got != rfc3339(want) {
			t.Fatalf("extension %d: expires at %v, want %s", i, got, rfc3339(want))
		}
	}
	s.clock.Advance(7 * time.Minute) // a minute before the two hours
	if r := b.do("POST", "/api/v1/card/session", nil); r.Status != 403 || r.errorCode(t) != "session_at_limit" {
		t.Fatalf("an extension at two hours: %d %s", r.Status, r.Body)
	}
	if r := stale.do("GET", "/api/v1/card/session", nil); r.Status != 401 {
		t.Fatalf("the cookie before the extension: %d %s", r.Status, r.Body)
	}
	b.do("GET", "/api/v1/card/session", nil).want(t, 200)
}

// TestDeviceNames: two phones asking for one name are listed apart, and events name the website.
func TestDeviceNames(t *testing.T) {
	s := startServer(t)
	card := s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})
	e := registerAndShowQR(t, s, card)
	ph := newPhone(t)
	if _, err := ph.Bind(context.Background(), e.binding["qr_text"].(string), "Android 手機", phone.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	second := e.browser.do("POST", "/api/v1/bindings", nil).want(t, 201).json(t)
	res, err := newPhone(t).Bind(context.Background(), second["qr_text"].(string), "Android 手機", phone.CreateOptions{})
	if err != nil || res.DeviceName != "Android 手機 2" {
		t.Fatalf("the second phone of the same name: %+v, %v", res, err)
	}

	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	rp.login(ph)
	for _, ev := range e.browser.do("GET", "/api/v1/account/events", nil).want(t, 200).json(t)["events"].([]any) {
		if ev := ev.(map[string]any); ev["type"] == "login" && ev["client_name"] != "臺灣雲市集" {
			t.Fatalf("a login event names the website %v", ev["client_name"])
		}
	}
}

// TestErrorPages: a browser navigating to what cannot be shown reads a page in its language; a
// program asking the same gets PROTOCOL.md's JSON error.
func TestErrorPages(t *testing.T) {
	s := startServer(t)
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	badAuthorize := rp.oauth.AuthCodeURL("state")
	badAuthorize = strings.Replace(badAuthorize, "client_id="+url.QueryEscape(rp.oauth.ClientID), "client_id=nobody", 1)
	for _, tc := range []struct {
		name, path string
		status     int
		code       *mcert.Code
	}{
		{"no such page", "/nothing/here", 404, mcert.NoSuchRoute},
		{"another browser's login page", "/login/some-id", 404, mcert.LoginNotFound},
		{"an unknown client at the authorization endpoint", badAuthorize, 400, mcert.InvalidClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, lang := range []string{"zh-TW", "en"} {
				req, _ := http.NewRequest("GET", s.PublicURL+strings.TrimPrefix(tc.path, s.PublicURL), nil)
				req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
				req.Header.Set("Accept-Language", lang)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := readAll(res)
				res.Body.Close()
				text := map[string]string{"zh-TW": tc.code.ZH, "en": tc.code.EN}[lang]
				if res.StatusCode != tc.status || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), html.EscapeString(text)) {
					t.Errorf("a browser (%s): %d %s, want %d and a page saying %q:\n%.300s", lang, res.StatusCode, res.Header.Get("Content-Type"), tc.status, text, body)
				}
			}
			res, err := http.Get(s.PublicURL + strings.TrimPrefix(tc.path, s.PublicURL))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := readAll(res)
			res.Body.Close()
			var v map[string]any
			if json.Unmarshal(body, &v) != nil || res.StatusCode != tc.status || v["error"] != tc.code.Name {
				t.Errorf("a program: %d %s, want %d and the JSON error %s", res.StatusCode, body, tc.status, tc.code.Name)
			}
		})
	}
}
