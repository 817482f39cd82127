package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/mcert/mcert/storage"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/storage/bolt"
)

// runMcert runs the command line in-process and fails unless it exits with wantStatus; it
// returns what the command wrote to stdout and stderr.
func runMcert(t *testing.T, wantStatus int, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if got := run(context.Background(), args, &stdout, &stderr); got != wantStatus {
		t.Fatalf("mcert %v: status %d, want %d\nstdout: %s\nstderr: %s", args, got, wantStatus, stdout.String(), stderr.String())
	}
	return stdout.String() + stderr.String()
}

// citizenIDs are n valid national IDs other than boundCitizen's, all masked as A12****789 as
// registerAndShowQR expects.
func citizenIDs(n int) []string {
	var ids []string
	for i := 0; i < 10000 && len(ids) < n; i++ {
		id := fmt.Sprintf("A12%04d789", i)
		if authn.ValidateCitizenID(id) == nil && id != "A123456789" {
			ids = append(ids, id)
		}
	}
	return ids
}

// openChecked opens a data file as the server would and fails the test unless it passes
// bbolt's consistency check. The caller closes it.
func openChecked(t testing.TB, path string) *bolt.Store {
	t.Helper()
	store, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Check(); err != nil {
		store.Close()
		t.Fatal(err)
	}
	return store
}

// holdsDevices fails the test unless the data file at path is sound and holds every device.
func holdsDevices(t *testing.T, path string, devices []string) {
	t.Helper()
	store := openChecked(t, path)
	defer store.Close()
	for _, id := range devices {
		if _, err := storage.Get(context.Background(), store, func(tx storage.ReadTx) (storage.Device, error) { return tx.Device(id) }); err != nil {
			t.Errorf("%s lacks device %s, bound before the backup began: %v", path, id, err)
		}
	}
}

func TestBackupWhileBinding(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	var mu sync.Mutex
	bound := []string{ph.Phone.Credentials()[0].DeviceID}
	dir := t.TempDir()

	t.Run("concurrently", func(t *testing.T) {
		done := make(chan struct{})
		t.Run("binds", func(t *testing.T) {
			t.Parallel()
			defer close(done)
			for _, id := range citizenIDs(6) {
				e := registerAndShowQR(t, s, s.issueCard(t, "王小明", id, authn.IssueOptions{}))
				p, err := phone.Open(filepath.Join(t.TempDir(), "phone.json"))
				if err != nil {
					t.Fatal(err)
				}
				res, err := (&phone.Client{Phone: p}).Bind(context.Background(), e.binding["qr_text"].(string), "Pixel 8", phone.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				bound = append(bound, res.DeviceID)
				mu.Unlock()
			}
		})
		t.Run("backups", func(t *testing.T) {
			t.Parallel()
			for i := 0; ; i++ {
				mu.Lock()
				before := slices.Clone(bound)
				mu.Unlock()
				out := filepath.Join(dir, fmt.Sprintf("backup-%d.db", i))
				runMcert(t, 0, "backup", "--server", s.PublicURL, "--data", s.Config.DataDir, "--out", out)
				holdsDevices(t, out, before)
				select {
				case <-done:
					t.Logf("%d backups while binding", i+1)
					return
				default:
				}
			}
		})
	})
}

func TestBackupRefusals(t *testing.T) {
	s := startServer(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "mcert.backup")

	s.refused(t, s.browser(t), "GET", "/api/v1/admin/backup", nil, 401, "admin_token_required")
	if msg := runMcert(t, 1, "backup", "--server", s.PublicURL, "--admin-token", "wrong", "--out", out); !strings.Contains(msg, "HTTP 401") || !strings.Contains(msg, "--admin-token") {
		t.Errorf("backup with a wrong token says: %s", msg)
	}
	if msg := runMcert(t, 1, "backup", "--server", "http://127.0.0.1:1", "--admin-token", "x", "--out", out); !strings.Contains(msg, "check --server") {
		t.Errorf("backup without a server says: %s", msg)
	}
	runMcert(t, 2, "backup", "--server", s.PublicURL, "--out", out) // no token from anywhere

	r := s.admin(t)("GET", "/api/v1/admin/backup", nil).want(t, 200)
	if ct, cd := r.Header.Get("Content-Type"), r.Header.Get("Content-Disposition"); ct != "application/octet-stream" || cd != `attachment; filename="mcert-20260301T090000Z.db"` {
		t.Errorf("backup answered with Content-Type %q, Content-Disposition %q", ct, cd)
	}

	// An existing file is replaced only when asked to.
	if err := os.WriteFile(out, []byte("an older backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	if msg := runMcert(t, 1, "backup", "--server", s.PublicURL, "--data", s.Config.DataDir, "--out", out); !strings.Contains(msg, "--force") {
		t.Errorf("backup over an existing file says: %s", msg)
	}
	if data, _ := os.ReadFile(out); string(data) != "an older backup" {
		t.Fatal("a refused backup changed the existing file")
	}
	runMcert(t, 0, "backup", "--server", s.PublicURL, "--data", s.Config.DataDir, "--out", out, "--force")
	openChecked(t, out).Close()
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("backups left files behind: %v", entries)
	}
}

// serveDir runs `mcert serve` in-process on the data directory dir until the test ends, and
// returns its URL.
func serveDir(t *testing.T, dir string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	status := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		status <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data", dir}, w, &stderr)
		w.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if got := <-status; got != 0 {
			t.Errorf("mcert serve: status %d: %s", got, stderr.String())
		}
	})
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if url, ok := strings.CutPrefix(lines.Text(), "mcert is serving at "); ok {
			go io.Copy(io.Discard, out) // the server's log, until it stops
			return url
		}
	}
	t.Fatal("mcert serve stopped before serving")
	return ""
}

