package binding

import (
	"context"
	"errors"
	"time"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/mailer"
	"github.com/mcert/mcert/pki"
	"github.com/mcert/mcert/storage"
)

// ExpiryWarning is how long before a device expires the citizen is told to bind again.
const ExpiryWarning = 30 * 24 * time.Hour

// ExpiresSoon reports whether a usable device is within ExpiryWarning of its expiry.
func ExpiresSoon(d storage.Device, now time.Time) bool {
	return DeviceStatus(d, now) == "active" && d.ExpiresAt.Sub(now) <= ExpiryWarning
}

// ownDevice returns one of the session's account's devices and the account.
func ownDevice(tx storage.ReadTx, sess storage.Session, id string) (storage.Account, storage.Device, error) {
	a, err := accountOf(tx, sess)
	if err != nil {
		return a, storage.Device{}, err
	}
	d, err := tx.Device(id)
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
	var d storage.Device
	err = s.Store.Update(ctx, func(tx storage.Tx) error {
		var a storage.Account
		var err error
		if a, d, err = ownDevice(tx, sess, id); err != nil {
			return err
		}
		d.Name = name
		if err := tx.PutDevice(d); err != nil {
			return err
		}
		return s.event(ctx, tx, storage.Event{Type: EventDeviceRename, AccountID: a.ID, DeviceID: id, Actor: actor(sess.CitizenID)})
	})
	return d, err
}

// RevokeDevice removes a device from the account for good: a lost or replaced phone. Revoking
// a revoked device changes nothing and is not an error.
func (s *Service) RevokeDevice(ctx context.Context, sess storage.Session, id string) (storage.Device, error) {
	now := s.now()
	var d storage.Device
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		var a storage.Account
		var err error
		if a, d, err = ownDevice(tx, sess, id); err != nil || d.Status == storage.DeviceRevoked {
			return err
		}
		d.Status, d.RevokedAt = storage.DeviceRevoked, &now
		if err := tx.PutDevice(d); err != nil {
			return err
		}
		if err := revokeCertificates(tx, d.ID, reasonCessation, now); err != nil {
			return err
		}
		if err := s.queueMail(tx, a, mailer.PhoneRevoked, "", map[string]string{"device": d.Name, "time": rfc3339(now), "account_url": s.PublicURL + "/"}); err != nil {
			return err
		}
		return s.event(ctx, tx, storage.Event{Type: EventDeviceRevoke, AccountID: a.ID, DeviceID: id, Actor: actor(sess.CitizenID)})
	})
	s.kickMail()
	return d, err
}

// SetSuspended suspends the account (a lost phone: every device is refused at once) or
// reinstates it. Both need a card login, so a thief holding only the phone can do neither.
// Suspension revokes the phones' signing certificates for good (a signature is valid only if
// made before it, whatever follows); reinstatement gives each usable phone a new one.
func (s *Service) SetSuspended(ctx context.Context, sess storage.Session, suspended bool) (storage.Account, error) {
	ca, err := s.CA(ctx)
	if err != nil {
		return storage.Account{}, err
	}
	now := s.now()
	var a storage.Account
	err = s.Store.Update(ctx, func(tx storage.Tx) error {
		var err error
		if a, err = accountOf(tx, sess); err != nil {
			return err
		}
		return s.setSuspended(ctx, tx, ca, &a, suspended, actor(sess.CitizenID), now)
	})
	s.kickMail()
	return a, err
}

// setSuspended suspends or reinstates a in tx, by who, and tells the citizen by mail; an
// account already so is left as it is.
func (s *Service) setSuspended(ctx context.Context, tx storage.Tx, ca *pki.CA, a *storage.Account, suspended bool, who string, now time.Time) error {
	status, event, notice := storage.AccountActive, EventReinstate, mailer.AccountReinstated
	if suspended {
		status, event, notice = storage.AccountSuspended, EventSuspend, mailer.AccountSuspended
	}
	if a.Status == status {
		return nil
	}
	a.Status, a.UpdatedAt = status, now
	if err := tx.PutAccount(*a); err != nil {
		return err
	}
	devices, err := tx.Devices(a.ID)
	if err != nil {
		return err
	}
	for _, d := range devices {
		switch {
		case suspended:
			err = revokeCertificates(tx, d.ID, reasonWithdrawn, now)
		case deviceUnusable(d, now) == nil:
			var c storage.Certificate
			if c, err = s.newCertificate(ca, *a, d, now); err == nil {
				err = s.storeCertificate(tx, *a, d, c)
			}
		}
		if err != nil {
			return err
		}
	}
	if err := s.queueMail(tx, *a, notice, "", map[string]string{"time": rfc3339(now), "by": suspender(who), "account_url": s.PublicURL + "/"}); err != nil {
		return err
	}
	return s.event(ctx, tx, storage.Event{Type: event, AccountID: a.ID, Actor: who})
}

// suspender is who suspended an account, as the notice says it.
func suspender(who string) string {
	if who == ActorMailLink {
		return "not-me-link"
	}
	return "citizen"
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
	events, err := storage.Get(ctx, s.Store, func(tx storage.ReadTx) ([]storage.Event, error) { return tx.Events(accountID, before, limit) })
	if errors.Is(err, storage.ErrBadCursor) {
		return nil, mcert.BadCursor.New()
	}
	return events, err
}
