package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mcert/mcert/storage"
)

// GarbageCollect collects on one connection that holds the collection lock, so that of the
// instances sharing the database one collects at a time, and the others, finding the lock
// taken, return at once. It deletes in rounds of one transaction each, at most p.Batch
// records a round, until a round finds less than that to do. Each round is bounded by
// Options.Timeout; ctx bounds the whole.
func (s *Store) GarbageCollect(ctx context.Context, p storage.GCPolicy) (storage.GCResult, error) {
	batch := p.Batch
	if batch <= 0 {
		batch = storage.DefaultGCBatch
	}
	var total storage.GCResult
	bounded, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	conn, err := s.pool.Acquire(bounded)
	if err != nil {
		return total, dbError(ctx, "collect garbage", err)
	}
	var locked bool
	if err := conn.QueryRow(bounded, "SELECT pg_try_advisory_lock($1)", collectLock).Scan(&locked); err != nil {
		conn.Release()
		return total, dbError(ctx, "take the collection lock", err)
	}
	if !locked {
		conn.Release()
		return total, nil
	}
	defer s.unlock(conn, collectLock)
	for {
		round, err := s.collectRound(ctx, conn, p, batch)
		total.Add(round)
		if err != nil || round.Total() < batch {
			return total, err
		}
	}
}

// unlock releases a session's advisory lock and its connection. A connection that could not
// release the lock is closed instead, which releases it too: the pool must not keep a
// connection holding a lock that no one will release.
func (s *Store) unlock(conn *pgxpool.Conn, key int64) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
		_ = conn.Hijack().Close(ctx)
		return
	}
	conn.Release()
}

// collectRound deletes up to budget records in one transaction, table by table, oldest
// first. It runs READ COMMITTED: each DELETE sees what was committed before it and takes no
// predicate locks, so the store's SERIALIZABLE writers conflict with it only over the rows it
// deletes; and SKIP LOCKED leaves a row a writer holds to the next collection rather than
// wait for it.
func (s *Store) collectRound(ctx context.Context, conn *pgxpool.Conn, p storage.GCPolicy, budget int) (storage.GCResult, error) {
	var r storage.GCResult
	bounded, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	steps := []struct {
		count  *int
		table  string
		key    string // the primary key's columns
		where  string // what is due, of a time $1
		order  string
		before time.Time
	}{
		{&r.Challenges, "challenges", "hash", "expires_ns < $1", "expires_ns", p.ExpiredBefore},
		{&r.Sessions, "sessions", "hash", "expires_ns < $1", "expires_ns", p.ExpiredBefore},
		{&r.Bindings, "bindings", "id", "expires_ns < $1", "expires_ns", p.ExpiredBefore},
		{&r.Logins, "logins", "hash", "expires_ns < $1", "expires_ns", p.ExpiredBefore},
		{&r.Tokens, "tokens", "id", "expires_ns < $1", "expires_ns", p.ExpiredBefore},
		{&r.SigningKeys, "signing_keys", "id", "retire_ns < $1", "retire_ns", p.ExpiredBefore},
		{&r.Tickets, "tickets", "hash", "expires_ns < $1", "expires_ns", p.ExpiredBefore},
		// A window that starts at the cutoff or later cannot have ended before it: the primary
		// key's first column bounds the scan.
		{&r.RateLimits, "rate_limits", "window_start_ns, window_end_ns, key", "window_start_ns < $1 AND window_end_ns < $1", "window_start_ns", p.ExpiredBefore},
		{&r.Events, "events", "id", "time_ns < $1", "time_ns", p.EventsBefore},
		{&r.Mails, "mails", "id", "created_ns < $1", "created_ns", p.EventsBefore},
	}
	err := pgx.BeginTxFunc(bounded, conn, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		for _, step := range steps {
			left := budget - r.Total()
			if left <= 0 {
				break
			}
			if step.before.IsZero() { // nothing is before it: EventsBefore's zero keeps every event and mail
				continue
			}
			sql := fmt.Sprintf("DELETE FROM %[1]s WHERE (%[2]s) IN (SELECT %[2]s FROM %[1]s WHERE %[3]s ORDER BY %[4]s LIMIT $2 FOR UPDATE SKIP LOCKED)",
				step.table, step.key, step.where, step.order)
			tag, err := tx.Exec(bounded, sql, cutoff(step.before), left)
			if err != nil {
				return fmt.Errorf("collect %s: %w", step.table, err)
			}
			*step.count = int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		return storage.GCResult{}, dbError(ctx, "collect garbage", err)
	}
	return r, nil
}