func TestRestore(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	deviceID := ph.Phone.Credentials()[0].DeviceID
	backup := filepath.Join(t.TempDir(), "mcert.backup")
	runMcert(t, 0, "backup", "--server", s.PublicURL, "--data", s.Config.DataDir, "--out", backup)

	if msg := runMcert(t, 1, "restore", "--data", s.Config.DataDir, "--from", backup, "--force"); !strings.Contains(msg, "a server is running") || !strings.Contains(msg, "stop it first") {
		t.Errorf("restore onto a running server says: %s", msg)
	}
	if left, _ := filepath.Glob(filepath.Join(s.Config.DataDir, "*mcert.db*")); len(left) != 1 {
		t.Errorf("a refused restore left files behind: %v", left)
	}

	// A restored data directory, given the key file its keys are sealed with, serves the citizen
	// and the phone bound before the backup.
	fresh := t.TempDir()
	runMcert(t, 0, "restore", "--data", fresh, "--from", backup)
	key, err := os.ReadFile(filepath.Join(s.Config.DataDir, "mcert.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fresh, "mcert.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	url := serveDir(t, fresh)
	ca, _, err := authn.LoadOrCreateDevCA(fresh, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := ca.Issue("王小明", "A123456789", authn.IssueOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	card, err := authn.ParseCard(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	b := s.browser(t)
	b.base = url
	b.cardLogin(card)
	devices := b.do("GET", "/api/v1/account", nil).want(t, 200).json(t)["devices"].([]any)
	if len(devices) != 1 || devices[0].(map[string]any)["id"] != deviceID {
		t.Fatalf("the restored server lists devices %v, want %s", devices, deviceID)
	}

	// Over an existing data file: only with --force, never from a damaged file, and the old
	// file is kept.
	dir := t.TempDir()
	live := filepath.Join(dir, "mcert.db")
	runMcert(t, 0, "restore", "--data", dir, "--from", backup)
	before, err := os.ReadFile(live)
	if err != nil {
		t.Fatal(err)
	}
	if msg := runMcert(t, 1, "restore", "--data", dir, "--from", backup); !strings.Contains(msg, "add --force") {
		t.Errorf("restore over a data file without --force says: %s", msg)
	}
	whole, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.backup")
	if err := os.WriteFile(cut, whole[:len(whole)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	if msg := runMcert(t, 1, "restore", "--data", dir, "--from", cut, "--force"); !strings.Contains(msg, "not a usable backup, and nothing was changed") {
		t.Errorf("restore from a damaged file says: %s", msg)
	}
	if after, _ := os.ReadFile(live); !bytes.Equal(before, after) {
		t.Fatal("a refused restore changed the data file")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("a refused restore left files behind: %v", entries)
	}
	if msg := runMcert(t, 0, "restore", "--data", dir, "--from", backup, "--force"); !strings.Contains(msg, "kept as "+live+".before-restore-") {
		t.Errorf("restore --force says: %s", msg)
	}
	kept, _ := filepath.Glob(live + ".before-restore-*")
	if len(kept) != 1 {
		t.Fatalf("kept files %v, want one", kept)
	}
	holdsDevices(t, kept[0], []string{deviceID})
	holdsDevices(t, live, []string{deviceID})
}
