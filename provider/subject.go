package provider

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// subjects makes the pairwise subject identifiers: the same citizen has a different, stable
// "sub" at every relying party, so two relying parties cannot link their users (TW FidO gives
// all of them one hashed ID, which they can). The sub is the account ID sealed with a
// synthetic nonce derived from client and account (SIV-style): deterministic, unlinkable
// without the server's key, and reversible by the server, which op needs when it hands the
// subject back (userinfo, logout).
type subjects struct {
	key  []byte
	aead cipher.AEAD
}

func newSubjects(key []byte) (subjects, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return subjects{}, fmt.Errorf("pairwise subject key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return subjects{}, err
	}
	return subjects{key: key, aead: aead}, nil
}

// of is the account's subject at the client.
func (s subjects) of(clientID, accountID string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(clientID + "\x00" + accountID))
	nonce := m.Sum(nil)[:s.aead.NonceSize()]
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, []byte(accountID), []byte(clientID)))
}

var errBadSubject = errors.New("unknown subject")

// account is the account behind a subject the client holds.
func (s subjects) account(clientID, sub string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(sub)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", errBadSubject
	}
	plain, err := s.aead.Open(nil, raw[:s.aead.NonceSize()], raw[s.aead.NonceSize():], []byte(clientID))
	if err != nil {
		return "", errBadSubject
	}
	return string(plain), nil
}
