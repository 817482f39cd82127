// Package seal encrypts the server's own secrets (the ID-token signing keys, the provider's
// keys) before they go into the store, under a key kept in a file of its own: a copy of the data
// file or of a backup reveals none of them without the key file too.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// KeySize is the size of the key in the key file: AES-256.
const KeySize = 32

// header starts every sealed value: a sealed value is told apart from a value stored in the
// clear by an mcert before sealing by it. Plain signing keys are PKCS#8 DER, which begins with
// 0x30; plain secrets are random bytes, which begin with these four with odds of 1 in 2³², where
// a single byte would collide once in 256 data files. Its last byte is the format's version.
var header = []byte{'m', 'c', 's', 1}

// ErrWrongKey is returned by Open for a value sealed under another key (or altered since).
var ErrWrongKey = errors.New("sealed with another key, or altered")

// Sealer seals and opens values with one key.
type Sealer struct {
	aead cipher.AEAD
}

// New makes a sealer of a KeySize-byte key.
func New(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: the key must be %d bytes, not %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain with a random nonce. purpose (such as the record it is stored in) is
// authenticated with it, so that a sealed value moved into another record does not open there.
func (s *Sealer) Seal(purpose string, plain []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails on supported platforms
	out := append(bytes.Clone(header), nonce...)
	return s.aead.Seal(out, nonce, plain, additionalData(purpose))
}

// Open decrypts what Seal sealed for the same purpose. A value sealed under another key, or
// for another purpose, or altered, gives ErrWrongKey.
func (s *Sealer) Open(purpose string, sealed []byte) ([]byte, error) {
	if !IsSealed(sealed) {
		return nil, errors.New("seal: the value is not sealed (or sealed by a newer mcert)")
	}
	rest := sealed[len(header):]
	if len(rest) < s.aead.NonceSize()+s.aead.Overhead() {
		return nil, fmt.Errorf("seal: the sealed value is cut short: %w", ErrWrongKey)
	}
	nonce, ciphertext := rest[:s.aead.NonceSize()], rest[s.aead.NonceSize():]
	plain, err := s.aead.Open(nil, nonce, ciphertext, additionalData(purpose))
	if err != nil {
		return nil, fmt.Errorf("seal: %w", ErrWrongKey)
	}
	return plain, nil
}

// IsSealed reports whether b is a value Seal made (of this format), rather than one stored in
// the clear.
func IsSealed(b []byte) bool { return bytes.HasPrefix(b, header) }

// additionalData binds the header (the format) and the purpose to the ciphertext.
func additionalData(purpose string) []byte {
	return append(bytes.Clone(header), purpose...)
}

// LoadOrCreate reads the key file at path, or, when there is none, creates one with a fresh
// random key, readable by its owner only; created says which. A file that exists but is not a
// key, or that group or others may read, is an error: the server must not start on it.
func LoadOrCreate(path string) (s *Sealer, created bool, err error) {
	key, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if created, err = createKeyFile(path); err == nil {
			key, err = readKeyFile(path)
		}
	}
	if err != nil {
		return nil, false, err
	}
	s, err = New(key)
	return s, created, err
}

// readKeyFile reads a key written as base64 (as createKeyFile writes it, or `openssl rand
// -base64 32`) or as the 32 bytes themselves.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s may be read by group or others (mode %04o); make it the owner's alone: chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	if len(data) == KeySize {
		return data, nil
	}
	key, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(data)))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("key file %s is not a key (%d bytes, or their base64): put back the key file the data was sealed with, from its backup; a new one cannot open that data", path, KeySize)
	}
	return key, nil
}

// createKeyFile writes a fresh key to a temporary file and links it into place, so that the key
// file is whole or absent, even after a crash, and of two servers starting at once one makes it
// and the other reads it (created false).
func createKeyFile(path string) (created bool, err error) {
	key := make([]byte, KeySize)
	_, _ = rand.Read(key)
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".mcert-key-*") // mode 0600
	if err != nil {
		return false, fmt.Errorf("create key file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create key file %s: %w", path, err)
	}
	// Until the directory is flushed, a crash could lose the new name while the store already
	// holds values sealed under the key.
	d, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return false, fmt.Errorf("flush directory %s: %w", dir, err)
	}
	return true, nil
}
