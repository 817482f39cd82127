package phone

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"sync/atomic"
)

// Signer makes the signature of an assertion with a credential's private key: ES256, that is
// ECDSA on P-256 of digest (the SHA-256 of the authenticator data followed by the hash of the
// client data), in ASN.1 DER as WebAuthn carries it. The phone signs with ECDSASigner unless
// GetOptions.Signer names another.
type Signer interface {
	Sign(key *ecdsa.PrivateKey, digest []byte) ([]byte, error)
}

// ECDSASigner signs with crypto/ecdsa: in constant time, with a fresh nonce for every
// signature. It is the phone's signer.
type ECDSASigner struct{}

// Sign signs digest with key.
func (ECDSASigner) Sign(key *ecdsa.PrivateKey, digest []byte) ([]byte, error) {
	return ecdsa.SignASN1(rand.Reader, key, digest)
}

// Presigned is one ES256 signature of a digest not known yet, made as far as it can be ahead,
// FOR TESTS AND LOAD GENERATION ONLY: never sign with it a key worth keeping. ECDSA's costly
// half, the nonce's point, does not depend on the message, so Presign does it beforehand and
// Sign is left with s = k⁻¹(z + r·d) mod n, a few multiplications. A load generator's phones
// presign while preparing, so that their signing after the server's begin neither adds to
// the latency measured nor competes with the server for the cores.
//
// The arithmetic is math/big's, which is not constant time: its timing depends on the key
// and the nonce. A Presigned signs once; a second Sign fails, as a nonce used for two
// messages gives the key away. It may be shared between goroutines: only one Sign succeeds.
// The server never signs with it: it is the phone's side.
type Presigned struct {
	key  *ecdsa.PrivateKey
	d, r *big.Int
	kInv atomic.Pointer[big.Int] // nil once used
}

var p256N = elliptic.P256().Params().N

// Presign makes the nonce of one signature by key, which must be a P-256 key.
func Presign(key *ecdsa.PrivateKey) (*Presigned, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, errors.New("phone: presigning is for P-256 keys")
	}
	raw, err := key.Bytes()
	if err != nil {
		return nil, fmt.Errorf("phone: presign: %w", err)
	}
	for {
		k, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		point := k.PublicKey().Bytes() // 0x04, X, Y
		r := new(big.Int).SetBytes(point[1:33])
		r.Mod(r, p256N)
		if r.Sign() == 0 {
			continue // about one in 2²⁵⁶
		}
		p := &Presigned{key: key, d: new(big.Int).SetBytes(raw), r: r}
		p.kInv.Store(new(big.Int).ModInverse(new(big.Int).SetBytes(k.Bytes()), p256N))
		return p, nil
	}
}

// Sign signs digest, a SHA-256 hash, with the nonce made by Presign, as ecdsa.SignASN1 would
// with key, which must be the key presigned for. It fails if the nonce has signed already.
func (p *Presigned) Sign(key *ecdsa.PrivateKey, digest []byte) ([]byte, error) {
	if key != p.key && !key.Equal(p.key) {
		return nil, errors.New("phone: presigned for another key")
	}
	kInv := p.kInv.Swap(nil)
	if kInv == nil {
		return nil, errors.New("phone: a presigned nonce signs once")
	}
	// The digest as a number: its leftmost 256 bits, the bit length of P-256's order.
	z := new(big.Int).SetBytes(digest[:min(len(digest), 32)])
	s := new(big.Int).Mul(p.r, p.d)
	s.Add(s, z)
	s.Mul(s, kInv)
	s.Mod(s, p256N)
	if s.Sign() == 0 {
		return nil, errors.New("phone: a presigned signature came out s = 0 (about one in 2²⁵⁶); presign again")
	}
	return asn1.Marshal(struct{ R, S *big.Int }{p.r, s})
}
