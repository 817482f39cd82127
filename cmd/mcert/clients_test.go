package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"github.com/mcert/mcert/storage"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/storage/bolt"
)

// entries counts the records of one bucket in a dump of the store.
func entries(dump []byte, bucket string) int {
	_, rest, ok := bytes.Cut(dump, []byte("["+bucket+"]\n"))
	if !ok {
		return 0
	}
	n := 0
	for line := range strings.Lines(string(rest)) {
		if strings.HasPrefix(line, "[") {
			break
		}
		n++
	}
	return n
}

// userinfoStatus is the status userinfo answers to the access token.
func (s *server) userinfoStatus(t *testing.T, accessToken string) int {
	t.Helper()
	return s.get(t, "/oidc/userinfo", bearer(accessToken)).Status
}

// TestAdminManagesClients edits, disables, enables, rotates the secret of and deletes a
// relying party through the admin API while it is in use, and sees each change take effect at
// once at every endpoint.
func TestAdminManagesClients(t *testing.T) {
	s := startServer(t)
	admin := s.admin(t)
	ph, _ := boundCitizen(t, s)
	rp := s.adminRelyingParty(t, map[string]any{"name": "臺灣雲市集", "redirect_uris": []string{rpRedirect}, "citizen_id": true, "ciba": true})
	id := rp.oauth.ClientID
	path := "/api/v1/admin/clients/" + id
	tok, _ := rp.login(ph)
	if got := s.userinfoStatus(t, tok.AccessToken); got != 200 {
		t.Fatalf("userinfo: %d", got)
	}
	creds := &clientAuth{id: id, secret: rp.oauth.ClientSecret}
	bcAuthorize := func(auth *clientAuth) reply {
		return s.post(t, "/oidc/bc-authorize", url.Values{"scope": {"openid"}, "login_hint": {"A123456789"}, "binding_message": {"登入"}}, auth)
	}

	// Every problem of an edit at once, and nothing changed.
	before := s.snapshot(t)
	bad := admin("PATCH", path, map[string]any{"name": "", "redirect_uris": []string{"http://example.tw/cb"}, "public": true, "frob": 1, "ciba": "yes"})
	if bad.Status != 400 || bad.errorCode(t) != "invalid_client_metadata" {
		t.Fatalf("bad edit: %d %s", bad.Status, bad.Body)
	}
	for _, problem := range []string{"name must be", "must use https", "public cannot be changed", `unknown field \"frob\"`, "ciba must be true or false"} {
		if !strings.Contains(string(bad.Body), problem) {
			t.Errorf("the refusal does not say %q: %s", problem, bad.Body)
		}
	}
	if !bytes.Equal(before, s.snapshot(t)) {
		t.Error("a refused edit changed the store")
	}

	edited := admin("PATCH", path, map[string]any{"name": " 臺灣雲市集 2 ", "citizen_id": false}).want(t, 200).json(t)
	if edited["name"] != "臺灣雲市集 2" || edited["citizen_id"] != false || edited["ciba"] != true || edited["disabled"] != false || edited["client_secret"] != nil {
		t.Fatalf("edited client: %v", edited)
	}
	if a := rp.startLogin(); a.page["client_name"] != "臺灣雲市集 2" {
		t.Errorf("the login page names %v after the edit", a.page["client_name"])
	}

	// Disabled: refused everywhere, its tokens inactive.
	if got := admin("PATCH", path, map[string]any{"disabled": true}).want(t, 200).json(t); got["disabled"] != true {
		t.Fatalf("disabled client: %v", got)
	}
	authorize := s.get(t, "/oidc/authorize?"+url.Values{"client_id": {id}, "redirect_uri": {rpRedirect}, "response_type": {"code"}, "scope": {"openid"}}.Encode(), nil)
	if code := authorize.oauthError(t, 400); code != "invalid_client" || authorize.Header.Get("Location") != "" {
		t.Errorf("authorization request of a disabled client: %d %s, Location %q", authorize.Status, authorize.Body, authorize.Header.Get("Location"))
	}
	for name, r := range map[string]reply{
		"token":         s.post(t, "/oidc/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {rpRedirect}}, creds),
		"bc-authorize":  bcAuthorize(creds),
		"introspection": s.post(t, "/oidc/introspect", url.Values{"token": {tok.AccessToken}}, creds),
	} {
		if code := r.oauthError(t, 401); code != "invalid_client" || r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s of a disabled client: %d %s", name, r.Status, r.Body)
		}
	}
	if got := s.userinfoStatus(t, tok.AccessToken); got != 401 {
		t.Errorf("userinfo with a disabled client's token: %d, want 401", got)
	}
	admin("PATCH", path, map[string]any{"disabled": false}).want(t, 200)
	if got := s.userinfoStatus(t, tok.AccessToken); got != 200 {
		t.Errorf("userinfo once the client is enabled again: %d", got)
	}

	// A new secret works at once, and the old one no longer.
	rotated := admin("POST", path+"/secret", nil).want(t, 200).json(t)
	secret, _ := rotated["client_secret"].(string)
	if rotated["client_id"] != id || secret == "" || secret == creds.secret {
		t.Fatalf("rotated secret: %v", rotated)
	}
	if code := bcAuthorize(creds).oauthError(t, 401); code != "invalid_client" {
		t.Errorf("the old secret: %s", code)
	}
	bcAuthorize(&clientAuth{id: id, secret: secret}).want(t, 200)
	public := s.admin(t)("POST", "/api/v1/admin/clients", map[string]any{"name": "App", "redirect_uris": []string{rpRedirect}, "public": true}).want(t, 201).json(t)
	if r := admin("POST", "/api/v1/admin/clients/"+public["client_id"].(string)+"/secret", nil); r.Status != 400 || r.errorCode(t) != "public_client" {
		t.Errorf("rotating a public client's secret: %d %s", r.Status, r.Body)
	}

	// Deleted: gone with its tokens.
	if entries(s.snapshot(t), "tokens") == 0 {
		t.Fatal("no token to see deleted")
	}
	if got := admin("DELETE", path, nil).want(t, 200).json(t); got["client_id"] != id || got["name"] != "臺灣雲市集 2" {
		t.Fatalf("deleted client: %v", got)
	}
	if n := entries(s.snapshot(t), "tokens"); n != 0 {
		t.Errorf("%d tokens left after deleting their client", n)
	}
	if got := s.userinfoStatus(t, tok.AccessToken); got != 401 {
		t.Errorf("userinfo with a deleted client's token: %d, want 401", got)
	}
	for _, c := range admin("GET", "/api/v1/admin/clients", nil).want(t, 200).json(t)["clients"].([]any) {
		if c.(map[string]any)["client_id"] == id {
			t.Error("the deleted client is still listed")
		}
	}
	for _, r := range []reply{admin("PATCH", path, map[string]any{"name": "x"}), admin("DELETE", path, nil), admin("POST", path+"/secret", nil)} {
		if r.Status != 404 || r.errorCode(t) != "client_not_found" {
			t.Errorf("a deleted client: %d %s", r.Status, r.Body)
		}
	}

	var types []string
	for _, e := range s.auditEvents(t) {
		if e["client_id"] == id && strings.HasPrefix(e["type"].(string), "admin_client_") {
			types = append([]string{e["type"].(string)}, types...)
		}
	}
	want := []string{"admin_client_create", "admin_client_update", "admin_client_disable", "admin_client_enable", "admin_client_rotate_secret", "admin_client_delete"}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Errorf("audit log of the client: %v, want %v", types, want)
	}
}

