package binding

import (
	"context"
	"errors"
	"time"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/storage"
)

// ExpiryWarning is how long before a device expires the citizen is told to bind again.
const ExpiryWarning = 30 * 24 * time.Hour

// ExpiresSoon reports whether a usable device is within ExpiryWarning of its expiry.
func ExpiresSoon(d storage.Device, now time.Time) bool {
	return DeviceStatus(d, now) == "active" && d.ExpiresAt.Sub(now) <= ExpiryWarning
}

// ownDevice returns one of the session's account's devices and the account.
func (s *Service) ownDevice(ctx context.Context, sess storage.Session, id string) (storage.Account, storage.Device, error) {
	a, err := s.Account(ctx, sess)
	if err != nil {
		return a, storage.Device{}, err
	}
	d, err := s.Store.GetDevice(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && d.AccountID != a.ID) {
		return a, d, mcert.DeviceNotFound.New()
	}
	return a, d, err
}

// RenameDevice changes the name a device is listed under.
func (s *Service) RenameDevice(ctx context.Context, sess storage.Session, id, name string) (storage.Device, error) {
	name, err := cleanDeviceName(name)
	if err != nil {
		return storage.Device{}, err
	}
	a, _, err := s.ownDevice(ctx, sess, id)
	if err != nil {
		return storage.Device{}, err
	}
	d, err := s.Store.UpdateDevice(ctx, id, func(d storage.Device) (storage.Device, error) {
		d.Name = name
		return d, nil
	})
	if err == nil {
		s.record(ctx, storage.Event{Type: EventDeviceRename, AccountID: a.ID, DeviceID: id, Actor: actor(sess.CitizenID)}, nil)
	}
	return d, err
}

// RevokeDevice removes a device from the account for good: a lost or replaced phone. Revoking
// a revoked device changes nothing and is not an error.
func (s *Service) RevokeDevice(ctx context.Context, sess storage.Session, id string) (storage.Device, error) {
	a, d, err := s.ownDevice(ctx, sess, id)
	if err != nil || d.Status == storage.DeviceRevoked {
		return d, err
	}
	now := s.now()
	d, err = s.Store.UpdateDevice(ctx, id, func(d storage.Device) (storage.Device, error) {
		if d.Status != storage.DeviceRevoked {
			d.Status, d.RevokedAt = storage.DeviceRevoked, &now
		}
		return d, nil
	})
	if err == nil {
		s.record(ctx, storage.Event{Type: EventDeviceRevoke, AccountID: a.ID, DeviceID: id, Actor: actor(sess.CitizenID)}, nil)
	}
	return d, err
}

// SetSuspended suspends the account (a lost phone: every device is refused at once) or
// reinstates it. Both need a card login, so a thief holding only the phone can do neither.
func (s *Service) SetSuspended(ctx context.Context, sess storage.Session, suspended bool) (storage.Account, error) {
	a, err := s.Account(ctx, sess)
	if err != nil {
		return a, err
	}
	status, event := storage.AccountActive, EventReinstate
	if suspended {
		status, event = storage.AccountSuspended, EventSuspend
	}
	if a.Status == status {
		return a, nil
	}
	now := s.now()
	a, err = s.Store.UpdateAccount(ctx, a.ID, func(a storage.Account) (storage.Account, error) {
		a.Status, a.UpdatedAt = status, now
		return a, nil
	})
	if err == nil {
		s.record(ctx, storage.Event{Type: event, AccountID: a.ID, Actor: actor(sess.CitizenID)}, nil)
	}
	return a, err
}

// Events returns a page of the account's audit log, newest first.
func (s *Service) Events(ctx context.Context, sess storage.Session, before string, limit int) ([]storage.Event, error) {
	a, err := s.Account(ctx, sess)
	if err != nil {
		return nil, err
	}
	return s.ListEvents(ctx, a.ID, before, limit)
}

// ListEvents returns a page of the audit log, of one account or of all ("").
func (s *Service) ListEvents(ctx context.Context, accountID, before string, limit int) ([]storage.Event, error) {
	events, err := s.Store.ListEvents(ctx, accountID, before, limit)
	if errors.Is(err, storage.ErrBadCursor) {
		return nil, mcert.BadCursor.New()
	}
	return events, err
}
