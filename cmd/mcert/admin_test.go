package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
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
)

// admin is the operator's client of the admin API, with the token from the data directory.
func (s *server) admin(t *testing.T) func(method, path string, body any) reply {
	t.Helper()
	token, err := os.ReadFile(filepath.Join(s.Config.DataDir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	b := s.browser(t)
	return func(method, path string, body any) reply {
		t.Helper()
		req, _ := http.NewRequest(method, s.PublicURL+path, strings.NewReader(mustJSON(t, body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		res, err := b.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var r reply
		r.Status, r.Header = res.StatusCode, res.Header
		r.Body, _ = readAll(res)
		return r
	}
}

func TestAdminRegistersClientsLive(t *testing.T) {
	s := startServer(t)
	admin := s.admin(t)
	anon := s.browser(t)
	s.refused(t, anon, "GET", "/api/v1/admin/clients", nil, 401, "admin_token_required")
	s.refused(t, anon, "POST", "/api/v1/admin/clients", map[string]any{"name": "x", "redirect_uris": []string{rpRedirect}}, 401, "admin_token_required")

	bad := admin("POST", "/api/v1/admin/clients", map[string]any{"name": "", "redirect_uris": []string{"http://example.tw/cb"}, "public": true, "ciba": true})
	if bad.Status != 400 || bad.errorCode(t) != "invalid_client_metadata" {
		t.Fatalf("bad client metadata: %d %s", bad.Status, bad.Body)
	}
	for _, problem := range []string{"name", "https", "cannot be public"} {
		if !strings.Contains(string(bad.Body), problem) {
			t.Errorf("the error does not report the %s problem: %s", problem, bad.Body)
		}
	}

	created := admin("POST", "/api/v1/admin/clients", map[string]any{"name": "戶政線上申辦", "redirect_uris": []string{rpRedirect}, "citizen_id": true}).want(t, 201).json(t)
	if created["client_id"] == "" || created["client_secret"] == "" {
		t.Fatalf("created client: %v", created)
	}
	var listed map[string]any
	for _, c := range admin("GET", "/api/v1/admin/clients", nil).want(t, 200).json(t)["clients"].([]any) {
		if c.(map[string]any)["client_id"] == created["client_id"] {
			listed = c.(map[string]any)
		}
	}
	if listed == nil || listed["name"] != "戶政線上申辦" || listed["citizen_id"] != true || listed["client_secret"] != nil {
		t.Fatalf("the client list shows %v", listed)
	}

	// The new client logs a citizen in at once, authenticating with client_secret_post.
	ph, _ := boundCitizen(t, s)
	rp := s.relyingParty(t, "unused", provider.ClientSpec{})
	rp.oauth.ClientID, rp.oauth.ClientSecret = created["client_id"].(string), created["client_secret"].(string)
	rp.oauth.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	rp.verifier = rp.provider.Verifier(&oidc.Config{ClientID: rp.oauth.ClientID})
	a := rp.startLogin()
	if a.page["client_name"] != "戶政線上申辦" {
		t.Fatalf("login page names %v", a.page["client_name"])
	}
	if _, err := ph.Login(context.Background(), a.scan(t), phone.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	rp.finish(a)
}

func TestKeyRotation(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	admin := s.admin(t)
	login := func() string {
		t.Helper()
		a := rp.startLogin()
		if _, err := ph.Login(context.Background(), a.scan(t), phone.GetOptions{}); err != nil {
			t.Fatal(err)
		}
		tok, _ := rp.finish(a)
		return kidOf(t, tok.Extra("id_token").(string))
	}
	jwks := func() []string {
		t.Helper()
		var set struct {
			Keys []struct {
				Kid string `json:"kid"`
			} `json:"keys"`
		}
		if err := json.Unmarshal(s.browser(t).do("GET", "/oidc/keys", nil).want(t, 200).Body, &set); err != nil {
			t.Fatal(err)
		}
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.Kid)
		}
		return kids
	}

	before := login()
	rotated := admin("POST", "/api/v1/admin/keys/rotate", nil).want(t, 200).json(t)
	kid, _ := rotated["kid"].(string)
	kids, _ := rotated["kids"].(map[string]any)
	if kid == "" || kids["RS256"] != kid || kids["ES256"] == nil {
		t.Fatalf("rotation answered %v, want the new RS256 key as kid and both new keys in kids", rotated)
	}
	if got := jwks(); len(got) != 4 {
		t.Fatalf("key set during a rotation %v, want the old and the new key of RS256 and of ES256", got)
	}
	if after := login(); after != kid || after == before {
		t.Fatalf("signed with %q after rotating to %q (before: %q)", after, kid, before)
	}
	s.clock.Advance(25 * time.Hour)
	if got := jwks(); len(got) != 2 || !slices.Contains(got, kid) || !slices.Contains(got, kids["ES256"].(string)) {
		t.Fatalf("key set a day after the rotation: %v, want only %v", got, kids)
	}
}

func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	header, _, _ := strings.Cut(jwt, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	var h struct {
		Kid string `json:"kid"`
	}
	if err != nil || json.Unmarshal(raw, &h) != nil {
		t.Fatalf("not a JWT: %q", jwt)
	}
	return h.Kid
}

func TestLogoutAndSuspension(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	ctx := context.Background()
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{PostLogoutRedirectURIs: []string{"http://127.0.0.1:9/bye"}})
	a := rp.startLogin()
	if _, err := ph.Login(ctx, a.scan(t), phone.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, _ := rp.finish(a)
	if _, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err != nil {
		t.Fatalf("userinfo before logout: %v", err)
	}

	// RP-initiated logout ends the website's access tokens and returns to it.
	b := s.browser(t)
	b.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r := b.do("GET", "/oidc/end_session?id_token_hint="+tok.Extra("id_token").(string)+"&post_logout_redirect_uri=http://127.0.0.1:9/bye&state=s1", nil)
	if loc := r.Header.Get("Location"); r.Status != http.StatusFound || !strings.HasPrefix(loc, "http://127.0.0.1:9/bye") || !strings.Contains(loc, "state=s1") {
		t.Fatalf("end_session answered %d to %q: %s", r.Status, loc, r.Body)
	}
	if _, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Fatal("the access token still works after logout")
	}

	// A suspended account's phone approves nothing.
	acct, err := storage.Get(ctx, s.store, func(tx storage.ReadTx) (storage.Account, error) { return tx.AccountByCitizen("A123456789") })
	if err != nil {
		t.Fatal(err)
	}
	acct.Status = storage.AccountSuspended
	if err := s.store.Update(ctx, func(tx storage.Tx) error { return tx.PutAccount(acct) }); err != nil {
		t.Fatal(err)
	}
	a = rp.startLogin()
	if _, err := ph.Login(ctx, a.scan(t), phone.GetOptions{}); !isAPIError(err, 403, "account_suspended") {
		t.Fatalf("login by a suspended account: %v", err)
	}
}

func TestLoginPageRefreshesQR(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	a := rp.startLogin()
	old := a.scan(t)
	s.clock.Advance(2*time.Minute + time.Second)
	if st := a.browser.do("GET", "/api/v1/logins/"+a.loginID, nil).want(t, 200).json(t); st["status"] != "expired" {
		t.Fatalf("status after 2 minutes: %v", st["status"])
	}
	if _, err := ph.Login(context.Background(), old, phone.GetOptions{}); !isAPIError(err, 404, "login_not_found") && !isAPIError(err, 410, "login_expired") {
		t.Fatalf("login with an expired QR code: %v", err)
	}
	fresh := a.browser.do("POST", "/api/v1/logins/"+a.loginID+"/qr", nil).want(t, 200).json(t)
	if fresh["status"] != "pending" || fresh["qr_text"] == old {
		t.Fatalf("refreshed login page: %v", fresh)
	}
	if _, err := ph.Login(context.Background(), old, phone.GetOptions{}); !isAPIError(err, 404, "login_not_found") {
		t.Fatalf("the replaced QR code still works: %v", err)
	}
	a.page = fresh
	if _, err := ph.Login(context.Background(), a.scan(t), phone.GetOptions{}); err != nil {
		t.Fatalf("login with the refreshed QR code: %v", err)
	}
	rp.finish(a)

	s.clock.Advance(10 * time.Minute)
	r := a.browser.do("POST", "/api/v1/logins/"+a.loginID+"/qr", nil)
	if r.Status != 409 && r.Status != 410 {
		t.Fatalf("refreshing a finished login: %d %s", r.Status, r.Body)
	}
}
