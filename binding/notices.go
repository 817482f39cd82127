package binding

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/mailer"
	"github.com/mcert/mcert/storage"
)

// Mails to the citizen (issue 16): the verification of an email address, and notices of what
// changed in their identity. Each is queued in the store by the transaction that caused it, so
// that it exists exactly when the change does, and sent after that transaction commits by the
// delivery loop of any instance, which claims it for a while first: a mail is sent once even
// with several instances on one store, and a mail server that is down delays mails, never a
// citizen's request.

// Lifetimes of the mailed links.
const (
	VerifyEmailTTL = 24 * time.Hour
	NotMeTTL       = 7 * 24 * time.Hour
)

// Delivery of the outbox.
const (
	mailLease    = 2 * time.Minute  // a claimed mail is another instance's again after this
	mailGiveUp   = 24 * time.Hour   // a mail not sent by then is given up
	mailBatch    = 20               // mails one instance claims at a time
	maxMailRetry = 30 * time.Second // the longest wait between attempts
)

// mailLog is where delivery problems go.
func (s *Service) mailLog() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

// queueMail adds a mail to the account's address to the outbox in tx. key, when not "", makes
// the notice one of a kind: a second one with the same key is not queued.
func (s *Service) queueMail(tx storage.Tx, a storage.Account, notice, key string, params map[string]string) error {
	_, err := s.queueOnce(tx, a, notice, key, params)
	return err
}

// queueOnce is queueMail, reporting whether it queued the mail.
func (s *Service) queueOnce(tx storage.Tx, a storage.Account, notice, key string, params map[string]string) (bool, error) {
	if a.Email == "" {
		return false, nil
	}
	if key != "" {
		if _, err := tx.MailByKey(key); err == nil {
			return false, nil
		} else if !errors.Is(err, storage.ErrNotFound) {
			return false, err
		}
	}
	params["name"] = a.Name
	raw, err := json.Marshal(params)
	if err != nil {
		return false, err
	}
	now := s.now()
	return true, tx.CreateMail(storage.Mail{
		ID: newID(), Key: key, AccountID: a.ID, To: a.Email, Lang: a.Lang, Notice: notice,
		Params: raw, CreatedAt: now, NextAt: now,
	})
}

// queueVerification mails a new link that proves the account's current address.
func (s *Service) queueVerification(tx storage.Tx, a storage.Account) error {
	token, hash := newToken()
	now := s.now()
	t := storage.Ticket{Hash: hash, Kind: storage.TicketVerifyEmail, AccountID: a.ID, Email: a.Email, CreatedAt: now, ExpiresAt: now.Add(VerifyEmailTTL)}
	if err := tx.CreateTicket(t); err != nil {
		return err
	}
	return s.queueMail(tx, a, mailer.VerifyEmail, "", map[string]string{
		"link": s.PublicURL + "/email/verify?t=" + token, "expires_at": rfc3339(t.ExpiresAt),
	})
}

// queueBound tells the citizen of a phone bound, with a link that suspends the account at once
// if it was not them: the screen-share scam ends with someone else's phone bound.
func (s *Service) queueBound(ctx context.Context, tx storage.Tx, a storage.Account, d storage.Device, now time.Time) error {
	token, hash := newToken()
	if err := tx.CreateTicket(storage.Ticket{Hash: hash, Kind: storage.TicketNotMe, AccountID: a.ID, DeviceID: d.ID, CreatedAt: now, ExpiresAt: now.Add(NotMeTTL)}); err != nil {
		return err
	}
	return s.queueMail(tx, a, mailer.PhoneBound, "", map[string]string{
		"device": d.Name, "time": rfc3339(now), "where": "IP " + cmp.Or(clientIP(ctx), "?"),
		"not_me": s.PublicURL + "/email/not-me?t=" + token, "account_url": s.PublicURL + "/",
	})
}

// ResendVerification mails the session's account a new verification link, within the limit
// of mails one account may ask for.
func (s *Service) ResendVerification(ctx context.Context, sess storage.Session) (storage.Account, error) {
	a, err := s.Account(ctx, sess)
	if err != nil {
		return a, err
	}
	if a.EmailVerified {
		return a, mcert.EmailAlreadyVerified.New()
	}
	if err := s.limit(ctx, s.limits().MailPerAccount, "mail account "+a.ID); err != nil {
		return a, err
	}
	err = s.Store.Update(ctx, func(tx storage.Tx) error {
		if a, err = accountOf(tx, sess); err != nil {
			return err
		}
		return s.queueVerification(tx, a)
	})
	s.kickMail()
	return a, err
}

