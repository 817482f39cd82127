package seal

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newSealer(t *testing.T) *Sealer {
	t.Helper()
	key := make([]byte, KeySize)
	_, _ = rand.Read(key)
	s, err := New(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpen(t *testing.T) {
	s, other := newSealer(t), newSealer(t)
	plain := []byte("the pairwise subject key, 32 B.")
	sealed := s.Seal("secret pairwise-subject-key", plain)
	if !IsSealed(sealed) || bytes.Contains(sealed, plain) {
		t.Fatalf("sealed value %x: not marked sealed, or shows the plain value", sealed)
	}
	if again := s.Seal("secret pairwise-subject-key", plain); bytes.Equal(again, sealed) {
		t.Error("sealing twice gave the same bytes: the nonce is not random")
	}
	got, err := s.Open("secret pairwise-subject-key", sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v; want %q", got, err, plain)
	}

	altered := bytes.Clone(sealed)
	altered[len(altered)-1] ^= 1
	for _, tc := range []struct {
		name    string
		sealer  *Sealer
		purpose string
		sealed  []byte
	}{
		{"another key", other, "secret pairwise-subject-key", sealed},
		{"another purpose", s, "secret oidc-crypto-key", sealed},
		{"altered", s, "secret pairwise-subject-key", altered},
		{"cut short", s, "secret pairwise-subject-key", sealed[:len(header)+4]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := tc.sealer.Open(tc.purpose, tc.sealed); !errors.Is(err, ErrWrongKey) {
				t.Errorf("Open = %q, %v; want ErrWrongKey", got, err)
			}
		})
	}
	if _, err := s.Open("secret pairwise-subject-key", plain); err == nil || errors.Is(err, ErrWrongKey) {
		t.Errorf("Open of a plain value: %v, want an error that says it is not sealed", err)
	}
}

// TestIsSealedTellsPlainValues checks that the values mcert stored in the clear before sealing,
// PKCS#8 keys and random secrets, are not taken for sealed ones.
func TestIsSealedTellsPlainValues(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if IsSealed(der) {
		t.Error("a PKCS#8 key is taken for a sealed value")
	}
	for range 1000 {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		if IsSealed(b) {
			t.Fatalf("random bytes %x are taken for a sealed value", b)
		}
	}
}

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mcert.key")
	s, created, err := LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate: created %v, %v", created, err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, info.Mode())
	}
	again, created, err := LoadOrCreate(path)
	if err != nil || created {
		t.Fatalf("second LoadOrCreate: created %v, %v", created, err)
	}
	if _, err := again.Open("p", s.Seal("p", []byte("x"))); err != nil {
		t.Fatalf("the reloaded key does not open what the created one sealed: %v", err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".mcert-key-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	raw := make([]byte, KeySize)
	_, _ = rand.Read(raw)
	for _, tc := range []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    string // in the error; "" for none
	}{
		{"raw key", raw, 0o600, ""},
		{"base64 without newline", []byte(base64.StdEncoding.EncodeToString(raw)), 0o400, ""},
		{"readable by the group", []byte(base64.StdEncoding.EncodeToString(raw)), 0o640, "chmod 600"},
		{"readable by all", raw, 0o644, "may be read by group or others"},
		{"empty", nil, 0o600, "is not a key"},
		{"short", []byte(base64.StdEncoding.EncodeToString(raw[:16])), 0o600, "is not a key"},
		{"not base64", []byte("not a key at all, but long enough to be one maybe"), 0o600, "is not a key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "mcert.key")
			if err := os.WriteFile(path, tc.content, tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			s, created, err := LoadOrCreate(path)
			if tc.want == "" {
				if err != nil || created {
					t.Fatalf("LoadOrCreate: created %v, %v", created, err)
				}
				want, err := New(raw)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := want.Open("p", s.Seal("p", []byte("x"))); err != nil {
					t.Fatalf("the key read is not the key written: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("LoadOrCreate: %v; want an error naming %s that says %q", err, path, tc.want)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, tc.content) {
				t.Error("the refused key file was changed")
			}
		})
	}
}
