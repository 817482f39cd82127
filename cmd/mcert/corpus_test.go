package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/phone"
)

// mutateClientData rewrites one member of a WebAuthn response's clientDataJSON.
func mutateClientData(t *testing.T, credential []byte, member, value string) json.RawMessage {
	t.Helper()
	var cred map[string]any
	if err := json.Unmarshal(credential, &cred); err != nil {
		t.Fatal(err)
	}
	resp := cred["response"].(map[string]any)
	raw, _ := base64.RawURLEncoding.DecodeString(resp["clientDataJSON"].(string))
	var cd map[string]any
	if err := json.Unmarshal(raw, &cd); err != nil {
		t.Fatal(err)
	}
	cd[member] = value
	raw, _ = json.Marshal(cd)
	resp["clientDataJSON"] = base64.RawURLEncoding.EncodeToString(raw)
	out, _ := json.Marshal(cred)
	return out
}

// truncateMember cuts a base64url member of a WebAuthn response to half its bytes.
func truncateMember(t *testing.T, credential []byte, member string) json.RawMessage {
	t.Helper()
	var cred map[string]any
	if err := json.Unmarshal(credential, &cred); err != nil {
		t.Fatal(err)
	}
	resp := cred["response"].(map[string]any)
	raw, _ := base64.RawURLEncoding.DecodeString(resp[member].(string))
	resp[member] = base64.RawURLEncoding.EncodeToString(raw[:len(raw)/2])
	out, _ := json.Marshal(cred)
	return out
}

// TestBadInputCorpus sends every JSON endpoint the same corpus of broken bodies, with a live
// session and live tokens so that the body is what fails: nothing answers 5xx, every answer
// is the JSON error body, and the store is unchanged.
func TestBadInputCorpus(t *testing.T) {
	s := startServer(t)
	card := s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})
	e := registerAndShowQR(t, s, card)
	b := e.browser
	token := tokenOf(t, e.binding["qr_text"].(string))

	generic := []string{
		"", "{", "[]", "null", "42", `"text"`, "{} {}", `{"a":}`, "\xff\xfe", strings.Repeat("[", 10000),
		`{"email": 1, "phone": true, "name": [], "token": {}, "device_name": 7, "credential": 5}`,
		`{"challenge": "%%%", "certificate": "!!", "signature": "=="}`,
		`{"token": "` + strings.Repeat("A", 60000) + `"}`,
		`{"email": "` + strings.Repeat("a", 2<<20) + `"}`, // 2 MB
	}
	endpoints := []struct{ method, path string }{
		{"POST", "/api/v1/card/login"},
		{"POST", "/api/v1/account"},
		{"PATCH", "/api/v1/account"},
		{"POST", "/api/v1/phone/bind/begin"},
		{"POST", "/api/v1/phone/bind/finish"},
		{"POST", "/api/v1/phone/login/begin"},
		{"POST", "/api/v1/phone/login/finish"},
		{"POST", "/api/v1/phone/login/deny"},
	}
	for _, ep := range endpoints {
		for i, body := range generic {
			t.Run(fmt.Sprintf("%s %s #%d", ep.method, ep.path, i), func(t *testing.T) {
				before := s.snapshot(t)
				r := b.do(ep.method, ep.path, body)
				if r.Status >= 500 || r.Status < 400 {
					t.Fatalf("%s %s with %.40q: %d %s", ep.method, ep.path, body, r.Status, r.Body)
				}
				r.errorCode(t)
				if string(before) != string(s.snapshot(t)) {
					t.Fatalf("%s %s with %.40q changed the store", ep.method, ep.path, body)
				}
			})
		}
	}

	// WebAuthn responses broken inside: truncated CBOR, another origin, another challenge.
	begin := b.do("POST", "/api/v1/phone/bind/begin", map[string]string{"token": token}).want(t, 200).json(t)
	var opts struct {
		PublicKey protocol.PublicKeyCredentialCreationOptions `json:"publicKey"`
	}
	raw, _ := json.Marshal(begin)
	if err := json.Unmarshal(raw, &opts); err != nil {
		t.Fatal(err)
	}
	p, err := phone.Open(t.TempDir() + "/phone.json")
	if err != nil {
		t.Fatal(err)
	}
	cred, err := p.Create(s.PublicURL, opts.PublicKey, phone.CreateOptions{Attestation: "packed"})
	if err != nil {
		t.Fatal(err)
	}
	for name, broken := range map[string]json.RawMessage{
		"truncated CBOR":  truncateMember(t, cred, "attestationObject"),
		"another origin":  mutateClientData(t, cred, "origin", "https://evil.example"),
		"other challenge": mutateClientData(t, cred, "challenge", base64.RawURLEncoding.EncodeToString([]byte("another challenge, 32 bytes long"))),
		"wrong type":      mutateClientData(t, cred, "type", "webauthn.get"),
	} {
		t.Run("bind finish/"+name, func(t *testing.T) {
			r := b.do("POST", "/api/v1/phone/bind/finish", map[string]any{"token": token, "credential": broken})
			if r.Status != 400 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			code := r.errorCode(t)
			if code != "bad_credential" && code != "registration_refused" {
				t.Fatalf("error %s", code)
			}
		})
	}
	// The intact response still binds: the refusals used up nothing.
	b.do("POST", "/api/v1/phone/bind/finish", map[string]any{"token": token, "credential": json.RawMessage(cred)}).want(t, 201)
}
