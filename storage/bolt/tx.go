package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mcert/mcert/storage"
)

var _ storage.Tx = (*txn)(nil)

// txn is a storage.Tx over one bbolt transaction, read-only for View. failed keeps the first
// write that failed: bbolt has no savepoints, so such a write may have left part of itself, and
// Update refuses to commit.
type txn struct {
	tx     *bbolt.Tx
	failed error
	// written is whether a write has changed, or may have changed, the transaction: until then a
	// refusal leaves it as it was, and its group commit need not roll back (committer).
	written bool
}

// wrote notes a write, which may have changed the transaction even when it failed, and its
// error, and returns the error. Every write method calls it, except when it refuses before
// it has written anything.
func (t *txn) wrote(err error) error {
	t.written = true
	if err != nil && t.failed == nil {
		t.failed = err
	}
	return err
}

// put replaces the record with v's key, which must exist.
func put[T any, R record](t *txn, tb table[T, R], v T) error {
	_, err := tb.update(t.tx, tb.key(v), func(T) (T, error) { return v, nil })
	if err == storage.ErrNotFound {
		return err // nothing was written
	}
	return t.wrote(err)
}

func (t *txn) Challenge(hash []byte) (storage.Challenge, error) { return challenges.get(t.tx, hash) }
func (t *txn) CreateChallenge(c storage.Challenge) error {
	return t.created(challenges.create(t.tx, c))
}

// created notes the error of a create: ErrAlreadyExists is found before anything is written,
// so the transaction may go on; any other error is a failed write.
func (t *txn) created(err error) error {
	if errors.Is(err, storage.ErrAlreadyExists) {
		return err
	}
	return t.wrote(err)
}

func (t *txn) Session(hash []byte) (storage.Session, error) { return sessions.get(t.tx, hash) }
func (t *txn) CreateSession(s storage.Session) error        { return t.created(sessions.create(t.tx, s)) }
func (t *txn) DeleteSession(hash []byte) error              { return t.deleted(sessions.deleteKey(t.tx, hash)) }

// deleted notes the error of a delete: ErrNotFound is found before anything is deleted.
func (t *txn) deleted(err error) error {
	if err == storage.ErrNotFound {
		return err
	}
	return t.wrote(err)
}

func (t *txn) Account(id string) (storage.Account, error) { return accounts.get(t.tx, []byte(id)) }
func (t *txn) AccountByCitizen(citizenID string) (storage.Account, error) {
	return accounts.getBy(t.tx, accountsByCitizen, []byte(citizenID))
}
func (t *txn) CreateAccount(a storage.Account) error { return t.created(accounts.create(t.tx, a)) }
func (t *txn) PutAccount(a storage.Account) error    { return put(t, accounts, a) }

func (t *txn) Binding(id string) (storage.Binding, error) { return bindings.get(t.tx, []byte(id)) }
func (t *txn) BindingByToken(tokenHash []byte) (storage.Binding, error) {
	return bindings.getBy(t.tx, bindingsByToken, tokenHash)
}
func (t *txn) CreateBinding(b storage.Binding) error { return t.created(bindings.create(t.tx, b)) }
func (t *txn) PutBinding(b storage.Binding) error    { return put(t, bindings, b) }

func (t *txn) Device(id string) (storage.Device, error) { return devices.get(t.tx, []byte(id)) }
func (t *txn) DeviceByCredential(credentialID []byte) (storage.Device, error) {
	return devices.getBy(t.tx, devicesByCredential, credentialID)
}
func (t *txn) DeviceByToken(tokenHash []byte) (storage.Device, error) {
	return devices.getBy(t.tx, devicesByToken, tokenHash)
}
func (t *txn) Devices(accountID string) ([]storage.Device, error) {
	return nonNil(devices.scan(t.tx, devicesByAccount, ownerPrefix(accountID)))
}

