package main

// Conformance of the OpenID endpoints to their RFCs, as a certified relying-party library and
// a conformance suite expect them: through go-oidc and x/oauth2 where those reach the
// behaviour, and by plain HTTP against the RFC's text otherwise.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/storage"
	"github.com/mcert/mcert/storage/bolt"
)

// clientAuth is how a back-channel request authenticates its client: client_secret_basic,
// with the ID and secret form-encoded first as x/oauth2 does (RFC 6749 section 2.3.1), or
// client_secret_post.
type clientAuth struct {
	id, secret string
	post       bool
}

// call sends req and reads the answer, following no redirect.
func call(t testing.TB, req *http.Request) reply {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
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

func (s *server) get(t testing.TB, path string, header http.Header) reply {
	t.Helper()
	req, err := http.NewRequest("GET", s.PublicURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	return call(t, req)
}

// post sends form to path, authenticated as auth says (nil: not at all).
func (s *server) post(t testing.TB, path string, form url.Values, auth *clientAuth) reply {
	t.Helper()
	form = cloneForm(form)
	if auth != nil && auth.post {
		form.Set("client_id", auth.id)
		form.Set("client_secret", auth.secret)
	}
	req, err := http.NewRequest("POST", s.PublicURL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != nil && !auth.post {
		req.SetBasicAuth(url.QueryEscape(auth.id), url.QueryEscape(auth.secret))
	}
	return call(t, req)
}

func cloneForm(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// oauthError checks an OAuth error answer (RFC 6749 section 5.2): the status, a JSON body with
// an error code, and returns the code.
func (r reply) oauthError(t testing.TB, status int) string {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error answered as %q, want application/json: %s", ct, r.Body)
	}
	code, _ := r.json(t)["error"].(string)
	if code == "" {
		t.Fatalf("error body without an error code: %s", r.Body)
	}
	return code
}

// jwtHeader is the decoded header of a JWT.
func jwtHeader(t testing.TB, jwt string) map[string]any {
	t.Helper()
	header, _, _ := strings.Cut(jwt, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	var h map[string]any
	if err != nil || json.Unmarshal(raw, &h) != nil {
		t.Fatalf("not a JWT: %q", jwt)
	}
	return h
}

// adminRelyingParty registers a client through the admin API with body and returns the
// website using it.
func (s *server) adminRelyingParty(t *testing.T, body map[string]any) *relyingParty {
	t.Helper()
	created := s.admin(t)("POST", "/api/v1/admin/clients", body).want(t, 201).json(t)
	p, err := oidc.NewProvider(context.Background(), s.PublicURL)
	if err != nil {
		t.Fatal(err)
	}
	id := created["client_id"].(string)
	return &relyingParty{
		t: t, s: s, provider: p,
		oauth: oauth2.Config{
			ClientID: id, ClientSecret: created["client_secret"].(string), Endpoint: p.Endpoint(), RedirectURL: rpRedirect,
			Scopes: []string{oidc.ScopeOpenID, "profile"},
		},
		verifier: p.Verifier(&oidc.Config{ClientID: id}),
	}
}

// defaultVerifier is go-oidc's verifier as a relying party configures it knowing only the key
// set: no SupportedSigningAlgs, so RS256, the algorithm every OpenID Provider must offer.
func defaultVerifier(t testing.TB, s *server, clientID string) *oidc.IDTokenVerifier {
	t.Helper()
	keys := oidc.NewRemoteKeySet(context.Background(), s.PublicURL+"/oidc/keys")
	return oidc.NewVerifier(s.PublicURL, keys, &oidc.Config{ClientID: clientID})
}

// login runs a whole redirect login for rp with the phone and returns the tokens.
func (rp *relyingParty) login(ph *phone.Client) (*oauth2.Token, *oidc.IDToken) {
	t := rp.t
	t.Helper()
	a := rp.startLogin()
	if _, err := ph.Login(context.Background(), a.scan(t), phone.GetOptions{}); err != nil {
		t.Fatalf("phone login: %v", err)
	}
	return rp.finish(a)
}

// approvedCode is a login the phone approved, as far as the code the browser brings back.
func (rp *relyingParty) approvedCode(ph *phone.Client) (loginAttempt, string) {
	t := rp.t
	t.Helper()
	a := rp.startLogin()
	if _, err := ph.Login(context.Background(), a.scan(t), phone.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	st := a.browser.do("GET", "/api/v1/logins/"+a.loginID, nil).want(t, 200).json(t)
	r := a.browser.do("GET", st["continue"].(string), nil)
	back, err := url.Parse(r.Header.Get("Location"))
	if err != nil || back.Query().Get("code") == "" {
		t.Fatalf("continue answered %d to %q", r.Status, r.Header.Get("Location"))
	}
	return a, back.Query().Get("code")
}

type jwks struct {
	Keys []struct {
		Kid string `json:"kid"`
		Alg string `json:"alg"`
		Kty string `json:"kty"`
		Use string `json:"use"`
	} `json:"keys"`
}

func (s *server) jwks(t testing.TB) jwks {
	t.Helper()
	var set jwks
	if err := json.Unmarshal(s.get(t, "/oidc/keys", nil).want(t, 200).Body, &set); err != nil {
		t.Fatal(err)
	}
	return set
}

// TestDiscoveryConformance checks that the discovery document (OpenID Connect Discovery 1.0
// section 3) advertises RS256 (Core section 15.1) and nothing mcert does not do.
func TestDiscoveryConformance(t *testing.T) {
	s := startServer(t)
	var doc map[string]any
	if err := json.Unmarshal(s.get(t, provider.DiscoveryPath, nil).want(t, 200).Body, &doc); err != nil {
		t.Fatal(err)
	}
	list := func(name string) []string {
		t.Helper()
		raw, ok := doc[name].([]any)
		if !ok {
			t.Fatalf("%s is %v, want a list", name, doc[name])
		}
		var out []string
		for _, v := range raw {
			out = append(out, v.(string))
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"id_token_signing_alg_values_supported", []string{"ES256", "RS256"}},
		{"response_types_supported", []string{"code"}},
		{"response_modes_supported", []string{"fragment", "query"}},
		{"grant_types_supported", []string{"authorization_code", "urn:openid:params:grant-type:ciba"}},
		{"token_endpoint_auth_methods_supported", []string{"client_secret_basic", "client_secret_post", "none"}},
		{"revocation_endpoint_auth_methods_supported", []string{"client_secret_basic", "client_secret_post", "none"}},
		{"introspection_endpoint_auth_methods_supported", []string{"client_secret_basic", "client_secret_post"}},
		{"backchannel_token_delivery_modes_supported", []string{"ping", "poll"}},
		{"subject_types_supported", []string{"pairwise"}},
		{"code_challenge_methods_supported", []string{"S256"}},
	} {
		if got := list(tc.name); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// Signing algorithms of private_key_jwt, which no endpoint accepts.
	for _, name := range []string{"token_endpoint_auth_signing_alg_values_supported", "revocation_endpoint_auth_signing_alg_values_supported", "introspection_endpoint_auth_signing_alg_values_supported"} {
		if v, ok := doc[name]; ok {
			t.Errorf("%s advertised as %v: no endpoint accepts private_key_jwt", name, v)
		}
	}
}

// TestIDTokenAlgorithms: ID tokens are RS256 by default, which go-oidc verifies with no
// configuration, and ES256 for a client registered with id_token_signed_response_alg ES256, in
// the code flow and in CIBA.
func TestIDTokenAlgorithms(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	algs := map[string]int{}
	for _, k := range s.jwks(t).Keys {
		algs[k.Alg+"/"+k.Kty]++
		if k.Use != "sig" || k.Kid == "" {
			t.Errorf("key %+v: want use sig and a kid", k)
		}
	}
	if algs["RS256/RSA"] != 1 || algs["ES256/EC"] != 1 || len(algs) != 2 {
		t.Fatalf("key set %v, want one RS256 and one ES256 key", algs)
	}

	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	rp.verifier = defaultVerifier(t, s, rp.oauth.ClientID)
	tok, _ := rp.login(ph) // finish verifies the ID token
	if alg := jwtHeader(t, tok.Extra("id_token").(string))["alg"]; alg != "RS256" {
		t.Fatalf("a client registered with no algorithm got an ID token signed %v, want RS256", alg)
	}

	es := s.adminRelyingParty(t, map[string]any{"name": "健保署", "redirect_uris": []string{rpRedirect}, "ciba": true, "id_token_signed_response_alg": "ES256"})
	es.verifier = es.provider.Verifier(&oidc.Config{ClientID: es.oauth.ClientID, SupportedSigningAlgs: []string{oidc.ES256}})
	tok, _ = es.login(ph)
	if alg := jwtHeader(t, tok.Extra("id_token").(string))["alg"]; alg != "ES256" {
		t.Fatalf("a client registered for ES256 got an ID token signed %v", alg)
	}
	ciba := cibaClient{t: t, rp: es}
	id := ciba.start("A123456789", "登入")
	inbox, err := ph.Inbox(context.Background(), s.PublicURL)
	if err != nil || len(inbox) != 1 {
		t.Fatalf("inbox: %v %v", inbox, err)
	}
	if _, err := ph.Approve(context.Background(), s.PublicURL, inbox[0].Token, phone.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(5 * time.Second)
	code, tokens := ciba.poll(id)
	if code != "" {
		t.Fatalf("CIBA poll after approval: %s", code)
	}
	if _, err := es.verifier.Verify(context.Background(), tokens["id_token"].(string)); err != nil {
		t.Fatalf("CIBA ID token of the ES256 client: %v", err)
	}

	admin := s.admin(t)
	bad := admin("POST", "/api/v1/admin/clients", map[string]any{"name": "x", "redirect_uris": []string{rpRedirect}, "id_token_signed_response_alg": "HS256"})
	if bad.Status != 400 || bad.errorCode(t) != "invalid_client_metadata" || !strings.Contains(string(bad.Body), "id_token_signed_response_alg") {
		t.Fatalf("a client asking for HS256: %d %s", bad.Status, bad.Body)
	}
	listed := map[string]any{}
	for _, c := range admin("GET", "/api/v1/admin/clients", nil).want(t, 200).json(t)["clients"].([]any) {
		c := c.(map[string]any)
		listed[c["client_id"].(string)] = c["id_token_signed_response_alg"]
	}
	if listed[rp.oauth.ClientID] != "RS256" || listed[es.oauth.ClientID] != "ES256" {
		t.Fatalf("the client list shows the algorithms %v", listed)
	}
}

// TestSigningKeysOfOlderData: a data directory of a version that signed ES256 only gets an
// RS256 key on start, and keeps signing ES256 with its old key.
func TestSigningKeysOfOlderData(t *testing.T) {
	dir := t.TempDir()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	store, err := bolt.Open(filepath.Join(dir, "mcert.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	old := storage.SigningKey{ID: "old-es256", Algorithm: "ES256", PrivateKey: der, CreatedAt: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)}
	if err := store.Update(context.Background(), func(tx storage.Tx) error { return tx.CreateSigningKey(old) }); err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	s := startServer(t, func(c *Config) { c.DataDir = dir })
	var kids []string
	for _, k := range s.jwks(t).Keys {
		kids = append(kids, k.Alg+":"+k.Kid)
	}
	slices.Sort(kids)
	if len(kids) != 2 || kids[0] != "ES256:old-es256" || !strings.HasPrefix(kids[1], "RS256:") {
		t.Fatalf("key set %v, want the old ES256 key and a new RS256 key", kids)
	}
	ph, _ := boundCitizen(t, s)
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	rp.verifier = defaultVerifier(t, s, rp.oauth.ClientID)
	rp.login(ph)
	es := s.adminRelyingParty(t, map[string]any{"name": "健保署", "redirect_uris": []string{rpRedirect}, "id_token_signed_response_alg": "ES256"})
	tok, _ := es.login(ph)
	if kid := jwtHeader(t, tok.Extra("id_token").(string))["kid"]; kid != "old-es256" {
		t.Fatalf("the ES256 client's ID token is signed by %v, want the old key", kid)
	}
}

// TestRPAddIDTokenAlg: mcert rp add --id-token-alg registers the algorithm.
func TestRPAddIDTokenAlg(t *testing.T) {
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if got := run(context.Background(), []string{"rp", "add", "--data", dir, "--name", "ES RP", "--redirect-uri", rpRedirect, "--id-token-alg", "ES256"}, &stdout, &stderr); got != 0 {
		t.Fatalf("rp add --id-token-alg ES256: status %d: %s", got, stderr.String())
	}
	var out struct {
		ID string `json:"client_id"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || out.ID == "" {
		t.Fatalf("printed %s (%v)", stdout.String(), err)
	}
	stderr.Reset()
	if got := run(context.Background(), []string{"rp", "add", "--data", dir, "--name", "HS RP", "--redirect-uri", rpRedirect, "--id-token-alg", "HS256"}, &stdout, &stderr); got != 1 || !strings.Contains(stderr.String(), "id_token_signed_response_alg") {
		t.Fatalf("rp add --id-token-alg HS256: status %d: %s", got, stderr.String())
	}
	s := startServer(t, func(c *Config) { c.DataDir = dir })
	for _, c := range s.admin(t)("GET", "/api/v1/admin/clients", nil).want(t, 200).json(t)["clients"].([]any) {
		if c := c.(map[string]any); c["client_id"] == out.ID && c["id_token_signed_response_alg"] != "ES256" {
			t.Fatalf("the client added with ES256 is listed as %v", c)
		}
	}
}

// TestUserinfoBearerErrors: RFC 6750 section 3's answers at the userinfo endpoint.
func TestUserinfoBearerErrors(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	ctx := context.Background()
	userinfo := func(t *testing.T, token string) reply {
		t.Helper()
		h := http.Header{}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		return s.get(t, "/oidc/userinfo", h)
	}
	invalidToken := func(t *testing.T, r reply) {
		t.Helper()
		if code := r.oauthError(t, 401); code != "invalid_token" {
			t.Fatalf("error %q, want invalid_token", code)
		}
		ch := r.Header.Get("WWW-Authenticate")
		if !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, `error="invalid_token"`) || !strings.Contains(ch, `error_description="`) {
			t.Fatalf("WWW-Authenticate %q, want a Bearer challenge with error=\"invalid_token\" and its description", ch)
		}
	}

	t.Run("no token", func(t *testing.T) {
		r := userinfo(t, "")
		r.oauthError(t, 401)
		if ch := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer") || strings.Contains(ch, "error") {
			t.Fatalf("WWW-Authenticate %q, want a Bearer challenge with no error (RFC 6750 section 3.1)", ch)
		}
	})
	t.Run("unknown token", func(t *testing.T) { invalidToken(t, userinfo(t, "not-a-token")) })
	t.Run("revoked token", func(t *testing.T) {
		tok, _ := rp.login(ph)
		if _, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err != nil {
			t.Fatalf("userinfo before revocation: %v", err)
		}
		s.post(t, "/oidc/revoke", url.Values{"token": {tok.AccessToken}}, &clientAuth{id: rp.oauth.ClientID, secret: rp.oauth.ClientSecret}).want(t, 200)
		if _, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Fatal("go-oidc got userinfo with a revoked token")
		}
		invalidToken(t, userinfo(t, tok.AccessToken))
	})
	t.Run("expired token", func(t *testing.T) {
		tok, _ := rp.login(ph)
		s.clock.Advance(time.Hour + time.Second)
		invalidToken(t, userinfo(t, tok.AccessToken))
	})
}

// TestRevocationAndIntrospection: RFC 7009 and RFC 7662 for a client's own tokens and
// another's.
func TestRevocationAndIntrospection(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	other := s.relyingParty(t, "健保署", provider.ClientSpec{})
	public := s.relyingParty(t, "App", provider.ClientSpec{Public: true})
	own := &clientAuth{id: rp.oauth.ClientID, secret: rp.oauth.ClientSecret}
	ownPost := &clientAuth{id: rp.oauth.ClientID, secret: rp.oauth.ClientSecret, post: true}
	others := &clientAuth{id: other.oauth.ClientID, secret: other.oauth.ClientSecret}
	tok, idt := rp.login(ph)
	introspect := func(auth *clientAuth) map[string]any {
		t.Helper()
		return s.post(t, "/oidc/introspect", url.Values{"token": {tok.AccessToken}}, auth).want(t, 200).json(t)
	}

	for _, auth := range []*clientAuth{own, ownPost} {
		if got := introspect(auth); got["active"] != true || got["client_id"] != rp.oauth.ClientID || got["sub"] != idt.Subject {
			t.Fatalf("introspection of the client's own token: %v", got)
		}
	}
	if got := introspect(others); got["active"] != false || got["sub"] != nil {
		t.Fatalf("another client's introspection of the token: %v, want it inactive", got)
	}
	publicAuth := &clientAuth{id: public.oauth.ClientID, post: true}
	if code := s.post(t, "/oidc/introspect", url.Values{"token": {tok.AccessToken}}, publicAuth).oauthError(t, 401); code != "invalid_client" {
		t.Fatalf("a public client's introspection: %s", code)
	}
	if code := s.post(t, "/oidc/revoke", url.Values{"token": {tok.AccessToken}}, others).oauthError(t, 400); code != "invalid_grant" {
		t.Fatalf("another client revoking the token: %s", code)
	}
	if got := introspect(own); got["active"] != true {
		t.Fatalf("the token after another client's refused revocation: %v", got)
	}
	s.post(t, "/oidc/revoke", url.Values{"token": {tok.AccessToken}, "token_type_hint": {"refresh_token"}}, own).want(t, 200)
	if got := introspect(own); got["active"] != false {
		t.Fatalf("introspection after revocation: %v", got)
	}
	s.post(t, "/oidc/revoke", url.Values{"token": {tok.AccessToken}}, own).want(t, 200) // revoking an unknown token is no error
}

// TestClientAuthenticationErrors: a wrong secret or an unknown client is 401 invalid_client
// with a Basic challenge (RFC 6749 section 5.2) at every endpoint that authenticates clients.
func TestClientAuthenticationErrors(t *testing.T) {
	s := startServer(t)
	rp := s.relyingParty(t, "健保署", provider.ClientSpec{CIBA: true})
	ctx := context.Background()

	t.Run("x/oauth2 code exchange", func(t *testing.T) {
		for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
			cfg := rp.oauth
			cfg.ClientSecret, cfg.Endpoint.AuthStyle = "wrong", style
			_, err := cfg.Exchange(ctx, "some-code", oauth2.VerifierOption(oauth2.GenerateVerifier()))
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != 401 {
				t.Fatalf("auth style %d: %v, want 401 invalid_client", style, err)
			}
			if ch := re.Response.Header.Get("WWW-Authenticate"); ch != `Basic realm="mcert"` {
				t.Fatalf("auth style %d: WWW-Authenticate %q", style, ch)
			}
		}
	})

	wrong := &clientAuth{id: rp.oauth.ClientID, secret: "wrong"}
	code := url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {rpRedirect}, "code_verifier": {oauth2.GenerateVerifier()}}
	tests := []struct {
		name string
		path string
		form url.Values
		auth *clientAuth
	}{
		{"token, wrong secret by Basic", "/oidc/token", code, wrong},
		{"token, wrong secret in the body", "/oidc/token", code, &clientAuth{id: rp.oauth.ClientID, secret: "wrong", post: true}},
		{"token, unknown client", "/oidc/token", code, &clientAuth{id: "no such client", secret: "x"}},
		{"token, no client authentication", "/oidc/token", code, nil},
		{"CIBA token grant", "/oidc/token", url.Values{"grant_type": {"urn:openid:params:grant-type:ciba"}, "auth_req_id": {"x"}}, wrong},
		{"backchannel authentication", "/oidc/bc-authorize", url.Values{"scope": {"openid"}, "login_hint": {"A123456789"}}, wrong},
		{"revocation", "/oidc/revoke", url.Values{"token": {"x"}}, wrong},
		{"introspection", "/oidc/introspect", url.Values{"token": {"x"}}, wrong},
		{"introspection, unknown client", "/oidc/introspect", url.Values{"token": {"x"}}, &clientAuth{id: "nobody", secret: "x", post: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.post(t, tc.path, tc.form, tc.auth)
			if code := r.oauthError(t, 401); code != "invalid_client" {
				t.Fatalf("error %q, want invalid_client: %s", code, r.Body)
			}
			if d, _ := r.json(t)["error_description"].(string); d == "" || strings.Contains(d, "ErrorType=") {
				t.Fatalf("error_description %q", d)
			}
			if ch := r.Header.Get("WWW-Authenticate"); ch != `Basic realm="mcert"` {
				t.Fatalf("WWW-Authenticate %q, want Basic realm=\"mcert\"", ch)
			}
		})
	}
	t.Run("Basic credentials that are not form-encoded", func(t *testing.T) {
		req, _ := http.NewRequest("POST", s.PublicURL+"/oidc/token", strings.NewReader(code.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(rp.oauth.ClientID, "100%zz")
		if code := call(t, req).oauthError(t, 401); code != "invalid_client" {
			t.Fatalf("error %q", code)
		}
	})
}

// TestOIDCErrorsAreJSON: bad input to any /oidc/ endpoint is a 4xx with an OAuth JSON error
// body, never text/plain or a 500.
func TestOIDCErrorsAreJSON(t *testing.T) {
	s := startServer(t)
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	auth := &clientAuth{id: rp.oauth.ClientID, secret: rp.oauth.ClientSecret}
	raw := func(method, path, contentType, body string) *http.Request {
		req, _ := http.NewRequest(method, s.PublicURL+path, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		return req
	}
	const form = "application/x-www-form-urlencoded"
	tests := []struct {
		name   string
		req    func() reply
		status int
	}{
		{"unknown endpoint", func() reply { return call(t, raw("GET", "/oidc/nothing", "", "")) }, 404},
		{"token by GET", func() reply { return call(t, raw("GET", "/oidc/token?grant_type=authorization_code", "", "")) }, 405},
		{"token body not a form", func() reply { return call(t, raw("POST", "/oidc/token", form, "a=%zz")) }, 400},
		{"token without grant_type", func() reply { return s.post(t, "/oidc/token", url.Values{}, auth) }, 400},
		{"unsupported grant", func() reply { return s.post(t, "/oidc/token", url.Values{"grant_type": {"password"}}, auth) }, 400},
		{"refresh grant", func() reply {
			return s.post(t, "/oidc/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, auth)
		}, 400},
		{"Basic and client_secret both", func() reply {
			return s.post(t, "/oidc/token", url.Values{"grant_type": {"authorization_code"}, "client_secret": {"x"}}, auth)
		}, 400},
		{"introspection by GET", func() reply { return call(t, raw("GET", "/oidc/introspect", "", "")) }, 405},
		{"introspection without a token", func() reply { return s.post(t, "/oidc/introspect", url.Values{}, auth) }, 400},
		{"revocation without a token", func() reply { return s.post(t, "/oidc/revoke", url.Values{}, auth) }, 400},
		{"userinfo body not a form", func() reply { return call(t, raw("POST", "/oidc/userinfo", form, "access_token=%zz")) }, 400},
		{"callback by POST", func() reply { return call(t, raw("POST", "/oidc/authorize/callback?id=x", form, "")) }, 405},
		{"authorization query not a form", func() reply { return call(t, raw("GET", "/oidc/authorize?a=%zz", "", "")) }, 400},
		{"backchannel authentication by GET", func() reply { return call(t, raw("GET", "/oidc/bc-authorize", "", "")) }, 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.req().oauthError(t, tc.status) })
	}
}

// TestPromptNone: mcert keeps no login session, so prompt=none returns to the relying party
// with login_required (OIDC Core section 3.1.2.6); other prompts show the login page.
func TestPromptNone(t *testing.T) {
	s := startServer(t)
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	b := s.browser(t)
	b.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	authorize := func(prompt string) reply {
		return b.do("GET", rp.oauth.AuthCodeURL("st-"+prompt, oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("prompt", prompt)), nil)
	}

	before := s.snapshot(t)
	r := authorize("none")
	back, err := url.Parse(r.Header.Get("Location"))
	if r.Status != http.StatusFound || err != nil || !strings.HasPrefix(back.String(), rpRedirect) || back.Query().Get("error") != "login_required" || back.Query().Get("state") != "st-none" {
		t.Fatalf("prompt=none answered %d to %q, want the redirect URI with login_required and the state", r.Status, r.Header.Get("Location"))
	}
	if !bytes.Equal(before, s.snapshot(t)) {
		t.Fatal("prompt=none started a login")
	}
	for _, prompt := range []string{"login", "consent", "select_account"} {
		if r := authorize(prompt); r.Status != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), "/login/") {
			t.Errorf("prompt=%s answered %d to %q, want the login page", prompt, r.Status, r.Header.Get("Location"))
		}
	}
}

// TestAuthorizeErrorsWithoutRedirect: an authorization request whose error cannot go back to
// the relying party (RFC 6749 section 4.1.2.1) is answered with a JSON OAuth error.
func TestAuthorizeErrorsWithoutRedirect(t *testing.T) {
	s := startServer(t)
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	params := func(change func(url.Values)) string {
		v := url.Values{"client_id": {rp.oauth.ClientID}, "redirect_uri": {rpRedirect}, "response_type": {"code"}, "scope": {"openid"}, "state": {"st"}}
		change(v)
		return "/oidc/authorize?" + v.Encode()
	}
	tests := []struct {
		name string
		path string
		code string
	}{
		{"unknown client_id", params(func(v url.Values) { v.Set("client_id", "no-such-client") }), "invalid_client"},
		{"no client_id", params(func(v url.Values) { v.Del("client_id") }), "invalid_request"},
		{"redirect_uri not registered", params(func(v url.Values) { v.Set("redirect_uri", "http://127.0.0.1:9/elsewhere") }), "invalid_request"},
		{"no redirect_uri", params(func(v url.Values) { v.Del("redirect_uri") }), "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.get(t, tc.path, nil)
			if code := r.oauthError(t, 400); code != tc.code {
				t.Fatalf("error %q, want %q: %s", code, tc.code, r.Body)
			}
			if loc := r.Header.Get("Location"); loc != "" {
				t.Fatalf("redirected to %q", loc)
			}
		})
	}
}

// TestAuthorizeResponseModes: query and fragment work; form_post, which the pages' security
// policy cannot serve, is refused back to the relying party.
func TestAuthorizeResponseModes(t *testing.T) {
	s := startServer(t)
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	b := s.browser(t)
	b.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	authorize := func(mode string) reply {
		return b.do("GET", rp.oauth.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oauth2.SetAuthURLParam("response_mode", mode)), nil)
	}
	for _, mode := range []string{"query", "fragment"} {
		if r := authorize(mode); r.Status != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), "/login/") {
			t.Errorf("response_mode=%s answered %d to %q", mode, r.Status, r.Header.Get("Location"))
		}
	}
	r := authorize("form_post")
	back, err := url.Parse(r.Header.Get("Location"))
	if r.Status != http.StatusFound || err != nil || !strings.HasPrefix(back.String(), rpRedirect) || back.Query().Get("error") != "invalid_request" || back.Query().Get("state") != "st" {
		t.Fatalf("response_mode=form_post answered %d to %q", r.Status, r.Header.Get("Location"))
	}
}

// TestEndSessionErrors: bad logout requests are 400 with a JSON error and end nothing; a good
// one returns to the relying party.
func TestEndSessionErrors(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{PostLogoutRedirectURIs: []string{"http://127.0.0.1:9/bye"}})
	tok, _ := rp.login(ph)
	hint := tok.Extra("id_token").(string)
	forged := hint[:len(hint)-4] + strings.Map(func(r rune) rune {
		if r == 'A' {
			return 'B'
		}
		return 'A'
	}, hint[len(hint)-4:])
	tests := []struct {
		name  string
		query string
	}{
		{"query that is not a form", "x=%zz"},
		{"id_token_hint that is not a JWT", "id_token_hint=abc"},
		{"id_token_hint with a wrong signature", "id_token_hint=" + forged},
		{"post_logout_redirect_uri not registered", "id_token_hint=" + hint + "&post_logout_redirect_uri=" + url.QueryEscape("http://127.0.0.1:9/elsewhere")},
		{"post_logout_redirect_uri with no client to check it", "post_logout_redirect_uri=" + url.QueryEscape("http://127.0.0.1:9/bye")},
		{"unknown client_id", "client_id=no-such-client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.get(t, "/oidc/end_session?"+tc.query, nil)
			r.oauthError(t, 400)
			if loc := r.Header.Get("Location"); loc != "" {
				t.Fatalf("redirected to %q", loc)
			}
		})
	}
	if _, err := rp.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok)); err != nil {
		t.Fatalf("refused logouts ended the access token: %v", err)
	}
	r := s.get(t, "/oidc/end_session?id_token_hint="+hint+"&post_logout_redirect_uri="+url.QueryEscape("http://127.0.0.1:9/bye")+"&state=s1", nil)
	if loc := r.Header.Get("Location"); r.Status != http.StatusFound || loc != "http://127.0.0.1:9/bye?state=s1" {
		t.Fatalf("logout answered %d to %q", r.Status, loc)
	}
	if _, err := rp.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok)); err == nil {
		t.Fatal("the access token works after logout")
	}
}