// ticket is the unused, unexpired ticket of kind for token, read in tx.
func (s *Service) ticket(tx storage.ReadTx, token, kind string) (storage.Ticket, error) {
	t, err := tx.Ticket(hashToken(token))
	switch {
	case errors.Is(err, storage.ErrNotFound) || (err == nil && t.Kind != kind):
		return t, mcert.MailLinkUnknown.New()
	case err != nil:
		return t, err
	case t.UsedAt != nil:
		return t, mcert.MailLinkUsed.New()
	case !s.now().Before(t.ExpiresAt):
		return t, mcert.MailLinkExpired.New()
	}
	return t, nil
}

// usableTicket refuses a token that finds no usable ticket of kind before any write
// transaction: the links are anonymous, and a wrong token should cost a read, not a write
// transaction whose failure rolls back, and has redone, the writes it shared a commit with.
func (s *Service) usableTicket(ctx context.Context, token, kind string) error {
	_, err := storage.Get(ctx, s.Store, func(tx storage.ReadTx) (storage.Ticket, error) { return s.ticket(tx, token, kind) })
	return err
}

// VerifyEmail uses a verification link: the address it was mailed to is verified, if it is
// still the account's.
func (s *Service) VerifyEmail(ctx context.Context, token string) (storage.Account, error) {
	if err := s.usableTicket(ctx, token, storage.TicketVerifyEmail); err != nil {
		return storage.Account{}, err
	}
	var a storage.Account
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		t, err := s.ticket(tx, token, storage.TicketVerifyEmail)
		if err != nil {
			return err
		}
		if a, err = tx.Account(t.AccountID); err != nil {
			return err
		}
		if a.Email != t.Email {
			return mcert.MailLinkStale.New()
		}
		now := s.now()
		t.UsedAt = &now
		if err := tx.PutTicket(t); err != nil {
			return err
		}
		a.EmailVerified, a.UpdatedAt = true, now
		if err := tx.PutAccount(a); err != nil {
			return err
		}
		return s.event(ctx, tx, storage.Event{Type: EventEmailVerified, AccountID: a.ID, Actor: ActorMailLink})
	})
	return a, err
}

// NotMe uses the "this was not me" link of a phone-bound notice: the account is suspended at
// once, as by the citizen's own card login, so that no phone of it approves anything more.
func (s *Service) NotMe(ctx context.Context, token string) (storage.Account, error) {
	if err := s.usableTicket(ctx, token, storage.TicketNotMe); err != nil {
		return storage.Account{}, err
	}
	ca, err := s.CA(ctx)
	if err != nil {
		return storage.Account{}, err
	}
	var a storage.Account
	err = s.Store.Update(ctx, func(tx storage.Tx) error {
		t, err := s.ticket(tx, token, storage.TicketNotMe)
		if err != nil {
			return err
		}
		now := s.now()
		t.UsedAt = &now
		if err := tx.PutTicket(t); err != nil {
			return err
		}
		if a, err = tx.Account(t.AccountID); err != nil {
			return err
		}
		return s.setSuspended(ctx, tx, ca, &a, true, ActorMailLink, now)
	})
	s.kickMail()
	return a, err
}

// mailWake is how a request wakes the delivery loop of its instance once its mail is queued.
type mailWake struct {
	once sync.Once
	c    chan struct{}
}

func (w *mailWake) ch() chan struct{} {
	w.once.Do(func() { w.c = make(chan struct{}, 1) })
	return w.c
}

// kickMail wakes the delivery loop: a mail was queued.
func (s *Service) kickMail() {
	select {
	case s.wake.ch() <- struct{}{}:
	default:
	}
}

// DeliverMail sends the outbox's mails until ctx ends: those queued on this instance at once,
// the others (and retries) within a second.
func (s *Service) DeliverMail(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for s.SendDueMail(ctx) == mailBatch {
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake.ch():
		}
	}
}

// SendDueMail claims the mails due now, up to a batch, sends them and records what happened;
// it returns how many it claimed.
func (s *Service) SendDueMail(ctx context.Context) int {
	if s.Mailer == nil {
		return 0
	}
	now := s.now()
	// Most polls find nothing: a read, where a write transaction would cost a commit (bbolt
	// syncs the file for it) every second on every instance.
	due, err := storage.Get(ctx, s.Store, func(tx storage.ReadTx) ([]storage.Mail, error) { return tx.DueMails(now, 1) })
	if err != nil || len(due) == 0 {
		if err != nil && ctx.Err() == nil {
			s.mailLog().Error("mail: could not read the outbox", "err", err)
		}
		return 0
	}
	var claimed []storage.Mail
	err = s.Store.Update(ctx, func(tx storage.Tx) error {
		claimed = claimed[:0]
		due, err := tx.DueMails(now, mailBatch)
		if err != nil {
			return err
		}
		for _, m := range due {
			m.LeaseUntil, m.Attempts = now.Add(mailLease), m.Attempts+1
			if err := tx.PutMail(m); err != nil {
				return err
			}
			claimed = append(claimed, m)
		}
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			s.mailLog().Error("mail: could not claim the due mails", "err", err)
		}
		return 0
	}
	for _, m := range claimed {
		s.settleMail(ctx, m, s.sendMail(ctx, m))
	}
	return len(claimed)
}

