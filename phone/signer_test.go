package phone

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// presignedSignature presigns with key, then signs digest.
func presignedSignature(t *testing.T, key *ecdsa.PrivateKey, digest []byte) (*Presigned, []byte) {
	t.Helper()
	p, err := Presign(key)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := p.Sign(key, digest)
	if err != nil {
		t.Fatal(err)
	}
	return p, sig
}

// TestPresigned checks the made-ahead signatures with crypto/ecdsa's verification: they verify,
// for their message only, and a nonce signs once.
func TestPresigned(t *testing.T) {
	key := newKey(t)
	for i := range 50 {
		digest := sha256.Sum256(fmt.Appendf(nil, "message %d", i))
		p, sig := presignedSignature(t, key, digest[:])
		if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
			t.Fatalf("signature %d does not verify", i)
		}
		other := sha256.Sum256([]byte("another message"))
		if ecdsa.VerifyASN1(&key.PublicKey, other[:], sig) {
			t.Fatalf("signature %d verifies another message", i)
		}
		if _, err := p.Sign(key, digest[:]); err == nil {
			t.Fatal("a presigned nonce signed twice")
		}
		if _, err := p.Sign(key, other[:]); err == nil {
			t.Fatal("a presigned nonce signed a second message")
		}
	}
}

// TestPresignedNoncesDiffer: each Presign makes a nonce of its own, so two signatures of the
// same digest differ, as crypto/ecdsa's do.
func TestPresignedNoncesDiffer(t *testing.T) {
	key := newKey(t)
	digest := sha256.Sum256([]byte("the same message"))
	seen := map[string]bool{}
	for range 20 {
		_, sig := presignedSignature(t, key, digest[:])
		if seen[string(sig)] {
			t.Fatal("two presigned signatures of one digest are the same: a nonce was reused")
		}
		seen[string(sig)] = true
	}
}

func TestPresignedRefuses(t *testing.T) {
	key := newKey(t)
	digest := sha256.Sum256([]byte("message"))
	p, err := Presign(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Sign(newKey(t), digest[:]); err == nil {
		t.Fatal("a nonce presigned for one key signed with another")
	}
	// The refusal used nothing up.
	if sig, err := p.Sign(key, digest[:]); err != nil || !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
		t.Fatalf("after a refusal for another key: %v", err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Presign(p384); err == nil {
		t.Fatal("Presign accepted a P-384 key")
	}
}

// TestPresignedSignsOnceConcurrently: of many goroutines signing with one Presigned, one
// succeeds.
func TestPresignedSignsOnceConcurrently(t *testing.T) {
	key := newKey(t)
	p, err := Presign(key)
	if err != nil {
		t.Fatal(err)
	}
	var signed atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			digest := sha256.Sum256(fmt.Appendf(nil, "message %d", i))
			if _, err := p.Sign(key, digest[:]); err == nil {
				signed.Add(1)
			}
		})
	}
	wg.Wait()
	if signed.Load() != 1 {
		t.Fatalf("%d signatures from one presigned nonce, want 1", signed.Load())
	}
}

func TestECDSASigner(t *testing.T) {
	key := newKey(t)
	digest := sha256.Sum256([]byte("message"))
	sig, err := ECDSASigner{}.Sign(key, digest[:])
	if err != nil || !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
		t.Fatalf("ECDSASigner: %v", err)
	}
}

// TestGetWithPresigned: an assertion signed by a Presigned, of a credential added with its key,
// is what go-webauthn accepts; the next one, with the nonce used up, is refused by the phone.
func TestGetWithPresigned(t *testing.T) {
	rp, key := newRP(t), newKey(t)
	cose, err := COSEKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	id := []byte("a credential of a load test's phone")
	u := &testUser{id: []byte("user handle"), creds: []webauthn.Credential{{
		ID: id, PublicKey: cose, Flags: webauthn.CredentialFlags{UserPresent: true, UserVerified: true},
	}}}
	p := new(Phone)
	if err := p.Add(Credential{ID: id, RPID: testRPID, UserHandle: u.id}, key); err != nil {
		t.Fatal(err)
	}
	presigned, err := Presign(key)
	if err != nil {
		t.Fatal(err)
	}
	counter := uint32(7)
	got := login(t, rp, p, u, GetOptions{Signer: presigned, SignCount: &counter})
	if got.Authenticator.SignCount != counter {
		t.Fatalf("counter %d, want %d", got.Authenticator.SignCount, counter)
	}
	assertion, _, err := rp.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(testOrigin, assertion.Response, GetOptions{Signer: presigned}); err == nil {
		t.Fatal("the phone signed a second assertion with one presigned nonce")
	}
}

func TestAddRefuses(t *testing.T) {
	key := newKey(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    Credential
		key  *ecdsa.PrivateKey
	}{
		{"no id", Credential{RPID: testRPID}, key},
		{"no RP ID", Credential{ID: []byte{1}}, key},
		{"no key", Credential{ID: []byte{1}, RPID: testRPID}, nil},
		{"P-384", Credential{ID: []byte{1}, RPID: testRPID}, p384},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := new(Phone).Add(tc.c, tc.key); err == nil {
				t.Fatal("Add accepted it")
			}
		})
	}
}
