package bolt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mcert/mcert/storage"
	"github.com/mcert/mcert/storage/conformance"
)

func TestConformance(t *testing.T) {
	conformance.Run(t, func(t *testing.T) storage.Store {
		return open(t, filepath.Join(t.TempDir(), "mcert.db"), Options{})
	})
}

func TestOpenLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcert.db")
	open(t, path, Options{})
	_, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "in use by another mcert process") {
		t.Errorf("Open of a locked file: got %v, want an error saying another mcert process uses it", err)
	}
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcert.db")
	s := open(t, path, Options{})
	d := seedDevice(t, s)
	first, err := addEvent(s, storage.Event{Type: "bind"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, Options{})
	got, err := storage.Get(context.Background(), s, func(tx storage.ReadTx) (storage.Device, error) { return tx.DeviceByCredential(d.CredentialID) })
	if err != nil || got.ID != d.ID || got.SignCount != d.SignCount {
		t.Errorf("after reopening: got %+v and %v, want device %s", got, err, d.ID)
	}
	// The event sequence goes on where it was.
	if e, err := addEvent(s, storage.Event{Type: "login"}); err != nil || e.ID <= first.ID {
		t.Errorf("AppendEvent after reopening: got ID %q and %v, want an ID after %q", e.ID, err, first.ID)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestOpenFillsNewIndex checks that an index a newer mcert adds finds the records the data file
// already holds: here, devices bound before devices_by_token existed.
func TestOpenFillsNewIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcert.db")
	s := open(t, path, Options{})
	d := seedDevice(t, s)
	err := s.db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte(devicesByToken)) })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, Options{})
	got, err := storage.Get(context.Background(), s, func(tx storage.ReadTx) (storage.Device, error) { return tx.DeviceByToken(d.TokenHash) })
	if err != nil || got.ID != d.ID {
		t.Errorf("DeviceByToken after reopening: got %+v and %v, want device %s", got, err, d.ID)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestOpenDeletesRetiredBuckets opens a data file of an older mcert, with an index this one
// no longer keeps: the bucket goes, and what it held is no longer paid for.
func TestOpenDeletesRetiredBuckets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcert.db")
	s := open(t, path, Options{})
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte(retiredBuckets[0]))
		if err != nil {
			return err
		}
		return b.Put([]byte("account\x00key"), []byte("login"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, Options{})
	err = s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte(retiredBuckets[0])) != nil {
			return errors.New("the retired bucket is still there")
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestEventCursorForm checks which cursors Events takes: only 16 lowercase hex digits, the form
// of the IDs it hands out, whether or not an event has that ID.
func TestEventCursorForm(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "mcert.db"), Options{})
	tests := []struct {
		name   string
		before string
		ok     bool
	}{
		{"Unknown", "00000000000000ff", true},
		{"Largest", "ffffffffffffffff", true},
		{"Uppercase", "00000000000000FF", false},
		{"Short", "0000000000000ff", false},
		{"Long", "000000000000000ff", false},
		{"NotHex", "000000000000000g", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := storage.Get(context.Background(), s, func(tx storage.ReadTx) ([]storage.Event, error) { return tx.Events("", tc.before, 10) })
			if tc.ok && err != nil || !tc.ok && !errors.Is(err, storage.ErrBadCursor) {
				t.Errorf("Events before %q: got %v, want ok %v", tc.before, err, tc.ok)
			}
		})
	}
}

