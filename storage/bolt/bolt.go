// Package bolt keeps mcert's records in one bbolt data file: the backend for a single server.
package bolt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/mcert/mcert/storage"
)

var _ storage.Store = (*Store)(nil)

// Options tune Open. The zero value gives the defaults.
type Options struct {
	// Timeout is how long Open waits for another process to release the data file; 0 means 1s.
	// bbolt's own default waits forever, which looks like a hang to an operator.
	Timeout time.Duration
	// MaxBatchSize is the most writes one commit takes; 0 means 128. Writes that arrive while a
	// commit is on its way to the disk share the next one (see committer).
	MaxBatchSize int
	// MaxBatchDelay, when positive, makes a commit that would take fewer than MaxBatchSize
	// writes wait this long for more: fewer fsyncs, each write that much later. 0, the default,
	// waits for nothing: a write alone is committed at once, and under load the writes queued
	// during one commit share the next anyway. (A timer is what makes bbolt's own db.Batch slow
	// below a few dozen concurrent writers.)
	MaxBatchDelay time.Duration
}

// defaultMaxBatchSize bounds a commit's work, and what one failing write makes the others redo.
const defaultMaxBatchSize = 128

// Store is a storage.Store in one bbolt data file, which it keeps locked while open.
type Store struct {
	db      *bbolt.DB
	commits *committer
}

