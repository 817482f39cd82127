package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/storage"
)

// TestDevelopmentModeOnEveryStart starts a server three times on one data directory: twice in
// development mode, each start warning of it, then with a card CA, which removes the demo
// relying party that development mode registered, and says so; a fourth start has nothing
// left to remove.
func TestDevelopmentModeOnEveryStart(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := authn.LoadOrCreateDevCA(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "card-ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	start := func(production bool) (*server, string) {
		t.Helper()
		var logs syncBuffer
		s := startServer(t, func(c *Config) {
			c.DataDir, c.Logger = dir, slog.New(slog.NewTextHandler(&logs, nil))
			if production {
				c.CardCA, c.CardRevocation = caFile, "none"
			}
		})
		return s, logs.String()
	}
	const warning = "development mode: cards of the development card CA are trusted"
	const removed = "removed the demo relying party"
	for range 2 {
		s, log := start(false)
		if !strings.Contains(log, "level=WARN msg=\""+warning) {
			t.Errorf("a start in development mode does not warn of it:\n%s", log)
		}
		if _, err := storage.Get(context.Background(), s.store, func(tx storage.ReadTx) (storage.Client, error) { return tx.Client(provider.DemoClientID) }); err != nil {
			t.Fatalf("the demo relying party in development mode: %v", err)
		}
		s.browser(t).do("GET", "/demo", nil).want(t, 200)
		s.stop()
	}

	s, log := start(true)
	if strings.Contains(log, warning) || !strings.Contains(log, removed) {
		t.Errorf("the first start with --card-ca:\n%s", log)
	}
	if _, err := storage.Get(context.Background(), s.store, func(tx storage.ReadTx) (storage.Client, error) { return tx.Client(provider.DemoClientID) }); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the demo relying party after a start with --card-ca: %v", err)
	}
	s.browser(t).do("GET", "/demo", nil).want(t, 404)
	if events := ofType(s.auditEvents(t), "admin_client_delete"); len(events) != 1 || events[0]["client_id"] != provider.DemoClientID {
		t.Errorf("audit log of the removal: %v", events)
	}
	s.stop()
	if _, log := start(true); strings.Contains(log, removed) {
		t.Errorf("a later start with --card-ca says it removed the demo again:\n%s", log)
	}
}