// TestCIBAFormEncodedCredentials: client_secret_basic credentials are form-encoded before
// they are joined (RFC 6749 section 2.3.1), at the backchannel endpoint and the CIBA grant as
// at the code exchange.
func TestCIBAFormEncodedCredentials(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	ctx := context.Background()
	const id, secret = "rp:1 é+x", "s3cr%t+:with space"
	h := sha256.Sum256([]byte(secret))
	c := storage.Client{ID: id, SecretHash: h[:], Name: "健保署", RedirectURIs: []string{rpRedirect}, CIBA: true, CreatedAt: s.clock.Now()}
	if err := s.store.Update(ctx, func(tx storage.Tx) error { return tx.CreateClient(c) }); err != nil {
		t.Fatal(err)
	}
	auth := &clientAuth{id: id, secret: secret}

	r := s.post(t, "/oidc/bc-authorize", url.Values{"scope": {"openid profile"}, "login_hint": {"A123456789"}, "binding_message": {"登入"}}, auth).want(t, 200)
	reqID, _ := r.json(t)["auth_req_id"].(string)
	poll := func() reply {
		t.Helper()
		return s.post(t, "/oidc/token", url.Values{"grant_type": {"urn:openid:params:grant-type:ciba"}, "auth_req_id": {reqID}}, auth)
	}
	if code := poll().oauthError(t, 400); code != "authorization_pending" {
		t.Fatalf("first poll: %s", code)
	}
	inbox, err := ph.Inbox(ctx, s.PublicURL)
	if err != nil || len(inbox) != 1 {
		t.Fatalf("inbox: %v %v", inbox, err)
	}
	if _, err := ph.Approve(ctx, s.PublicURL, inbox[0].Token, phone.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(5 * time.Second)
	p, err := oidc.NewProvider(ctx, s.PublicURL)
	if err != nil {
		t.Fatal(err)
	}
	verifier := p.Verifier(&oidc.Config{ClientID: id})
	if _, err := verifier.Verify(ctx, poll().want(t, 200).json(t)["id_token"].(string)); err != nil {
		t.Fatalf("CIBA ID token: %v", err)
	}

	endpoint := p.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader
	rp := &relyingParty{t: t, s: s, provider: p, verifier: verifier, oauth: oauth2.Config{
		ClientID: id, ClientSecret: secret, Endpoint: endpoint, RedirectURL: rpRedirect, Scopes: []string{oidc.ScopeOpenID},
	}}
	rp.login(ph) // x/oauth2 escapes the credentials itself
}

// TestCIBAExactlyOneHint: a backchannel request names the citizen by one hint only (CIBA Core
// section 7.1).
func TestCIBAExactlyOneHint(t *testing.T) {
	s := startServer(t)
	boundCitizen(t, s)
	rp := s.relyingParty(t, "健保署", provider.ClientSpec{CIBA: true})
	auth := &clientAuth{id: rp.oauth.ClientID, secret: rp.oauth.ClientSecret}
	before := s.snapshot(t)
	for _, extra := range []string{"login_hint_token", "id_token_hint"} {
		form := url.Values{"scope": {"openid"}, "login_hint": {"A123456789"}, extra: {"x.y.z"}}
		if code := s.post(t, "/oidc/bc-authorize", form, auth).oauthError(t, 400); code != "invalid_request" {
			t.Errorf("login_hint with %s: %s, want invalid_request", extra, code)
		}
	}
	if !bytes.Equal(before, s.snapshot(t)) {
		t.Fatal("a refused request changed the store")
	}
}

// TestTokenResponsesNotCached: token responses and their errors carry Cache-Control: no-store
// and Pragma: no-cache (RFC 6749 section 5.1), in the code flow and in CIBA.
func TestTokenResponsesNotCached(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	rp := s.relyingParty(t, "健保署", provider.ClientSpec{CIBA: true})
	auth := &clientAuth{id: rp.oauth.ClientID, secret: rp.oauth.ClientSecret}
	noStore := func(t *testing.T, what string, r reply) {
		t.Helper()
		if r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" {
			t.Errorf("%s: Cache-Control %q, Pragma %q, want no-store and no-cache", what, r.Header.Get("Cache-Control"), r.Header.Get("Pragma"))
		}
	}
	a, code := rp.approvedCode(ph)
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}, "code_verifier": {a.verifier}}
	r := s.post(t, "/oidc/token", exchange, auth).want(t, 200)
	if r.json(t)["access_token"] == nil {
		t.Fatalf("token response: %s", r.Body)
	}
	noStore(t, "code exchange", r)
	r = s.post(t, "/oidc/token", exchange, auth)
	r.oauthError(t, 400)
	noStore(t, "replayed code", r)

	ciba := cibaClient{t: t, rp: rp}
	id := ciba.start("A123456789", "登入")
	poll := url.Values{"grant_type": {"urn:openid:params:grant-type:ciba"}, "auth_req_id": {id}}
	r = s.post(t, "/oidc/token", poll, auth)
	r.oauthError(t, 400)
	noStore(t, "CIBA pending", r)
	inbox, _ := ph.Inbox(context.Background(), s.PublicURL)
	if len(inbox) != 1 {
		t.Fatalf("inbox: %v", inbox)
	}
	if _, err := ph.Approve(context.Background(), s.PublicURL, inbox[0].Token, phone.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(5 * time.Second)
	noStore(t, "CIBA tokens", s.post(t, "/oidc/token", poll, auth).want(t, 200))
}

