package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lazyTx is a transaction that begins with its first statement, in the same round trip: BEGIN
// and the statement go in one pipeline (PostgreSQL keeps the transaction open after the
// pipeline's Sync, since it began explicitly). A login's transactions are a few statements
// each, so the round trip pgx's BeginTx spends on BEGIN alone was a fifth of them all; and a
// transaction that reads nothing costs none.
type lazyTx struct {
	conn  *pgxpool.Conn
	begin string // the BEGIN statement, until it is sent
}

func (s *Store) beginLazy(ctx context.Context, begin string) (*lazyTx, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &lazyTx{conn: conn, begin: begin}, nil
}

// started sends the batch b, preceded by BEGIN if the transaction has not begun, and returns
// its results with BEGIN's read.
func (t *lazyTx) started(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if t.begin == "" {
		return t.conn.SendBatch(ctx, b)
	}
	b.QueuedQueries = append([]*pgx.QueuedQuery{{SQL: t.begin}}, b.QueuedQueries...)
	t.begin = ""
	br := t.conn.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		return failedBatch{br, err}
	}
	return br
}

func (t *lazyTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return t.started(ctx, b)
}

func (t *lazyTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t.begin == "" {
		return t.conn.Exec(ctx, sql, args...)
	}
	var b pgx.Batch
	b.Queue(sql, args...)
	br := t.started(ctx, &b)
	tag, err := br.Exec()
	return tag, errors.Join(err, closeUnlessFailed(br, err))
}

func (t *lazyTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if t.begin == "" {
		return t.conn.QueryRow(ctx, sql, args...)
	}
	var b pgx.Batch
	b.Queue(sql, args...)
	br := t.started(ctx, &b)
	return batchRow{br.QueryRow(), br}
}

func (t *lazyTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t.begin == "" {
		return t.conn.Query(ctx, sql, args...)
	}
	var b pgx.Batch
	b.Queue(sql, args...)
	br := t.started(ctx, &b)
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return batchRows{rows, br}, nil
}

// commit commits a transaction that began; PostgreSQL answers COMMIT of a failed transaction
// with ROLLBACK, which pgx's Tx reports as ErrTxCommitRollback, and so does this.
func (t *lazyTx) commit(ctx context.Context) error {
	defer t.conn.Release()
	if t.begin != "" {
		return nil
	}
	tag, err := t.conn.Exec(ctx, "COMMIT")
	if err == nil && tag.String() == "ROLLBACK" {
		err = pgx.ErrTxCommitRollback
	}
	return err
}

// rollback ends the transaction and gives the connection back; the pool closes a connection
// left inside a transaction (a ROLLBACK that failed), and PostgreSQL then rolls back.
func (t *lazyTx) rollback(ctx context.Context) {
	if t.begin == "" {
		_, _ = t.conn.Exec(ctx, "ROLLBACK")
	}
	t.conn.Release()
}

// failedBatch answers every read with the error of the BEGIN before them.
type failedBatch struct {
	pgx.BatchResults
	err error
}

func (f failedBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, f.err }
func (f failedBatch) Query() (pgx.Rows, error)         { return nil, f.err }
func (f failedBatch) QueryRow() pgx.Row                { return errRow{f.err} }
func (f failedBatch) Close() error                     { return errors.Join(f.err, f.BatchResults.Close()) }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// batchRow is the row of a one-statement batch, which its Scan closes.
type batchRow struct {
	row pgx.Row
	br  pgx.BatchResults
}

func (r batchRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	return errors.Join(err, closeUnlessFailed(r.br, err))
}

// batchRows are the rows of a one-statement batch, which their Close closes.
type batchRows struct {
	pgx.Rows
	br pgx.BatchResults
}

func (r batchRows) Close() {
	r.Rows.Close()
	r.br.Close()
}

// closeUnlessFailed closes the batch and returns the error closing it found, unless err, the
// statement's, already told it: Close repeats the first error of the batch.
func closeUnlessFailed(br pgx.BatchResults, err error) error {
	cerr := br.Close()
	if err != nil {
		return nil
	}
	return cerr
}
