// Package postgres keeps mcert's records in PostgreSQL: the backend for several stateless
// instances sharing one database. Each Store is a pool of connections; each Update is one
// SERIALIZABLE transaction, retried when PostgreSQL cannot serialize it, and each View one
// REPEATABLE READ, READ ONLY transaction, a snapshot. Open applies the schema
// (migrations/*.sql) under an advisory lock, so instances may start together.
package postgres

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mcert/mcert/storage"
)

var _ storage.Store = (*Store)(nil)

// Options tune Open. The zero value gives the defaults.
type Options struct {
	// ConnectTimeout bounds each new connection, the dial and the handshake; 0 means the URL's
	// connect_timeout, or else 2s. A database that does not answer is then an error in seconds,
	// not a hang.
	ConnectTimeout time.Duration
	// Timeout bounds one Update, View or Ping: waiting for a connection, every statement and
	// the retries; 0 means 5s. PostgreSQL also cancels our statements (statement_timeout) and
	// ends our sessions left idle in a transaction (idle_in_transaction_session_timeout)
	// after it, so that an instance that stops answering does not hold locks for long.
	Timeout time.Duration
	// MaxConns is the most connections the pool opens; 0 means the URL's pool_max_conns, or
	// else pgxpool's default (4, or the number of CPUs if more).
	MaxConns int32
}

const (
	defaultConnectTimeout = 2 * time.Second
	defaultTimeout        = 5 * time.Second
)

// Store is a storage.Store in a PostgreSQL database.
type Store struct {
	pool    *pgxpool.Pool
	timeout time.Duration
}

// Open connects to the database that url names (a postgres:// URL or a key=value string, as
// libpq takes) and brings its schema up to date. ctx bounds Open, migrations included; the
// connection itself is bounded by Options.ConnectTimeout.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("storage/postgres: parse the database URL: %w", err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	switch {
	case opts.ConnectTimeout > 0:
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	case cfg.ConnConfig.ConnectTimeout <= 0:
		cfg.ConnConfig.ConnectTimeout = defaultConnectTimeout
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	ms := strconv.FormatInt(opts.Timeout.Milliseconds(), 10)
	for _, name := range []string{"statement_timeout", "idle_in_transaction_session_timeout"} {
		if _, set := cfg.ConnConfig.RuntimeParams[name]; !set {
			cfg.ConnConfig.RuntimeParams[name] = ms
		}
	}
	where := fmt.Sprintf("database at %s:%d", cfg.ConnConfig.Host, cfg.ConnConfig.Port)
	if err := migrate(ctx, cfg.ConnConfig.Copy()); err != nil {
		return nil, dbError(ctx, where, err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, dbError(ctx, where, err)
	}
	return &Store{pool: pool, timeout: opts.Timeout}, nil
}

// Close closes every connection, once those in use are released. It waits at most
// Options.Timeout: pgx gives a connection to a server that has stopped answering 15 seconds
// to close, which would hold up the instance's shutdown; such connections are left to close
// on their own.
func (s *Store) Close() error {
	closed := make(chan struct{})
	go func() {
		s.pool.Close()
		close(closed)
	}()
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	select {
	case <-closed:
		return nil
	case <-timer.C:
		return fmt.Errorf("%w: storage/postgres: connections still closing after %v are left to close on their own", storage.ErrUnavailable, s.timeout)
	}
}

// Ping reports whether the database answers, within Options.Timeout.
func (s *Store) Ping(ctx context.Context) error {
	bounded, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.pool.Ping(bounded); err != nil {
		return dbError(ctx, "ping", err)
	}
	return nil
}

// Hit counts in one statement outside any transaction of ours, at PostgreSQL's default READ
// COMMITTED: concurrent hits of one window wait for each other's row lock, each adding to the
// count the one before committed, and none fails to serialize.
func (s *Store) Hit(ctx context.Context, key string, length time.Duration, now time.Time) (int, error) {
	start, end, err := window(length, now)
	if err != nil {
		return 0, err
	}
	bounded, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var n int64
	if err := s.pool.QueryRow(bounded, hitSQL, start, end, []byte(key)).Scan(&n); err != nil {
		return 0, dbError(ctx, "count a hit", err)
	}
	return int(n), nil
}

// maxAttempts bounds how often Update runs a transaction that PostgreSQL could not serialize.
// Measured with 64 logins at once on a nearly empty store (BenchmarkLogin), where conflicts
// are most frequent: each attempt after the first fails about 0.4 times as often as the one
// before, and 1 Update in 20,000 lost 10 times in a row. 20 attempts make that about one in
// a billion, in at most about a second of pauses; Timeout bounds the whole anyway.
const maxAttempts = 20

// Update runs fn in a SERIALIZABLE transaction, and again, after a short random pause, when
// PostgreSQL could not serialize it (SQLSTATE 40001) or chose it to break a deadlock (40P01).
//
// SERIALIZABLE rather than REPEATABLE READ with SELECT ... FOR UPDATE: fn reads through the
// same methods whether or not it writes what it read, and a rule it checks may be about rows
// that do not exist yet (the number of an account's devices, a code not yet used), which no
// row lock covers. PostgreSQL's serializable snapshot isolation makes every rule fn checks
// hold when it commits, at the price of retries, which fn allows.
func (s *Store) Update(ctx context.Context, fn func(storage.Tx) error) error {
	bounded, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		err := s.update(bounded, ctx, fn)
		if !retryable(err) {
			return err
		}
		if attempt == maxAttempts {
			return fmt.Errorf("storage/postgres: gave up after %d attempts: %w", attempt, err)
		}
		if err := pause(bounded, attempt); err != nil {
			return dbError(ctx, "wait to retry", err)
		}
	}
}

// update runs fn once, in a transaction bounded by ctx. outer is the caller's context, which
// tells a timeout of ours from the caller's.
func (s *Store) update(ctx, outer context.Context, fn func(storage.Tx) error) error {
	ltx, err := s.beginLazy(ctx, "BEGIN ISOLATION LEVEL SERIALIZABLE")
	if err != nil {
		return dbError(outer, "begin", err)
	}
	t := &txn{ctx: ctx, outer: outer, tx: ltx}
	if err := fn(t); err != nil || t.failed != nil {
		// Whatever the rollback says, the transaction is over: a connection that could not
		// roll back is closed, and PostgreSQL then rolls back.
		ltx.rollback(ctx)
		switch {
		case retryable(t.failed):
			// What fn made of a transaction that could not go on is moot: it runs again.
			return t.failed
		case err != nil:
			return err
		}
		// A write failed and fn went on as if it had not: the transaction still may not commit.
		return t.failed
	}
	if err := ltx.commit(ctx); err != nil {
		return dbError(outer, "commit", err)
	}
	return nil
}

// pause waits before the attempt after the given one: a random time, doubling with each
// attempt from up to 2ms to up to 64ms, so that transactions that conflicted do not meet again.
func pause(ctx context.Context, attempt int) error {
	most := time.Millisecond << min(attempt, 6)
	timer := time.NewTimer(most/2 + rand.N(most/2))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// View runs fn in a REPEATABLE READ, READ ONLY transaction: one snapshot, which never conflicts.
func (s *Store) View(ctx context.Context, fn func(storage.ReadTx) error) error {
	bounded, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ltx, err := s.beginLazy(bounded, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
	if err != nil {
		return dbError(ctx, "begin", err)
	}
	t := &txn{ctx: bounded, outer: ctx, tx: ltx}
	err = fn(t)
	if t.failed != nil {
		err = t.failed
	}
	// Nothing to commit: ending the transaction is all.
	ltx.rollback(bounded)
	return err
}
