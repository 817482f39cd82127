package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/qr"
	"github.com/mcert/mcert/storage"
)

// relyingParty is a website using the standard client libraries against the server.
type relyingParty struct {
	t        testing.TB
	s        *server
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
	provider *oidc.Provider
}

const rpRedirect = "http://127.0.0.1:9/callback" // never served: the test reads the redirect

func (s *server) relyingParty(t testing.TB, name string, spec provider.ClientSpec) *relyingParty {
	t.Helper()
	ctx := context.Background()
	spec.Name = name
	if spec.RedirectURIs == nil {
		spec.RedirectURIs = []string{rpRedirect}
	}
	c, err := provider.RegisterClient(ctx, s.service, spec, "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := oidc.NewProvider(ctx, s.PublicURL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &relyingParty{
		t: t, s: s, provider: p,
		oauth: oauth2.Config{
			ClientID: c.ID, ClientSecret: c.Secret, Endpoint: p.Endpoint(), RedirectURL: spec.RedirectURIs[0],
			Scopes: []string{oidc.ScopeOpenID, "profile", "email", "phone", "citizen_id"},
		},
		verifier: p.Verifier(&oidc.Config{ClientID: c.ID}),
	}
}

// loginAttempt is a relying-party login as far as the login page.
type loginAttempt struct {
	browser  *browser
	loginID  string
	page     map[string]any
	state    string
	nonce    string
	verifier string
}

// startLogin sends a browser to the authorization endpoint, as the website would, and follows
// it to the login page.
func (rp *relyingParty) startLogin(opts ...oauth2.AuthCodeOption) loginAttempt {
	t := rp.t
	t.Helper()
	a := loginAttempt{browser: rp.s.browser(t), state: "state-" + t.Name(), nonce: "nonce-" + t.Name(), verifier: oauth2.GenerateVerifier()}
	a.browser.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	opts = append([]oauth2.AuthCodeOption{oidc.Nonce(a.nonce), oauth2.S256ChallengeOption(a.verifier)}, opts...)
	r := a.browser.do("GET", rp.oauth.AuthCodeURL(a.state, opts...), nil)
	loc := r.Header.Get("Location")
	id, ok := strings.CutPrefix(loc, "/login/")
	if r.Status != http.StatusFound || !ok {
		t.Fatalf("authorization endpoint answered %d to %q, want 302 to /login/<id>: %s", r.Status, loc, r.Body)
	}
	a.loginID = id
	a.page = a.browser.do("GET", "/api/v1/logins/"+id, nil).want(t, 200).json(t)
	return a
}

// scan is the phone scanning the login page's QR image.
func (a loginAttempt) scan(t testing.TB) string {
	t.Helper()
	png := a.browser.do("GET", a.page["qr_png"].(string), nil).want(t, 200)
	text, err := qr.DecodePNG(png.Body)
	if err != nil {
		t.Fatal(err)
	}
	if text != a.page["qr_text"] {
		t.Fatalf("QR image %q, qr_text %q", text, a.page["qr_text"])
	}
	return text
}

// finish follows "continue" back to the website and redeems the code.
func (rp *relyingParty) finish(a loginAttempt) (*oauth2.Token, *oidc.IDToken) {
	t := rp.t
	t.Helper()
	st := a.browser.do("GET", "/api/v1/logins/"+a.loginID, nil).want(t, 200).json(t)
	cont, _ := st["continue"].(string)
	if st["status"] != "approved" || cont == "" {
		t.Fatalf("login page after approval: %v", st)
	}
	r := a.browser.do("GET", cont, nil)
	back, err := url.Parse(r.Header.Get("Location"))
	if r.Status != http.StatusFound || err != nil || !strings.HasPrefix(back.String(), rp.oauth.RedirectURL) {
		t.Fatalf("continue answered %d to %q: %s", r.Status, r.Header.Get("Location"), r.Body)
	}
	if back.Query().Get("state") != a.state {
		t.Fatalf("state %q came back as %q", a.state, back.Query().Get("state"))
	}
	tok, err := rp.oauth.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(a.verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if idt.Nonce != a.nonce {
		t.Fatalf("nonce %q, want %q", idt.Nonce, a.nonce)
	}
	tok = tok.WithExtra(map[string]any{"code": back.Query().Get("code"), "id_token": raw})
	return tok, idt
}

// boundCitizen is a registered citizen with a bound software phone.
func boundCitizen(t testing.TB, s *server) (*phone.Client, *authn.Card) {
	t.Helper()
	card := s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})
	e := registerAndShowQR(t, s, card)
	p, err := phone.Open(t.TempDir() + "/phone.json")
	if err != nil {
		t.Fatal(err)
	}
	c := &phone.Client{HTTP: http.DefaultClient, Phone: p}
	if _, err := c.Bind(context.Background(), e.binding["qr_text"].(string), "Pixel 8", phone.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return c, card
}

