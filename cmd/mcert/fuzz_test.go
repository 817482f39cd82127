package main

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/phone"
)

// fuzzPost sends body straight to the server's handler and checks the protocol's promises: no
// 5xx, every error in the JSON error shape, and a refused request leaves the store unchanged.
func fuzzPost(t *testing.T, s *server, path string, body []byte) {
	before := s.snapshot(t)
	req := httptest.NewRequest("POST", path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.server.Handler.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
	}
	if rec.Code >= 300 {
		reply{Status: rec.Code, Body: rec.Body.Bytes()}.errorCode(t)
		if !bytes.Equal(before, s.snapshot(t)) {
			t.Fatalf("refused %q with %d but changed the store", body, rec.Code)
		}
	}
}

func FuzzCardLogin(f *testing.F) {
	s := startServer(f)
	card := s.issueCard(f, "王小明", "A123456789", authn.IssueOptions{})
	b := s.browser(f)
	for _, seed := range []map[string]any{signedLogin(f, b, card), {"challenge": "", "certificate": "", "signature": ""}} {
		data, _ := json.Marshal(seed)
		f.Add(data)
	}
	f.Add([]byte(`{"challenge": 1}`))
	f.Add([]byte(`{"certificate": "MIIB"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzPost(t, s, "/api/v1/card/login", body)
	})
}

func FuzzPhoneBindFinish(f *testing.F) {
	s := startServer(f)
	e := registerAndShowQR(f, s, s.issueCard(f, "王小明", "A123456789", authn.IssueOptions{}))
	token := tokenOf(f, e.binding["qr_text"].(string))
	begin := e.browser.do("POST", "/api/v1/phone/bind/begin", map[string]any{"token": token}).want(f, 200).json(f)
	var opts struct {
		PublicKey protocol.PublicKeyCredentialCreationOptions `json:"publicKey"`
	}
	raw, _ := json.Marshal(begin)
	if err := json.Unmarshal(raw, &opts); err != nil {
		f.Fatal(err)
	}
	p, err := phone.Open(f.TempDir() + "/phone.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, o := range []phone.CreateOptions{{}, {Attestation: "packed"}, {NoUserVerification: true}} {
		cred, err := p.Create(s.PublicURL, opts.PublicKey, o)
		if err != nil {
			f.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"token": token, "credential": json.RawMessage(cred)})
		f.Add(body)
	}
	f.Add([]byte(`{"token": "` + token + `", "credential": {"id": "AAAA", "response": {"attestationObject": "oA"}}}`))
	f.Add([]byte(`{"token": 7}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzPost(t, s, "/api/v1/phone/bind/finish", body)
	})
}
