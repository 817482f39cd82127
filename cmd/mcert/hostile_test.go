package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"github.com/mcert/mcert/storage"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
)

// The attacks of the hostile-network issue, each as an anonymous client on the open internet
// would try it. Every one of these tests fails against mcert as it was before that issue.

// TestLoginHijack: an attacker starts a login at a website and hands the victim the genuine
// login page. The page, its state, its QR code and the way back to the website belong to the
// attacker's browser alone, so the victim's browser sees nothing, and the QR token cannot be
// computed from the page's URL.
func TestLoginHijack(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	attack := rp.startLogin()
	id := attack.loginID

	victim := s.browser(t)
	victim.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	ownLogin := rp.startLogin() // the victim's browser has a browser secret of its own
	victim.http.Jar = ownLogin.browser.http.Jar
	for _, tc := range []struct{ method, path string }{
		{"GET", "/login/" + id},
		{"GET", "/api/v1/logins/" + id},
		{"POST", "/api/v1/logins/" + id + "/qr"},
		{"GET", "/api/v1/logins/" + id + "/qr.png"},
		{"GET", provider.ContinuePath + "?id=" + url.QueryEscape(id)},
	} {
		for name, b := range map[string]*browser{"a browser with no cookie": s.browser(t), "another browser": victim} {
			r := b.do(tc.method, tc.path, nil)
			if r.Status != 404 || r.errorCode(t) != "login_not_found" {
				t.Errorf("%s %s from %s: %d %s, want 404 login_not_found", tc.method, tc.path, name, r.Status, r.Body)
			}
		}
	}

	// The QR token is made with a server secret: the old derivation from the id gives nothing.
	m := hmac.New(sha256.New, []byte(id))
	m.Write([]byte("mcert login qr 1"))
	if old := base64.RawURLEncoding.EncodeToString(m.Sum(nil)); strings.Contains(attack.page["qr_text"].(string), old) {
		t.Fatal("the QR token is still derived from the login id")
	}

	// The phone is told which browser asked, and when, before it approves.
	begin := victim.do("POST", "/api/v1/phone/login/begin", map[string]string{"token": tokenOf(t, attack.page["qr_text"].(string))}).want(t, 200).json(t)
	if begin["browser"] != "Go-http-client" || begin["requested_at"] != rfc3339(s.clock.Now()) {
		t.Errorf("begin names browser %v at %v, want Go-http-client at %s", begin["browser"], begin["requested_at"], rfc3339(s.clock.Now()))
	}

	// The browser that started the login still logs in.
	mine := rp.startLogin()
	if _, err := ph.Login(context.Background(), mine.scan(t), phone.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	rp.finish(mine)
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// TestOversizedAuthorize: the authorization endpoint stores what an anonymous client sends, so
// every parameter is bounded.
func TestOversizedAuthorize(t *testing.T) {
	s := startServer(t)
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	b := s.browser(t)
	b.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	authorize := func(extra url.Values) string {
		u, _ := url.Parse(rp.oauth.AuthCodeURL("state", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		q := u.Query()
		for k, v := range extra {
			q[k] = v
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	for _, tc := range []struct {
		name  string
		extra url.Values
	}{
		{"state of 10 KB", url.Values{"state": {strings.Repeat("s", 10<<10)}}},
		{"nonce of 600 bytes", url.Values{"nonce": {strings.Repeat("n", 600)}}},
		{"20 scopes", url.Values{"scope": {"openid" + strings.Repeat(" profile", 19)}}},
		{"login_hint of 3 KB", url.Values{"login_hint": {strings.Repeat("h", 3<<10)}}},
		{"state twice", url.Values{"state": {"a", "b"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.snapshotAll(t)
			r := b.do("GET", authorize(tc.extra), nil)
			if r.Status != 400 || r.json(t)["error"] != "invalid_request" {
				t.Fatalf("%d %s, want 400 invalid_request", r.Status, r.Body)
			}
			if !bytes.Equal(before, s.snapshotAll(t)) {
				t.Fatal("the refused request changed the store")
			}
		})
	}
	t.Run("state of 1 MB, posted", func(t *testing.T) {
		form := url.Values{"client_id": {rp.oauth.ClientID}, "response_type": {"code"}, "scope": {"openid"},
			"redirect_uri": {rpRedirect}, "state": {strings.Repeat("s", 1<<20)}}
		req, _ := http.NewRequest("POST", s.PublicURL+"/oidc/authorize", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := readAll(res)
		res.Body.Close()
		r := reply{Status: res.StatusCode, Body: data}
		if r.Status != 413 || r.json(t)["error"] != "invalid_request" {
			t.Fatalf("%d %s, want 413 invalid_request", r.Status, r.Body)
		}
	})
}

// TestAnonymousGrowth sends 5,000 requests of each kind an anonymous client can make the
// server store something with, and checks the data file grows by less than 5 MB for each.
func TestAnonymousGrowth(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 15,000 requests")
	}
	var s *server
	var rp *relyingParty
	fresh := func(t *testing.T) {
		s = startServer(t)
		rp = s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	}
	size := func() int64 {
		dbPath := filepath.Join(s.Config.DataDir, "mcert.db")
		fi, err := os.Stat(dbPath)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	flood := func(t *testing.T, n int, send func(c *http.Client, i int) int, ok func(status int) bool) {
		t.Helper()
		before := size()
		var wg sync.WaitGroup
		var mu sync.Mutex
		statuses := map[int]int{}
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				for i := w; i < n; i += 8 {
					st := send(c, i)
					mu.Lock()
					statuses[st]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		for st := range statuses {
			if !ok(st) {
				t.Errorf("answers by status: %v", statuses)
				break
			}
		}
		if grew := size() - before; grew >= 5<<20 {
			t.Errorf("%d requests grew the data file by %d bytes (answers %v)", n, grew, statuses)
		} else {
			t.Logf("%d requests grew the data file by %d bytes (answers %v)", n, grew, statuses)
		}
	}
	get := func(c *http.Client, u string) int {
		res, err := c.Get(u)
		if err != nil {
			t.Error(err)
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	post := func(c *http.Client, path, body string) int {
		res, err := c.Post(s.PublicURL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}

	t.Run("authorize", func(t *testing.T) {
		fresh(t)
		flood(t, 5000, func(c *http.Client, i int) int {
			return get(c, rp.oauth.AuthCodeURL(strings.Repeat("s", 2048), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
				oauth2.SetAuthURLParam("nonce", strings.Repeat("n", 512))))
		}, func(st int) bool { return st == http.StatusFound })
	})
	t.Run("card challenge", func(t *testing.T) {
		fresh(t)
		flood(t, 5000, func(c *http.Client, i int) int { return get(c, s.PublicURL+"/api/v1/card/challenge") },
			func(st int) bool { return st == 200 })
	})
	t.Run("failing finish", func(t *testing.T) {
		// The attacker's own login, begun with its QR token, then finished with junk, and as
		// many finishes with made-up tokens.
		fresh(t)
		a := rp.startLogin()
		token := tokenOf(t, a.page["qr_text"].(string))
		a.browser.do("POST", "/api/v1/phone/login/begin", map[string]string{"token": token}).want(t, 200)
		events := func() int {
			e, err := storage.Get(context.Background(), s.store, func(tx storage.ReadTx) ([]storage.Event, error) { return tx.Events("", "", 1000) })
			if err != nil {
				t.Fatal(err)
			}
			return len(e)
		}
		before := events()
		flood(t, 5000, func(c *http.Client, i int) int {
			tok := token
			if i%2 == 1 {
				tok = fmt.Sprintf("made-up-token-%d", i)
			}
			return post(c, "/api/v1/phone/login/finish", `{"token": "`+tok+`", "credential": {"id": "x", "type": "public-key"}}`)
		}, func(st int) bool { return st == 400 || st == 403 || st == 404 || st == 409 || st == 429 })
		if got := events() - before; got > 1 {
			t.Errorf("5,000 refused finishes wrote %d audit events, want at most one for the one real token", got)
		}
		if st := a.browser.do("GET", "/api/v1/logins/"+a.loginID, nil).want(t, 200).json(t); st["status"] != "refused" || st["reason"] != "too_many_failures" {
			t.Errorf("the hammered login is %v, want refused for good, too_many_failures", st)
		}
	})
}

// TestJunkNeighbour: a junk client behind the same address as a citizen (a carrier's NAT, an
// office) spends the address's allowance of refusals; the citizen's card still logs in.
func TestJunkNeighbour(t *testing.T) {
	s := startServer(t)
	card := s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})
	junk := s.browser(t)
	for i := 0; i < binding.DefaultLimits.CardLoginPerIP.N; i++ {
		body := signedLogin(t, junk, card)
		body["signature"] = b64([]byte("not the card's signature"))
		junk.do("POST", "/api/v1/card/login", body).want(t, 401)
	}
	body := signedLogin(t, junk, card)
	body["signature"] = b64([]byte("not the card's signature"))
	before := s.snapshotAll(t)
	if r := junk.do("POST", "/api/v1/card/login", body); r.Status != 429 || r.errorCode(t) != "rate_limited" {
		t.Fatalf("a refusal over the allowance: %d %s", r.Status, r.Body)
	}
	if !bytes.Equal(before, s.snapshotAll(t)) {
		t.Fatal("a refusal over the allowance wrote to the store")
	}
	citizen := s.browser(t)
	citizen.do("POST", "/api/v1/card/login", signedLogin(t, citizen, card)).want(t, 200)
}

// TestPushBombing: relying parties together may have at most three requests waiting for one
// citizen; the fourth is refused until one is answered.
func TestPushBombing(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	a := cibaClient{t: t, rp: s.relyingParty(t, "健保署", provider.ClientSpec{CIBA: true})}
	b := cibaClient{t: t, rp: s.relyingParty(t, "勞保局", provider.ClientSpec{CIBA: true})}
	a.start("A123456789", "一")
	a.start("A123456789", "二")
	b.start("A123456789", "三")
	for _, c := range []cibaClient{a, b} {
		status, body := c.post("/oidc/bc-authorize", url.Values{"scope": {"openid"}, "login_hint": {"A123456789"}, "binding_message": {"四"}})
		if status != 403 || body["error"] != "access_denied" || !strings.Contains(body["error_description"].(string), "waiting") {
			t.Fatalf("a fourth waiting request: %d %v", status, body)
		}
	}
	inbox, err := ph.Inbox(context.Background(), s.PublicURL)
	if err != nil || len(inbox) != 3 {
		t.Fatalf("inbox: %d requests, %v", len(inbox), err)
	}
	if err := ph.Deny(context.Background(), s.PublicURL, inbox[0].Token); err != nil {
		t.Fatal(err)
	}
	b.start("A123456789", "四")
}

// TestInvisibleCharacters: what one party types and the citizen reads on the phone may not
// hide text with bidi overrides or zero-width characters.
func TestInvisibleCharacters(t *testing.T) {
	s := startServer(t)
	boundCitizen(t, s)
	c := cibaClient{t: t, rp: s.relyingParty(t, "健保署", provider.ClientSpec{CIBA: true})}
	for _, msg := range []string{"轉帳 NT$1,000\u202e000,1$TN", "pay\u200bpal", "a\u2066b"} {
		status, body := c.post("/oidc/bc-authorize", url.Values{"scope": {"openid"}, "login_hint": {"A123456789"}, "binding_message": {msg}})
		if status != 400 || body["error"] != "invalid_binding_message" {
			t.Errorf("binding_message %q: %d %v", msg, status, body)
		}
	}
	if _, err := provider.RegisterClient(context.Background(), s.service, provider.ClientSpec{Name: "健保\u200d署", CIBA: true}, ""); err == nil || !strings.Contains(err.Error(), "invalid_client_metadata") {
		t.Errorf("a client name with a zero-width joiner: %v", err)
	}
	b := s.browser(t)
	b.cardLogin(s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	devices := b.do("GET", "/api/v1/devices", nil).want(t, 200).json(t)["devices"].([]any)
	id := devices[0].(map[string]any)["id"].(string)
	s.refused(t, b, "PATCH", "/api/v1/devices/"+id, map[string]string{"name": "Pixel\u202e8"}, 400, "invalid_device_name")
}

// TestCardLoginCSRF: another site's form cannot log the browser in with the attacker's card.
func TestCardLoginCSRF(t *testing.T) {
	s := startServer(t)
	card := s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})
	b := s.browser(t)
	body := mustJSON(t, signedLogin(t, b, card))
	for _, tc := range []struct {
		name, contentType, origin string
		status                    int
		code                      string
	}{
		{"text/plain form of another site", "text/plain", "https://evil.example", 403, "cross_site_request"},
		{"text/plain, no origin", "text/plain", "", 415, "unsupported_media_type"},
		{"urlencoded form, no origin", "application/x-www-form-urlencoded", "", 415, "unsupported_media_type"},
		{"JSON from another origin", "application/json", "https://evil.example", 403, "cross_site_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", s.PublicURL+"/api/v1/card/login", strings.NewReader(body))
			req.Header.Set("Content-Type", tc.contentType)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := readAll(res)
			res.Body.Close()
			r := reply{Status: res.StatusCode, Body: data}
			if r.Status != tc.status || r.errorCode(t) != tc.code {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tc.status, tc.code)
			}
			for _, c := range res.Cookies() {
				if c.Name == "mcert_session" && c.Value != "" {
					t.Fatal("a session cookie was set")
				}
			}
		})
	}
}

// TestAuditRetention: the audit log keeps events for the retention period, then GC drops them.
func TestAuditRetention(t *testing.T) {
	s := startServer(t, func(c *Config) { c.AuditRetention = 48 * time.Hour })
	b := s.browser(t)
	b.cardLogin(s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	count := func() int {
		e, err := storage.Get(context.Background(), s.store, func(tx storage.ReadTx) ([]storage.Event, error) { return tx.Events("", "", 1000) })
		if err != nil {
			t.Fatal(err)
		}
		return len(e)
	}
	if count() == 0 {
		t.Fatal("the card login wrote no event")
	}
	s.clock.Advance(47 * time.Hour)
	if n, err := s.service.GarbageCollect(context.Background()); err != nil || n.Events != 0 || count() == 0 {
		t.Fatalf("within the retention period: collected %+v, %v", n, err)
	}
	s.clock.Advance(2 * time.Hour)
	if n, err := s.service.GarbageCollect(context.Background()); err != nil || n.Events == 0 || count() != 0 {
		t.Fatalf("after the retention period: collected %+v, %v, %d events left", n, err, count())
	}
}
