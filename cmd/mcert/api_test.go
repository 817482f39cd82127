package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/mcert/mcert/storage/bolt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/phone"
)

// snapshot is what the store holds, apart from the audit log and the rate-limit counters: a
// failed request must leave the rest exactly as it was, while recording itself in those two.
func (s *server) snapshot(t testing.TB) []byte { return s.dump(t, true) }

// snapshotAll is the whole store, audit log and rate-limit counters included.
func (s *server) snapshotAll(t testing.TB) []byte { return s.dump(t, false) }

// dump writes the store's buckets as text, the outbox as its mails' IDs; without the audit
// log and the rate-limit counters, which a refusal may change, when skipCounted.
func (s *server) dump(t testing.TB, skipCounted bool) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "snapshot.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.store.(*bolt.Store).WriteTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var buf bytes.Buffer
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			if skipCounted && (bytes.HasPrefix(name, []byte("events")) || bytes.HasPrefix(name, []byte("rate_limits"))) {
				return nil
			}
			fmt.Fprintf(&buf, "[%s]\n", name)
			// The outbox's mails are sent, and so change, in the background: a refusal must not
			// queue one, which their IDs show, whatever their state.
			outbox := bytes.HasPrefix(name, []byte("mails"))
			if outbox && !bytes.Equal(name, []byte("mails")) {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if outbox {
					v = nil
				}
				fmt.Fprintf(&buf, "%x=%x\n", k, v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// refused sends a request that must fail with status and code and change nothing stored.
func (s *server) refused(t *testing.T, b *browser, method, path string, body any, status int, code string) {
	t.Helper()
	before := s.snapshot(t)
	r := b.do(method, path, body)
	if r.Status != status {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, status, r.Body)
	}
	if got := r.errorCode(t); got != code {
		t.Fatalf("%s %s: error %q, want %q: %s", method, path, got, code, r.Body)
	}
	if !bytes.Equal(before, s.snapshot(t)) {
		t.Fatalf("%s %s failed but changed the store", method, path)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signedLogin is a card-login body for a fresh challenge, signed by card.
func signedLogin(t testing.TB, b *browser, card *authn.Card) map[string]any {
	t.Helper()
	ch := b.do("GET", "/api/v1/card/challenge", nil).want(t, 200).json(t)["challenge"].(string)
	raw, _ := base64.RawURLEncoding.DecodeString(ch)
	sig, err := card.Sign(raw)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"challenge": ch, "certificate": b64(card.Certificate.Raw), "signature": b64(sig)}
}

func TestCardLoginRefusals(t *testing.T) {
	s := startServer(t)
	good := s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})
	foreignCA, _, err := authn.LoadOrCreateDevCA(t.TempDir(), s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	foreignPEM, err := foreignCA.Issue("王小明", "A123456789", authn.IssueOptions{Now: s.clock.Now()})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := authn.ParseCard(foreignPEM)
	if err != nil {
		t.Fatal(err)
	}
	expired := s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{Now: s.clock.Now().AddDate(-5, 0, -1)})
	b := s.browser(t)

	tests := []struct {
		name   string
		body   func() any
		status int
		code   string
	}{
		{"empty body", func() any { return "" }, 400, "malformed_body"},
		{"not JSON", func() any { return "{challenge:" }, 400, "malformed_body"},
		{"array", func() any { return "[]" }, 400, "malformed_body"},
		{"two objects", func() any { return "{} {}" }, 400, "malformed_body"},
		{"wrong type", func() any { return `{"challenge": 5}` }, 400, "malformed_body"},
		{"missing signature", func() any { l := signedLogin(t, b, good); delete(l, "signature"); return l }, 400, "malformed_body"},
		{"bad base64", func() any { l := signedLogin(t, b, good); l["certificate"] = "%%%"; return l }, 400, "malformed_body"},
		{"garbage certificate", func() any { l := signedLogin(t, b, good); l["certificate"] = b64([]byte("nope")); return l }, 400, "bad_certificate"},
		{"foreign CA", func() any { return signedLogin(t, b, foreign) }, 401, "card_untrusted"},
		{"expired card", func() any { return signedLogin(t, b, expired) }, 401, "card_expired"},
		{"wrong signature", func() any {
			l := signedLogin(t, b, good)
			sig, _ := good.Sign([]byte("another challenge"))
			l["signature"] = b64(sig)
			return l
		}, 401, "bad_signature"},
		{"unknown challenge", func() any {
			raw := make([]byte, 32)
			rand.Read(raw)
			sig, _ := good.Sign(raw)
			return map[string]any{"challenge": b64(raw), "certificate": b64(good.Certificate.Raw), "signature": b64(sig)}
		}, 404, "challenge_not_found"},
		{"reused challenge", func() any {
			l := signedLogin(t, b, good)
			b.do("POST", "/api/v1/card/login", l).want(t, 200)
			return l
		}, 409, "challenge_used"},
		{"expired challenge", func() any {
			l := signedLogin(t, b, good)
			s.clock.Advance(2*time.Minute + time.Second)
			return l
		}, 410, "challenge_expired"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.refused(t, s.browser(t), "POST", "/api/v1/card/login", tc.body(), tc.status, tc.code)
		})
	}

	t.Run("body too large", func(t *testing.T) {
		big := `{"challenge": "` + strings.Repeat("A", 2<<20) + `"}`
		s.refused(t, b, "POST", "/api/v1/card/login", big, 413, "body_too_large")
	})
}

