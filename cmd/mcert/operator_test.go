package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/binding"
)

// send makes one request with the given headers and reads the answer.
func send(t *testing.T, method, url string, header http.Header) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range header {
		req.Header[name] = v
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := readAll(res)
	if err != nil {
		t.Fatal(err)
	}
	return reply{Status: res.StatusCode, Header: res.Header, Body: body}
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

func (s *server) adminToken(t *testing.T) string {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(s.Config.DataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(token))
}

// auditEvents is the whole audit log, newest first, as the operator reads it.
func (s *server) auditEvents(t *testing.T) []map[string]any {
	t.Helper()
	var page struct{ Events []map[string]any }
	if err := json.Unmarshal(s.admin(t)("GET", "/api/v1/admin/events?limit=1000", nil).want(t, 200).Body, &page); err != nil {
		t.Fatal(err)
	}
	return page.Events
}

// ofType are the events of one type.
func ofType(events []map[string]any, typ string) []map[string]any {
	var out []map[string]any
	for _, e := range events {
		if e["type"] == typ {
			out = append(out, e)
		}
	}
	return out
}

// TestAdminListener checks that /metrics needs the admin token on the public listener, and
// that --admin-addr serves the admin API, /metrics without the token and /healthz, and nothing
// a citizen or a relying party uses.
func TestAdminListener(t *testing.T) {
	s := startServer(t, func(c *Config) { c.AdminAddr = "127.0.0.1:0" })
	token := s.adminToken(t)
	adminURL := "http://" + s.adminListener.Addr().String()

	for _, tc := range []struct {
		name   string
		header http.Header
	}{
		{"no token", nil},
		{"wrong token", bearer("not-the-admin-token")},
		{"token in another scheme", http.Header{"Authorization": {"Basic " + token}}},
	} {
		t.Run("public /metrics, "+tc.name, func(t *testing.T) {
			r := send(t, "GET", s.PublicURL+"/metrics", tc.header).want(t, 401)
			if code := r.errorCode(t); code != "admin_token_required" {
				t.Errorf("error %q, want admin_token_required", code)
			}
			if bytes.Contains(r.Body, []byte("go_goroutines")) {
				t.Error("the refusal shows metrics")
			}
		})
	}
	if r := send(t, "GET", s.PublicURL+"/metrics", bearer(token)).want(t, 200); !bytes.Contains(r.Body, []byte("mcert_http_requests_total")) {
		t.Errorf("public /metrics with the admin token: %s", r.Body)
	}

	if r := send(t, "GET", adminURL+"/metrics", nil).want(t, 200); !bytes.Contains(r.Body, []byte("mcert_http_requests_total")) {
		t.Errorf("admin /metrics: %s", r.Body)
	}
	send(t, "GET", adminURL+"/healthz", nil).want(t, 200)
	if code := send(t, "GET", adminURL+"/api/v1/admin/clients", nil).want(t, 401).errorCode(t); code != "admin_token_required" {
		t.Errorf("admin API without the token on the admin listener: %q", code)
	}
	send(t, "GET", adminURL+"/api/v1/admin/clients", bearer(token)).want(t, 200)
	send(t, "GET", adminURL+"/api/v1/admin/events", bearer(token)).want(t, 200)
	send(t, "GET", s.PublicURL+"/api/v1/admin/clients", bearer(token)).want(t, 200) // also served there

	// Each of these is served on the public listener.
	for _, path := range []string{"/", "/m/login", "/m/bind", "/static/app.js", "/demo", "/api/v1/card/challenge", "/api/v1/account", "/oidc/keys", "/.well-known/openid-configuration"} {
		if r := send(t, "GET", s.PublicURL+path, nil); r.Status == 404 {
			t.Errorf("GET %s on the public listener: 404, so the admin listener's proves nothing", path)
		}
		r := send(t, "GET", adminURL+path, nil).want(t, 404)
		if strings.HasPrefix(path, "/oidc/") { // the OpenID paths answer OAuth error bodies
			if code := r.json(t)["error"]; code != "invalid_request" {
				t.Errorf("GET %s on the admin listener: %q", path, code)
			}
		} else if code := r.errorCode(t); code != "not_found" {
			t.Errorf("GET %s on the admin listener: %q", path, code)
		}
	}
}

// TestAdminAudit checks that the operator's actions and refused admin requests are in the audit
// log, and that a flood of refused requests writes no more than the allowance.
func TestAdminAudit(t *testing.T) {
	s := startServer(t)
	admin := s.admin(t)
	created := admin("POST", "/api/v1/admin/clients", map[string]any{"name": "戶政線上申辦", "redirect_uris": []string{rpRedirect}}).want(t, 201).json(t)
	admin("POST", "/api/v1/admin/clients", map[string]any{"name": ""}).want(t, 400)
	admin("POST", "/api/v1/admin/keys/rotate", nil).want(t, 200)
	admin("GET", "/api/v1/admin/backup", nil).want(t, 200)
	admin("GET", "/api/v1/admin/clients", nil).want(t, 200)
	send(t, "GET", s.PublicURL+"/api/v1/admin/backup", bearer("guess")).want(t, 401)

	events := s.auditEvents(t)
	for _, tc := range []struct {
		typ, outcome, reason, clientID string
	}{
		{binding.EventAdminClientCreate, "ok", "", created["client_id"].(string)},
		{binding.EventAdminKeysRotate, "ok", "", ""},
		{binding.EventAdminBackup, "ok", "", ""},
		{binding.EventAdminRefused, "refused", "admin_token_required", ""},
	} {
		got := ofType(events, tc.typ)
		if len(got) != 1 {
			t.Errorf("%d %s events, want 1: %v", len(got), tc.typ, events)
			continue
		}
		e := got[0]
		if e["outcome"] != tc.outcome || e["reason"] != tc.reason || e["client_id"] != tc.clientID || e["actor"] != "operator" || e["ip"] != "127.0.0.0/24" {
			t.Errorf("%s event: %v", tc.typ, e)
		}
	}

	// A flood from one address: one event for each refusal up to the allowance, then 429 with
	// nothing written; the operator, with the token, is not held up.
	allowance := binding.AdminRefusedPerIP.N
	for i := 1; i < allowance+10; i++ { // one was refused above
		r := send(t, "GET", s.PublicURL+"/api/v1/admin/events", bearer("guess"))
		switch {
		case i < allowance && r.Status != 401, i >= allowance && r.Status != 429:
			t.Fatalf("refused request %d of %d allowed: status %d: %s", i+1, allowance, r.Status, r.Body)
		case r.Status == 429 && (r.errorCode(t) != "rate_limited" || r.Header.Get("Retry-After") == ""):
			t.Fatalf("past the allowance: %s, Retry-After %q", r.Body, r.Header.Get("Retry-After"))
		}
	}
	if n := len(ofType(s.auditEvents(t), binding.EventAdminRefused)); n != allowance {
		t.Errorf("%d admin_refused events after a flood, want the allowance, %d", n, allowance)
	}
	admin("POST", "/api/v1/admin/keys/rotate", nil).want(t, 200)
}

// TestTrustedProxy checks whose address the rate limits and the audit log see: the peer's,
// whatever X-Forwarded-For it sends, unless the peer is a trusted proxy.
func TestTrustedProxy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		xff     []string
		want    string // the refused request's address in the audit log
	}{
		{"no proxy trusted: a forged header", nil, []string{"203.0.113.7"}, "127.0.0.0/24"},
		{"another proxy trusted, not the peer", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, []string{"203.0.113.7"}, "127.0.0.0/24"},
		{"the peer is the trusted proxy", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, []string{"203.0.113.7"}, "203.0.113.0/24"},
		{"a client's forgery left of what the proxy appended", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, []string{"198.51.100.1, 203.0.113.7"}, "203.0.113.0/24"},
		{"a chain of trusted proxies", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}, []string{"198.51.100.1, 203.0.113.7", "10.1.2.3"}, "203.0.113.0/24"},
		{"the trusted proxy sends none", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, nil, "127.0.0.0/24"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, func(c *Config) { c.TrustedProxies = tc.trusted })
			h := bearer("guess")
			if tc.xff != nil {
				h["X-Forwarded-For"] = tc.xff
			}
			send(t, "GET", s.PublicURL+"/api/v1/admin/clients", h).want(t, 401)
			refused := ofType(s.auditEvents(t), binding.EventAdminRefused)
			if len(refused) != 1 || refused[0]["ip"] != tc.want {
				t.Fatalf("refused admin requests in the log: %v, want one from %s", refused, tc.want)
			}
		})
	}

	// The allowance of refusals is the forwarded client's, not the proxy's: one client's flood
	// through the proxy leaves the others their own.
	s := startServer(t, func(c *Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} })
	from := func(client string) int {
		h := bearer("guess")
		h["X-Forwarded-For"] = []string{client}
		return send(t, "GET", s.PublicURL+"/metrics", h).Status
	}
	for range binding.AdminRefusedPerIP.N {
		from("203.0.113.7")
	}
	if got := from("203.0.113.7"); got != 429 {
		t.Errorf("the flooding client past its allowance: %d, want 429", got)
	}
	if got := from("198.51.100.1"); got != 401 {
		t.Errorf("another client behind the same proxy: %d, want 401", got)
	}
}

