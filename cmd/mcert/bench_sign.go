package main

import (
	"crypto/ecdh"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/asn1"
	"errors"
	"math/big"
)

// presigned is an ES256 signature of a digest not known yet, made as far as it can be ahead:
// ECDSA's costly half, the nonce's point, does not depend on the message. A phone must sign
// the challenge that begin returns, so its signature cannot be made before the timed begin;
// with the nonce made while preparing, what is left for the timed part is s = k⁻¹(z + r·d)
// mod n, a few multiplications, and the phones' signing does not compete with the server for
// the cores (issue 6). The bench's phones are not real ones: math/big is not constant-time,
// which matters for a key worth stealing, not here. Each presigned signs once: a nonce used
// twice gives the key away.
type presigned struct {
	d       *big.Int // the phone's private scalar
	r, kInv *big.Int
}

var p256N = elliptic.P256().Params().N

// presign makes the nonce for one signature with the phone's private key in its SEC 1 raw
// form (ecdsa.PrivateKey.Bytes).
func presign(key []byte) (*presigned, error) {
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
		kInv := new(big.Int).ModInverse(new(big.Int).SetBytes(k.Bytes()), p256N)
		return &presigned{d: new(big.Int).SetBytes(key), r: r, kInv: kInv}, nil
	}
}

// sign signs a SHA-256 digest and returns the signature in ASN.1 DER, as ecdsa.SignASN1 does.
func (p *presigned) sign(digest []byte) ([]byte, error) {
	if p.kInv == nil {
		return nil, errors.New("bench: a presigned nonce signs once")
	}
	s := new(big.Int).Mul(p.r, p.d)
	s.Add(s, new(big.Int).SetBytes(digest))
	s.Mul(s, p.kInv)
	s.Mod(s, p256N)
	p.kInv = nil
	if s.Sign() == 0 {
		return nil, errors.New("bench: a signature of s = 0; sign again")
	}
	return asn1.Marshal(struct{ R, S *big.Int }{p.r, s})
}