func TestAccountRefusals(t *testing.T) {
	s := startServer(t)
	anon := s.browser(t)
	b := s.browser(t)
	b.cardLogin(s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))

	s.refused(t, anon, "GET", "/api/v1/account", nil, 401, "no_session")
	s.refused(t, anon, "POST", "/api/v1/account", map[string]string{"email": "a@b.tw", "phone": "0912345678"}, 401, "no_session")
	s.refused(t, anon, "POST", "/api/v1/bindings", nil, 401, "no_session")
	s.refused(t, b, "GET", "/api/v1/account", nil, 404, "no_account")
	s.refused(t, b, "POST", "/api/v1/bindings", nil, 404, "no_account")
	for _, body := range []any{
		map[string]string{"email": "not an email", "phone": "0912345678"},
		map[string]string{"email": "Wang <wang@example.tw>", "phone": "0912345678"},
		map[string]string{"email": "wang@example.tw", "phone": "0212345678"},
		map[string]string{"email": "wang@example.tw", "phone": "091234567"},
		map[string]string{"email": "wang@example.tw"},
		`{"email": 1, "phone": "0912345678"}`,
	} {
		code := "invalid_contact"
		if _, ok := body.(string); ok {
			code = "malformed_body"
		}
		s.refused(t, b, "POST", "/api/v1/account", body, 400, code)
	}
	b.do("POST", "/api/v1/account", map[string]string{"email": "wang@example.tw", "phone": "0912345678"}).want(t, 201)
	s.refused(t, b, "POST", "/api/v1/account", map[string]string{"email": "wang@example.tw", "phone": "0912345678"}, 409, "account_exists")
	s.refused(t, b, "PATCH", "/api/v1/account", map[string]string{"phone": "12"}, 400, "invalid_contact")
	if got := b.do("PATCH", "/api/v1/account", map[string]string{"email": "new@example.tw"}).want(t, 200).json(t); got["email"] != "new@example.tw" || got["phone"] != "0912345678" {
		t.Fatalf("PATCH email changed %v", got)
	}

	s.clock.Advance(15 * time.Minute)
	s.refused(t, b, "GET", "/api/v1/account", nil, 401, "session_expired")
}

