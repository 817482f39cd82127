package main

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
)

const (
	acrBiometric = "urn:mcert:acr:phone-biometric"
	acrHardware  = "urn:mcert:acr:phone-hardware"
)

// TestAssuranceUnattested: a phone whose key has no attestation logs in at phone-biometric with
// amr swk and user, never hwk; a relying party that demands phone-hardware with acr_values is
// refused for it, by redirect (unmet_authentication_requirements) and by CIBA, and the phone is
// told why (assurance_too_low).
func TestAssuranceUnattested(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	ctx := context.Background()
	rp := s.relyingParty(t, "戶政線上申辦", provider.ClientSpec{CIBA: true})

	var disc struct {
		ACRValues []string `json:"acr_values_supported"`
	}
	if err := rp.provider.Claims(&disc); err != nil || !slices.Equal(disc.ACRValues, []string{acrBiometric, acrHardware}) {
		t.Fatalf("discovery acr_values_supported %v, %v", disc.ACRValues, err)
	}

	// What every login meets, and values mcert does not know, which are ignored.
	for _, values := range []string{"", acrBiometric, "urn:example:loa:3", acrHardware + " " + acrBiometric} {
		var opts []oauth2.AuthCodeOption
		if values != "" {
			opts = append(opts, oauth2.SetAuthURLParam("acr_values", values))
		}
		a := rp.startLogin(opts...)
		if _, err := ph.Login(ctx, a.scan(t), phone.GetOptions{}); err != nil {
			t.Fatalf("acr_values %q: phone login: %v", values, err)
		}
		_, idt := rp.finish(a)
		var c claims
		if err := idt.Claims(&c); err != nil {
			t.Fatal(err)
		}
		if c.ACR != acrBiometric || !slices.Equal(c.AMR, []string{"swk", "user"}) {
			t.Errorf("acr_values %q: ID token acr %q amr %v, want %s and [swk user]", values, c.ACR, c.AMR, acrBiometric)
		}
	}

	// The higher level, by redirect.
	a := rp.startLogin(oauth2.SetAuthURLParam("acr_values", acrHardware))
	if _, err := ph.Login(ctx, a.scan(t), phone.GetOptions{}); !isAPIError(err, http.StatusForbidden, "assurance_too_low") {
		t.Fatalf("phone login for %s: %v, want 403 assurance_too_low", acrHardware, err)
	}
	st := a.browser.do("GET", "/api/v1/logins/"+a.loginID, nil).want(t, 200).json(t)
	if st["status"] != "refused" || st["reason"] != "assurance_too_low" {
		t.Fatalf("login page after the refusal: %v", st)
	}
	r := a.browser.do("GET", st["continue"].(string), nil)
	back, err := url.Parse(r.Header.Get("Location"))
	if r.Status != http.StatusFound || err != nil || back.Query().Get("error") != "unmet_authentication_requirements" || back.Query().Get("code") != "" {
		t.Fatalf("continue after the refusal: %d %q", r.Status, r.Header.Get("Location"))
	}

	// The higher level, by CIBA.
	c := cibaClient{t: t, rp: rp}
	status, body := c.post("/oidc/bc-authorize", url.Values{"scope": {"openid"}, "login_hint": {"A123456789"}, "acr_values": {acrHardware}})
	id, _ := body["auth_req_id"].(string)
	if status != 200 || id == "" {
		t.Fatalf("backchannel authentication: %d %v", status, body)
	}
	inbox, err := ph.Inbox(ctx, s.PublicURL)
	if err != nil || len(inbox) != 1 {
		t.Fatalf("inbox: %+v, %v", inbox, err)
	}
	if _, err := ph.Approve(ctx, s.PublicURL, inbox[0].Token, phone.GetOptions{}); !isAPIError(err, http.StatusForbidden, "assurance_too_low") {
		t.Fatalf("CIBA approval for %s: %v, want 403 assurance_too_low", acrHardware, err)
	}
	s.clock.Advance(5 * time.Second)
	if code, _ := c.poll(id); code != "unmet_authentication_requirements" {
		t.Fatalf("CIBA poll after the refusal: %s", code)
	}
}

// TestCloneWarningSuspends: a login whose signature counter went back suspends the phone. It
// approves no further login, by QR code or from its inbox; the device list and the audit log
// say why; the citizen revokes it and binds again, and logs in.
func TestCloneWarningSuspends(t *testing.T) {
	s := startServer(t)
	ph, card := boundCitizen(t, s)
	ctx := context.Background()
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{CIBA: true})
	deviceID := ph.Phone.Credentials()[0].DeviceID
	rp.login(ph) // the counter is past 1 now

	a := rp.startLogin()
	one := uint32(1)
	if _, err := ph.Login(ctx, a.scan(t), phone.GetOptions{SignCount: &one}); !isAPIError(err, 403, "clone_warning") {
		t.Fatalf("login with a counter that went back: %v", err)
	}
	a = rp.startLogin()
	if _, err := ph.Login(ctx, a.scan(t), phone.GetOptions{}); !isAPIError(err, 403, "device_suspended") {
		t.Fatalf("login by the suspended phone, with a good counter: %v", err)
	}
	if st := a.browser.do("GET", "/api/v1/logins/"+a.loginID, nil).want(t, 200).json(t); st["status"] != "refused" || st["reason"] != "device_suspended" {
		t.Fatalf("login page: %v", st)
	}
	if _, err := ph.Inbox(ctx, s.PublicURL); !isAPIError(err, 403, "device_suspended") {
		t.Fatalf("the suspended phone's inbox: %v", err)
	}
	c := cibaClient{t: t, rp: rp}
	if status, body := c.post("/oidc/bc-authorize", url.Values{"scope": {"openid"}, "login_hint": {"A123456789"}}); status != 400 || body["error"] != "unknown_user_id" {
		t.Fatalf("CIBA for a citizen whose only phone is suspended: %d %v", status, body)
	}

	b := s.browser(t)
	b.cardLogin(card)
	devices := b.do("GET", "/api/v1/devices", nil).want(t, 200).json(t)["devices"].([]any)
	d := devices[0].(map[string]any)
	if len(devices) != 1 || d["status"] != "suspended" || d["clone_warning_at"] == nil {
		t.Fatalf("devices: %v", devices)
	}
	var suspend map[string]any
	for _, ev := range b.do("GET", "/api/v1/account/events", nil).want(t, 200).json(t)["events"].([]any) {
		if e := ev.(map[string]any); e["type"] == "device_suspend" {
			suspend = e
		}
	}
	if suspend == nil || suspend["reason"] != "clone_warning" || suspend["device_id"] != deviceID {
		t.Fatalf("no device_suspend event for the clone warning: %v", suspend)
	}

	// Revoke and bind again, with a new key.
	b.do("DELETE", "/api/v1/devices/"+deviceID, nil).want(t, 200)
	bind := b.do("POST", "/api/v1/bindings", nil).want(t, 201).json(t)
	p, err := phone.Open(t.TempDir() + "/phone.json")
	if err != nil {
		t.Fatal(err)
	}
	again := &phone.Client{HTTP: http.DefaultClient, Phone: p}
	if _, err := again.Bind(ctx, bind["qr_text"].(string), "Pixel 8", phone.CreateOptions{}); err != nil {
		t.Fatalf("binding the phone again: %v", err)
	}
	rp.login(again)
}
