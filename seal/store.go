package seal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mcert/mcert/storage"
)

// Store wraps store so that the signing keys' private keys and every server secret are sealed
// on their way in and opened on their way out, whatever their kind, so that the data file and
// its backups hold none of them in the clear. Every part of mcert that reads keys or secrets
// uses the wrapped store.
func Store(store storage.Store, sealer *Sealer) storage.Store {
	return sealedStore{Store: store, seal: sealer}
}

type sealedStore struct {
	storage.Store
	seal *Sealer
}

// The purposes name the record a value is sealed for, so that it opens only there.
// KeyPurpose and SecretPurpose are what a signing key and a secret are sealed for.
func KeyPurpose(id string) string      { return "signing key " + id }
func SecretPurpose(name string) string { return "secret " + name }

// MailPurpose is what a queued mail's parameters are sealed for: they hold the tokens of the
// links it carries, which would verify an address or suspend an account.
func MailPurpose(id string) string { return "mail " + id }

// CertificatePurpose is what a phone's signing key is sealed for: its certificate's serial.
func CertificatePurpose(serial []byte) string { return fmt.Sprintf("certificate key %x", serial) }

func (s sealedStore) Update(ctx context.Context, fn func(storage.Tx) error) error {
	return s.Store.Update(ctx, func(tx storage.Tx) error {
		return fn(sealedTx{Tx: tx, opener: opener{tx, s.seal}})
	})
}

func (s sealedStore) View(ctx context.Context, fn func(storage.ReadTx) error) error {
	return s.Store.View(ctx, func(tx storage.ReadTx) error {
		return fn(sealedReadTx{ReadTx: tx, opener: opener{tx, s.seal}})
	})
}

// opener reads keys and secrets through a transaction, opened.
type opener struct {
	tx   storage.ReadTx
	seal *Sealer
}

func (o opener) Secret(name string) ([]byte, error) {
	v, err := o.tx.Secret(name)
	if err != nil {
		return nil, err
	}
	if v, err = o.seal.Open(SecretPurpose(name), v); err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return v, nil
}

// openOne opens the record a read found, with open; openAll each of a list a read found.
func openOne[T any](v T, err error, open func(T) (T, error)) (T, error) {
	if err != nil {
		return v, err
	}
	return open(v)
}

func openAll[T any](list []T, err error, open func(T) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	for i := range list {
		if list[i], err = open(list[i]); err != nil {
			return nil, err
		}
	}
	return list, nil
}

func (o opener) signingKey(k storage.SigningKey) (storage.SigningKey, error) {
	plain, err := o.seal.Open(KeyPurpose(k.ID), k.PrivateKey)
	if err != nil {
		return k, fmt.Errorf("signing key %s: %w", k.ID, err)
	}
	k.PrivateKey = plain
	return k, nil
}

func (o opener) SigningKeys() ([]storage.SigningKey, error) {
	keys, err := o.tx.SigningKeys()
	return openAll(keys, err, o.signingKey)
}

func (o opener) certificate(c storage.Certificate) (storage.Certificate, error) {
	plain, err := o.seal.Open(CertificatePurpose(c.Serial), c.PrivateKey)
	if err != nil {
		return c, fmt.Errorf("certificate %x: %w", c.Serial, err)
	}
	c.PrivateKey = plain
	return c, nil
}

func (o opener) Certificate(serial []byte) (storage.Certificate, error) {
	c, err := o.tx.Certificate(serial)
	return openOne(c, err, o.certificate)
}

func (o opener) DeviceCertificates(deviceID string) ([]storage.Certificate, error) {
	list, err := o.tx.DeviceCertificates(deviceID)
	return openAll(list, err, o.certificate)
}

// RevokedCertificates leaves the keys out, not opened: a revoked certificate's key signs
// nothing more, and the CRL that lists them needs none.
func (o opener) RevokedCertificates() ([]storage.Certificate, error) {
	list, err := o.tx.RevokedCertificates()
	for i := range list {
		list[i].PrivateKey = nil
	}
	return list, err
}

func (o opener) mail(m storage.Mail) (storage.Mail, error) {
	if m.Params == nil { // a sent mail keeps none
		return m, nil
	}
	plain, err := o.seal.Open(MailPurpose(m.ID), m.Params)
	if err != nil {
		return m, fmt.Errorf("mail %s: %w", m.ID, err)
	}
	m.Params = plain
	return m, nil
}

func (o opener) Mail(id string) (storage.Mail, error) {
	m, err := o.tx.Mail(id)
	return openOne(m, err, o.mail)
}

func (o opener) MailByKey(key string) (storage.Mail, error) {
	m, err := o.tx.MailByKey(key)
	return openOne(m, err, o.mail)
}

func (o opener) DueMails(now time.Time, limit int) ([]storage.Mail, error) {
	list, err := o.tx.DueMails(now, limit)
	return openAll(list, err, o.mail)
}

func (o opener) Mails(accountID string) ([]storage.Mail, error) {
	list, err := o.tx.Mails(accountID)
	return openAll(list, err, o.mail)
}

type sealedReadTx struct {
	storage.ReadTx
	opener
}