func TestBindingRefusals(t *testing.T) {
	s := startServer(t)
	card := s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})
	newPhone := func(t *testing.T) *phone.Client {
		p, err := phone.Open(t.TempDir() + "/phone.json")
		if err != nil {
			t.Fatal(err)
		}
		return &phone.Client{HTTP: http.DefaultClient, Phone: p}
	}
	ctx := context.Background()
	e := registerAndShowQR(t, s, card)
	token := tokenOf(t, e.binding["qr_text"].(string))

	// Someone else's session sees neither the binding nor its QR image.
	other := s.browser(t)
	other.cardLogin(s.issueCard(t, "林小華", "B234567894", authn.IssueOptions{}))
	other.do("POST", "/api/v1/account", map[string]string{"email": "lin@example.tw", "phone": "0987654321"}).want(t, 201)
	s.refused(t, other, "GET", "/api/v1/bindings/"+e.binding["id"].(string), nil, 404, "binding_not_found")
	s.refused(t, other, "GET", e.binding["qr_png"].(string), nil, 404, "binding_not_found")

	s.refused(t, e.browser, "POST", "/api/v1/phone/bind/finish", map[string]any{"token": token, "credential": map[string]any{}}, 409, "binding_not_started")
	s.refused(t, e.browser, "POST", "/api/v1/phone/bind/begin", map[string]any{"token": "unknown-token-unknown-token"}, 404, "binding_not_found")
	s.refused(t, e.browser, "POST", "/api/v1/phone/bind/begin", map[string]any{}, 400, "malformed_body")
	s.refused(t, e.browser, "POST", "/api/v1/phone/bind/begin", map[string]any{"token": token, "device_name": strings.Repeat("長", 65)}, 400, "invalid_device_name")

	// A phone without user verification is refused, and the QR code can still be used after.
	if _, err := newPhone(t).Bind(ctx, e.binding["qr_text"].(string), "no biometric", phone.CreateOptions{NoUserVerification: true}); !isAPIError(err, 400, "user_not_verified") {
		t.Fatalf("bind without UV: %v", err)
	}
	s.refused(t, e.browser, "POST", "/api/v1/phone/bind/begin", map[string]any{"token": token}, 409, "binding_used")
	s.refused(t, e.browser, "POST", "/api/v1/phone/bind/finish", map[string]any{"token": token, "credential": "garbage"}, 400, "bad_credential")
	s.refused(t, e.browser, "POST", "/api/v1/phone/bind/finish", map[string]any{"token": token}, 400, "malformed_body")

	// The expired QR code is refused at begin, its image no longer served.
	e2 := e.browser.do("POST", "/api/v1/bindings", nil).want(t, 201).json(t)
	s.clock.Advance(5*time.Minute + time.Second)
	if got := e.browser.do("GET", "/api/v1/bindings/"+e2["id"].(string), nil).want(t, 200).json(t)["status"]; got != "expired" {
		t.Fatalf("status after 5 minutes: %v", got)
	}
	s.refused(t, e.browser, "GET", e2["qr_png"].(string), nil, 410, "binding_expired")
	s.refused(t, e.browser, "POST", "/api/v1/phone/bind/begin", map[string]any{"token": tokenOf(t, e2["qr_text"].(string))}, 410, "binding_expired")

	// A used QR code cannot bind a second phone.
	e.browser.cardLogin(card)
	e3 := e.browser.do("POST", "/api/v1/bindings", nil).want(t, 201).json(t)
	if _, err := newPhone(t).Bind(ctx, e3["qr_text"].(string), "first", phone.CreateOptions{Attestation: "packed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := newPhone(t).Bind(ctx, e3["qr_text"].(string), "second", phone.CreateOptions{}); !isAPIError(err, 409, "binding_used") {
		t.Fatalf("second bind with a used QR code: %v", err)
	}
	s.refused(t, e.browser, "POST", "/api/v1/phone/bind/finish", map[string]any{"token": tokenOf(t, e3["qr_text"].(string)), "credential": map[string]any{}}, 409, "binding_used")
}

func tokenOf(t testing.TB, qrText string) string {
	t.Helper()
	_, token, ok := strings.Cut(qrText, "#")
	if !ok {
		t.Fatalf("qr_text %q has no token", qrText)
	}
	return token
}

func isAPIError(err error, status int, code string) bool {
	var ae *phone.APIError
	return errors.As(err, &ae) && ae.Status == status && ae.Code == code
}