// TestHeaderLimit checks that a request with 64 KiB of headers is refused before any handler
// runs, and that ordinary large headers still pass.
func TestHeaderLimit(t *testing.T) {
	s := startServer(t, func(c *Config) { c.AdminAddr = "127.0.0.1:0" })
	for _, base := range []string{s.PublicURL, "http://" + s.adminListener.Addr().String()} {
		huge := http.Header{"X-Padding": {strings.Repeat("a", 64<<10)}}
		if r := send(t, "GET", base+"/healthz", huge); r.Status != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%s: 64 KiB of headers: status %d, want 431", base, r.Status)
		}
		large := http.Header{"Cookie": {"other=" + strings.Repeat("b", 8<<10)}}
		send(t, "GET", base+"/healthz", large).want(t, 200)
	}
	card := s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})
	b := s.browser(t)
	b.cardLogin(card)
	b.do("POST", "/api/v1/account", map[string]string{"email": "wang@example.tw", "phone": "0912345678"}).want(t, 201)
}

// TestDevelopmentMode checks that development mode (the development card CA, the demo relying
// party) happens only on http://localhost or with --dev, and says so on every start.
func TestDevelopmentMode(t *testing.T) {
	caDir := t.TempDir()
	ca, _, err := authn.LoadOrCreateDevCA(caDir, newClock().Now())
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(caDir, "cards.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name      string
		publicURL string
		dev       bool
		cardCA    string
		want      string // in Open's error; "" when it starts
		devMode   bool
	}{
		{"localhost", "", false, "", "", true},
		{"https without a card CA", "https://mcert.example.tw", false, "", "configure --card-ca", false},
		{"https with --dev", "https://mcert.example.tw", true, "", "", true},
		{"https with a card CA", "https://mcert.example.tw", false, caFile, "", false},
		{"localhost with a card CA", "", false, caFile, "", false},
		{"--dev and a card CA", "", true, caFile, "--dev and --card-ca exclude each other", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for start := range 2 { // the warning is due on every start, not only the first
				var logs syncBuffer
				m := &Main{Config: Config{
					Addr: "127.0.0.1:0", DataDir: dir, PublicURL: tc.publicURL, Dev: tc.dev, CardCA: tc.cardCA,
					CardAgentURL: "http://127.0.0.1:61161", Logger: slog.New(slog.NewTextHandler(&logs, nil)),
				}}
				err := m.Open()
				if tc.want != "" {
					if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "--dev") {
						t.Fatalf("Open: %v, want an error saying %q and offering --dev", err, tc.want)
					}
					if _, err := os.Stat(filepath.Join(dir, "card-ca.pem")); err == nil {
						t.Error("a refused start created a development CA")
					}
					return
				}
				if err != nil {
					t.Fatalf("start %d: %v", start+1, err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- m.Run(ctx) }()
				demo := send(t, "GET", "http://"+m.listener.Addr().String()+"/demo", nil)
				cancel()
				<-done
				m.Close()
				if warned := strings.Contains(logs.String(), "development mode"); warned != tc.devMode {
					t.Errorf("start %d: warned of development mode %v, want %v:\n%s", start+1, warned, tc.devMode, logs.String())
				}
				if served := demo.Status == 200; served != tc.devMode {
					t.Errorf("start %d: /demo answered %d in development mode %v", start+1, demo.Status, tc.devMode)
				}
			}
		})
	}
}

