package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"testing"
)

// TestPresigned checks the bench's made-ahead signatures with crypto/ecdsa's verification, and
// that a nonce signs once only.
func TestPresigned(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := key.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		digest := sha256.Sum256(fmt.Appendf(nil, "message %d", i))
		p, err := presign(raw)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := p.sign(digest[:])
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
			t.Fatalf("signature %d does not verify", i)
		}
		other := sha256.Sum256([]byte("another message"))
		if ecdsa.VerifyASN1(&key.PublicKey, other[:], sig) {
			t.Fatalf("signature %d verifies another message", i)
		}
		if _, err := p.sign(digest[:]); err == nil {
			t.Fatal("a presigned nonce signed twice")
		}
	}
}
