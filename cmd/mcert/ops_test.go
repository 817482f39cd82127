package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/internal/testkit"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
)

// scrape reads /metrics on the public listener, with the admin token, into its series, such as
// `mcert_ceremonies_total{ceremony="card_login",outcome="ok"}`, and their values, and returns
// the body too.
func (s *server) scrape(t *testing.T) (map[string]float64, string) {
	t.Helper()
	r := s.admin(t)("GET", "/metrics", nil).want(t, 200)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("/metrics content type %q", ct)
	}
	series := map[string]float64{}
	for line := range strings.Lines(string(r.Body)) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		series[name] = v
	}
	return series, string(r.Body)
}

// sessionCookie is the browser's session cookie value.
func (b *browser) sessionCookie() string {
	u, _ := url.Parse(b.base)
	for _, c := range b.http.Jar.Cookies(u) {
		if c.Name == "mcert_session" {
			return c.Value
		}
	}
	b.t.Fatal("the browser has no session cookie")
	return ""
}

// TestProfiler checks that --debug-addr serves Go's profiler there, and only there.
func TestProfiler(t *testing.T) {
	s := startServer(t, func(c *Config) { c.DebugAddr = "127.0.0.1:0" })
	for _, tc := range []struct {
		base string
		want int
	}{
		{"http://" + s.debug.Addr().String(), 200},
		{s.PublicURL, 404},
	} {
		res, err := http.Get(tc.base + "/debug/pprof/cmdline")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("GET %s/debug/pprof/cmdline: %d, want %d", tc.base, res.StatusCode, tc.want)
		}
	}
}

func TestMetrics(t *testing.T) {
	s := startServer(t)
	card := s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})
	e := registerAndShowQR(t, s, card)
	bindingID, qrText := e.binding["id"].(string), e.binding["qr_text"].(string)
	token := tokenOf(t, qrText)
	s.refused(t, e.browser, "POST", "/api/v1/phone/bind/finish", map[string]any{"token": token, "credential": map[string]any{}}, 409, "binding_not_started")
	p, err := phone.Open(t.TempDir() + "/phone.json")
	if err != nil {
		t.Fatal(err)
	}
	bound, err := (&phone.Client{HTTP: http.DefaultClient, Phone: p}).Bind(context.Background(), qrText, "Pixel 8", phone.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.browser.do("GET", "/api/v1/bindings/"+bindingID, nil).want(t, 200)
	e.browser.do("GET", "/api/v1/nothing/"+token, nil).want(t, 404)
	ciba := cibaClient{t: t, rp: s.relyingParty(t, "健保署", provider.ClientSpec{CIBA: true})}
	authReqID := ciba.start("A123456789", "登入確認")
	if code, _ := ciba.poll(authReqID); code != "authorization_pending" {
		t.Fatalf("poll: %s", code)
	}
	e.browser.do("GET", "/oidc/keys", nil).want(t, 200)
	e.browser.do("GET", "/oidc/userinfo", nil).want(t, 401)
	e.browser.do("GET", "/oidc/made-up-"+token, nil).want(t, 404)

	series, body := s.scrape(t)
	for _, want := range []string{
		`mcert_ceremonies_total{ceremony="card_login",outcome="ok"}`,
		`mcert_ceremonies_total{ceremony="bind_finish",outcome="binding_not_started"}`,
		`mcert_ceremonies_total{ceremony="bind_begin",outcome="ok"}`,
		`mcert_ceremonies_total{ceremony="bind_finish",outcome="ok"}`,
		`mcert_ceremonies_total{ceremony="ciba_start",outcome="ok"}`,
		`mcert_ceremonies_total{ceremony="ciba_token",outcome="authorization_pending"}`,
		`mcert_ceremony_duration_seconds_count{ceremony="card_login"}`,
		`mcert_http_requests_total{method="POST",route="/api/v1/card/login",status="200"}`,
		`mcert_http_requests_total{method="POST",route="/api/v1/phone/bind/finish",status="409"}`,
		`mcert_http_requests_total{method="GET",route="/api/v1/bindings/:id",status="200"}`,
		`mcert_http_requests_total{method="POST",route="/oidc/bc-authorize",status="200"}`,
		`mcert_http_requests_total{method="POST",route="/oidc/token",status="400"}`,
		`mcert_http_requests_total{method="GET",route="/oidc/keys",status="200"}`,
		`mcert_http_requests_total{method="GET",route="/oidc/userinfo",status="401"}`,
		`mcert_http_request_duration_seconds_count{method="POST",route="/api/v1/card/login"}`,
	} {
		if series[want] != 1 {
			t.Errorf("%s = %v, want 1", want, series[want])
		}
	}
	// Unknown paths, under /api/ and under /oidc/ alike, share one series.
	if got := series[`mcert_http_requests_total{method="GET",route="unmatched",status="404"}`]; got != 2 {
		t.Errorf("unmatched requests: %v, want 2", got)
	}
	if strings.Contains(body, `route="/oidc/*"`) {
		t.Error("the OpenID endpoints share one route label")
	}
	if series["go_goroutines"] == 0 || series["process_open_fds"] == 0 {
		t.Error("the Go and process collectors are missing")
	}
	for name, secret := range map[string]string{
		"binding id": bindingID, "binding token": token, "session cookie": e.browser.sessionCookie(),
		"device id": bound.DeviceID, "device token": bound.DeviceToken, "auth_req_id": authReqID, "national ID": "A123456789",
	} {
		if strings.Contains(body, secret) {
			t.Errorf("/metrics shows the %s", name)
		}
	}
}

// syncBuffer is a log destination that the server's goroutines and the test share.
type syncBuffer = testkit.Buffer

