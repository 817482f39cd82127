package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/mcert/mcert/storage"
)

// Dump reads every record in one REPEATABLE READ, READ ONLY transaction, table by table in
// the order of storage.Kinds, each in the order of its primary key (events: oldest first),
// streaming the rows so that a large store is never all in memory. Only beginning is bounded
// by Options.Timeout: a dump of a national service's store takes longer than any request,
// and fn writes to another store between rows, so the transaction lifts this session's
// statement and idle timeouts for itself.
func (s *Store) Dump(ctx context.Context, fn func(storage.Record) error) error {
	bounded, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ptx, err := s.pool.BeginTx(bounded, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return dbError(ctx, "begin the dump", err)
	}
	defer func() { _ = ptx.Rollback(context.WithoutCancel(bounded)) }()
	if _, err := ptx.Exec(ctx, "SET LOCAL statement_timeout = 0; SET LOCAL idle_in_transaction_session_timeout = 0"); err != nil {
		return dbError(ctx, "begin the dump", err)
	}
	for _, each := range []func() error{
		dump(ctx, ptx, challenges, "hash", func(v storage.Challenge) error { return fn(storage.Record{Challenge: &v}) }),
		dump(ctx, ptx, sessions, "hash", func(v storage.Session) error { return fn(storage.Record{Session: &v}) }),
		dump(ctx, ptx, accounts, "id", func(v storage.Account) error { return fn(storage.Record{Account: &v}) }),
		dump(ctx, ptx, bindings, "id", func(v storage.Binding) error { return fn(storage.Record{Binding: &v}) }),
		dump(ctx, ptx, devices, "id", func(v storage.Device) error { return fn(storage.Record{Device: &v}) }),
		dump(ctx, ptx, clients, "id", func(v storage.Client) error { return fn(storage.Record{Client: &v}) }),
		dump(ctx, ptx, logins, "hash", func(v storage.Login) error { return fn(storage.Record{Login: &v}) }),
		dump(ctx, ptx, tokens, "id", func(v storage.Token) error { return fn(storage.Record{Token: &v}) }),
		dump(ctx, ptx, secrets, "name", func(v storage.NamedSecret) error { return fn(storage.Record{Secret: &v}) }),
		dump(ctx, ptx, signingKeys, "id", func(v storage.SigningKey) error { return fn(storage.Record{SigningKey: &v}) }),
		dump(ctx, ptx, certificates, "serial", func(v storage.Certificate) error { return fn(storage.Record{Certificate: &v}) }),
		dump(ctx, ptx, tickets, "hash", func(v storage.Ticket) error { return fn(storage.Record{Ticket: &v}) }),
		dump(ctx, ptx, mails, "id", func(v storage.Mail) error { return fn(storage.Record{Mail: &v}) }),
		func() error {
			return each(ctx, ptx, "dump events", scanEvent, "SELECT "+eventColumns+" FROM events ORDER BY id",
				func(v storage.Event) error { return fn(storage.Record{Event: &v}) })
		},
	} {
		if err := each(); err != nil {
			return err
		}
	}
	return nil
}

// dump is the step of Dump that reads one table, ordered by key.
func dump[T any](ctx context.Context, tx pgx.Tx, tb *table[T], key string, fn func(T) error) func() error {
	return func() error {
		return each(ctx, tx, "dump "+tb.name, tb.scan, "SELECT "+tb.read+" FROM "+tb.name+" ORDER BY "+key, fn)
	}
}

// each calls fn with every row a query finds, as it arrives. An error of fn's is returned as
// it is.
func each[T any](ctx context.Context, tx pgx.Tx, what string, scan func(pgx.Row) (T, error), sql string, fn func(T) error) error {
	rows, err := tx.Query(ctx, sql)
	if err != nil {
		return dbError(ctx, what, err)
	}
	defer rows.Close()
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return dbError(ctx, what, err)
		}
		if err := fn(v); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return dbError(ctx, what, err)
	}
	return nil
}
