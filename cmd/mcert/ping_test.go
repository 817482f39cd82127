package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/mcert/mcert/phone"
)

// notifications is a ping client's notification endpoint: it keeps what it is sent, and
// answers 503 to the first of them, as an endpoint that is briefly down does.
type notifications struct {
	mu    sync.Mutex
	calls int
	got   []struct{ auth, authReqID string }
}

func (n *notifications) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var v struct {
		AuthReqID string `json:"auth_req_id"`
	}
	json.Unmarshal(body, &v)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls++
	if n.calls == 1 {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	n.got = append(n.got, struct{ auth, authReqID string }{r.Header.Get("Authorization"), v.AuthReqID})
	w.WriteHeader(http.StatusNoContent)
}

// received waits for the i-th notification taken.
func (n *notifications) received(t *testing.T, i int) (auth, authReqID string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		n.mu.Lock()
		if len(n.got) > i {
			g := n.got[i]
			n.mu.Unlock()
			return g.auth, g.authReqID
		}
		n.mu.Unlock()
	}
	t.Fatalf("notification %d did not come", i+1)
	return "", ""
}

// TestCIBAPing: a client registered for ping mode must send client_notification_token; once
// the phone approves, or denies, the client's endpoint is notified with it (retried past a
// failure), and the token endpoint answers as in poll mode. The endpoint being down delays
// nothing: bc-authorize and the phone's answer return at once.
func TestCIBAPing(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	n := &notifications{}
	endpoint := httptest.NewServer(n)
	defer endpoint.Close()
	reg := s.admin(t)("POST", "/api/v1/admin/clients", map[string]any{
		"name": "健保署", "ciba": true, "backchannel_token_delivery_mode": "ping", "backchannel_client_notification_endpoint": endpoint.URL + "/ping",
	}).want(t, 201).json(t)
	if reg["backchannel_token_delivery_mode"] != "ping" || reg["backchannel_client_notification_endpoint"] != endpoint.URL+"/ping" {
		t.Fatalf("registration: %v", reg)
	}
	auth := &clientAuth{id: reg["client_id"].(string), secret: reg["client_secret"].(string)}
	form := url.Values{"scope": {"openid"}, "login_hint": {"A123456789"}}
	if code := s.post(t, "/oidc/bc-authorize", form, auth).oauthError(t, 400); code != "invalid_request" {
		t.Fatalf("bc-authorize without client_notification_token: %s", code)
	}
	form.Set("client_notification_token", "notify-me-8f2a")
	for i, approve := range []bool{true, false} {
		id := s.post(t, "/oidc/bc-authorize", form, auth).want(t, 200).json(t)["auth_req_id"].(string)
		inbox, err := ph.Inbox(context.Background(), s.PublicURL)
		if err != nil || len(inbox) != 1 {
			t.Fatalf("inbox: %v %v", inbox, err)
		}
		if approve {
			_, err = ph.Approve(context.Background(), s.PublicURL, inbox[0].Token, phone.GetOptions{})
		} else {
			err = ph.Deny(context.Background(), s.PublicURL, inbox[0].Token)
		}
		if err != nil {
			t.Fatal(err)
		}
		bearer, got := n.received(t, i)
		if bearer != "Bearer notify-me-8f2a" || got != id {
			t.Fatalf("notification %d: %q for %q, want the token for %q", i+1, bearer, got, id)
		}
		tok := s.post(t, "/oidc/token", url.Values{"grant_type": {"urn:openid:params:grant-type:ciba"}, "auth_req_id": {id}}, auth)
		if approve {
			if tok.want(t, 200).json(t)["id_token"] == nil {
				t.Fatalf("tokens after the ping: %s", tok.Body)
			}
		} else if code := tok.oauthError(t, 400); code != "access_denied" {
			t.Fatalf("after a denial's ping: %s", code)
		}
	}
	var disc struct {
		Modes []string `json:"backchannel_token_delivery_modes_supported"`
	}
	if err := json.Unmarshal(get(t, s.PublicURL+"/.well-known/openid-configuration", "application/json"), &disc); err != nil || len(disc.Modes) != 2 || disc.Modes[1] != "ping" {
		t.Fatalf("discovery's delivery modes: %v, %v", disc.Modes, err)
	}
}