func TestWriteToIsAWorkingCopy(t *testing.T) {
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "mcert.db"), Options{})
	d := seedDevice(t, s)
	f, err := os.Create(filepath.Join(dir, "copy.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	c := open(t, filepath.Join(dir, "copy.db"), Options{})
	if got, err := storage.Get(context.Background(), c, func(tx storage.ReadTx) (storage.Device, error) { return tx.Device(d.ID) }); err != nil || got.ID != d.ID {
		t.Errorf("the copy has %+v, %v; want device %s", got, err, d.ID)
	}
	if err := c.Check(); err != nil {
		t.Errorf("Check of the copy: %v", err)
	}
}

func open(tb testing.TB, path string, opts Options) *Store {
	tb.Helper()
	s, err := Open(path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

// seedDevice binds one device the way mcert does, through a pending binding.
func seedDevice(tb testing.TB, s *Store) storage.Device {
	tb.Helper()
	ctx := context.Background()
	now := time.Now()
	b := storage.Binding{ID: "binding", TokenHash: []byte("token hash"), AccountID: "account", Status: storage.BindingPending, CreatedAt: now, ExpiresAt: now.Add(2 * time.Minute)}
	d := storage.Device{ID: "device", AccountID: "account", CredentialID: []byte("credential"), PublicKey: []byte("cose key"), SignCount: 3, TokenHash: []byte("device token hash"), Status: storage.DeviceActive, CreatedAt: now, ExpiresAt: now.AddDate(1, 0, 0)}
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.CreateBinding(b) }); err != nil {
		tb.Fatal(err)
	}
	if err := s.Update(ctx, func(tx storage.Tx) error { return bind(tx, b.ID, d) }); err != nil {
		tb.Fatal(err)
	}
	return d
}

// bind binds d through the binding as the phone's finish does: the binding's put and the
// device's create in one transaction.
func bind(tx storage.Tx, bindingID string, d storage.Device) error {
	b, err := tx.Binding(bindingID)
	if err != nil {
		return err
	}
	b.Status, b.DeviceID = storage.BindingBound, d.ID
	if err := tx.PutBinding(b); err != nil {
		return err
	}
	return tx.CreateDevice(d)
}

// addEvent appends e in a transaction of its own.
func addEvent(s *Store, e storage.Event) (storage.Event, error) {
	var got storage.Event
	err := s.Update(context.Background(), func(tx storage.Tx) error {
		var err error
		got, err = tx.AppendEvent(e)
		return err
	})
	return got, err
}

// TestClientsOfOlderDataAreEnabled reads a client as an mcert before Disabled wrote it: without
// the field, it is enabled.
func TestClientsOfOlderDataAreEnabled(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "mcert.db"), Options{})
	old := `{"v":1,"id":"rp","secret_hash":null,"name":"臺灣雲市集","redirect_uris":["https://rp.example/cb"],` +
		`"post_logout_redirect_uris":null,"citizen_id":true,"ciba":false,"created_at":"2026-03-01T09:00:00Z"}`
	if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte(clients.bucket)).Put([]byte("rp"), []byte(old)) }); err != nil {
		t.Fatal(err)
	}
	c, err := storage.Get(context.Background(), s, func(tx storage.ReadTx) (storage.Client, error) { return tx.Client("rp") })
	if err != nil || c.Disabled || c.Name != "臺灣雲市集" || !c.CitizenID {
		t.Fatalf("read %+v and %v, want the enabled client", c, err)
	}
	c.Disabled = true
	if data, _ := json.Marshal(toClient(c)); !strings.Contains(string(data), `"disabled":true`) {
		t.Errorf("a disabled client is written %s", data)
	}
}