// ExpiringDevices scans devices_by_expiry from the first key after (from, afterID): the key
// (from, afterID) itself followed by a NUL, its successor in the order of bytes. Its keys' first
// twelve bytes are the expiry, so the scan ends at the first of to or later.
func (t *txn) ExpiringDevices(from time.Time, afterID string, to time.Time, limit int) ([]storage.Device, error) {
	start := append(append(appendTime(nil, from), afterID...), 0)
	end := appendTime(nil, to)
	past := func(k []byte) bool { return bytes.Compare(k[:min(len(k), len(end))], end) >= 0 }
	return nonNil(devices.scanFrom(t.tx, devicesByExpiry, start, past, nil, min(max(limit, 1), maxPage)))
}
func (t *txn) CreateDevice(d storage.Device) error { return t.created(devices.create(t.tx, d)) }
func (t *txn) PutDevice(d storage.Device) error    { return put(t, devices, d) }

func (t *txn) Client(id string) (storage.Client, error) { return clients.get(t.tx, []byte(id)) }

// Clients sorts in memory: a server has tens of clients, not enough to keep an index for.
func (t *txn) Clients() ([]storage.Client, error) {
	return nonNil(clients.oldestFirst(t.tx, func(c storage.Client) time.Time { return c.CreatedAt }))
}
func (t *txn) CreateClient(c storage.Client) error { return t.created(clients.create(t.tx, c)) }
func (t *txn) PutClient(c storage.Client) error    { return put(t, clients, c) }
func (t *txn) DeleteClient(id string) error {
	if err := t.deleted(clients.deleteKey(t.tx, []byte(id))); err != nil {
		return err
	}
	_, err := deleteTokens(t.tx, tokensByClient, ownerPrefix(id))
	return t.wrote(err)
}

func (t *txn) Login(hash []byte) (storage.Login, error) { return logins.get(t.tx, hash) }
func (t *txn) LoginByToken(tokenHash []byte) (storage.Login, error) {
	return logins.getBy(t.tx, loginsByToken, tokenHash)
}
func (t *txn) LoginByCode(codeHash []byte) (storage.Login, error) {
	return logins.getBy(t.tx, loginsByCode, codeHash)
}
func (t *txn) WaitingLogins(accountID string) ([]storage.Login, error) {
	return nonNil(logins.scan(t.tx, loginsWaiting, ownerPrefix(accountID)))
}
func (t *txn) CreateLogin(l storage.Login) error { return t.created(logins.create(t.tx, l)) }
func (t *txn) PutLogin(l storage.Login) error    { return put(t, logins, l) }
func (t *txn) DeleteLogin(hash []byte) error     { return t.deleted(logins.deleteKey(t.tx, hash)) }

func (t *txn) Token(id string) (storage.Token, error) { return tokens.get(t.tx, []byte(id)) }
func (t *txn) CreateToken(tk storage.Token) error     { return t.created(tokens.create(t.tx, tk)) }
func (t *txn) DeleteToken(id string) error            { return t.deleted(tokens.deleteKey(t.tx, []byte(id))) }
func (t *txn) DeleteTokens(accountID, clientID string) (int, error) {
	n, err := deleteTokens(t.tx, tokensByGrant, grantPrefix(accountID, clientID))
	return n, t.wrote(err)
}

