package bolt

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcert/mcert/storage"
)

// TestCompactDropsReplacedValues checks that a value replaced before Compact is in the data file
// no more, while the records and the event sequence are as they were.
func TestCompactDropsReplacedValues(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "mcert.db")
	s := open(t, path, Options{})
	d := seedDevice(t, s)
	first, err := addEvent(s, storage.Event{Type: "bind"})
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("a plain secret that must not survive")
	if _, err := storage.Secret(ctx, s, "key", func() []byte { return bytes.Clone(plain) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.PutSecret("key", []byte("sealed")) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !containsJSONBytes(data, plain) {
		t.Fatal("the replaced value is not in the data file before compacting: this test proves nothing")
	}

	if err := Compact(path); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	if data, err = os.ReadFile(path); err != nil || containsJSONBytes(data, plain) {
		t.Fatalf("the replaced value is still in the data file after compacting (%v)", err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".mcert-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
	s = open(t, path, Options{})
	if v, err := storage.Get(ctx, s, func(tx storage.ReadTx) ([]byte, error) { return tx.Secret("key") }); err != nil || string(v) != "sealed" {
		t.Errorf("secret after compacting: %q, %v", v, err)
	}
	if got, err := storage.Get(ctx, s, func(tx storage.ReadTx) (storage.Device, error) { return tx.DeviceByCredential(d.CredentialID) }); err != nil || got.ID != d.ID {
		t.Errorf("device after compacting: %+v, %v", got, err)
	}
	if e, err := addEvent(s, storage.Event{Type: "login"}); err != nil || e.ID <= first.ID {
		t.Errorf("AppendEvent after compacting: ID %q and %v, want an ID after %q", e.ID, err, first.ID)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// containsJSONBytes reports whether data holds b as encoding/json writes bytes: base64.
func containsJSONBytes(data, b []byte) bool {
	return bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString(b)))
}
