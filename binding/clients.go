package binding

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"time"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/storage"
)

// Event types of the operator's changes to registered relying parties, whether made through
// the admin API or with mcert rp while the server is stopped.
const (
	EventAdminClientUpdate       = "admin_client_update" // its metadata: name, redirect URIs, claims, CIBA
	EventAdminClientDisable      = "admin_client_disable"
	EventAdminClientEnable       = "admin_client_enable"
	EventAdminClientDelete       = "admin_client_delete"
	EventAdminClientRotateSecret = "admin_client_rotate_secret"
)

// Client returns the relying party id; storage.ErrNotFound when none is registered.
func (s *Service) Client(ctx context.Context, id string) (storage.Client, error) {
	return storage.Get(ctx, s.Store, func(tx storage.ReadTx) (storage.Client, error) { return tx.Client(id) })
}

// Clients returns every relying party, oldest first.
func (s *Service) Clients(ctx context.Context) ([]storage.Client, error) {
	return storage.Get(ctx, s.Store, func(tx storage.ReadTx) ([]storage.Client, error) { return tx.Clients() })
}

// CreateClient registers the relying party c, which the provider has validated, and writes
// event (if any) to the audit log as the operator's action with it.
func (s *Service) CreateClient(ctx context.Context, c storage.Client, event string) error {
	c.CreatedAt = s.now()
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		if err := tx.CreateClient(c); err != nil {
			return err
		}
		return s.adminEvents(ctx, tx, c.ID, event)
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return mcert.ClientExists.Newf(c.ID)
	}
	return err
}

// ChangeClient changes the relying party id with change, which may refuse, and writes events
// to the audit log as the operator's actions with it; it returns the client as changed.
func (s *Service) ChangeClient(ctx context.Context, id string, change func(*storage.Client) error, events ...string) (storage.Client, error) {
	var c storage.Client
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		var err error
		if c, err = tx.Client(id); err != nil {
			return err
		}
		if err := change(&c); err != nil {
			return err
		}
		if err := tx.PutClient(c); err != nil {
			return err
		}
		return s.adminEvents(ctx, tx, id, events...)
	})
	if errors.Is(err, storage.ErrNotFound) {
		return c, mcert.ClientNotFound.Newf(id)
	}
	return c, err
}

// DeleteClient removes the relying party id and its access tokens, and returns what it was.
func (s *Service) DeleteClient(ctx context.Context, id string) (storage.Client, error) {
	var c storage.Client
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		var err error
		if c, err = tx.Client(id); err != nil {
			return err
		}
		if err := tx.DeleteClient(id); err != nil {
			return err
		}
		return s.adminEvents(ctx, tx, id, EventAdminClientDelete)
	})
	if errors.Is(err, storage.ErrNotFound) {
		return c, mcert.ClientNotFound.Newf(id)
	}
	return c, err
}

func (s *Service) adminEvents(ctx context.Context, tx storage.Tx, clientID string, events ...string) error {
	for _, e := range events {
		if e == "" {
			continue
		}
		if err := s.event(ctx, tx, storage.Event{Type: e, Actor: adminActor, ClientID: clientID}); err != nil {
			return err
		}
	}
	return nil
}

// SigningKeys returns every ID-token signing key, oldest first.
func (s *Service) SigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	return storage.Get(ctx, s.Store, func(tx storage.ReadTx) ([]storage.SigningKey, error) { return tx.SigningKeys() })
}

// AddSigningKeys stores the fresh keys, made for the algorithms that had no live key when the
// provider looked, except those another instance has made one for since: of instances starting
// together on a new store, the first one's keys are the keys.
func (s *Service) AddSigningKeys(ctx context.Context, fresh []storage.SigningKey) error {
	now := s.now()
	return s.Store.Update(ctx, func(tx storage.Tx) error {
		keys, err := tx.SigningKeys()
		if err != nil {
			return err
		}
		for _, k := range fresh {
			if !hasLiveKey(keys, k.Algorithm, now) {
				if err := tx.CreateSigningKey(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func hasLiveKey(keys []storage.SigningKey, alg string, now time.Time) bool {
	for _, k := range keys {
		if k.Algorithm == alg && (k.RetireAt == nil || now.Before(*k.RetireAt)) {
			return true
		}
	}
	return false
}

// RotateSigningKeys stores the fresh keys, which sign from now on, and retires every other
// unretired key after overlap, in one transaction, as the operator's action.
func (s *Service) RotateSigningKeys(ctx context.Context, fresh []storage.SigningKey, overlap time.Duration) error {
	retire := s.now().Add(overlap)
	return s.Store.Update(ctx, func(tx storage.Tx) error {
		old, err := tx.SigningKeys()
		if err != nil {
			return err
		}
		for _, o := range old {
			if o.RetireAt == nil {
				o.RetireAt = &retire
				if err := tx.PutSigningKey(o); err != nil {
					return err
				}
			}
		}
		for _, k := range fresh {
			if err := tx.CreateSigningKey(k); err != nil {
				return err
			}
		}
		return s.adminEvents(ctx, tx, "", EventAdminKeysRotate)
	})
}

// Secret returns the named server secret, made with create on first use and the same on
// every instance sharing the store.
func (s *Service) Secret(ctx context.Context, name string, create func() []byte) ([]byte, error) {
	return storage.Secret(ctx, s.Store, name, create)
}

// AuthenticateClient checks a client's credentials, as every endpoint that authenticates
// clients does: a confidential client by its secret, in constant time; a public one, where
// public is true, by its ID alone. A disabled client is refused once authenticated, so that
// only the client itself learns that it is disabled.
func (s *Service) AuthenticateClient(ctx context.Context, id, secret string, public bool) (storage.Client, error) {
	c, err := s.Client(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return c, mcert.ClientUnknownOrWrongSecret.New()
	case err != nil:
		return c, err
	case c.SecretHash == nil:
		if !public || secret != "" {
			return c, mcert.ClientUnknownOrWrongSecret.New()
		}
	default:
		h := sha256.Sum256([]byte(secret))
		if subtle.ConstantTimeCompare(h[:], c.SecretHash) != 1 {
			return c, mcert.ClientUnknownOrWrongSecret.New()
		}
	}
	if c.Disabled {
		return c, mcert.ClientDisabled.New()
	}
	return c, nil
}
