package main

import (
	"net/http"
	"testing"

	"github.com/mcert/mcert/authn"
)

// TestHeadAnswersAsGet sends HEAD to every GET route, on both listeners, and wants what GET
// answers, without the body: monitors and link checkers ask with HEAD.
func TestHeadAnswersAsGet(t *testing.T) {
	s := startServer(t, func(c *Config) { c.AdminAddr = "127.0.0.1:0" })
	e := registerAndShowQR(t, s, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	session := http.Header{"Cookie": {"mcert_session=" + e.browser.sessionCookie()}}
	binding := "/api/v1/bindings/" + e.binding["id"].(string)
	admin := bearer(s.adminToken(t))
	adminURL := "http://" + s.adminListener.Addr().String()
	for _, tc := range []struct {
		url    string
		header http.Header
		status int
	}{
		{s.PublicURL + "/", nil, 200},
		{s.PublicURL + "/healthz", nil, 200},
		{s.PublicURL + "/metrics", admin, 200},
		{s.PublicURL + "/metrics", nil, 401},
		{s.PublicURL + "/static/app.js", nil, 200},
		{s.PublicURL + "/m/bind", nil, 200},
		{s.PublicURL + "/m/login", nil, 200},
		{s.PublicURL + "/login/unknown", nil, 404},
		{s.PublicURL + "/demo", nil, 200},
		{s.PublicURL + "/demo/callback", nil, 200},
		{s.PublicURL + "/api/v1/card/challenge", nil, 200},
		{s.PublicURL + "/api/v1/account", session, 200},
		{s.PublicURL + "/api/v1/account", nil, 401},
		{s.PublicURL + "/api/v1/account/events", session, 200},
		{s.PublicURL + "/api/v1/devices", session, 200},
		{s.PublicURL + binding, session, 200},
		{s.PublicURL + binding + "/qr.png", session, 200},
		{s.PublicURL + "/api/v1/logins/unknown", nil, 404},
		{s.PublicURL + "/api/v1/logins/unknown/qr.png", nil, 404},
		{s.PublicURL + "/api/v1/phone/inbox", nil, 401},
		{s.PublicURL + "/api/v1/admin/clients", admin, 200},
		{s.PublicURL + "/api/v1/admin/events", admin, 200},
		{s.PublicURL + "/.well-known/openid-configuration", nil, 200},
		{s.PublicURL + "/oidc/keys", nil, 200},
		{s.PublicURL + "/oidc/authorize?client_id=unknown", nil, 400},
		{s.PublicURL + "/oidc/authorize/callback?id=unknown", nil, 404},
		{s.PublicURL + "/oidc/userinfo", nil, 401},
		{adminURL + "/healthz", nil, 200},
		{adminURL + "/metrics", nil, 200},
		{adminURL + "/api/v1/admin/clients", admin, 200},
	} {
		get, head := send(t, "GET", tc.url, tc.header), send(t, "HEAD", tc.url, tc.header)
		if get.Status != tc.status || head.Status != tc.status {
			t.Errorf("%s: GET %d, HEAD %d, want %d", tc.url, get.Status, head.Status, tc.status)
		}
		if len(head.Body) != 0 || len(get.Body) == 0 {
			t.Errorf("%s: HEAD sent %d bytes of body, GET %d", tc.url, len(head.Body), len(get.Body))
		}
		if g, h := get.Header.Get("Content-Type"), head.Header.Get("Content-Type"); g != h {
			t.Errorf("%s: Content-Type %q to GET, %q to HEAD", tc.url, g, h)
		}
	}
	// A route without GET still refuses HEAD, as it refuses GET.
	if r := send(t, "HEAD", s.PublicURL+"/api/v1/card/login", nil); r.Status != http.StatusMethodNotAllowed {
		t.Errorf("HEAD on a POST route: %d", r.Status)
	}
	series, _ := s.scrape(t)
	if got := series[`mcert_http_requests_total{method="HEAD",route="/healthz",status="200"}`]; got != 2 { // one on each listener
		t.Errorf("the metrics count %v HEAD /healthz, want 2", got)
	}
}
