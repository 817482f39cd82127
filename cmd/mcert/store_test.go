package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/storage"
	"github.com/mcert/mcert/storage/postgres/pgtest"
)

// on is the relying party rp, registered on the store of s, as it reaches s2: the same client
// on another server (a copied store, another instance).
func (rp *relyingParty) on(s2 *server) *relyingParty {
	rp.t.Helper()
	p, err := oidc.NewProvider(context.Background(), s2.PublicURL)
	if err != nil {
		rp.t.Fatalf("discovery of %s: %v", s2.PublicURL, err)
	}
	moved := *rp
	moved.s, moved.provider = s2, p
	moved.oauth.Endpoint = p.Endpoint()
	moved.verifier = p.Verifier(&oidc.Config{ClientID: rp.oauth.ClientID})
	return &moved
}

// TestStoreCopy moves a deployment's store into another, bbolt or PostgreSQL: the copy is verified, a second copy
// into it is refused, and a server on the copy serves the citizen and the relying party as
// before, with the audit log kept.
func TestStoreCopy(t *testing.T) {
	for _, dest := range []struct {
		name string
		to   func(t testing.TB) string
	}{
		{"bolt", func(t testing.TB) string { return "bolt:" + filepath.Join(t.TempDir(), "copy.db") }},
		{"postgres", pgtest.URL},
	} {
		t.Run("to "+dest.name, func(t *testing.T) { testStoreCopy(t, dest.to(t)) })
	}
}

func testStoreCopy(t *testing.T, to string) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	rp := s.relyingParty(t, "健保署", provider.ClientSpec{})
	rp.login(ph)
	before, err := s.service.ListEvents(context.Background(), "", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	s.stop()

	from := "bolt:" + filepath.Join(s.Config.DataDir, "mcert.db")
	out := runMcert(t, 0, "store", "copy", "--from", from, "--to", to)
	if !strings.Contains(out, "verified:") || !strings.Contains(out, "accounts 1, ") || !strings.Contains(out, "devices 1, ") {
		t.Fatalf("store copy said:\n%s", out)
	}
	if out := runMcert(t, 1, "store", "copy", "--from", from, "--to", to); !strings.Contains(out, "already holds records") {
		t.Fatalf("a copy into a store that holds records: %s", out)
	}
	for _, args := range [][]string{
		{"--from", from},
		{"--from", from, "--to", from},
		{"--from", "mysql://x", "--to", to},
	} {
		runMcert(t, 2, append([]string{"store", "copy"}, args...)...)
	}

	s2 := startServer(t, func(c *Config) { c.DataDir, c.Store = s.Config.DataDir, to })
	rp.on(s2).login(ph)
	after, err := s2.service.ListEvents(context.Background(), "", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) <= len(before) || !storage.Same(storage.Record{Event: &after[len(after)-1]}, storage.Record{Event: &before[len(before)-1]}) {
		t.Fatalf("the copy's audit log has %d events, the original %d, and does not begin as it did", len(after), len(before))
	}
}

// TestStoreCopyVerification: a copy that differs from its source by one record, one event or
// one field is told apart.
func TestStoreCopyVerification(t *testing.T) {
	s := startServer(t)
	boundCitizen(t, s)
	s.stop()
	from := "bolt:" + filepath.Join(s.Config.DataDir, "mcert.db")
	for name, tamper := range map[string]func(tx storage.Tx) error{
		"a changed name": func(tx storage.Tx) error {
			a, err := tx.AccountByCitizen("A123456789")
			if err != nil {
				return err
			}
			a.Name = "王大明"
			return tx.PutAccount(a)
		},
		"an extra event": func(tx storage.Tx) error {
			_, err := tx.AppendEvent(storage.Event{Type: "bind", Outcome: "ok"})
			return err
		},
		"a deleted client": func(tx storage.Tx) error { return tx.DeleteClient(provider.DemoClientID) },
	} {
		t.Run(name, func(t *testing.T) {
			to := "bolt:" + filepath.Join(t.TempDir(), "copy.db")
			runMcert(t, 0, "store", "copy", "--from", from, "--to", to)
			ctx := context.Background()
			src, _ := parseStoreSpec(from, "")
			dst, _ := parseStoreSpec(to, "")
			in, err := src.open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			out, err := dst.open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			if err := out.Update(ctx, tamper); err != nil {
				t.Fatal(err)
			}
			counts, digest := copyCounts{}, newEventsDigest()
			err = in.Dump(ctx, func(r storage.Record) error {
				counts[r.Kind()]++
				if r.Event != nil {
					digest.add(*r.Event)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := verifyCopy(ctx, in, out, counts, digest, newProgress(&strings.Builder{})); err == nil {
				t.Fatal("verification passed a copy that differs")
			}
		})
	}
}