// Open opens or creates the data file at path.
func Open(path string, opts Options) (*Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.MaxBatchSize <= 0 {
		opts.MaxBatchSize = defaultMaxBatchSize
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.Timeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("data file %s is in use by another mcert process; stop it or use another --data directory: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open data file %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range retiredBuckets {
			if err := tx.DeleteBucket([]byte(name)); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
				return fmt.Errorf("delete retired bucket %s: %w", name, err)
			}
		}
		for _, t := range tables {
			if err := t.prepare(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("prepare data file %s: %w", path, err)
	}
	return &Store{db: db, commits: &committer{db: db, maxSize: opts.MaxBatchSize, delay: opts.MaxBatchDelay}}, nil
}

// ErrLocked is returned by Open when another process holds the data file.
var ErrLocked = errors.New("data file locked")

// Close releases the data file.
func (s *Store) Close() error { return s.db.Close() }

// Ping reports whether the data file is still open.
func (s *Store) Ping(ctx context.Context) error {
	return s.read(ctx, func(*bbolt.Tx) error { return nil })
}

// Check runs bbolt's consistency check over the whole file and returns the first problem. It
// runs in a write transaction, because bbolt's check is unsafe beside a concurrent writer
// otherwise, so writes wait until it is done.
func (s *Store) Check() error {
	tx, err := s.db.Begin(true)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var first error
	problems := 0
	// Drain the channel even after the first problem: the checker keeps using tx until it ends.
	for err := range tx.Check() {
		if first == nil {
			first = err
		}
		problems++
	}
	if first != nil {
		return fmt.Errorf("data file %s failed its consistency check with %d problems, the first: %w; restore it from a backup", s.db.Path(), problems, first)
	}
	return nil
}

// WriteTo writes a consistent copy of the whole data file to w while the store keeps serving:
// the copy is one read transaction's view, so it holds every write acknowledged before it began.
func (s *Store) WriteTo(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// read runs fn in a read-only transaction.
func (s *Store) read(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

// write runs fn in a read-write transaction, shared with the writes that arrive at the same
// time, and returns once that transaction is committed and synced to the disk. Every write goes
// through here. fn may run more than once (see committer): it must leave nothing behind but its
// writes in tx, which a rolled-back run takes back, and what it returns on its last run is what
// was committed.
func (s *Store) write(ctx context.Context, fn func(*bbolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.commits.write(fn)
}

// result runs fn in a transaction begun by run (s.read or s.write) and returns what fn returned
// on its last run, or the zero value with the error.
func result[T any](ctx context.Context, run func(context.Context, func(*bbolt.Tx) error) error, fn func(*bbolt.Tx) (T, error)) (T, error) {
	var v T
	err := run(ctx, func(tx *bbolt.Tx) error {
		var err error
		v, err = fn(tx)
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

func (s *Store) CreateChallenge(ctx context.Context, c storage.Challenge) error {
	return s.write(ctx, func(tx *bbolt.Tx) error { return challenges.create(tx, c) })
}

func (s *Store) UpdateChallenge(ctx context.Context, hash []byte, update func(storage.Challenge) (storage.Challenge, error)) (storage.Challenge, error) {
	return result(ctx, s.write, func(tx *bbolt.Tx) (storage.Challenge, error) { return challenges.update(tx, hash, update) })
}

func (s *Store) CreateSession(ctx context.Context, v storage.Session) error {
	return s.write(ctx, func(tx *bbolt.Tx) error { return sessions.create(tx, v) })
}

func (s *Store) GetSession(ctx context.Context, hash []byte) (storage.Session, error) {
	return result(ctx, s.read, func(tx *bbolt.Tx) (storage.Session, error) { return sessions.get(tx, hash) })
}

func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	return s.write(ctx, func(tx *bbolt.Tx) error { return sessions.deleteKey(tx, hash) })
}

func (s *Store) CreateAccount(ctx context.Context, a storage.Account) error {
	return s.write(ctx, func(tx *bbolt.Tx) error { return accounts.create(tx, a) })
}

func (s *Store) GetAccount(ctx context.Context, id string) (storage.Account, error) {
	return result(ctx, s.read, func(tx *bbolt.Tx) (storage.Account, error) { return accounts.get(tx, []byte(id)) })
}

func (s *Store) GetAccountByCitizen(ctx context.Context, citizenID string) (storage.Account, error) {
	return result(ctx, s.read, func(tx *bbolt.Tx) (storage.Account, error) {
		return accounts.getBy(tx, accountsByCitizen, []byte(citizenID))
	})
}

func (s *Store) UpdateAccount(ctx context.Context, id string, update func(storage.Account) (storage.Account, error)) (storage.Account, error) {
	return result(ctx, s.write, func(tx *bbolt.Tx) (storage.Account, error) { return accounts.update(tx, []byte(id), update) })
}

func (s *Store) CreateBinding(ctx context.Context, b storage.Binding) error {
	return s.write(ctx, func(tx *bbolt.Tx) error { return bindings.create(tx, b) })
}

func (s *Store) GetBinding(ctx context.Context, id string) (storage.Binding, error) {
	return result(ctx, s.read, func(tx *bbolt.Tx) (storage.Binding, error) { return bindings.get(tx, []byte(id)) })
}

func (s *Store) GetBindingByToken(ctx context.Context, tokenHash []byte) (storage.Binding, error) {
	return result(ctx, s.read, func(tx *bbolt.Tx) (storage.Binding, error) {
		return bindings.getBy(tx, bindingsByToken, tokenHash)
	})
}

func (s *Store) UpdateBinding(ctx context.Context, id string, update func(storage.Binding) (storage.Binding, error)) (storage.Binding, error) {
	return result(ctx, s.write, func(tx *bbolt.Tx) (storage.Binding, error) { return bindings.update(tx, []byte(id), update) })
}

func (s *Store) BindDevice(ctx context.Context, bindingID string, d storage.Device, update func(storage.Binding) (storage.Binding, error)) (storage.Binding, error) {
	return result(ctx, s.write, func(tx *bbolt.Tx) (storage.Binding, error) {
		b, err := bindings.update(tx, []byte(bindingID), update)
		if err != nil {
			return b, err
		}
		return b, devices.create(tx, d)
	})
}

func (s *Store) GetDevice(ctx context.Context, id string) (storage.Device, error) {
	return result(ctx, s.read, func(tx *bbolt.Tx) (storage.Device, error) { return devices.get(tx, []byte(id)) })
}

func (s *Store) GetDeviceByCredential(ctx context.Context, credentialID []byte) (storage.Device, error) {
	return result(ctx, s.read, func(tx *bbolt.Tx) (storage.Device, error) {
		return devices.getBy(tx, devicesByCredential, credentialID)
	})
}

func (s *Store) ListDevices(ctx context.Context, accountID string) ([]storage.Device, error) {
	return result(ctx, s.read, func(tx *bbolt.Tx) ([]storage.Device, error) {
		return devices.scan(tx, devicesByAccount, ownerPrefix(accountID))
	})
}

func (s *Store) UpdateDevice(ctx context.Context, id string, update func(storage.Device) (storage.Device, error)) (storage.Device, error) {
	return result(ctx, s.write, func(tx *bbolt.Tx) (storage.Device, error) { return devices.update(tx, []byte(id), update) })
}

func (s *Store) GetDeviceByToken(ctx context.Context, tokenHash []byte) (storage.Device, error) {
	return result(ctx, s.read, func(tx *bbolt.Tx) (storage.Device, error) { return devices.getBy(tx, devicesByToken, tokenHash) })
}

func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	return s.write(ctx, func(tx *bbolt.Tx) error { return clients.create(tx, c) })
}

func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	return result(ctx, s.read, func(tx *bbolt.Tx) (storage.Client, error) { return clients.get(tx, []byte(id)) })
}

// ListClients sorts in memory: a server has tens of clients, not enough to keep an index for.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	return result(ctx, s.read, func(tx *bbolt.Tx) ([]storage.Client, error) {
		return clients.oldestFirst(tx, func(c storage.Client) time.Time { return c.CreatedAt })
	})
}

func (s *Store) UpdateClient(ctx context.Context, id string, update func(storage.Client) (storage.Client, error)) (storage.Client, error) {
	return result(ctx, s.write, func(tx *bbolt.Tx) (storage.Client, error) { return clients.update(tx, []byte(id), update) })
}

func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *bbolt.Tx) error {
		if err := clients.deleteKey(tx, []byte(id)); err != nil {
			return err
		}
		_, err := deleteTokens(tx, tokensByClient, ownerPrefix(id))
		return err
	})
}