// sendMail renders and sends one claimed mail.
func (s *Service) sendMail(ctx context.Context, m storage.Mail) error {
	var params map[string]string
	if err := json.Unmarshal(m.Params, &params); err != nil {
		return &mailer.PermanentError{Err: err}
	}
	subject, body, err := mailer.Render(m.Notice, m.Lang, s.Operator, params)
	if err != nil {
		return &mailer.PermanentError{Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return s.Mailer.Send(ctx, mailer.Mail{ID: m.ID, To: m.To, Subject: subject, Body: body})
}

// settleMail records the outcome of an attempt: sent (its links' tokens are no longer kept), a
// retry after a back-off, or given up for good.
func (s *Service) settleMail(ctx context.Context, m storage.Mail, sendErr error) {
	now := s.now()
	log := s.mailLog().With("mail_id", m.ID, "notice", m.Notice, "attempt", m.Attempts)
	permanent := mailer.IsPermanent(sendErr)
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		m, err := tx.Mail(m.ID)
		if err != nil {
			return err
		}
		m.LeaseUntil = time.Time{}
		switch {
		case sendErr == nil:
			m.SentAt, m.Params, m.LastError = &now, nil, ""
		case permanent || now.Sub(m.CreatedAt) >= mailGiveUp:
			m.FailedAt, m.LastError = &now, sendErr.Error()
		default:
			m.NextAt, m.LastError = now.Add(min(time.Second<<min(m.Attempts-1, 10), maxMailRetry)), sendErr.Error()
		}
		return tx.PutMail(m)
	})
	switch {
	case err != nil:
		// The lease runs out and the mail is tried again: sent twice at worst, never lost.
		log.Error("mail: could not record the attempt", "sent", sendErr == nil, "err", err)
	case sendErr == nil:
		log.Info("mail: sent")
	case permanent:
		log.Warn("mail: refused for good; not retried", "err", sendErr)
	default:
		log.Warn("mail: not sent; will retry", "err", sendErr)
	}
}

// Expiry reminders: a device is reminded once when fewer than 30 days of its year are left, and
// once more when fewer than 7 are.
var reminders = []struct {
	days   int
	before time.Duration // the window ends where the next reminder's begins
}{{30, 7 * 24 * time.Hour}, {7, 0}}

// reminderSlot is how often the reminder job runs: once per slot, on one instance.
const reminderSlot = 10 * time.Minute

// RemindExpiring queues the expiry reminders of every device whose time has come, unless
// another instance has run the job in this slot already. It returns how many it queued.
func (s *Service) RemindExpiring(ctx context.Context) (int, error) {
	now := s.now()
	slot := now.Truncate(reminderSlot)
	n, err := s.Store.Hit(ctx, "job expiry reminders "+slot.Format(time.RFC3339), reminderSlot, now)
	if err != nil || n != 1 {
		return 0, err // the first to count the slot runs it
	}
	queued := 0
	for _, r := range reminders {
		from, to := now.Add(r.before), now.Add(time.Duration(r.days)*24*time.Hour)
		after := ""
		for {
			var page []storage.Device
			n := 0
			err := s.Store.Update(ctx, func(tx storage.Tx) error {
				var err error
				if page, err = tx.ExpiringDevices(from, after, to, 200); err != nil {
					return err
				}
				n = 0
				for _, d := range page {
					ok, err := s.remind(tx, d, r.days, now)
					if err != nil {
						return err
					}
					if ok {
						n++
					}
				}
				return nil
			})
			if err != nil {
				return queued, err
			}
			queued += n
			if len(page) < 200 {
				break
			}
			from, after = page[len(page)-1].ExpiresAt, page[len(page)-1].ID
		}
	}
	if queued > 0 {
		s.kickMail()
	}
	return queued, nil
}

// remind queues a device's reminder, if it is still of use: a revoked phone, or one of a
// suspended account, is not bound again by a reminder.
func (s *Service) remind(tx storage.Tx, d storage.Device, days int, now time.Time) (bool, error) {
	if deviceUnusable(d, now) != nil {
		return false, nil
	}
	a, err := tx.Account(d.AccountID)
	if err != nil || a.Status != storage.AccountActive {
		return false, err
	}
	return s.queueOnce(tx, a, mailer.DeviceExpiring, reminderKey(days, d.ID), map[string]string{
		"device": d.Name, "expires_at": rfc3339(d.ExpiresAt), "days": itoa(days), "bind_url": s.PublicURL + "/",
	})
}

func reminderKey(days int, deviceID string) string { return "expiring-" + itoa(days) + "/" + deviceID }

func itoa(n int) string { return strconv.Itoa(n) }

// rfc3339 is how a mail's parameters give a time.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
