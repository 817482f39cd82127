package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/seal"
	"github.com/mcert/mcert/storage"
	"github.com/mcert/mcert/storage/bolt"
)

// The server's secrets in the store: the provider's, and the binding service's.
var providerSecrets = []string{"oidc-crypto-key", "pairwise-subject-key", "login-qr-key", "card-challenge-key", "vapid-key"}

// plainSecrets are what sealing must keep out of the data file, opened with the server's key:
// every signing key's PKCS#8 form and its private scalar, and the provider's secrets. It fails
// the test if any of them is stored unsealed.
func (s *server) plainSecrets(t *testing.T, secrets []string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	keys, err := storage.Get(ctx, s.store, func(tx storage.ReadTx) ([]storage.SigningKey, error) { return tx.SigningKeys() })
	if err != nil || len(keys) == 0 {
		t.Fatalf("signing keys: %d, %v", len(keys), err)
	}
	for _, k := range keys {
		der, err := s.sealer.Open("signing key "+k.ID, k.PrivateKey)
		if err != nil {
			t.Fatalf("signing key %s as stored: %v", k.ID, err)
		}
		priv, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			t.Fatal(err)
		}
		out["signing key "+k.ID] = der
		switch priv := priv.(type) {
		case *ecdsa.PrivateKey:
			scalar, err := priv.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			out["private scalar of "+k.ID] = scalar
		case *rsa.PrivateKey:
			out["private exponent of "+k.ID] = priv.D.Bytes()
			out["first prime of "+k.ID] = priv.Primes[0].Bytes()
		default:
			t.Fatalf("signing key %s is a %T", k.ID, priv)
		}
	}
	for _, name := range secrets {
		v, err := storage.Get(ctx, s.store, func(tx storage.ReadTx) ([]byte, error) { return tx.Secret(name) })
		if err != nil {
			t.Fatal(err)
		}
		if out["secret "+name], err = s.sealer.Open("secret "+name, v); err != nil {
			t.Fatalf("secret %s as stored: %v", name, err)
		}
	}
	return out
}

// shows reports in which form, if any, data holds secret: as is, or in base64 (as JSON
// writes bytes), or in hex.
func shows(data, secret []byte) string {
	for form, enc := range map[string]func([]byte) string{
		"raw":       func(b []byte) string { return string(b) },
		"base64":    base64.StdEncoding.EncodeToString,
		"base64raw": base64.RawStdEncoding.EncodeToString,
		"base64url": base64.RawURLEncoding.EncodeToString,
		"hex":       hex.EncodeToString,
	} {
		if bytes.Contains(data, []byte(enc(secret))) {
			return form
		}
	}
	return ""
}

// checkNoneShown fails the test if what holds any of the secrets.
func checkNoneShown(t *testing.T, what string, data []byte, secrets map[string][]byte) {
	t.Helper()
	for name, secret := range secrets {
		if form := shows(data, secret); form != "" {
			t.Errorf("%s holds the %s (%s)", what, name, form)
		}
	}
}

// keySet is the JWKS at /oidc/keys.
func (s *server) keySet(t *testing.T) jose.JSONWebKeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(s.browser(t).do("GET", "/oidc/keys", nil).want(t, 200).Body, &set); err != nil {
		t.Fatal(err)
	}
	return set
}

func kids(set jose.JSONWebKeySet) []string {
	var ids []string
	for _, k := range set.Keys {
		ids = append(ids, k.KeyID)
	}
	slices.Sort(ids)
	return ids
}

