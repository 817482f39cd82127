package web

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mcert/mcert/authn"
)

func TestCardAgent(t *testing.T) {
	now := time.Now()
	ca, _, err := authn.LoadOrCreateDevCA(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := ca.Issue("王小明", "A123456789", authn.IssueOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	card, err := authn.ParseCard(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	agent := httptest.NewServer(CardAgent(card, "http://localhost:8080/"))
	defer agent.Close()

	tests := []struct {
		name, method, origin, body string
		status                     int
		allowOrigin                string
	}{
		{"page of the server", "POST", "http://localhost:8080", `{"challenge":"AQID"}`, 200, "http://localhost:8080"},
		{"local program", "POST", "", `{"challenge":"AQID"}`, 200, ""},
		{"preflight", "OPTIONS", "http://localhost:8080", "", 204, "http://localhost:8080"},
		{"another site", "POST", "http://evil.example", `{"challenge":"AQID"}`, 403, ""},
		{"another site's preflight", "OPTIONS", "http://evil.example", "", 403, ""},
		{"not JSON", "POST", "", `challenge`, 400, ""},
		{"empty challenge", "POST", "", `{"challenge":""}`, 400, ""},
		{"bad base64", "POST", "", `{"challenge":"%%"}`, 400, ""},
		{"GET", "GET", "", "", 405, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, agent.URL+"/sign", strings.NewReader(tc.body))
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != tc.status || res.Header.Get("Access-Control-Allow-Origin") != tc.allowOrigin {
				t.Fatalf("status %d, allow-origin %q; want %d, %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), tc.status, tc.allowOrigin)
			}
			if tc.status != 200 {
				return
			}
			var out struct{ Certificate, Signature string }
			if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
				t.Fatal(err)
			}
			sig, _ := base64.RawURLEncoding.DecodeString(out.Signature)
			digest := sha256.Sum256([]byte{1, 2, 3})
			if out.Certificate != b64(card.Certificate.Raw) || !ecdsa.VerifyASN1(card.Certificate.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
				t.Fatalf("the agent's answer is not the card's signature over the challenge: %+v", out)
			}
		})
	}
}
