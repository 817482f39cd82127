package provider

import (
	"context"
	"fmt"

	"github.com/mcert/mcert/seal"
	"github.com/mcert/mcert/storage"
)

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
				k.PrivateKey = sealer.Seal(seal.KeyPurpose(k.ID), k.PrivateKey)
			}
			return k, nil
		}); err != nil {
			return sealed, fmt.Errorf("seal signing key %s: %w", k.ID, err)
		}
		sealed++
	}
	for _, name := range []string{cryptoKeyName, subjectKeyName} {
		purpose := seal.SecretPurpose(name)
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
