package binding

import (
	"cmp"
	"context"
	"errors"
	"net/mail"
	"strings"
	"time"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/storage"
)

// Contact is what the citizen registers besides what the card says. A nil field is left as it is.
type Contact struct {
	Email *string
	Phone *string
	// Lang is the language of the citizen's mails ("zh-TW" or "en"); "" leaves it as it is.
	Lang string
}

// normalize validates the given fields and returns them in stored form, reporting every
// problem at once.
func (c Contact) normalize() (Contact, error) {
	var problems []string
	if c.Email != nil {
		e := strings.TrimSpace(*c.Email)
		a, err := mail.ParseAddress(e)
		if err != nil || a.Address != e || a.Name != "" || len(e) > 254 {
			problems = append(problems, "email must be a plain address such as name@example.tw")
		}
		c.Email = &e
	}
	if c.Phone != nil {
		p := strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(*c.Phone))
		if !isTaiwanMobile(p) {
			problems = append(problems, "phone must be a Taiwan mobile number: 09 and eight digits, such as 0912345678")
		}
		c.Phone = &p
	}
	if problems != nil {
		return c, mcert.ContactProblems.Newf(strings.Join(problems, "; "))
	}
	return c, nil
}

func isTaiwanMobile(p string) bool {
	if len(p) != 10 || !strings.HasPrefix(p, "09") {
		return false
	}
	for _, r := range p {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Register creates the account of the session's citizen.
func (s *Service) Register(ctx context.Context, sess storage.Session, c Contact) (storage.Account, error) {
	if c.Email == nil || c.Phone == nil {
		return storage.Account{}, mcert.InvalidContact.New()
	}
	c, err := c.normalize()
	if err != nil {
		return storage.Account{}, err
	}
	handle, _ := newSecret(64)
	now := s.now()
	a := storage.Account{
		ID: newID(), CitizenID: sess.CitizenID, Name: sess.Name, Email: *c.Email, Phone: *c.Phone, Lang: c.Lang,
		WebAuthnID: handle, Status: storage.AccountActive, CreatedAt: now, UpdatedAt: now,
	}
	err = s.Store.Update(ctx, func(tx storage.Tx) error {
		if err := tx.CreateAccount(a); err != nil {
			return err
		}
		if err := s.queueVerification(tx, a); err != nil {
			return err
		}
		return s.event(ctx, tx, storage.Event{Type: EventAccountCreate, AccountID: a.ID, Actor: actor(sess.CitizenID)})
	})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return storage.Account{}, mcert.AccountExists.New()
	}
	s.kickMail()
	return a, err
}

// UpdateContact changes the email or phone of the session's account.
func (s *Service) UpdateContact(ctx context.Context, sess storage.Session, c Contact) (storage.Account, error) {
	if c.Email == nil && c.Phone == nil {
		return storage.Account{}, mcert.ContactToChange.New()
	}
	c, err := c.normalize()
	if err != nil {
		return storage.Account{}, err
	}
	// A new address is mailed a link: counted with the resends, so that a session cannot
	// make the server mail one address after another.
	if c.Email != nil {
		a, err := s.Account(ctx, sess)
		if err != nil {
			return a, err
		}
		if *c.Email != a.Email {
			if err := s.limit(ctx, s.limits().MailPerAccount, "mail account "+a.ID); err != nil {
				return a, err
			}
		}
	}
	now := s.now()
	var a storage.Account
	err = s.Store.Update(ctx, func(tx storage.Tx) error {
		var err error
		if a, err = accountOf(tx, sess); err != nil {
			return err
		}
		// A new address is unverified until the link mailed to it is used.
		changed := c.Email != nil && *c.Email != a.Email
		if changed {
			a.Email, a.EmailVerified = *c.Email, false
		}
		if c.Phone != nil {
			a.Phone = *c.Phone
		}
		a.Lang = cmp.Or(c.Lang, a.Lang)
		a.UpdatedAt = now
		if err := tx.PutAccount(a); err != nil {
			return err
		}
		if changed {
			if err := s.queueVerification(tx, a); err != nil {
				return err
			}
		}
		return s.event(ctx, tx, storage.Event{Type: EventAccountUpdate, AccountID: a.ID, Actor: actor(sess.CitizenID)})
	})
	s.kickMail()
	return a, err
}

// Account returns the session's account.
func (s *Service) Account(ctx context.Context, sess storage.Session) (storage.Account, error) {
	return storage.Get(ctx, s.Store, func(tx storage.ReadTx) (storage.Account, error) { return accountOf(tx, sess) })
}

// accountOf is the session's account, read in tx.
func accountOf(tx storage.ReadTx, sess storage.Session) (storage.Account, error) {
	a, err := tx.AccountByCitizen(sess.CitizenID)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Account{}, mcert.NoAccount.New()
	}
	return a, err
}

// Devices returns the account's devices, oldest first.
func (s *Service) Devices(ctx context.Context, a storage.Account) ([]storage.Device, error) {
	return storage.Get(ctx, s.Store, func(tx storage.ReadTx) ([]storage.Device, error) { return tx.Devices(a.ID) })
}

// DeviceStatus is a device's status as the protocol shows it at the given time.
func DeviceStatus(d storage.Device, now time.Time) string {
	switch {
	case d.Status == storage.DeviceRevoked:
		return "revoked"
	case d.Status == storage.DeviceSuspended:
		return "suspended"
	case !now.Before(d.ExpiresAt):
		return "expired"
	}
	return "active"
}
