package seal_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcert/mcert/seal"
	"github.com/mcert/mcert/storage"
	"github.com/mcert/mcert/storage/bolt"
)

// TestMailParamsSealed: a queued mail's parameters, which hold its links' tokens, are sealed
// in the store and opened through the wrapped one, in every way a mail is read.
func TestMailParamsSealed(t *testing.T) {
	ctx := context.Background()
	plain, err := bolt.Open(filepath.Join(t.TempDir(), "mcert.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	sealer, _, err := seal.LoadOrCreate(filepath.Join(t.TempDir(), "mcert.key"))
	if err != nil {
		t.Fatal(err)
	}
	store := seal.Store(plain, sealer)
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	params := []byte(`{"link":"https://mcert.example.tw/email/verify?t=live-token"}`)
	m := storage.Mail{ID: "mail-1", Key: "k", AccountID: "account-1", To: "wang@example.tw", Notice: "verify-email", Params: params, CreatedAt: now, NextAt: now}
	if err := store.Update(ctx, func(tx storage.Tx) error { return tx.CreateMail(m) }); err != nil {
		t.Fatal(err)
	}
	raw, err := storage.Get(ctx, plain, func(tx storage.ReadTx) (storage.Mail, error) { return tx.Mail("mail-1") })
	if err != nil || !seal.IsSealed(raw.Params) || bytes.Contains(raw.Params, []byte("live-token")) {
		t.Fatalf("stored params %q (%v): not sealed", raw.Params, err)
	}
	reads := map[string]func(storage.ReadTx) ([]storage.Mail, error){
		"Mail": func(tx storage.ReadTx) ([]storage.Mail, error) {
			m, err := tx.Mail("mail-1")
			return []storage.Mail{m}, err
		},
		"MailByKey": func(tx storage.ReadTx) ([]storage.Mail, error) {
			m, err := tx.MailByKey("k")
			return []storage.Mail{m}, err
		},
		"Mails":    func(tx storage.ReadTx) ([]storage.Mail, error) { return tx.Mails("account-1") },
		"DueMails": func(tx storage.ReadTx) ([]storage.Mail, error) { return tx.DueMails(now, 10) },
	}
	for name, read := range reads {
		got, err := storage.Get(ctx, store, read)
		if err != nil || len(got) != 1 || !bytes.Equal(got[0].Params, params) {
			t.Errorf("%s: %v, %v", name, got, err)
		}
	}
	// Sent, it keeps none, and reads so.
	m.SentAt, m.Params = &now, nil
	if err := store.Update(ctx, func(tx storage.Tx) error { return tx.PutMail(m) }); err != nil {
		t.Fatal(err)
	}
	if got, err := storage.Get(ctx, store, func(tx storage.ReadTx) (storage.Mail, error) { return tx.Mail("mail-1") }); err != nil || got.Params != nil {
		t.Fatalf("a sent mail: %q, %v", got.Params, err)
	}
}