type claims struct {
	Sub           string   `json:"sub"`
	Name          string   `json:"name"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	PhoneNumber   string   `json:"phone_number"`
	CitizenID     string   `json:"citizen_id"`
	ACR           string   `json:"acr"`
	AMR           []string `json:"amr"`
	AuthTime      int64    `json:"auth_time"`
}

func TestOIDCCodeFlow(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	ctx := context.Background()
	withID := s.relyingParty(t, "戶政線上申辦", provider.ClientSpec{CitizenID: true})
	plain := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})

	login := func(rp *relyingParty) (*oauth2.Token, claims) {
		t.Helper()
		a := rp.startLogin()
		if a.page["status"] != "pending" || a.page["client_name"] == "" || len(a.page["code"].(string)) != 4 {
			t.Fatalf("login page: %v", a.page)
		}
		res, err := ph.Login(ctx, a.scan(t), phone.GetOptions{})
		if err != nil {
			t.Fatalf("phone login: %v", err)
		}
		if res.Code != a.page["code"] || res.ClientName != a.page["client_name"] || res.Status != "approved" {
			t.Fatalf("the phone showed %+v, the page %v", res, a.page)
		}
		tok, idt := rp.finish(a)
		var c claims
		if err := idt.Claims(&c); err != nil {
			t.Fatal(err)
		}
		return tok, c
	}

	tok, c := login(withID)
	if c.Name != "王小明" || c.Email != "wang@example.tw" || c.PhoneNumber != "+886912345678" || c.CitizenID != "A123456789" {
		t.Errorf("ID token claims %+v", c)
	}
	// The software phone's key has no attestation: never hwk (TestAssurance has the rest).
	if c.ACR != "urn:mcert:acr:phone-biometric" || len(c.AMR) != 2 || c.AMR[0] != "swk" || c.AMR[1] != "user" || c.AuthTime != s.clock.Now().Unix() {
		t.Errorf("ID token acr %q amr %v auth_time %d", c.ACR, c.AMR, c.AuthTime)
	}
	info, err := withID.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Subject != c.Sub || info.Email != c.Email {
		t.Errorf("userinfo %+v does not match the ID token %+v", info, c)
	}

	// The code works once.
	if _, err := withID.oauth.Exchange(ctx, tok.Extra("code").(string), oauth2.VerifierOption("x")); !isOAuthError(err, "invalid_grant") {
		t.Errorf("replayed code: %v", err)
	}

	_, c2 := login(plain)
	if c2.Sub == c.Sub || c2.Sub == "" {
		t.Errorf("the same citizen has sub %q at one website and %q at another: they must differ", c.Sub, c2.Sub)
	}
	if c2.CitizenID != "" {
		t.Errorf("a website not registered for citizen_id got %q", c2.CitizenID)
	}
	if _, c3 := login(plain); c3.Sub != c2.Sub {
		t.Errorf("sub changed between two logins at one website: %q, %q", c2.Sub, c3.Sub)
	}
}

func isOAuthError(err error, code string) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == code
}

func TestOIDCRefusals(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	ctx := context.Background()
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	deviceID := ph.Phone.Credentials()[0].DeviceID

	t.Run("no user verification", func(t *testing.T) {
		a := rp.startLogin()
		_, err := ph.Login(ctx, a.scan(t), phone.GetOptions{NoUserVerification: true})
		if !isAPIError(err, 400, "user_not_verified") {
			t.Fatalf("login without UV: %v", err)
		}
	})

	t.Run("replayed QR token", func(t *testing.T) {
		a := rp.startLogin()
		text := a.scan(t)
		if _, err := ph.Login(ctx, text, phone.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := ph.Login(ctx, text, phone.GetOptions{}); !isAPIError(err, 409, "login_used") {
			t.Fatalf("second login with one QR code: %v", err)
		}
	})

	t.Run("counter going backwards", func(t *testing.T) {
		a := rp.startLogin()
		one := uint32(1)
		_, err := ph.Login(ctx, a.scan(t), phone.GetOptions{SignCount: &one})
		if !isAPIError(err, 403, "clone_warning") {
			t.Fatalf("login with a counter that went back: %v", err)
		}
		d, err := storage.Get(ctx, s.store, func(tx storage.ReadTx) (storage.Device, error) { return tx.Device(deviceID) })
		if err != nil || d.CloneWarningAt == nil {
			t.Fatalf("the clone warning was not recorded on the device: %+v %v", d, err)
		}
	})

	t.Run("revoked device", func(t *testing.T) {
		a := rp.startLogin()
		text := a.scan(t)
		revoke(t, s, deviceID)
		if _, err := ph.Login(ctx, text, phone.GetOptions{}); !isAPIError(err, 403, "device_revoked") {
			t.Fatalf("login by a revoked device: %v", err)
		}
	})

	t.Run("redirect URI not registered", func(t *testing.T) {
		other := rp.oauth
		other.RedirectURL = "http://127.0.0.1:9/elsewhere"
		b := s.browser(t)
		b.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		r := b.do("GET", other.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())), nil)
		if r.Status < 400 || strings.Contains(r.Header.Get("Location"), "/login/") || strings.Contains(r.Header.Get("Location"), "elsewhere") {
			t.Fatalf("unregistered redirect URI answered %d, Location %q", r.Status, r.Header.Get("Location"))
		}
	})

	t.Run("PKCE plain refused", func(t *testing.T) {
		b := s.browser(t)
		b.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		r := b.do("GET", rp.oauth.AuthCodeURL("st", oauth2.SetAuthURLParam("code_challenge", "abc"), oauth2.SetAuthURLParam("code_challenge_method", "plain")), nil)
		if loc := r.Header.Get("Location"); strings.Contains(loc, "/login/") || !strings.Contains(loc, "error=invalid_request") {
			t.Fatalf("plain PKCE answered %d to %q", r.Status, loc)
		}
	})
}

// TestOIDCTokenRefusals checks the token endpoint's refusals on codes the phone approved.
func TestOIDCTokenRefusals(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	ctx := context.Background()
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})

	approvedCode := func(t *testing.T) (loginAttempt, string) {
		t.Helper()
		a := rp.startLogin()
		if _, err := ph.Login(ctx, a.scan(t), phone.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		st := a.browser.do("GET", "/api/v1/logins/"+a.loginID, nil).want(t, 200).json(t)
		r := a.browser.do("GET", st["continue"].(string), nil)
		back, _ := url.Parse(r.Header.Get("Location"))
		return a, back.Query().Get("code")
	}
	tests := []struct {
		name  string
		oauth func(oauth2.Config) oauth2.Config
		opts  func(a loginAttempt) []oauth2.AuthCodeOption
		code  string
	}{
		{"wrong client secret", func(c oauth2.Config) oauth2.Config { c.ClientSecret = "wrong"; return c },
			func(a loginAttempt) []oauth2.AuthCodeOption {
				return []oauth2.AuthCodeOption{oauth2.VerifierOption(a.verifier)}
			}, "invalid_client"},
		{"PKCE verifier mismatch", func(c oauth2.Config) oauth2.Config { return c },
			func(loginAttempt) []oauth2.AuthCodeOption {
				return []oauth2.AuthCodeOption{oauth2.VerifierOption(oauth2.GenerateVerifier())}
			}, "invalid_grant"},
		{"PKCE verifier missing", func(c oauth2.Config) oauth2.Config { return c },
			func(loginAttempt) []oauth2.AuthCodeOption { return nil }, "invalid_grant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, code := approvedCode(t)
			cfg := tc.oauth(rp.oauth)
			if _, err := cfg.Exchange(ctx, code, tc.opts(a)...); !isOAuthError(err, tc.code) {
				t.Fatalf("exchange: %v, want %s", err, tc.code)
			}
			// The refused exchange did not spend the code: the rightful one still works.
			if _, err := rp.oauth.Exchange(ctx, code, oauth2.VerifierOption(a.verifier)); err != nil {
				t.Fatalf("the rightful exchange after a refused one: %v", err)
			}
		})
	}
}

func revoke(t *testing.T, s *server, deviceID string) {
	t.Helper()
	now := s.clock.Now()
	err := s.store.Update(context.Background(), func(tx storage.Tx) error {
		d, err := tx.Device(deviceID)
		if err != nil {
			return err
		}
		d.Status, d.RevokedAt = storage.DeviceRevoked, &now
		return tx.PutDevice(d)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDemoRelyingParty walks the development demo: the README's one command shows a whole login.
func TestDemoRelyingParty(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	b := s.browser(t)
	b.http.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.Path, "/login/") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	if page := b.do("GET", "/demo", nil).want(t, 200); !strings.Contains(string(page.Body), "/demo/login") {
		t.Fatalf("demo page: %s", page.Body)
	}
	r := b.do("GET", "/demo/login", nil)
	id, ok := strings.CutPrefix(r.Header.Get("Location"), "/login/")
	if !ok {
		t.Fatalf("demo login went to %q (%d): %s", r.Header.Get("Location"), r.Status, r.Body)
	}
	a := loginAttempt{browser: b, loginID: id, page: b.do("GET", "/api/v1/logins/"+id, nil).want(t, 200).json(t)}
	if _, err := ph.Login(context.Background(), a.scan(t), phone.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	cont := b.do("GET", "/api/v1/logins/"+id, nil).want(t, 200).json(t)["continue"].(string)
	done := b.do("GET", cont, nil).want(t, 200)
	for _, want := range []string{"登入成功", "王小明", "A123456789", "swk"} {
		if !strings.Contains(string(done.Body), want) {
			t.Fatalf("the demo's result page lacks %q: %s", want, done.Body)
		}
	}
}

// TestLoginDeniedOnPhone follows a QR login through scanned to denied, and the browser back to
// the website with access_denied.
func TestLoginDeniedOnPhone(t *testing.T) {
	s := startServer(t)
	boundCitizen(t, s)
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	a := rp.startLogin()
	token := tokenOf(t, a.scan(t))
	begin := a.browser.do("POST", "/api/v1/phone/login/begin", map[string]string{"token": token}).want(t, 200).json(t)
	if begin["client_name"] != "臺灣雲市集" || begin["code"] != a.page["code"] || begin["publicKey"] == nil {
		t.Fatalf("login begin: %v", begin)
	}
	if st := a.browser.do("GET", "/api/v1/logins/"+a.loginID, nil).want(t, 200).json(t); st["status"] != "scanned" || st["continue"] != nil {
		t.Fatalf("after begin: %v", st)
	}
	if got := a.browser.do("POST", "/api/v1/phone/login/deny", map[string]string{"token": token}).want(t, 200).json(t); got["status"] != "denied" {
		t.Fatalf("deny: %v", got)
	}
	s.refused(t, a.browser, "POST", "/api/v1/phone/login/deny", map[string]string{"token": token}, 409, "login_used")
	st := a.browser.do("GET", "/api/v1/logins/"+a.loginID, nil).want(t, 200).json(t)
	if st["status"] != "denied" {
		t.Fatalf("after deny: %v", st)
	}
	r := a.browser.do("GET", st["continue"].(string), nil)
	back, _ := url.Parse(r.Header.Get("Location"))
	if r.Status != http.StatusFound || back.Query().Get("error") != "access_denied" || back.Query().Get("state") != a.state {
		t.Fatalf("continue after denial answered %d to %q", r.Status, r.Header.Get("Location"))
	}
}
