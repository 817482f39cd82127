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