// TestCORS: scripts of any origin may call discovery, the keys and the back-channel
// endpoints, without credentials; the navigations get no CORS headers.
func TestCORS(t *testing.T) {
	s := startServer(t)
	const origin = "https://rp.example"
	send := func(t *testing.T, method, path, preflight string) reply {
		t.Helper()
		req, _ := http.NewRequest(method, s.PublicURL+path, nil)
		req.Header.Set("Origin", origin)
		if preflight != "" {
			req.Header.Set("Access-Control-Request-Method", preflight)
			req.Header.Set("Access-Control-Request-Headers", "authorization")
		}
		return call(t, req)
	}
	for _, tc := range []struct{ method, path string }{
		{"GET", provider.DiscoveryPath}, {"GET", "/oidc/keys"}, {"POST", "/oidc/token"},
		{"GET", "/oidc/userinfo"}, {"POST", "/oidc/revoke"}, {"POST", "/oidc/introspect"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			for _, r := range []reply{send(t, tc.method, tc.path, ""), send(t, "OPTIONS", tc.path, tc.method)} {
				if r.Header.Get("Access-Control-Allow-Origin") != "*" || r.Header.Get("Access-Control-Allow-Credentials") != "" {
					t.Fatalf("%d: Allow-Origin %q, Allow-Credentials %q, want * and none", r.Status, r.Header.Get("Access-Control-Allow-Origin"), r.Header.Get("Access-Control-Allow-Credentials"))
				}
			}
			pre := send(t, "OPTIONS", tc.path, tc.method)
			if pre.Status/100 != 2 || !strings.Contains(strings.ToLower(pre.Header.Get("Access-Control-Allow-Headers")), "authorization") {
				t.Fatalf("preflight answered %d, Allow-Headers %q", pre.Status, pre.Header.Get("Access-Control-Allow-Headers"))
			}
		})
	}
	for _, path := range []string{"/oidc/authorize?client_id=x", "/oidc/authorize/callback?id=x", "/oidc/end_session"} {
		t.Run(path, func(t *testing.T) {
			for _, r := range []reply{send(t, "GET", path, ""), send(t, "OPTIONS", path, "GET")} {
				for name := range r.Header {
					if strings.HasPrefix(name, "Access-Control-") {
						t.Fatalf("a navigation answered %d with %s: %q", r.Status, name, r.Header.Get(name))
					}
				}
			}
		})
	}
}