// TestDisabledPublicClient: a public client, with no secret to refuse, is refused at the token
// endpoint once disabled, so that a code it got before cannot be redeemed.
func TestDisabledPublicClient(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	rp := s.relyingParty(t, "App", provider.ClientSpec{Public: true})
	rp.oauth.ClientSecret = ""
	a, code := rp.approvedCode(ph)
	s.admin(t)("PATCH", "/api/v1/admin/clients/"+rp.oauth.ClientID, map[string]any{"disabled": true}).want(t, 200)
	_, err := rp.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(a.verifier))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != 401 || re.ErrorCode != "invalid_client" {
		t.Fatalf("code exchange of a disabled public client: %v", err)
	}
}

// TestRPCommands manages relying parties with the mcert rp commands while the server is
// stopped, as the admin API does while it runs.
func TestRPCommands(t *testing.T) {
	dir := t.TempDir()
	rp := func(wantStatus int, args ...string) map[string]any {
		t.Helper()
		out := runMcert(t, wantStatus, append([]string{"rp", args[0], "--data", dir}, args[1:]...)...)
		var v map[string]any
		if wantStatus == 0 {
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				t.Fatalf("mcert rp %s printed %s", args[0], out)
			}
		}
		return v
	}
	added := rp(0, "add", "--name", "臺灣雲市集", "--redirect-uri", "http://localhost:9000/callback", "--citizen-id")
	id := added["client_id"].(string)
	public := rp(0, "add", "--name", "App", "--redirect-uri", "http://127.0.0.1:5000/cb", "--public")["client_id"].(string)

	edited := rp(0, "edit", "--client-id", id, "--name", "健保署", "--redirect-uri", "", "--ciba", "--citizen-id=false")
	if edited["name"] != "健保署" || edited["ciba"] != true || edited["citizen_id"] != false || len(edited["redirect_uris"].([]any)) != 0 {
		t.Fatalf("edited: %v", edited)
	}
	out := runMcert(t, 1, "rp", "edit", "--data", dir, "--client-id", id, "--ciba=false", "--id-token-alg", "HS256")
	for _, problem := range []string{"give at least one redirect URI", `"HS256"`} {
		if !strings.Contains(out, problem) {
			t.Errorf("a bad edit does not say %q: %s", problem, out)
		}
	}
	if got := rp(0, "disable", "--client-id", id); got["disabled"] != true {
		t.Errorf("disabled: %v", got)
	}
	if got := rp(0, "enable", "--client-id", id); got["disabled"] != false {
		t.Errorf("enabled: %v", got)
	}
	rotated := rp(0, "rotate-secret", "--client-id", id)
	if rotated["client_id"] != id || rotated["client_secret"] == added["client_secret"] || rotated["client_secret"] == "" {
		t.Errorf("rotated: %v, added %v", rotated, added)
	}
	if out := runMcert(t, 1, "rp", "rotate-secret", "--data", dir, "--client-id", public); !strings.Contains(out, "public client") {
		t.Errorf("rotating a public client's secret: %s", out)
	}
	listed := rp(0, "list")["clients"].([]any)
	if len(listed) != 2 || listed[0].(map[string]any)["name"] != "健保署" || listed[0].(map[string]any)["client_secret"] != nil {
		t.Errorf("listed: %v", listed)
	}
	if got := rp(0, "delete", "--client-id", id); got["client_id"] != id {
		t.Errorf("deleted: %v", got)
	}
	if listed := rp(0, "list")["clients"].([]any); len(listed) != 1 {
		t.Errorf("listed after the delete: %v", listed)
	}

	for _, tc := range []struct {
		status int
		args   []string
		want   string
	}{
		{1, []string{"rp", "delete", "--data", dir, "--client-id", id}, "no relying party is registered with client_id"},
		{2, []string{"rp", "disable", "--data", dir}, "--client-id is required"},
		{2, []string{"rp", "edit", "--data", dir, "--client-id", public}, "give what to change"},
		{1, []string{"rp", "list", "--data", filepath.Join(dir, "missing")}, "there is no data file"},
	} {
		if out := runMcert(t, tc.status, tc.args...); !strings.Contains(out, tc.want) {
			t.Errorf("mcert %v: %s, want %q", tc.args, out, tc.want)
		}
	}

	// The changes are in the audit log, as the admin API's are.
	store, err := bolt.Open(filepath.Join(dir, "mcert.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	events, err := storage.Get(context.Background(), store, func(tx storage.ReadTx) ([]storage.Event, error) { return tx.Events("", "", 100) })
	store.Close()
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range events {
		if e.ClientID == id {
			types = append([]string{e.Type}, types...)
			if e.Actor != "operator" {
				t.Errorf("event %s by %q", e.Type, e.Actor)
			}
		}
	}
	if want := "admin_client_create admin_client_update admin_client_disable admin_client_enable admin_client_rotate_secret admin_client_delete"; strings.Join(types, " ") != want {
		t.Errorf("audit log: %v, want %s", types, want)
	}
}

// TestRPCommandsWhileServing: the data file is the running server's, so the commands say
// how its admin API does the same.
func TestRPCommandsWhileServing(t *testing.T) {
	s := startServer(t)
	c, err := provider.RegisterClient(context.Background(), s.service, provider.ClientSpec{Name: "臺灣雲市集", RedirectURIs: []string{rpRedirect}}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"list"}, "GET /api/v1/admin/clients"},
		{[]string{"edit", "--client-id", c.ID, "--name", "x"}, "PATCH /api/v1/admin/clients/<id>"},
		{[]string{"disable", "--client-id", c.ID}, `PATCH /api/v1/admin/clients/<id> {"disabled": true}`},
		{[]string{"delete", "--client-id", c.ID}, "DELETE /api/v1/admin/clients/<id>"},
		{[]string{"rotate-secret", "--client-id", c.ID}, "POST /api/v1/admin/clients/<id>/secret"},
	} {
		args := append([]string{"rp", tc.args[0], "--data", s.Config.DataDir}, tc.args[1:]...)
		if out := runMcert(t, 1, args...); !strings.Contains(out, "in use by another mcert process") || !strings.Contains(out, tc.want) {
			t.Errorf("mcert %v while the server runs: %s", args, out)
		}
	}
	if got, err := storage.Get(context.Background(), s.store, func(tx storage.ReadTx) (storage.Client, error) { return tx.Client(c.ID) }); err != nil || got.Name != "臺灣雲市集" {
		t.Errorf("the client after the refused commands: %+v, %v", got, err)
	}
}