func TestServeFlags(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		wantStatus int
		wantErr    string
	}{
		{"admin address without a port", []string{"--admin-addr", "10.0.0.5"}, 1, "--admin-addr \"10.0.0.5\" must be host:port"},
		{"admin address on every interface", []string{"--admin-addr", ":9090"}, 1, "--admin-addr \":9090\" must be host:port"},
		{"not a network", []string{"--trusted-proxy", "10.0.0.0/8,proxy.example"}, 2, `"proxy.example" is neither a network`},
		{"production without a card CA", []string{"--public-url", "https://mcert.example.tw"}, 1, "configure --card-ca"},
		{"help", []string{"--help"}, 0, "private or loopback address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir()}, tc.args...)
			if got := run(context.Background(), args, &stdout, &stderr); got != tc.wantStatus || !strings.Contains(stderr.String(), tc.wantErr) {
				t.Fatalf("mcert %v: status %d, want %d\nstderr: %s", args, got, tc.wantStatus, stderr.String())
			}
		})
	}

	var proxies prefixesFlag
	for _, v := range []string{"10.0.0.0/8, 192.0.2.7", "2001:db8::/32", "::ffff:198.51.100.9", "10.1.2.3/8"} {
		if err := proxies.Set(v); err != nil {
			t.Fatalf("Set(%q): %v", v, err)
		}
	}
	if got, want := proxies.String(), "10.0.0.0/8,192.0.2.7/32,2001:db8::/32,198.51.100.9/32,10.0.0.0/8"; got != want {
		t.Errorf("--trusted-proxy parsed as %s, want %s", got, want)
	}
}