// deleteTokens deletes the tokens that the index ix lists under prefix, and counts them.
func deleteTokens(tx *bbolt.Tx, ix string, prefix []byte) (int, error) {
	// Deleting under a bbolt cursor skips the next entry: gather first, then delete.
	list, err := tokens.scan(tx, ix, prefix)
	if err != nil {
		return 0, err
	}
	for _, tk := range list {
		if err := tokens.delete(tx, tk); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}

func (t *txn) Secret(name string) ([]byte, error) {
	v, err := secrets.get(t.tx, []byte(name))
	return v.Value, err
}

func (t *txn) PutSecret(name string, value []byte) error {
	_, err := secrets.put(t.tx, secret{Name: name, Value: value}, nil, false)
	return t.wrote(err)
}

// SigningKeys sorts in memory: a server has a few keys at a time.
func (t *txn) SigningKeys() ([]storage.SigningKey, error) {
	return nonNil(signingKeys.oldestFirst(t.tx, func(k storage.SigningKey) time.Time { return k.CreatedAt }))
}
func (t *txn) CreateSigningKey(k storage.SigningKey) error {
	return t.created(signingKeys.create(t.tx, k))
}
func (t *txn) PutSigningKey(k storage.SigningKey) error { return put(t, signingKeys, k) }

func (t *txn) Certificate(serial []byte) (storage.Certificate, error) {
	return certificates.get(t.tx, serial)
}
func (t *txn) DeviceCertificates(deviceID string) ([]storage.Certificate, error) {
	return nonNil(certificates.scan(t.tx, certificatesByDevice, ownerPrefix(deviceID)))
}
func (t *txn) RevokedCertificates() ([]storage.Certificate, error) {
	return nonNil(certificates.scan(t.tx, certificatesRevoked, ownerPrefix("")))
}
func (t *txn) CreateCertificate(c storage.Certificate) error {
	return t.created(certificates.create(t.tx, c))
}
func (t *txn) PutCertificate(c storage.Certificate) error { return put(t, certificates, c) }

func (t *txn) Ticket(hash []byte) (storage.Ticket, error) { return tickets.get(t.tx, hash) }
func (t *txn) CreateTicket(tk storage.Ticket) error       { return t.created(tickets.create(t.tx, tk)) }
func (t *txn) PutTicket(tk storage.Ticket) error          { return put(t, tickets, tk) }

func (t *txn) Mail(id string) (storage.Mail, error) { return mails.get(t.tx, []byte(id)) }
func (t *txn) MailByKey(key string) (storage.Mail, error) {
	if key == "" {
		return storage.Mail{}, storage.ErrNotFound // mails without a key are in no index
	}
	return mails.getBy(t.tx, mailsByKey, []byte(key))
}

// DueMails scans mails_pending, which holds the pending mails alone, from the oldest NextAt up
// to now, passing over those still leased: at most the mails being sent at the time.
func (t *txn) DueMails(now time.Time, limit int) ([]storage.Mail, error) {
	end := appendTime(nil, now)
	past := func(k []byte) bool { return bytes.Compare(k[:min(len(k), len(end))], end) > 0 }
	free := func(m storage.Mail) bool { return !m.LeaseUntil.After(now) }
	return nonNil(mails.scanFrom(t.tx, mailsPending, nil, past, free, min(max(limit, 1), maxPage)))
}
func (t *txn) Mails(accountID string) ([]storage.Mail, error) {
	return nonNil(mails.scan(t.tx, mailsByAccount, ownerPrefix(accountID)))
}
func (t *txn) CreateMail(m storage.Mail) error { return t.created(mails.create(t.tx, m)) }
func (t *txn) PutMail(m storage.Mail) error    { return put(t, mails, m) }

func (t *txn) AppendEvent(e storage.Event) (storage.Event, error) {
	e, err := appendEvent(t.tx, e)
	return e, t.wrote(err)
}

// Events scans the events bucket, or an account's keys in events_by_account, backwards from
// before. A before in the form of an ID that finds no event (or another account's) is still a
// place in the order of IDs, and the list goes on from there.
func (t *txn) Events(accountID, before string, limit int) ([]storage.Event, error) {
	below := []byte(afterEveryEventID)
	if before != "" {
		if !validEventID(before) {
			return nil, fmt.Errorf("%w: %q is no event ID", storage.ErrBadCursor, before)
		}
		below = []byte(before)
	}
	limit = min(max(limit, 1), maxEvents)
	if accountID == "" {
		return nonNil(events.newestFirst(t.tx, events.bucket, nil, below, limit))
	}
	return nonNil(events.newestFirst(t.tx, eventsByAccount, ownerPrefix(accountID), below, limit))
}

// Hit counts in the rate_limits bucket; see counters. A window that is not positive is an error.
func (t *txn) Hit(key string, window time.Duration, now time.Time) (int, error) {
	if err := checkWindow(window); err != nil {
		return 0, err
	}
	n, err := rateLimits.hit(t.tx, key, window, now)
	return n, t.wrote(err)
}

func (t *txn) Hits(key string, window time.Duration, now time.Time) (int, error) {
	if err := checkWindow(window); err != nil {
		return 0, err
	}
	_, n, err := rateLimits.count(t.tx, key, window, now)
	return n, err
}

// nonNil makes an empty list [] rather than nil: "nothing matches" is not "no answer".
func nonNil[T any](list []T, err error) ([]T, error) {
	if err == nil && list == nil {
		list = []T{}
	}
	return list, err
}
