package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