// sameRelyingParty is rp, registered before a restart, against the restarted server.
func (s *server) sameRelyingParty(t *testing.T, rp *relyingParty) *relyingParty {
	t.Helper()
	p, err := oidc.NewProvider(context.Background(), s.PublicURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg := rp.oauth
	cfg.Endpoint = p.Endpoint()
	return &relyingParty{t: t, s: s, provider: p, oauth: cfg, verifier: p.Verifier(&oidc.Config{ClientID: cfg.ClientID})}
}

// loginSub is one relying-party login approved on the phone: its ID token and subject.
func (rp *relyingParty) loginSub(ph *phone.Client) (rawIDToken string, sub string) {
	tok, idt := rp.login(ph)
	return tok.Extra("id_token").(string), idt.Subject
}

// openMain opens a server on dir without running it, for starts that must fail.
func openMain(dir, keyFile string) (*Main, error) {
	m := &Main{Config: Config{
		Addr: "127.0.0.1:0", DataDir: dir, KeyFile: keyFile, CardAgentURL: "http://127.0.0.1:61161",
		Now: newClock().Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}}
	err := m.Open()
	if err == nil {
		m.Close()
	}
	return m, err
}

// storedKeyIDs are the signing keys in a stopped server's data file.
func storedKeyIDs(t *testing.T, dir string) []string {
	t.Helper()
	st, err := bolt.Open(filepath.Join(dir, "mcert.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := storage.Get(context.Background(), st, func(tx storage.ReadTx) ([]storage.SigningKey, error) { return tx.SigningKeys() })
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.ID)
	}
	return ids
}

// TestKeysSealedAtRest checks that neither a backup nor the data file holds the signing keys or
// the provider's secrets; that a restart with the same key file issues tokens that verify with
// the key set published before, with the same pairwise subjects; and that a start with another
// key file, or none, is refused and changes nothing.
func TestKeysSealedAtRest(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, func(c *Config) { c.DataDir = dir })
	ph, _ := boundCitizen(t, s)
	rp := s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{})
	_, sub := rp.loginSub(ph)
	s.admin(t)("POST", "/api/v1/admin/keys/rotate", nil).want(t, 200) // a retiring key, and a new one
	_, sub = rp.loginSub(ph)
	published := s.keySet(t)
	secrets := s.plainSecrets(t, providerSecrets)
	// Two ES256 keys (the PKCS#8 form and the scalar) and two RS256 keys (the PKCS#8 form, the
	// private exponent and a prime), then the secrets.
	if len(secrets) != 2*2+2*3+len(providerSecrets) {
		t.Fatalf("secrets to look for: %d", len(secrets))
	}

	backup := s.admin(t)("GET", "/api/v1/admin/backup", nil).want(t, 200).Body
	checkNoneShown(t, "the backup", backup, secrets)
	s.stop()
	dataFile, err := os.ReadFile(filepath.Join(dir, "mcert.db"))
	if err != nil {
		t.Fatal(err)
	}
	checkNoneShown(t, "the data file", dataFile, secrets)
	keyFile := filepath.Join(dir, "mcert.key")
	if info, err := os.Stat(keyFile); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", info, err)
	}

	t.Run("restart with the same key file", func(t *testing.T) {
		s := startServer(t, func(c *Config) { c.DataDir = dir })
		if got, want := kids(s.keySet(t)), kids(published); !slices.Equal(got, want) {
			t.Errorf("key set after the restart %v, before %v", got, want)
		}
		raw, again := s.sameRelyingParty(t, rp).loginSub(ph)
		var keys []crypto.PublicKey
		var algs []string
		for _, k := range published.Keys {
			keys, algs = append(keys, k.Key), append(algs, k.Algorithm)
		}
		verifier := oidc.NewVerifier(s.PublicURL, &oidc.StaticKeySet{PublicKeys: keys}, &oidc.Config{ClientID: rp.oauth.ClientID, SupportedSigningAlgs: algs, Now: s.clock.Now})
		if _, err := verifier.Verify(context.Background(), raw); err != nil {
			t.Errorf("an ID token after the restart does not verify with the key set published before: %v", err)
		}
		if again != sub {
			t.Errorf("sub after the restart %q, before %q: the pairwise subject key changed", again, sub)
		}
		s.stop()
	})

	before := storedKeyIDs(t, dir)
	t.Run("another key file", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other.key")
		key := make([]byte, seal.KeySize)
		_, _ = rand.Read(key)
		if err := os.WriteFile(other, []byte(base64.StdEncoding.EncodeToString(key)), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := openMain(dir, other)
		if !errors.Is(err, seal.ErrWrongKey) || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), "does not open") {
			t.Fatalf("start with another key file: %v; want an error naming %s", err, other)
		}
	})
	t.Run("key file missing", func(t *testing.T) {
		if err := os.Rename(keyFile, keyFile+".away"); err != nil {
			t.Fatal(err)
		}
		_, err := openMain(dir, "")
		if !errors.Is(err, seal.ErrWrongKey) || !strings.Contains(err.Error(), keyFile) || !strings.Contains(err.Error(), "was missing") {
			t.Fatalf("start without the key file: %v; want an error naming %s", err, keyFile)
		}
		if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the refused start left a new key file behind: %v", err)
		}
		if err := os.Rename(keyFile+".away", keyFile); err != nil {
			t.Fatal(err)
		}
	})
	if after := storedKeyIDs(t, dir); !slices.Equal(after, before) {
		t.Errorf("refused starts changed the signing keys from %v to %v", before, after)
	}
	startServer(t, func(c *Config) { c.DataDir = dir }).keySet(t) // the right key file still opens it
}

