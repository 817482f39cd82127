package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
)

// cibaClient is a relying party's back end using CIBA's poll mode.
type cibaClient struct {
	t  *testing.T
	rp *relyingParty
}

// post sends a form with the client's credentials (client_secret_basic) and decodes the answer.
func (c cibaClient) post(path string, form url.Values) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", c.rp.s.PublicURL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.rp.oauth.ClientID, c.rp.oauth.ClientSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		c.t.Fatalf("%s answered a body that is not JSON: %v", path, err)
	}
	return res.StatusCode, body
}

func (c cibaClient) start(hint, message string) string {
	c.t.Helper()
	status, body := c.post("/oidc/bc-authorize", url.Values{"scope": {"openid profile"}, "login_hint": {hint}, "binding_message": {message}})
	id, _ := body["auth_req_id"].(string)
	if status != 200 || id == "" || body["expires_in"] != 120.0 || body["interval"] != 5.0 {
		c.t.Fatalf("backchannel authentication: %d %v", status, body)
	}
	return id
}

// poll asks the token endpoint once and returns the error code, or "" and the tokens.
func (c cibaClient) poll(id string) (string, map[string]any) {
	c.t.Helper()
	status, body := c.post("/oidc/token", url.Values{"grant_type": {"urn:openid:params:grant-type:ciba"}, "auth_req_id": {id}})
	if status == 200 {
		return "", body
	}
	code, _ := body["error"].(string)
	if status != 400 || code == "" {
		c.t.Fatalf("token endpoint: %d %v", status, body)
	}
	return code, body
}

func TestCIBA(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	ctx := context.Background()
	c := cibaClient{t: t, rp: s.relyingParty(t, "健保署", provider.ClientSpec{CIBA: true})}

	// Approved: pending until the phone answers, slow_down when polled too fast.
	id := c.start("A123456789", "轉帳 NT$1,000 確認")
	if code, _ := c.poll(id); code != "authorization_pending" {
		t.Fatalf("first poll: %s", code)
	}
	if code, _ := c.poll(id); code != "slow_down" {
		t.Fatalf("immediate second poll: %s", code)
	}
	inbox, err := ph.Inbox(ctx, s.PublicURL)
	if err != nil || len(inbox) != 1 || inbox[0].BindingMessage != "轉帳 NT$1,000 確認" || inbox[0].ClientName != "健保署" {
		t.Fatalf("inbox: %+v, %v", inbox, err)
	}
	if _, err := ph.Approve(ctx, s.PublicURL, inbox[0].Token, phone.GetOptions{}); err != nil {
		t.Fatalf("approve: %v", err)
	}
	if _, err := ph.Approve(ctx, s.PublicURL, inbox[0].Token, phone.GetOptions{}); !isAPIError(err, 409, "login_used") {
		t.Fatalf("second approval of the same request: %v", err)
	}
	s.clock.Advance(5 * time.Second)
	code, tokens := c.poll(id)
	if code != "" {
		t.Fatalf("poll after approval: %s", code)
	}
	idt, err := c.rp.verifier.Verify(ctx, tokens["id_token"].(string))
	if err != nil {
		t.Fatalf("CIBA ID token: %v", err)
	}
	var cl claims
	if err := idt.Claims(&cl); err != nil || cl.Name != "王小明" || cl.Sub == "" {
		t.Fatalf("CIBA ID token claims %+v, %v", cl, err)
	}
	if code, _ := c.poll(id); code != "invalid_grant" {
		t.Fatalf("poll after the tokens were issued: %s", code)
	}
	if got, _ := ph.Inbox(ctx, s.PublicURL); len(got) != 0 {
		t.Fatalf("inbox after approval: %+v", got)
	}

	// Denied.
	id = c.start("A123456789", "登入")
	inbox, _ = ph.Inbox(ctx, s.PublicURL)
	if len(inbox) != 1 {
		t.Fatalf("inbox: %+v", inbox)
	}
	if err := ph.Deny(ctx, s.PublicURL, inbox[0].Token); err != nil {
		t.Fatal(err)
	}
	if code, _ := c.poll(id); code != "access_denied" {
		t.Fatalf("poll after denial: %s", code)
	}

	// Expired.
	id = c.start("A123456789", "登入")
	s.clock.Advance(2*time.Minute + time.Second)
	if code, _ := c.poll(id); code != "expired_token" {
		t.Fatalf("poll after expiry: %s", code)
	}
	if got, _ := ph.Inbox(ctx, s.PublicURL); len(got) != 0 {
		t.Fatalf("an expired request is still in the inbox: %+v", got)
	}
}

