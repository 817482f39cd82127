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

// Hit counts in a write transaction of its own; the group committer batches concurrent ones.
func (s *Store) Hit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	var n int
	err := s.Update(ctx, func(tx storage.Tx) error {
		var err error
		n, err = tx.Hit(key, window, now)
		return err
	})
	return n, err
}

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

// Update runs fn in a write transaction shared through the group committer (commit.go). A
// write of fn's that failed aborts the transaction even if fn went on and returned nil: a
// failed write may have left part of itself in the transaction. An error fn returns is
// returned as it is, though, even one fn made of a failed write's (a use case's own
// "code already used" for ErrAlreadyExists, say): storage.Store promises fn's error.
func (s *Store) Update(ctx context.Context, fn func(storage.Tx) error) error {
	return s.write(ctx, func(btx *bbolt.Tx) error {
		tx := &txn{tx: btx}
		if err := fn(tx); err != nil {
			if !tx.written {
				return refused(err)
			}
			return err
		}
		return tx.failed
	})
}

// View runs fn in a read-only transaction.
func (s *Store) View(ctx context.Context, fn func(storage.ReadTx) error) error {
	return s.read(ctx, func(btx *bbolt.Tx) error { return fn(&txn{tx: btx}) })
}

// maxEvents is the most Events returns at once.
const maxEvents = 1000

// maxPage is the most ExpiringDevices and DueMails return at once.
const maxPage = 1000

func appendEvent(tx *bbolt.Tx, e storage.Event) (storage.Event, error) {
	seq, err := tx.Bucket([]byte(events.bucket)).NextSequence()
	if err != nil {
		return storage.Event{}, fmt.Errorf("storage/bolt: number an event: %w", err)
	}
	e.ID = eventID(seq)
	// No event has the new number yet, nor an index entry, which ends with it: create's checks
	// are not needed, and put, unlike create, returns the event as stored (its time in UTC).
	return events.put(tx, e, nil, true)
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
		{&r.Tickets, tickets.collect, p.ExpiredBefore},
		{&r.RateLimits, rateLimits.collect, p.ExpiredBefore},
		{&r.Events, collectEvents, p.EventsBefore},
		{&r.Mails, unlessZero(mails.collect), p.EventsBefore},
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

// unlessZero is collect, which collects nothing before the zero time: EventsBefore's zero keeps
// everything.
func unlessZero(collect func(*bbolt.Tx, time.Time, int) (int, error)) func(*bbolt.Tx, time.Time, int) (int, error) {
	return func(tx *bbolt.Tx, before time.Time, limit int) (int, error) {
		if before.IsZero() {
			return 0, nil
		}
		return collect(tx, before, limit)
	}
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
