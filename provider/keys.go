package provider

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/mcert/mcert/storage"
)

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// signingAlgs are the algorithms ID tokens are signed with, the default first: RS256 is what
// OpenID Connect requires every provider to offer and every relying party to accept when it
// registered no id_token_signed_response_alg (Core 1.0, sections 2 and 15.1); ES256 is for
// relying parties that ask for it.
var signingAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

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

// parsedKey is parseKey, once per key ID; whether the key is retiring is the record's now.
func (p *Provider) parsedKey(k storage.SigningKey) (signingKey, error) {
	if sk, ok := p.parsed.Load(k.ID); ok {
		sk := sk.(signingKey)
		sk.retiring = k.RetireAt != nil
		return sk, nil
	}
	sk, err := parseKey(k)
	if err != nil {
		return sk, err
	}
	p.parsed.Store(k.ID, sk)
	return sk, nil
}

// NewSigningKey makes a fresh signing key record for alg, RS256 or ES256.
func NewSigningKey(alg jose.SignatureAlgorithm, now func() time.Time) (storage.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return storage.SigningKey{}, fmt.Errorf("no signing keys for %s", alg)
	}
	if err != nil {
		return storage.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, err
	}
	return storage.SigningKey{ID: newID(), Algorithm: string(alg), PrivateKey: der, CreatedAt: now()}, nil
}

// liveKeys are the keys that are not retired, oldest first.
func (p *Provider) liveKeys(ctx context.Context) ([]signingKey, error) {
	stored, err := p.svc.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	now := p.svc.Now()
	var keys []signingKey
	for _, k := range stored {
		if k.RetireAt != nil && !now.Before(*k.RetireAt) {
			continue
		}
		sk, err := p.parsedKey(k)
		if err != nil {
			return nil, err
		}
		keys = append(keys, sk)
	}
	return keys, nil
}

// ensureSigningKeys creates a signing key for every algorithm that has none: all of them in a
// new store, the RS256 one in a store of a version that signed ES256 only. Of instances
// starting together, the first to store its keys wins (binding.AddSigningKeys).
func (p *Provider) ensureSigningKeys(ctx context.Context) error {
	keys, err := p.liveKeys(ctx)
	if err != nil {
		return err
	}
	var fresh []storage.SigningKey
	for _, alg := range signingAlgs {
		if _, ok := newestKey(keys, alg); ok {
			continue
		}
		k, err := NewSigningKey(alg, p.svc.Now)
		if err != nil {
			return err
		}
		fresh = append(fresh, k)
	}
	if fresh == nil {
		return nil
	}
	return p.svc.AddSigningKeys(ctx, fresh)
}

// newestKey is the key that signs for alg: the newest not scheduled for retirement, should a
// rotation have raced; the newest retiring one if there is no other.
func newestKey(keys []signingKey, alg jose.SignatureAlgorithm) (signingKey, bool) {
	var found signingKey
	ok := false
	for _, k := range keys {
		if k.alg == alg && (!ok || found.retiring || !k.retiring) {
			found, ok = k, true
		}
	}
	return found, ok
}

type idTokenAlgKey struct{}

// withIDTokenAlg tells SigningKey, which op calls with only a context, which algorithm the
// client registered: "" for the default.
func withIDTokenAlg(ctx context.Context, alg string) context.Context {
	return context.WithValue(ctx, idTokenAlgKey{}, alg)
}

func (s *opStorage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	alg := signingAlgs[0]
	if a, _ := ctx.Value(idTokenAlgKey{}).(string); a != "" {
		alg = jose.SignatureAlgorithm(a)
	}
	keys, err := s.p.liveKeys(ctx)
	if err != nil {
		return nil, err
	}
	k, ok := newestKey(keys, alg)
	if !ok {
		return nil, fmt.Errorf("no %s signing key; restart the server to create one", alg)
	}
	return k, nil
}

func (s *opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return slices.Clone(signingAlgs), nil
}

func (s *opStorage) KeySet(ctx context.Context) ([]op.Key, error) {
	keys, err := s.p.liveKeys(ctx)
	if err != nil {
		// op writes this error as the body of its 500 answer: an OAuth error body, then.
		return nil, oidc.ErrServerError().WithDescription("the key set could not be read").WithParent(err)
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

// RotateKeys makes a new signing key for every algorithm, which sign from now on, and retires
// the others after keyOverlap. It returns the new keys' IDs by algorithm.
func (p *Provider) RotateKeys(ctx context.Context) (map[string]string, error) {
	kids := make(map[string]string, len(signingAlgs))
	fresh := make([]storage.SigningKey, 0, len(signingAlgs))
	for _, alg := range signingAlgs {
		k, err := NewSigningKey(alg, p.svc.Now)
		if err != nil {
			return nil, err
		}
		fresh = append(fresh, k)
		kids[k.Algorithm] = k.ID
	}
	if err := p.svc.RotateSigningKeys(ctx, fresh, keyOverlap); err != nil {
		return nil, err
	}
	return kids, nil
}