func TestCIBARefusals(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	ciba := cibaClient{t: t, rp: s.relyingParty(t, "健保署", provider.ClientSpec{CIBA: true})}
	notCIBA := cibaClient{t: t, rp: s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})}
	wrongSecret := cibaClient{t: t, rp: &relyingParty{s: s, oauth: ciba.rp.oauth}}
	wrongSecret.rp.oauth.ClientSecret = "wrong"

	tests := []struct {
		name   string
		client cibaClient
		form   url.Values
		status int
		code   string
	}{
		{"wrong secret", wrongSecret, url.Values{"scope": {"openid"}, "login_hint": {"A123456789"}}, 401, "invalid_client"},
		{"client not registered for CIBA", notCIBA, url.Values{"scope": {"openid"}, "login_hint": {"A123456789"}}, 400, "unauthorized_client"},
		{"no openid scope", ciba, url.Values{"scope": {"profile"}, "login_hint": {"A123456789"}}, 400, "invalid_scope"},
		{"no login_hint", ciba, url.Values{"scope": {"openid"}}, 400, "invalid_request"},
		{"malformed national ID", ciba, url.Values{"scope": {"openid"}, "login_hint": {"A123456788"}}, 400, "invalid_request"},
		{"unknown citizen", ciba, url.Values{"scope": {"openid"}, "login_hint": {"B234567894"}}, 400, "unknown_user_id"},
		{"binding message too long", ciba, url.Values{"scope": {"openid"}, "login_hint": {"A123456789"}, "binding_message": {strings.Repeat("字", 65)}}, 400, "invalid_binding_message"},
		{"bad requested_expiry", ciba, url.Values{"scope": {"openid"}, "login_hint": {"A123456789"}, "requested_expiry": {"-5"}}, 400, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.client.t = t
			status, body := tc.client.post("/oidc/bc-authorize", tc.form)
			if status != tc.status || body["error"] != tc.code {
				t.Fatalf("%d %v, want %d %s", status, body, tc.status, tc.code)
			}
		})
	}

	t.Run("another client's auth_req_id", func(t *testing.T) {
		ciba.t = t
		id := ciba.start("A123456789", "")
		other := cibaClient{t: t, rp: s.relyingParty(t, "other", provider.ClientSpec{CIBA: true})}
		if code, _ := other.poll(id); code != "invalid_grant" {
			t.Fatalf("polling another client's request: %s", code)
		}
	})

	t.Run("revoked device", func(t *testing.T) {
		ciba.t = t
		ciba.start("A123456789", "")
		inbox, err := ph.Inbox(context.Background(), s.PublicURL)
		if err != nil || len(inbox) == 0 {
			t.Fatalf("inbox: %v %v", inbox, err)
		}
		revoke(t, s, ph.Phone.Credentials()[0].DeviceID)
		if _, err := ph.Approve(context.Background(), s.PublicURL, inbox[0].Token, phone.GetOptions{}); !isAPIError(err, 403, "device_revoked") && !isAPIError(err, 403, "no_usable_device") {
			t.Fatalf("approval by a revoked device: %v", err)
		}
		if _, err := ph.Inbox(context.Background(), s.PublicURL); !isAPIError(err, 403, "device_revoked") {
			t.Fatalf("inbox of a revoked device: %v", err)
		}
		// With no usable phone left, the citizen looks like one who is not enrolled.
		status, body := ciba.post("/oidc/bc-authorize", url.Values{"scope": {"openid"}, "login_hint": {"A123456789"}})
		if status != 400 || body["error"] != "unknown_user_id" {
			t.Fatalf("CIBA for a citizen with no usable phone: %d %v", status, body)
		}
	})
}