// TestOpenIndexesTokensByClient opens a data file of an mcert before tokens_by_client: the
// tokens it holds are found by it, so deleting their client deletes them.
func TestOpenIndexesTokensByClient(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mcert.db")
	s := open(t, path, Options{})
	tok := storage.Token{ID: "token", ClientID: "rp", AccountID: "account", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.CreateClient(storage.Client{ID: "rp", Name: "臺灣雲市集", CreatedAt: time.Now()}); err != nil {
			return err
		}
		return tx.CreateToken(tok)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte(tokensByClient)) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, Options{})
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.DeleteClient("rp") }); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.Get(ctx, s, func(tx storage.ReadTx) (storage.Token, error) { return tx.Token(tok.ID) }); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the token of the deleted client: %v, want ErrNotFound", err)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestOpenIndexesDevicesByExpiry opens a data file of an mcert before devices_by_expiry: Open
// indexes the devices it holds, so that ExpiringDevices finds them, and the index follows a
// device's expiry from then on.
func TestOpenIndexesDevicesByExpiry(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mcert.db")
	s := open(t, path, Options{})
	d := seedDevice(t, s)
	if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte(devicesByExpiry)) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, Options{})
	expiring := func(to time.Time) ([]storage.Device, error) {
		return storage.Get(ctx, s, func(tx storage.ReadTx) ([]storage.Device, error) { return tx.ExpiringDevices(time.Time{}, "", to, 10) })
	}
	if got, err := expiring(d.ExpiresAt.Add(time.Second)); err != nil || len(got) != 1 || got[0].ID != d.ID {
		t.Fatalf("ExpiringDevices after reopening: got %+v and %v, want device %s", got, err, d.ID)
	}
	renewed := d.ExpiresAt.AddDate(1, 0, 0)
	if err := s.Update(ctx, func(tx storage.Tx) error {
		d, err := tx.Device(d.ID)
		if err != nil {
			return err
		}
		d.ExpiresAt = renewed
		return tx.PutDevice(d)
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := expiring(d.ExpiresAt.Add(time.Second)); err != nil || len(got) != 0 {
		t.Errorf("ExpiringDevices before the renewed expiry: got %d devices and %v, want none", len(got), err)
	}
	if got, err := expiring(renewed.Add(time.Second)); err != nil || len(got) != 1 {
		t.Errorf("ExpiringDevices to after the renewed expiry: got %d devices and %v, want 1", len(got), err)
	}
	if n := entries(t, s, devicesByExpiry); n != 1 {
		t.Errorf("devices_by_expiry holds %d entries, want 1", n)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestMailsPendingIndex checks that mails_pending holds the pending mails alone, so that
// DueMails never reads a sent mail: a mail leaves it when it is sent or given up.
func TestMailsPendingIndex(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "mcert.db"), Options{})
	now := time.Now()
	err := s.Update(ctx, func(tx storage.Tx) error {
		for i := range 5 {
			m := storage.Mail{ID: fmt.Sprint("mail-", i), AccountID: "account", To: "ming@example.tw", Notice: "verify-email", CreatedAt: now, NextAt: now}
			if i >= 3 {
				m.SentAt = &now
			}
			if err := tx.CreateMail(m); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := entries(t, s, mailsPending); n != 3 {
		t.Fatalf("mails_pending holds %d entries for 3 pending mails", n)
	}
	for i, change := range []func(*storage.Mail){
		func(m *storage.Mail) { m.NextAt = now.Add(time.Minute) }, // moves
		func(m *storage.Mail) { m.SentAt = &now },                 // leaves
		func(m *storage.Mail) { m.FailedAt = &now },               // leaves
	} {
		if err := s.Update(ctx, func(tx storage.Tx) error {
			m, err := tx.Mail(fmt.Sprint("mail-", i))
			if err != nil {
				return err
			}
			change(&m)
			return tx.PutMail(m)
		}); err != nil {
			t.Fatal(err)
		}
	}
	if n := entries(t, s, mailsPending); n != 1 {
		t.Errorf("mails_pending holds %d entries for the one pending mail", n)
	}
	if n := entries(t, s, mails.bucket); n != 5 {
		t.Errorf("mails holds %d mails, want 5", n)
	}
}

// entries counts the keys in the named bucket.
func entries(t *testing.T, s *Store, bucket string) int {
	t.Helper()
	n := 0
	if err := s.db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket([]byte(bucket)).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAccountsOfOlderDataAreUnverified reads an account as an mcert before EmailVerified and
// Lang wrote it, in format 1: its email is unverified, its language the default.
func TestAccountsOfOlderDataAreUnverified(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "mcert.db"), Options{})
	old := `{"v":1,"id":"account","citizen_id":"A123456789","name":"王小明","email":"ming@example.tw","phone":"",` +
		`"webauthn_id":null,"status":"active","created_at":"2026-03-01T09:00:00Z","updated_at":"2026-03-01T09:00:00Z"}`
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket([]byte(accounts.bucket)).Put([]byte("account"), []byte(old))
	}); err != nil {
		t.Fatal(err)
	}
	a, err := storage.Get(context.Background(), s, func(tx storage.ReadTx) (storage.Account, error) { return tx.Account("account") })
	if err != nil || a.EmailVerified || a.Lang != "" || a.Email != "ming@example.tw" {
		t.Fatalf("read %+v and %v, want the account with its email unverified and no language", a, err)
	}
}