// TestAdminRegistrationAnswer: the admin API's registration answers with the metadata it
// registered and the secret (PROTOCOL.md section 9); an unknown field, or a delivery mode mcert
// does not offer, is 400 invalid_client_metadata and registers nothing.
func TestAdminRegistrationAnswer(t *testing.T) {
	s := startServer(t)
	admin := s.admin(t)
	got := admin("POST", "/api/v1/admin/clients", map[string]any{"name": "地政事務所", "sign": true, "ciba": true, "backchannel_token_delivery_mode": "poll"}).want(t, 201).json(t)
	if got["client_id"] == "" || got["client_secret"] == "" || got["sign"] != true || got["ciba"] != true || got["name"] != "地政事務所" || got["id_token_signed_response_alg"] != "RS256" {
		t.Fatalf("registration answer: %v", got)
	}
	before := len(admin("GET", "/api/v1/admin/clients", nil).want(t, 200).json(t)["clients"].([]any))
	for _, body := range []map[string]any{
		{"name": "x", "redirect_uris": []string{rpRedirect}, "redirect_uri": rpRedirect},
		{"name": "x", "ciba": true, "backchannel_token_delivery_mode": "push"},
	} {
		if r := admin("POST", "/api/v1/admin/clients", body); r.Status != 400 || r.errorCode(t) != "invalid_client_metadata" {
			t.Errorf("%v: %d %s", body, r.Status, r.Body)
		}
	}
	if after := len(admin("GET", "/api/v1/admin/clients", nil).want(t, 200).json(t)["clients"].([]any)); after != before {
		t.Fatalf("refused registrations registered %d clients", after-before)
	}
}