func (s *Store) CreateLogin(ctx context.Context, l storage.Login) error {
	return s.write(ctx, func(tx *bbolt.Tx) error { return logins.create(tx, l) })
}

func (s *Store) GetLogin(ctx context.Context, hash []byte) (storage.Login, error) {
	return result(ctx, s.read, func(tx *bbolt.Tx) (storage.Login, error) { return logins.get(tx, hash) })
}

func (s *Store) GetLoginByToken(ctx context.Context, tokenHash []byte) (storage.Login, error) {
	return result(ctx, s.read, func(tx *bbolt.Tx) (storage.Login, error) { return logins.getBy(tx, loginsByToken, tokenHash) })
}

func (s *Store) GetLoginByCode(ctx context.Context, codeHash []byte) (storage.Login, error) {
	return result(ctx, s.read, func(tx *bbolt.Tx) (storage.Login, error) { return logins.getBy(tx, loginsByCode, codeHash) })
}

func (s *Store) ListWaitingLogins(ctx context.Context, accountID string) ([]storage.Login, error) {
	return result(ctx, s.read, func(tx *bbolt.Tx) ([]storage.Login, error) {
		return logins.scan(tx, loginsWaiting, ownerPrefix(accountID))
	})
}

func (s *Store) UpdateLogin(ctx context.Context, hash []byte, update func(storage.Login) (storage.Login, error)) (storage.Login, error) {
	return result(ctx, s.write, func(tx *bbolt.Tx) (storage.Login, error) { return logins.update(tx, hash, update) })
}

func (s *Store) ApproveLogin(ctx context.Context, hash []byte, deviceID string, updateLogin func(storage.Login) (storage.Login, error), updateDevice func(storage.Device) (storage.Device, error), e storage.Event) (storage.Login, storage.Device, error) {
	type approval struct {
		login  storage.Login
		device storage.Device
	}
	a, err := result(ctx, s.write, func(tx *bbolt.Tx) (approval, error) {
		var a approval
		var err error
		if a.login, err = logins.update(tx, hash, updateLogin); err != nil {
			return a, err
		}
		if a.device, err = devices.update(tx, []byte(deviceID), updateDevice); err != nil {
			return a, err
		}
		_, err = appendEvent(tx, e)
		return a, err
	})
	return a.login, a.device, err
}

func (s *Store) DeleteLogin(ctx context.Context, hash []byte) error {
	return s.write(ctx, func(tx *bbolt.Tx) error { return logins.deleteKey(tx, hash) })
}

func (s *Store) CreateToken(ctx context.Context, t storage.Token) error {
	return s.write(ctx, func(tx *bbolt.Tx) error { return tokens.create(tx, t) })
}

func (s *Store) GetToken(ctx context.Context, id string) (storage.Token, error) {
	return result(ctx, s.read, func(tx *bbolt.Tx) (storage.Token, error) { return tokens.get(tx, []byte(id)) })
}

