package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mcert/mcert/authn"
)

// checkSecurityHeaders checks the headers every answer carries; hsts says whether
// Strict-Transport-Security is due.
func checkSecurityHeaders(t *testing.T, what string, h http.Header, hsts bool) {
	t.Helper()
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: Content-Security-Policy %q lacks %q", what, csp, want)
		}
	}
	// default-src 'self' is the policy for scripts too, as long as no script-src loosens it.
	if strings.Contains(csp, "unsafe-") || strings.Contains(csp, "script-src") {
		t.Errorf("%s: Content-Security-Policy %q lets scripts come from more than our own files", what, csp)
	}
	coop := "same-origin"
	if what == "GET /" { // the enrollment page opens the card component's popup, which must reach it back
		coop = "same-origin-allow-popups"
	}
	for name, want := range map[string]string{
		"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Cross-Origin-Opener-Policy": coop,
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %s %q, want %q", what, name, got, want)
		}
	}
	if got, want := h.Get("Strict-Transport-Security"), map[bool]string{true: "max-age=31536000"}[hsts]; got != want {
		t.Errorf("%s: Strict-Transport-Security %q, want %q", what, got, want)
	}
}

func TestSecurityHeaders(t *testing.T) {
	s := startServer(t)
	b := s.browser(t)
	for _, path := range []string{"/", "/static/app.js", "/login/some-id", "/api/v1/card/challenge", "/api/v1/account", "/api/v1/nothing"} {
		checkSecurityHeaders(t, "GET "+path, b.do("GET", path, nil).Header, false)
	}

	// Request IDs: a client's short token is kept, anything else replaced.
	for _, tc := range []struct{ name, sent string }{
		{"none", ""},
		{"short token", "trace-01.AB_cd"},
		{"with a space", "a b"},
		{"too long", strings.Repeat("a", 65)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", s.PublicURL+"/healthz", nil)
			if tc.sent != "" {
				req.Header.Set("X-Request-ID", tc.sent)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			got := res.Header.Get("X-Request-ID")
			if keep := tc.name == "short token"; got == "" || (got == tc.sent) != keep {
				t.Errorf("sent X-Request-ID %q, answered %q", tc.sent, got)
			}
		})
	}
}

// sourceHeaders is a transport that sends the Origin, Sec-Fetch-Site and Referer a test chooses
// instead of the browser's.
type sourceHeaders http.Header

func (h sourceHeaders) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for _, name := range []string{"Origin", "Sec-Fetch-Site", "Referer"} {
		r.Header.Del(name)
	}
	for name, v := range h {
		r.Header[name] = v
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestCrossSiteWrites(t *testing.T) {
	s := startServer(t)
	e := registerAndShowQR(t, s, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	// from is the citizen's browser, with its session, sending a request as if from a page of
	// another site, or from none.
	from := func(h http.Header) *browser {
		return &browser{t: t, base: s.PublicURL, http: &http.Client{Jar: e.browser.http.Jar, Transport: sourceHeaders(h)}}
	}
	for _, tc := range []struct {
		name   string
		header http.Header
		ok     bool
	}{
		{"a program, not a page: no Origin, Sec-Fetch-Site or Referer", http.Header{}, true},
		{"foreign Origin", http.Header{"Origin": {"https://evil.example"}}, false},
		{"opaque Origin", http.Header{"Origin": {"null"}}, false},
		{"same host, other port", http.Header{"Origin": {"http://localhost:1"}}, false},
		{"foreign Origin, same-origin Sec-Fetch-Site", http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"same-origin"}}, false},
		{"Sec-Fetch-Site cross-site", http.Header{"Sec-Fetch-Site": {"cross-site"}}, false},
		{"Sec-Fetch-Site same-site", http.Header{"Sec-Fetch-Site": {"same-site"}}, false},
		{"foreign Referer", http.Header{"Referer": {"https://evil.example/page"}}, false},
		{"same Origin", http.Header{"Origin": {s.PublicURL}}, true},
		{"Sec-Fetch-Site same-origin", http.Header{"Sec-Fetch-Site": {"same-origin"}}, true},
		{"same-origin Referer", http.Header{"Referer": {s.PublicURL + "/"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := from(tc.header)
			patch := map[string]string{"email": "other@example.tw"}
			if !tc.ok {
				s.refused(t, b, "POST", "/api/v1/bindings", nil, 403, "cross_site_request")
				s.refused(t, b, "PATCH", "/api/v1/account", patch, 403, "cross_site_request")
				return
			}
			b.do("POST", "/api/v1/bindings", nil).want(t, 201)
			b.do("PATCH", "/api/v1/account", patch).want(t, 200)
		})
	}

	// Reads are not checked, nor the phone's calls, whose credential is the token they carry.
	foreign := from(http.Header{"Origin": {"https://evil.example"}})
	foreign.do("GET", "/api/v1/account", nil).want(t, 200)
	s.refused(t, foreign, "POST", "/api/v1/phone/bind/begin", map[string]string{"token": "unknown-token-unknown-token"}, 404, "binding_not_found")
}