func (t sealedReadTx) Secret(name string) ([]byte, error)         { return t.opener.Secret(name) }
func (t sealedReadTx) SigningKeys() ([]storage.SigningKey, error) { return t.opener.SigningKeys() }
func (t sealedReadTx) Certificate(serial []byte) (storage.Certificate, error) {
	return t.opener.Certificate(serial)
}
func (t sealedReadTx) DeviceCertificates(deviceID string) ([]storage.Certificate, error) {
	return t.opener.DeviceCertificates(deviceID)
}
func (t sealedReadTx) RevokedCertificates() ([]storage.Certificate, error) {
	return t.opener.RevokedCertificates()
}
func (t sealedReadTx) Mail(id string) (storage.Mail, error)       { return t.opener.Mail(id) }
func (t sealedReadTx) MailByKey(key string) (storage.Mail, error) { return t.opener.MailByKey(key) }
func (t sealedReadTx) Mails(accountID string) ([]storage.Mail, error) {
	return t.opener.Mails(accountID)
}
func (t sealedReadTx) DueMails(now time.Time, limit int) ([]storage.Mail, error) {
	return t.opener.DueMails(now, limit)
}

type sealedTx struct {
	storage.Tx
	opener
}

func (t sealedTx) Secret(name string) ([]byte, error)         { return t.opener.Secret(name) }
func (t sealedTx) SigningKeys() ([]storage.SigningKey, error) { return t.opener.SigningKeys() }
func (t sealedTx) Certificate(serial []byte) (storage.Certificate, error) {
	return t.opener.Certificate(serial)
}
func (t sealedTx) DeviceCertificates(deviceID string) ([]storage.Certificate, error) {
	return t.opener.DeviceCertificates(deviceID)
}
func (t sealedTx) RevokedCertificates() ([]storage.Certificate, error) {
	return t.opener.RevokedCertificates()
}
func (t sealedTx) Mail(id string) (storage.Mail, error)           { return t.opener.Mail(id) }
func (t sealedTx) MailByKey(key string) (storage.Mail, error)     { return t.opener.MailByKey(key) }
func (t sealedTx) Mails(accountID string) ([]storage.Mail, error) { return t.opener.Mails(accountID) }
func (t sealedTx) DueMails(now time.Time, limit int) ([]storage.Mail, error) {
	return t.opener.DueMails(now, limit)
}

func (t sealedTx) CreateCertificate(c storage.Certificate) error {
	c.PrivateKey = t.seal.Seal(CertificatePurpose(c.Serial), c.PrivateKey)
	return t.Tx.CreateCertificate(c)
}

func (t sealedTx) PutCertificate(c storage.Certificate) error {
	c.PrivateKey = t.seal.Seal(CertificatePurpose(c.Serial), c.PrivateKey)
	return t.Tx.PutCertificate(c)
}

func (t sealedTx) CreateMail(m storage.Mail) error {
	if m.Params != nil {
		m.Params = t.seal.Seal(MailPurpose(m.ID), m.Params)
	}
	return t.Tx.CreateMail(m)
}

func (t sealedTx) PutMail(m storage.Mail) error {
	if m.Params != nil {
		m.Params = t.seal.Seal(MailPurpose(m.ID), m.Params)
	}
	return t.Tx.PutMail(m)
}

func (t sealedTx) PutSecret(name string, value []byte) error {
	return t.Tx.PutSecret(name, t.seal.Seal(SecretPurpose(name), value))
}

func (t sealedTx) CreateSigningKey(k storage.SigningKey) error {
	k.PrivateKey = t.seal.Seal(KeyPurpose(k.ID), k.PrivateKey)
	return t.Tx.CreateSigningKey(k)
}

func (t sealedTx) PutSigningKey(k storage.SigningKey) error {
	k.PrivateKey = t.seal.Seal(KeyPurpose(k.ID), k.PrivateKey)
	return t.Tx.PutSigningKey(k)
}

// SealPlain seals in place the signing keys (retired ones too) and the named secrets that an
// mcert before sealing stored in the clear, in one transaction of the unwrapped store, and
// returns how many it sealed; the wrapped store refuses a plain one. The replaced plain values
// may linger in the store's free space, which the caller then clears (bolt.Compact).
func SealPlain(ctx context.Context, store storage.Store, sealer *Sealer, secrets ...string) (int, error) {
	var sealed int
	err := store.Update(ctx, func(tx storage.Tx) error {
		sealed = 0
		keys, err := tx.SigningKeys()
		if err != nil {
			return err
		}
		for _, k := range keys {
			if IsSealed(k.PrivateKey) {
				continue
			}
			k.PrivateKey = sealer.Seal(KeyPurpose(k.ID), k.PrivateKey)
			if err := tx.PutSigningKey(k); err != nil {
				return fmt.Errorf("seal signing key %s: %w", k.ID, err)
			}
			sealed++
		}
		for _, name := range secrets {
			v, err := tx.Secret(name)
			switch {
			case errors.Is(err, storage.ErrNotFound) || err == nil && IsSealed(v):
				continue
			case err != nil:
				return err
			}
			if err := tx.PutSecret(name, sealer.Seal(SecretPurpose(name), v)); err != nil {
				return fmt.Errorf("seal secret %s: %w", name, err)
			}
			sealed++
		}
		return nil
	})
	return sealed, err
}