func (s *Store) DeleteToken(ctx context.Context, id string) error {
	return s.write(ctx, func(tx *bbolt.Tx) error { return tokens.deleteKey(tx, []byte(id)) })
}

func (s *Store) DeleteTokens(ctx context.Context, accountID, clientID string) (int, error) {
	return result(ctx, s.write, func(tx *bbolt.Tx) (int, error) {
		return deleteTokens(tx, tokensByGrant, grantPrefix(accountID, clientID))
	})
}

// deleteTokens deletes the tokens that the index ix lists under prefix, and counts them.
func deleteTokens(tx *bbolt.Tx, ix string, prefix []byte) (int, error) {
	// Deleting under a bbolt cursor skips the next entry: gather first, then delete.
	list, err := tokens.scan(tx, ix, prefix)
	if err != nil {
		return 0, err
	}
	for _, t := range list {
		if err := tokens.delete(tx, t); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}

// Secret reads the secret in a read transaction, and only when it is missing takes the write
// lock, under which it looks again: bbolt has one writer at a time, so the first to get there
// creates the secret and every later one finds it.
func (s *Store) Secret(ctx context.Context, name string, create func() []byte) ([]byte, error) {
	v, err := result(ctx, s.read, func(tx *bbolt.Tx) (secret, error) { return secrets.get(tx, []byte(name)) })
	if errors.Is(err, storage.ErrNotFound) {
		v, err = result(ctx, s.write, func(tx *bbolt.Tx) (secret, error) {
			v, err := secrets.get(tx, []byte(name))
			if errors.Is(err, storage.ErrNotFound) {
				return secrets.put(tx, secret{Name: name, Value: create()})
			}
			return v, err
		})
	}
	return v.Value, err
}

func (s *Store) UpdateSecret(ctx context.Context, name string, update func([]byte) ([]byte, error)) ([]byte, error) {
	v, err := result(ctx, s.write, func(tx *bbolt.Tx) (secret, error) {
		return secrets.update(tx, []byte(name), func(v secret) (secret, error) {
			value, err := update(v.Value)
			v.Value = value
			return v, err
		})
	})
	return v.Value, err
}

func (s *Store) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	return s.write(ctx, func(tx *bbolt.Tx) error { return signingKeys.create(tx, k) })
}

// ListSigningKeys sorts in memory: a server has a few keys at a time.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	return result(ctx, s.read, func(tx *bbolt.Tx) ([]storage.SigningKey, error) {
		return signingKeys.oldestFirst(tx, func(k storage.SigningKey) time.Time { return k.CreatedAt })
	})
}

func (s *Store) UpdateSigningKey(ctx context.Context, id string, update func(storage.SigningKey) (storage.SigningKey, error)) (storage.SigningKey, error) {
	return result(ctx, s.write, func(tx *bbolt.Tx) (storage.SigningKey, error) {
		return signingKeys.update(tx, []byte(id), update)
	})
}

// maxEvents is the most ListEvents returns at once.
const maxEvents = 1000

// AppendEvent gives e the next ID from the events bucket's sequence, and stores it. An ID that
// e already has is replaced: the store alone numbers events, so that IDs keep their order.
func (s *Store) AppendEvent(ctx context.Context, e storage.Event) (storage.Event, error) {
	return result(ctx, s.write, func(tx *bbolt.Tx) (storage.Event, error) { return appendEvent(tx, e) })
}

func appendEvent(tx *bbolt.Tx, e storage.Event) (storage.Event, error) {
	seq, err := tx.Bucket([]byte(events.bucket)).NextSequence()
	if err != nil {
		return storage.Event{}, fmt.Errorf("storage/bolt: number an event: %w", err)
	}
	e.ID = eventID(seq)
	// No event has the new number yet, so create's check is not needed, and put, unlike
	// create, returns the event as stored: its time in UTC.
	return events.put(tx, e)
}

