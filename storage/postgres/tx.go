package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcert/mcert/storage"
)

var _ storage.Tx = (*txn)(nil)

// txn is a storage.Tx over one PostgreSQL transaction, read-only for View. failed keeps the
// first statement that failed: PostgreSQL refuses every later statement of the transaction,
// so txn answers them with that error without asking, and Update rolls back (or retries)
// whatever fn returns.
type txn struct {
	ctx    context.Context // bounds the statements
	outer  context.Context // the caller's, to tell its cancellation from our timeout
	tx     *lazyTx
	failed error
}

// fail notes the error of a statement, doing what, and returns it as the store does.
func (t *txn) fail(what string, err error) error {
	return t.refuse(dbError(t.outer, what, err))
}

// refuse notes an error that ends the transaction.
func (t *txn) refuse(err error) error {
	if t.failed == nil {
		t.failed = err
	}
	return err
}

// one reads the one row a query finds; ErrNotFound when it finds none.
func one[T any](t *txn, what string, scan func(pgx.Row) (T, error), sql string, args ...any) (T, error) {
	var zero T
	if t.failed != nil {
		return zero, t.failed
	}
	v, err := scan(t.tx.QueryRow(t.ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return zero, storage.ErrNotFound
	}
	if err != nil {
		return zero, t.fail(what, err)
	}
	return v, nil
}

// all reads every row a query finds; an empty list, not nil, when it finds none.
func all[T any](t *txn, what string, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	if t.failed != nil {
		return nil, t.failed
	}
	rows, err := t.tx.Query(t.ctx, sql, args...)
	if err != nil {
		return nil, t.fail(what, err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
	if err != nil {
		return nil, t.fail(what, err)
	}
	return list, nil
}

// exec runs a statement that writes, and returns how many rows it wrote.
func (t *txn) exec(what, sql string, args ...any) (int64, error) {
	if t.failed != nil {
		return 0, t.failed
	}
	tag, err := t.tx.Exec(t.ctx, sql, args...)
	if err != nil {
		return 0, t.fail(what, err)
	}
	return tag.RowsAffected(), nil
}

func (t *txn) Challenge(hash []byte) (storage.Challenge, error) {
	return challenges.get(t, "WHERE hash = $1", hash)
}
func (t *txn) CreateChallenge(c storage.Challenge) error { return challenges.create(t, c) }

func (t *txn) Session(hash []byte) (storage.Session, error) {
	return sessions.get(t, "WHERE hash = $1", hash)
}
func (t *txn) CreateSession(s storage.Session) error { return sessions.create(t, s) }
func (t *txn) DeleteSession(hash []byte) error       { return sessions.remove(t, "WHERE hash = $1", hash) }

func (t *txn) Account(id string) (storage.Account, error) {
	return accounts.get(t, "WHERE id = $1", id)
}
func (t *txn) AccountByCitizen(citizenID string) (storage.Account, error) {
	return accounts.get(t, "WHERE citizen_id = $1", citizenID)
}
func (t *txn) CreateAccount(a storage.Account) error { return accounts.create(t, a) }
func (t *txn) PutAccount(a storage.Account) error    { return accounts.put(t, a) }

func (t *txn) Binding(id string) (storage.Binding, error) {
	return bindings.get(t, "WHERE id = $1", id)
}
func (t *txn) BindingByToken(tokenHash []byte) (storage.Binding, error) {
	return bindings.get(t, "WHERE token_hash = $1", tokenHash)
}
func (t *txn) CreateBinding(b storage.Binding) error { return bindings.create(t, b) }
func (t *txn) PutBinding(b storage.Binding) error    { return bindings.put(t, b) }

func (t *txn) Device(id string) (storage.Device, error) {
	return devices.get(t, "WHERE id = $1", id)
}
func (t *txn) DeviceByCredential(credentialID []byte) (storage.Device, error) {
	return devices.get(t, "WHERE credential_id = $1", credentialID)
}
func (t *txn) DeviceByToken(tokenHash []byte) (storage.Device, error) {
	return devices.get(t, "WHERE token_hash = $1", tokenHash)
}
func (t *txn) Devices(accountID string) ([]storage.Device, error) {
	return devices.list(t, "WHERE account_id = $1 ORDER BY created_ns, id", accountID)
}

// expiringDevices pages through devices_by_expiry: the row comparison is one range of the index.
const expiringDevices = "WHERE (expires_ns, id) > ($1, $2) AND expires_ns < $3 ORDER BY expires_ns, id LIMIT $4"

func (t *txn) ExpiringDevices(from time.Time, afterID string, to time.Time, limit int) ([]storage.Device, error) {
	return devices.list(t, expiringDevices, cutoff(from), afterID, cutoff(to), min(max(limit, 1), maxPage))
}
func (t *txn) CreateDevice(d storage.Device) error { return devices.create(t, d) }
func (t *txn) PutDevice(d storage.Device) error    { return devices.put(t, d) }

func (t *txn) Client(id string) (storage.Client, error) {
	return clients.get(t, "WHERE id = $1", id)
}
func (t *txn) Clients() ([]storage.Client, error) {
	return clients.list(t, "ORDER BY created_ns, id")
}
func (t *txn) CreateClient(c storage.Client) error { return clients.create(t, c) }
func (t *txn) PutClient(c storage.Client) error    { return clients.put(t, c) }
func (t *txn) DeleteClient(id string) error {
	if err := clients.remove(t, "WHERE id = $1", id); err != nil {
		return err
	}
	_, err := t.exec("delete the client's tokens", "DELETE FROM tokens WHERE client_id = $1", id)
	return err
}

func (t *txn) Login(hash []byte) (storage.Login, error) {
	return logins.get(t, "WHERE hash = $1", hash)
}
func (t *txn) LoginByToken(tokenHash []byte) (storage.Login, error) {
	return logins.get(t, "WHERE hash = (SELECT login FROM login_tokens WHERE hash = $1)", tokenHash)
}
func (t *txn) LoginByCode(codeHash []byte) (storage.Login, error) {
	return logins.get(t, "WHERE code_hash = $1", codeHash)
}
func (t *txn) WaitingLogins(accountID string) ([]storage.Login, error) {
	return logins.list(t, "WHERE waiting AND account_id = $1 ORDER BY created_ns, hash", accountID)
}

// addLoginTokens indexes the token hashes $2 under the login $1. DISTINCT: a login may list a
// hash twice, as bbolt lets it.
const addLoginTokens = "INSERT INTO login_tokens (hash, login) SELECT DISTINCT h, $1::bytea FROM unnest($2::bytea[]) AS h"

// CreateLogin writes the login and its token hashes under a savepoint: a hash may be taken
// after the login's row is in, and a unique violation would otherwise end the transaction.
// The four statements go in one round trip.
func (t *txn) CreateLogin(l storage.Login) error {
	if t.failed != nil {
		return t.failed
	}
	var b pgx.Batch
	b.Queue("SAVEPOINT create_login")
	b.Queue(logins.insert, args(logins.columns(&l))...)
	b.Queue(addLoginTokens, l.Hash, l.TokenHashes)
	b.Queue("RELEASE SAVEPOINT create_login")
	err := t.tx.SendBatch(t.ctx, &b).Close()
	if !isUniqueViolation(err) {
		if err != nil {
			return t.fail("create login", err)
		}
		return nil
	}
	if _, rerr := t.tx.Exec(t.ctx, "ROLLBACK TO SAVEPOINT create_login; RELEASE SAVEPOINT create_login"); rerr != nil {
		return t.fail("create login", rerr)
	}
	return fmt.Errorf("storage/postgres: create login: %w", storage.ErrAlreadyExists)
}

// putLogin updates a login and returns the token hashes it had, which a plain UPDATE cannot:
// the old row, locked, joined to the one updated. Most updates keep the hashes, and then the
// login's index rows need no write.
var putLogin = fmt.Sprintf("UPDATE logins AS l SET %s FROM (SELECT hash, token_hashes FROM logins WHERE hash = $1 FOR UPDATE) AS old WHERE l.hash = old.hash RETURNING old.token_hashes", logins.set)

func (t *txn) PutLogin(l storage.Login) error {
	old, err := one(t, "put login", func(row pgx.Row) ([][]byte, error) {
		var hashes [][]byte
		return hashes, row.Scan(&hashes)
	}, putLogin, args(logins.columns(&l))...)
	if err != nil {
		return err
	}
	gone, added := changedHashes(old, l.TokenHashes)
	if len(gone) > 0 {
		if _, err := t.exec("put login", "DELETE FROM login_tokens WHERE login = $1 AND hash = ANY($2)", l.Hash, gone); err != nil {
			return err
		}
	}
	if len(added) > 0 {
		if _, err := t.exec("put login", addLoginTokens, l.Hash, added); err != nil {
			return err
		}
	}
	return nil
}

// changedHashes lists the hashes in old but not in new, and those in new but not in old.
func changedHashes(old, new [][]byte) (gone, added [][]byte) {
	in := func(list [][]byte) map[string]bool {
		set := make(map[string]bool, len(list))
		for _, h := range list {
			set[string(h)] = true
		}
		return set
	}
	was, is := in(old), in(new)
	for h := range was {
		if !is[h] {
			gone = append(gone, []byte(h))
		}
	}
	for h := range is {
		if !was[h] {
			added = append(added, []byte(h))
		}
	}
	return gone, added
}

func (t *txn) DeleteLogin(hash []byte) error { return logins.remove(t, "WHERE hash = $1", hash) }

func (t *txn) Token(id string) (storage.Token, error) {
	return tokens.get(t, "WHERE id = $1", id)
}
func (t *txn) CreateToken(tk storage.Token) error { return tokens.create(t, tk) }
func (t *txn) DeleteToken(id string) error        { return tokens.remove(t, "WHERE id = $1", id) }
func (t *txn) DeleteTokens(accountID, clientID string) (int, error) {
	n, err := t.exec("delete tokens", "DELETE FROM tokens WHERE account_id = $1 AND client_id = $2", accountID, clientID)
	return int(n), err
}

func (t *txn) Secret(name string) ([]byte, error) {
	s, err := secrets.get(t, "WHERE name = $1", name)
	return s.Value, err
}

func (t *txn) PutSecret(name string, value []byte) error {
	_, err := t.exec("put secret", "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value", name, value)
	return err
}

func (t *txn) SigningKeys() ([]storage.SigningKey, error) {
	return signingKeys.list(t, "ORDER BY created_ns, id")
}
func (t *txn) CreateSigningKey(k storage.SigningKey) error { return signingKeys.create(t, k) }
func (t *txn) PutSigningKey(k storage.SigningKey) error    { return signingKeys.put(t, k) }

func (t *txn) Certificate(serial []byte) (storage.Certificate, error) {
	return certificates.get(t, "WHERE serial = $1", serial)
}
func (t *txn) DeviceCertificates(deviceID string) ([]storage.Certificate, error) {
	return certificates.list(t, "WHERE device_id = $1 ORDER BY created_ns, serial", deviceID)
}
func (t *txn) RevokedCertificates() ([]storage.Certificate, error) {
	return certificates.list(t, "WHERE revoked_ns IS NOT NULL ORDER BY revoked_ns, serial")
}
func (t *txn) CreateCertificate(c storage.Certificate) error { return certificates.create(t, c) }
func (t *txn) PutCertificate(c storage.Certificate) error    { return certificates.put(t, c) }

func (t *txn) Ticket(hash []byte) (storage.Ticket, error) {
	return tickets.get(t, "WHERE hash = $1", hash)
}
func (t *txn) CreateTicket(tk storage.Ticket) error { return tickets.create(t, tk) }
func (t *txn) PutTicket(tk storage.Ticket) error    { return tickets.put(t, tk) }

func (t *txn) Mail(id string) (storage.Mail, error) {
	return mails.get(t, "WHERE id = $1", id)
}

// MailByKey: "" is no key, which a mail without one has as NULL, so = finds none by it.
func (t *txn) MailByKey(key string) (storage.Mail, error) {
	return mails.get(t, "WHERE key = $1", key)
}

// dueMails reads the partial index mails_due, whose condition the query states, as PostgreSQL
// needs it to, up to now; the leased mails it passes over are at most those being sent.
const dueMails = "WHERE sent_ns IS NULL AND failed_ns IS NULL AND next_ns <= $1 AND lease_ns <= $1 ORDER BY next_ns, id LIMIT $2"

func (t *txn) DueMails(now time.Time, limit int) ([]storage.Mail, error) {
	return mails.list(t, dueMails, cutoff(now), min(max(limit, 1), maxPage))
}
func (t *txn) Mails(accountID string) ([]storage.Mail, error) {
	return mails.list(t, "WHERE account_id = $1 ORDER BY created_ns, id", accountID)
}
func (t *txn) CreateMail(m storage.Mail) error { return mails.create(t, m) }
func (t *txn) PutMail(m storage.Mail) error    { return mails.put(t, m) }

// AppendEvent numbers the event from the events' sequence, which every instance shares.
func (t *txn) AppendEvent(e storage.Event) (storage.Event, error) {
	id, err := one(t, "append event", func(row pgx.Row) (int64, error) {
		var id int64
		return id, row.Scan(&id)
	}, `INSERT INTO events (time_ns, account_id, type, outcome, reason, client_id, device_id, actor, ip, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		stamp(e.Time), e.AccountID, e.Type, e.Outcome, e.Reason, e.ClientID, e.DeviceID, e.Actor, e.IP, e.Detail)
	if err != nil {
		return storage.Event{}, err
	}
	e.ID, e.Time = eventID(id), e.Time.UTC()
	return e, nil
}

// maxEvents is the most Events returns at once.
const maxEvents = 1000

// maxPage is the most ExpiringDevices and DueMails return at once.
const maxPage = 1000

// Events pages backwards through the ids below before. An account's query also says that
// account_id is not empty: the index events_by_account leaves out events of no account, and
// PostgreSQL uses it for a prepared statement only if the query says so itself.
func (t *txn) Events(accountID, before string, limit int) ([]storage.Event, error) {
	below := int64(math.MaxInt64)
	if before != "" {
		n, ok := parseEventID(before)
		if !ok {
			return nil, fmt.Errorf("%w: %q is no event ID", storage.ErrBadCursor, before)
		}
		below = n
	}
	limit = min(max(limit, 1), maxEvents)
	const list = "SELECT " + eventColumns + " FROM events "
	if accountID == "" {
		return all(t, "list events", scanEvent, list+"WHERE id < $1 ORDER BY id DESC LIMIT $2", below, limit)
	}
	return all(t, "list events", scanEvent, list+"WHERE account_id = $1 AND account_id <> '' AND id < $2 ORDER BY id DESC LIMIT $3", accountID, below, limit)
}

// eventColumns are what scanEvent reads.
const eventColumns = "id, time_ns, account_id, type, outcome, reason, client_id, device_id, actor, ip, detail"

func scanEvent(row pgx.Row) (storage.Event, error) {
	var e storage.Event
	var id int64
	err := row.Scan(&id, timeDst{&e.Time}, &e.AccountID, &e.Type, &e.Outcome, &e.Reason, &e.ClientID, &e.DeviceID, &e.Actor, &e.IP, &e.Detail)
	e.ID = eventID(id)
	return e, err
}

// eventID is the ID of the event numbered id: 16 hex digits, so that IDs sort as strings in
// the order of the numbers, as bbolt's do, in the same form: a log copied from one backend to
// the other keeps its IDs.
func eventID(id int64) string {
	return fmt.Sprintf("%016x", id)
}

// parseEventID is the number of an ID in the form eventID writes, whether or not such an event
// exists; one above every number an event can have is the largest.
func parseEventID(id string) (int64, bool) {
	if len(id) != 16 {
		return 0, false
	}
	for _, c := range []byte(id) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(id, 16, 64)
	if err != nil {
		return 0, false
	}
	return int64(min(n, math.MaxInt64)), true
}

// window is the rate-limit window of the given length that now is in: from start, for window
// nanoseconds, aligned to the Unix epoch, as bbolt's are. A window that is not positive is an
// error.
func window(length time.Duration, now time.Time) (start, end int64, err error) {
	if length <= 0 {
		return 0, 0, fmt.Errorf("storage/postgres: rate-limit window %v is not positive", length)
	}
	t, w := now.UnixNano(), length.Nanoseconds()
	start = t / w * w
	if t%w < 0 { // before 1970 Go's division rounds towards zero, not down
		start -= w
	}
	return start, start + w, nil
}

// Hit counts in one statement: two hits at once on one window both count, one of them after
// a retry (a SERIALIZABLE transaction may not update a row another changed since it began).
func (t *txn) Hit(key string, length time.Duration, now time.Time) (int, error) {
	start, end, err := window(length, now)
	if err != nil {
		return 0, err
	}
	n, err := one(t, "count a hit", scanCount, hitSQL, start, end, []byte(key))
	return int(n), err
}

// hitSQL adds one to a window's count and returns it.
const hitSQL = `INSERT INTO rate_limits (window_start_ns, window_end_ns, key, hits) VALUES ($1, $2, $3, 1)
	ON CONFLICT (window_start_ns, window_end_ns, key) DO UPDATE SET hits = rate_limits.hits + 1 RETURNING hits`

func (t *txn) Hits(key string, length time.Duration, now time.Time) (int, error) {
	start, end, err := window(length, now)
	if err != nil {
		return 0, err
	}
	n, err := one(t, "read hits", scanCount, "SELECT hits FROM rate_limits WHERE window_start_ns = $1 AND window_end_ns = $2 AND key = $3",
		start, end, []byte(key))
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil
	}
	return int(n), err
}

func scanCount(row pgx.Row) (int64, error) {
	var n int64
	return n, row.Scan(&n)
}
