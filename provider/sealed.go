package provider

import (
	"context"
	"fmt"

	"github.com/mcert/mcert/seal"
	"github.com/mcert/mcert/storage"
)

// sealedStore is the store as the provider sees it: the signing keys' private keys and the
// provider's secrets are sealed on their way in and opened on their way out, whatever their
// kind, so that the data file and its backups hold none of them in the clear.
type sealedStore struct {
	storage.Store
	seal *seal.Sealer
}

// The purposes name the record a value is sealed for, so that it opens only there.
func keyPurpose(id string) string      { return "signing key " + id }
func secretPurpose(name string) string { return "secret " + name }

func (s sealedStore) Secret(ctx context.Context, name string, create func() []byte) ([]byte, error) {
	purpose := secretPurpose(name)
	v, err := s.Store.Secret(ctx, name, func() []byte { return s.seal.Seal(purpose, create()) })
	if err != nil {
		return nil, err
	}
	if v, err = s.seal.Open(purpose, v); err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return v, nil
}

func (s sealedStore) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	k.PrivateKey = s.seal.Seal(keyPurpose(k.ID), k.PrivateKey)
	return s.Store.CreateSigningKey(ctx, k)
}

func (s sealedStore) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	keys, err := s.Store.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		if keys[i], err = s.openKey(k); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

func (s sealedStore) UpdateSigningKey(ctx context.Context, id string, update func(storage.SigningKey) (storage.SigningKey, error)) (storage.SigningKey, error) {
	k, err := s.Store.UpdateSigningKey(ctx, id, func(k storage.SigningKey) (storage.SigningKey, error) {
		k, err := s.openKey(k)
		if err != nil {
			return k, err
		}
		if k, err = update(k); err != nil {
			return k, err
		}
		k.PrivateKey = s.seal.Seal(keyPurpose(k.ID), k.PrivateKey)
		return k, nil
	})
	if err != nil {
		return k, err
	}
	return s.openKey(k)
}

func (s sealedStore) openKey(k storage.SigningKey) (storage.SigningKey, error) {
	plain, err := s.seal.Open(keyPurpose(k.ID), k.PrivateKey)
	if err != nil {
		return k, fmt.Errorf("signing key %s: %w", k.ID, err)
	}
	k.PrivateKey = plain
	return k, nil
}

// The provider's secrets in the store.
const (
	cryptoKeyName  = "oidc-crypto-key"
	subjectKeyName = "pairwise-subject-key"
)

// SealPlain seals in place the signing keys (retired ones too) and the provider's secrets that
// an mcert before sealing stored in the clear, and returns how many it sealed; New refuses a
// store that holds any. The replaced plain values may linger in the store's free space, which
// the caller then clears (bolt.Compact). Secrets not yet made are made, sealed.
func SealPlain(ctx context.Context, store storage.Store, sealer *seal.Sealer) (int, error) {
	keys, err := store.ListSigningKeys(ctx)
	if err != nil {
		return 0, err
	}
	sealed := 0
	for _, k := range keys {
		if seal.IsSealed(k.PrivateKey) {
			continue
		}
		if _, err := store.UpdateSigningKey(ctx, k.ID, func(k storage.SigningKey) (storage.SigningKey, error) {
			if !seal.IsSealed(k.PrivateKey) { // another instance may have been first
				k.PrivateKey = sealer.Seal(keyPurpose(k.ID), k.PrivateKey)
			}
			return k, nil
		}); err != nil {
			return sealed, fmt.Errorf("seal signing key %s: %w", k.ID, err)
		}
		sealed++
	}
	for _, name := range []string{cryptoKeyName, subjectKeyName} {
		purpose := secretPurpose(name)
		v, err := store.Secret(ctx, name, func() []byte { return sealer.Seal(purpose, random32()) })
		if err == nil && !seal.IsSealed(v) {
			_, err = store.UpdateSecret(ctx, name, func(v []byte) ([]byte, error) {
				if seal.IsSealed(v) { // another instance was first
					return v, nil
				}
				return sealer.Seal(purpose, v), nil
			})
			sealed++
		}
		if err != nil {
			return sealed, fmt.Errorf("seal secret %s: %w", name, err)
		}
	}
	return sealed, nil
}
