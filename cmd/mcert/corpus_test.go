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

	// WebAuthn responses broken inside: truncated CBOR, another origin, another challenge. Each
	// is refused, and the intact response still binds: a refusal uses up nothing.
	fresh := func(t *testing.T) (string, []byte) {
		t.Helper()
		qr := b.do("POST", "/api/v1/bindings", nil).want(t, 201).json(t)["qr_text"].(string)
		token := tokenOf(t, qr)
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
		return token, cred
	}
	finish := func(t *testing.T, token string, cred json.RawMessage) reply {
		return b.do("POST", "/api/v1/phone/bind/finish", map[string]any{"token": token, "credential": cred})
	}
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, cred []byte) json.RawMessage
	}{
		{"truncated CBOR", func(t *testing.T, c []byte) json.RawMessage { return truncateMember(t, c, "attestationObject") }},
		{"another origin", func(t *testing.T, c []byte) json.RawMessage {
			return mutateClientData(t, c, "origin", "https://evil.example")
		}},
		{"other challenge", func(t *testing.T, c []byte) json.RawMessage {
			return mutateClientData(t, c, "challenge", base64.RawURLEncoding.EncodeToString([]byte("another challenge, 32 bytes long")))
		}},
		{"wrong type", func(t *testing.T, c []byte) json.RawMessage { return mutateClientData(t, c, "type", "webauthn.get") }},
	} {
		t.Run("bind finish/"+tc.name, func(t *testing.T) {
			token, cred := fresh(t)
			r := finish(t, token, tc.break_(t, cred))
			if r.Status != 400 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			if code := r.errorCode(t); code != "bad_credential" && code != "registration_refused" {
				t.Fatalf("error %s", code)
			}
			finish(t, token, cred).want(t, 201)
		})
	}

	// A binding takes a few refused finishes, then is refused for good, the intact response too.
	t.Run("bind finish/too many failures", func(t *testing.T) {
		token, cred := fresh(t)
		broken := mutateClientData(t, cred, "origin", "https://evil.example")
		for i := 1; i < 3; i++ {
			if code := finish(t, token, broken).want(t, 400).errorCode(t); code != "bad_credential" && code != "registration_refused" {
				t.Fatalf("refusal %d: %s", i, code)
			}
		}
		if code := finish(t, token, broken).want(t, 403).errorCode(t); code != "too_many_failures" {
			t.Fatalf("third refusal: %s", code)
		}
		if code := finish(t, token, cred).errorCode(t); code != "binding_used" {
			t.Fatalf("the intact response after three refusals: %s", code)
		}
	})
}
