package bolt

import (
	"context"

	"go.etcd.io/bbolt"

	"github.com/mcert/mcert/storage"
)

// Dump reads every record in one read transaction, bucket by bucket, in the order of their
// keys: events, keyed by their number, oldest first.
func (s *Store) Dump(ctx context.Context, fn func(storage.Record) error) error {
	return s.read(ctx, func(tx *bbolt.Tx) error {
		for _, each := range []func(*bbolt.Tx, func(storage.Record) error) error{
			dump(challenges, func(v storage.Challenge) storage.Record { return storage.Record{Challenge: &v} }),
			dump(sessions, func(v storage.Session) storage.Record { return storage.Record{Session: &v} }),
			dump(accounts, func(v storage.Account) storage.Record { return storage.Record{Account: &v} }),
			dump(bindings, func(v storage.Binding) storage.Record { return storage.Record{Binding: &v} }),
			dump(devices, func(v storage.Device) storage.Record { return storage.Record{Device: &v} }),
			dump(clients, func(v storage.Client) storage.Record { return storage.Record{Client: &v} }),
			dump(logins, func(v storage.Login) storage.Record { return storage.Record{Login: &v} }),
			dump(tokens, func(v storage.Token) storage.Record { return storage.Record{Token: &v} }),
			dump(secrets, func(v secret) storage.Record {
				return storage.Record{Secret: &storage.NamedSecret{Name: v.Name, Value: v.Value}}
			}),
			dump(signingKeys, func(v storage.SigningKey) storage.Record { return storage.Record{SigningKey: &v} }),
			dump(certificates, func(v storage.Certificate) storage.Record { return storage.Record{Certificate: &v} }),
			dump(tickets, func(v storage.Ticket) storage.Record { return storage.Record{Ticket: &v} }),
			dump(mails, func(v storage.Mail) storage.Record { return storage.Record{Mail: &v} }),
			dump(events, func(v storage.Event) storage.Record { return storage.Record{Event: &v} }),
		} {
			if err := each(tx, fn); err != nil {
				return err
			}
		}
		return nil
	})
}

// dump reads the table's records one by one, so that a large store is never all in memory.
func dump[T any, R record](tb table[T, R], record func(T) storage.Record) func(*bbolt.Tx, func(storage.Record) error) error {
	return func(tx *bbolt.Tx, fn func(storage.Record) error) error {
		return tx.Bucket([]byte(tb.bucket)).ForEach(func(key, data []byte) error {
			v, err := tb.decode(key, data)
			if err != nil {
				return err
			}
			return fn(record(v))
		})
	}
}
