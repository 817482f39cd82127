package provider

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/mcert/mcert/storage"
)

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// signingKey is a stored key in the forms op wants.
type signingKey struct {
	id       string
	alg      jose.SignatureAlgorithm
	signer   crypto.Signer
	retiring bool
}

func (k signingKey) ID() string                                  { return k.id }
func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k signingKey) Algorithm() jose.SignatureAlgorithm          { return k.alg }
func (k signingKey) Use() string                                 { return "sig" }

// Key is the private key for signing and the public key for the key set; op asks for both
// through this one method, on the SigningKey and Key interfaces respectively.
func (k signingKey) Key() any { return k.signer }

type publicKey struct{ signingKey }

func (k publicKey) Key() any { return k.signer.Public() }

func parseKey(k storage.SigningKey) (signingKey, error) {
	priv, err := x509.ParsePKCS8PrivateKey(k.PrivateKey)
	if err != nil {
		return signingKey{}, fmt.Errorf("signing key %s: %w", k.ID, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return signingKey{}, fmt.Errorf("signing key %s is not a signing key", k.ID)
	}
	return signingKey{id: k.ID, alg: jose.SignatureAlgorithm(k.Algorithm), signer: signer, retiring: k.RetireAt != nil}, nil
}

// NewSigningKey makes a fresh ES256 signing key record.
func NewSigningKey(now func() time.Time) (storage.SigningKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return storage.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, err
	}
	return storage.SigningKey{ID: newID(), Algorithm: string(jose.ES256), PrivateKey: der, CreatedAt: now()}, nil
}

// liveKeys are the keys that are not retired, oldest first.
func (p *Provider) liveKeys(ctx context.Context) ([]signingKey, error) {
	stored, err := p.store.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	now := p.svc.Now()
	var keys []signingKey
	for _, k := range stored {
		if k.RetireAt != nil && !now.Before(*k.RetireAt) {
			continue
		}
		sk, err := parseKey(k)
		if err != nil {
			return nil, err
		}
		keys = append(keys, sk)
	}
	return keys, nil
}

// ensureSigningKey creates the first signing key. Two instances starting together may both
// create one; that is harmless, as the newest signs and both are published.
func (p *Provider) ensureSigningKey(ctx context.Context) error {
	keys, err := p.liveKeys(ctx)
	if err != nil || len(keys) > 0 {
		return err
	}
	k, err := NewSigningKey(p.svc.Now)
	if err != nil {
		return err
	}
	return p.store.CreateSigningKey(ctx, k)
}

func (s *opStorage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	keys, err := s.p.liveKeys(ctx)
	if err != nil {
		return nil, err
	}
	// The key not scheduled for retirement signs; the newest, should a rotation have raced.
	for i := len(keys) - 1; i >= 0; i-- {
		if !keys[i].retiring {
			return keys[i], nil
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no signing key; restart the server to create one")
	}
	return keys[len(keys)-1], nil
}

func (s *opStorage) SignatureAlgorithms(ctx context.Context) ([]jose.SignatureAlgorithm, error) {
	keys, err := s.p.liveKeys(ctx)
	if err != nil {
		return nil, err
	}
	var algs []jose.SignatureAlgorithm
	for _, k := range keys {
		if !slices.Contains(algs, k.alg) {
			algs = append(algs, k.alg)
		}
	}
	return algs, nil
}

func (s *opStorage) KeySet(ctx context.Context) ([]op.Key, error) {
	keys, err := s.p.liveKeys(ctx)
	if err != nil {
		return nil, err
	}
	set := make([]op.Key, 0, len(keys))
	for _, k := range keys {
		set = append(set, publicKey{k})
	}
	return set, nil
}

// keyOverlap is how long a replaced key stays published: longer than any ID token it signed
// lives, and than relying parties cache key sets.
const keyOverlap = 24 * time.Hour

// RotateKeys makes a new signing key, which signs from now on, and retires the others after
// keyOverlap. It returns the new key's ID.
func (p *Provider) RotateKeys(ctx context.Context) (string, error) {
	store, now := p.store, p.svc.Now()
	k, err := NewSigningKey(func() time.Time { return now })
	if err != nil {
		return "", err
	}
	old, err := store.ListSigningKeys(ctx)
	if err != nil {
		return "", err
	}
	if err := store.CreateSigningKey(ctx, k); err != nil {
		return "", err
	}
	retire := now.Add(keyOverlap)
	for _, o := range old {
		if o.RetireAt != nil {
			continue
		}
		if _, err := store.UpdateSigningKey(ctx, o.ID, func(o storage.SigningKey) (storage.SigningKey, error) {
			if o.RetireAt == nil {
				o.RetireAt = &retire
			}
			return o, nil
		}); err != nil {
			return "", err
		}
	}
	return k.ID, nil
}