// TestLogsKeepSecrets walks an enrollment and a website's login with every log level on, and
// finds one line per request and none of the secrets that passed by.
func TestLogsKeepSecrets(t *testing.T) {
	var logs syncBuffer
	s := startServer(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	card := s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})
	e := registerAndShowQR(t, s, card)
	qrText := e.binding["qr_text"].(string)
	e.browser.do("GET", e.binding["qr_png"].(string), nil).want(t, 200)
	p, err := phone.Open(t.TempDir() + "/phone.json")
	if err != nil {
		t.Fatal(err)
	}
	ph := &phone.Client{HTTP: http.DefaultClient, Phone: p}
	bound, err := ph.Bind(context.Background(), qrText, "Pixel 8", phone.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	a := rp.startLogin()
	if _, err := ph.Login(context.Background(), a.scan(t), phone.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, _ := rp.finish(a)

	out := logs.String()
	for _, want := range []string{"route=/api/v1/phone/bind/finish status=201", "route=/oidc/authorize status=302", "request_id=", "remote_ip=127.0.0.1"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log has no %q:\n%s", want, out)
		}
	}
	for name, secret := range map[string]string{
		"session cookie": e.browser.sessionCookie(), "binding token": tokenOf(t, qrText), "device token": bound.DeviceToken,
		"login QR token": tokenOf(t, a.page["qr_text"].(string)), "authorization code": tok.Extra("code").(string),
		"state": a.state, "access token": tok.AccessToken, "ID token": tok.Extra("id_token").(string), "national ID": "A123456789",
	} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows the %s:\n%s", name, out)
		}
	}
}

// requestLine is the log line of the one request to route answered with status.
func requestLine(t *testing.T, log, route string, status int) string {
	t.Helper()
	var found []string
	for line := range strings.Lines(log) {
		if strings.Contains(line, "msg=request ") && strings.Contains(line, " route="+route+" status="+strconv.Itoa(status)+" ") {
			found = append(found, line)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d log lines of %s answered %d, want 1:\n%s", len(found), route, status, log)
	}
	return found[0]
}

// TestRequestLogs checks what a request's log line says: its error code, whoever wrote the
// error, and the level, DEBUG for the polls of pages, phones and CIBA clients that wait, INFO
// for the rest; and that the server says when it starts shutting down and when it has stopped.
func TestRequestLogs(t *testing.T) {
	var logs syncBuffer
	s := startServer(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := context.Background()
	e := registerAndShowQR(t, s, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	e.browser.do("GET", "/api/v1/bindings/"+e.binding["id"].(string), nil).want(t, 200)
	p, err := phone.Open(t.TempDir() + "/phone.json")
	if err != nil {
		t.Fatal(err)
	}
	ph := &phone.Client{HTTP: http.DefaultClient, Phone: p}
	if _, err := ph.Bind(ctx, e.binding["qr_text"].(string), "Pixel 8", phone.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ph.Inbox(ctx, s.PublicURL); err != nil {
		t.Fatal(err)
	}
	e.browser.do("GET", "/api/v1/logins/unknown", nil).want(t, 404)
	ciba := cibaClient{t: t, rp: s.relyingParty(t, "健保署", provider.ClientSpec{CIBA: true})}
	id := ciba.start("A123456789", "登入確認")
	for _, want := range []string{"authorization_pending", "slow_down"} {
		if code, _ := ciba.poll(id); code != want {
			t.Fatalf("poll: %s, want %s", code, want)
		}
	}
	s.post(t, "/oidc/token", url.Values{"grant_type": {"urn:openid:params:grant-type:ciba"}, "auth_req_id": {id}, "client_id": {ciba.rp.oauth.ClientID}, "client_secret": {"wrong"}}, nil)
	b := s.browser(t)
	b.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	b.do("GET", ciba.rp.oauth.AuthCodeURL("st", oauth2.SetAuthURLParam("prompt", "none")), nil).want(t, http.StatusFound)
	s.stop()

	out := logs.String()
	for _, tc := range []struct {
		route  string
		status int
		level  string
		code   string // "" for none
	}{
		{"/api/v1/card/login", 200, "INFO", ""},
		{"/api/v1/bindings/:id", 200, "DEBUG", ""},
		{"/api/v1/phone/inbox", 200, "DEBUG", ""},
		{"/api/v1/logins/:id", 404, "INFO", "login_not_found"},
		{"/oidc/bc-authorize", 200, "INFO", ""},
		{"/oidc/token", 401, "INFO", "invalid_client"},
		{"/oidc/authorize", 302, "INFO", "login_required"},
	} {
		line := requestLine(t, out, tc.route, tc.status)
		if !strings.Contains(line, "level="+tc.level+" ") {
			t.Errorf("%s %d is logged at another level than %s: %s", tc.route, tc.status, tc.level, line)
		}
		if has := strings.Contains(line, "error_code="); has != (tc.code != "") || has && !strings.Contains(line, "error_code="+tc.code) {
			t.Errorf("%s %d: the line does not say error_code=%s: %s", tc.route, tc.status, tc.code, line)
		}
	}
	var polls int
	for line := range strings.Lines(out) {
		if strings.Contains(line, " route=/oidc/token status=400 ") {
			polls++
			if !strings.Contains(line, "level=DEBUG ") || !strings.Contains(line, "error_code=authorization_pending") && !strings.Contains(line, "error_code=slow_down") {
				t.Errorf("a CIBA poll's line: %s", line)
			}
		}
	}
	if polls != 2 {
		t.Errorf("%d CIBA polls logged, want 2:\n%s", polls, out)
	}
	down, stopped := strings.Index(out, "msg=\"shutting down"), strings.Index(out, "msg=stopped")
	if down < 0 || stopped < down {
		t.Errorf("the log does not say that the server is shutting down, then that it stopped:\n%s", out)
	}
}