// TestPlainKeysSealedOnStart checks that a data file whose signing keys and secrets an mcert
// before sealing stored in the clear keeps them, sealed in place, with no plain copy left, even
// in the free pages of a file that has had many records deleted.
func TestPlainKeysSealedOnStart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	now := newClock().Now()
	st, err := bolt.Open(filepath.Join(dir, "mcert.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	plain := map[string][]byte{}
	retire := now.Add(time.Hour)
	for i, retireAt := range []*time.Time{&retire, nil} {
		k, err := provider.NewSigningKey(jose.ES256, func() time.Time { return now.Add(time.Duration(i) * time.Second) })
		if err != nil {
			t.Fatal(err)
		}
		k.RetireAt = retireAt
		if err := st.Update(ctx, func(tx storage.Tx) error { return tx.CreateSigningKey(k) }); err != nil {
			t.Fatal(err)
		}
		plain["signing key "+k.ID] = k.PrivateKey
	}
	for _, name := range providerSecrets[:2] { // the secrets an mcert before sealing had
		v := make([]byte, 32)
		_, _ = rand.Read(v)
		if err := st.Update(ctx, func(tx storage.Tx) error { return tx.PutSecret(name, v) }); err != nil {
			t.Fatal(err)
		}
		plain["secret "+name] = v
	}
	for i := range 300 {
		s := storage.Session{Hash: fmt.Appendf(nil, "session %d", i), CitizenID: "A123456789", Name: "王小明", CreatedAt: now, ExpiresAt: now}
		if err := st.Update(ctx, func(tx storage.Tx) error { return tx.CreateSession(s) }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.GarbageCollect(ctx, storage.GCPolicy{ExpiredBefore: now.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	dataFile, err := os.ReadFile(filepath.Join(dir, "mcert.db"))
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range plain {
		if shows(dataFile, v) == "" {
			t.Fatalf("the data file written in the clear does not show the %s: this test proves nothing", name)
		}
	}

	s := startServer(t, func(c *Config) { c.DataDir = dir })
	stored := s.plainSecrets(t, providerSecrets[:2]) // fails unless every one is sealed
	for name, v := range plain {
		if !bytes.Equal(stored[name], v) {
			t.Errorf("%s changed in the sealing", name)
		}
	}
	var published []string
	for name := range plain {
		if id, ok := strings.CutPrefix(name, "signing key "); ok {
			published = append(published, id)
		}
	}
	// The keys stored before sealing are all published, and an RS256 key is added beside them
	// (the older data had ES256 keys only).
	set := s.keySet(t)
	got := kids(set)
	for _, id := range published {
		if !slices.Contains(got, id) {
			t.Errorf("key set %v lacks %s, a key stored before sealing", got, id)
		}
	}
	if !slices.ContainsFunc(set.Keys, func(k jose.JSONWebKey) bool { return k.Algorithm == "RS256" }) {
		t.Errorf("key set %v has no RS256 key", got)
	}
	ph, _ := boundCitizen(t, s)
	s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{}).login(ph)
	checkNoneShown(t, "the backup", s.admin(t)("GET", "/api/v1/admin/backup", nil).want(t, 200).Body, plain)
	s.stop()
	if dataFile, err = os.ReadFile(filepath.Join(dir, "mcert.db")); err != nil {
		t.Fatal(err)
	}
	checkNoneShown(t, "the data file", dataFile, plain)
}