// ListEvents scans the events bucket, or an account's keys in events_by_account, backwards from
// before. A limit below 1 is taken as 1, and one above 1,000 as 1,000. A before that is no event
// ID is ErrBadCursor; one in the form of an ID that finds no event (or another account's) is
// still a place in the order of IDs, and the list goes on from there.
func (s *Store) ListEvents(ctx context.Context, accountID, before string, limit int) ([]storage.Event, error) {
	below := []byte(afterEveryEventID)
	if before != "" {
		if !validEventID(before) {
			return nil, fmt.Errorf("%w: %q is no event ID", storage.ErrBadCursor, before)
		}
		below = []byte(before)
	}
	limit = min(max(limit, 1), maxEvents)
	return result(ctx, s.read, func(tx *bbolt.Tx) ([]storage.Event, error) {
		if accountID == "" {
			return events.newestFirst(tx, events.bucket, nil, below, limit)
		}
		return events.newestFirst(tx, eventsByAccount, ownerPrefix(accountID), below, limit)
	})
}

// Hit counts in the rate_limits bucket; see counters. A window that is not positive is an error.
func (s *Store) Hit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	if err := checkWindow(window); err != nil {
		return 0, err
	}
	return result(ctx, s.write, func(tx *bbolt.Tx) (int, error) { return rateLimits.hit(tx, key, window, now) })
}

// Hits reads the counter Hit counts in, without counting.
func (s *Store) Hits(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	if err := checkWindow(window); err != nil {
		return 0, err
	}
	return result(ctx, s.read, func(tx *bbolt.Tx) (int, error) {
		_, n, err := rateLimits.count(tx, key, window, now)
		return n, err
	})
}

// checkWindow refuses a window counters cannot divide time into, before any transaction.
func checkWindow(window time.Duration) error {
	if window <= 0 {
		return fmt.Errorf("storage/bolt: rate-limit window %v is not positive", window)
	}
	return nil
}

// GarbageCollect deletes in rounds of one transaction each, every round at most p.Batch
// records, until a round finds less than its budget to do: the writers queued behind the
// committer wait for one round, never for the whole collection.
func (s *Store) GarbageCollect(ctx context.Context, p storage.GCPolicy) (storage.GCResult, error) {
	batch := p.Batch
	if batch <= 0 {
		batch = storage.DefaultGCBatch
	}
	var total storage.GCResult
	for {
		round, err := result(ctx, s.write, func(tx *bbolt.Tx) (storage.GCResult, error) { return collectRound(tx, p, batch) })
		total.Add(round)
		if err != nil || round.Total() < batch {
			return total, err
		}
	}
}

// collectRound deletes up to budget records, table by table.
func collectRound(tx *bbolt.Tx, p storage.GCPolicy, budget int) (storage.GCResult, error) {
	var r storage.GCResult
	steps := []struct {
		count   *int
		collect func(*bbolt.Tx, time.Time, int) (int, error)
		before  time.Time
	}{
		{&r.Challenges, challenges.collect, p.ExpiredBefore},
		{&r.Sessions, sessions.collect, p.ExpiredBefore},
		{&r.Bindings, bindings.collect, p.ExpiredBefore},
		{&r.Logins, logins.collect, p.ExpiredBefore},
		{&r.Tokens, tokens.collect, p.ExpiredBefore},
		{&r.SigningKeys, signingKeys.collect, p.ExpiredBefore},
		{&r.RateLimits, rateLimits.collect, p.ExpiredBefore},
		{&r.Events, collectEvents, p.EventsBefore},
	}
	for _, step := range steps {
		left := budget - r.Total()
		if left <= 0 {
			break
		}
		n, err := step.collect(tx, step.before, left)
		if err != nil {
			return r, err
		}
		*step.count = n
	}
	return r, nil
}

// collectEvents deletes up to limit of the oldest events, those whose time is before the
// given one, with their index entries. Events are in the bucket in the order of their times,
// so the scan stops at the first that is kept.
func collectEvents(tx *bbolt.Tx, before time.Time, limit int) (int, error) {
	if before.IsZero() {
		return 0, nil
	}
	var gone []storage.Event
	c := tx.Bucket([]byte(events.bucket)).Cursor()
	for k, v := c.First(); k != nil && len(gone) < limit; k, v = c.Next() {
		e, err := events.decode(k, v)
		if err != nil {
			return 0, err
		}
		if !e.Time.Before(before) {
			break
		}
		gone = append(gone, e)
	}
	for _, e := range gone {
		if err := events.delete(tx, e); err != nil {
			return 0, fmt.Errorf("storage/bolt: collect event %s: %w", e.ID, err)
		}
	}
	return len(gone), nil
}
