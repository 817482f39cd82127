package seal

import (
	"context"
	"fmt"

	"github.com/mcert/mcert/storage"
)

// Store wraps store so that the signing keys' private keys and every server secret are sealed
// on their way in and opened on their way out, whatever their kind, so that the data file and
// its backups hold none of them in the clear. Every part of mcert that reads keys or secrets
// uses the wrapped store.
func Store(store storage.Store, sealer *Sealer) storage.Store {
	return sealedStore{Store: store, seal: sealer}
}

type sealedStore struct {
	storage.Store
	seal *Sealer
}

// The purposes name the record a value is sealed for, so that it opens only there.
// KeyPurpose and SecretPurpose are what a signing key and a secret are sealed for.
func KeyPurpose(id string) string      { return "signing key " + id }
func SecretPurpose(name string) string { return "secret " + name }

func (s sealedStore) Secret(ctx context.Context, name string, create func() []byte) ([]byte, error) {
	purpose := SecretPurpose(name)
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
	k.PrivateKey = s.seal.Seal(KeyPurpose(k.ID), k.PrivateKey)
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
		k.PrivateKey = s.seal.Seal(KeyPurpose(k.ID), k.PrivateKey)
		return k, nil
	})
	if err != nil {
		return k, err
	}
	return s.openKey(k)
}

func (s sealedStore) openKey(k storage.SigningKey) (storage.SigningKey, error) {
	plain, err := s.seal.Open(KeyPurpose(k.ID), k.PrivateKey)
	if err != nil {
		return k, fmt.Errorf("signing key %s: %w", k.ID, err)
	}
	k.PrivateKey = plain
	return k, nil
}
