package binding

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/mailer"
	"github.com/mcert/mcert/pki"
	"github.com/mcert/mcert/storage"
)

// The mobile certificate (PROTOCOL.md section 9): each bound phone has a signing key that
// mcert holds and a certificate for it from mcert's CA, valid as long as the device, revoked
// with it and with the account's suspension.

// caSecret names mcert's signing CA among the store's secrets (sealed, as they all are): its
// key and chain, which the first instance to need them makes, so that every instance is one
// CA.
const caSecret = "signing-ca"

// RFC 5280 CRLReasons of mcert's revocations.
const (
	reasonCessation = 5 // the citizen revoked the phone
	reasonWithdrawn = 9 // privilegeWithdrawn: the account was suspended
)

// CRLLifetime is how long a CRL mcert publishes says it is current (its nextUpdate). mcert
// makes a new one at least every CRLRefresh; OCSP answers from the store at once.
const (
	CRLLifetime = time.Hour
	CRLRefresh  = 5 * time.Second
)

// CA is mcert's signing CA, made on first use.
func (s *Service) CA(ctx context.Context) (*pki.CA, error) {
	if ca, ok := s.keys.Load(caSecret); ok {
		return ca.(*pki.CA), nil
	}
	var made error
	v, err := s.Secret(ctx, caSecret, func() []byte {
		ca, err := pki.NewCA(rand.Reader, s.now(), s.PublicURL)
		if err != nil {
			made = err
			return nil
		}
		return encodeCA(ca)
	})
	if err = errors.Join(made, err); err != nil {
		return nil, fmt.Errorf("signing CA: %w", err)
	}
	ca, err := decodeCA(v)
	if err != nil {
		return nil, fmt.Errorf("signing CA in the store: %w", err)
	}
	s.keys.Store(caSecret, ca)
	return ca, nil
}

// encodeCA writes the CA's key and chain as PEM blocks, the key first.
func encodeCA(ca *pki.CA) []byte {
	out := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ca.KeyDER()})
	for _, der := range ca.ChainDER() {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return out
}

func decodeCA(data []byte) (*pki.CA, error) {
	var key []byte
	var chain [][]byte
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		switch b.Type {
		case "PRIVATE KEY":
			key = b.Bytes
		case "CERTIFICATE":
			chain = append(chain, b.Bytes)
		}
	}
	return pki.LoadCA(key, chain)
}

// newCertificate makes the device's signing key and certificate, valid until the device
// expires. It does no I/O, so a transaction may call it.
func (s *Service) newCertificate(ca *pki.CA, a storage.Account, d storage.Device, now time.Time) (storage.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return storage.Certificate{}, err
	}
	serial, err := pki.NewSerial(rand.Reader)
	if err != nil {
		return storage.Certificate{}, err
	}
	der, err := ca.Issue(rand.Reader, pki.IssueRequest{
		PublicKey: key.Public(),
		Subject:   s.certificateSubject(a),
		Serial:    serial,
		NotBefore: now, NotAfter: d.ExpiresAt,
		CRLURL: s.PublicURL + "/pki/ca.crl", OCSPURL: s.PublicURL + "/pki/ocsp",
	})
	if err != nil {
		return storage.Certificate{}, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return storage.Certificate{}, err
	}
	return storage.Certificate{
		Serial: serial.Bytes(), DeviceID: d.ID, AccountID: a.ID, DER: der, PrivateKey: pkcs8,
		CreatedAt: now, NotAfter: d.ExpiresAt,
	}, nil
}

// certificateSubject names the citizen by the masked ID, or the whole one if the operator
// asks for it.
func (s *Service) certificateSubject(a storage.Account) pki.Subject {
	sub := pki.Subject{Name: a.Name, MaskedID: authn.MaskCitizenID(a.CitizenID)}
	if s.CertificateCitizenID {
		sub.CitizenID = a.CitizenID
	}
	return sub
}

// revokeCertificates revokes the device's certificates that are not revoked yet.
// storeCertificate keeps a new certificate of d, made by newCertificate, and tells the citizen.
func (s *Service) storeCertificate(tx storage.Tx, a storage.Account, d storage.Device, c storage.Certificate) error {
	if err := tx.CreateCertificate(c); err != nil {
		return err
	}
	return s.queueMail(tx, a, mailer.CertificateIssued, "", map[string]string{
		"device": d.Name, "serial": fmt.Sprintf("%X", c.Serial), "not_after": rfc3339(c.NotAfter), "account_url": s.PublicURL + "/",
	})
}

func revokeCertificates(tx storage.Tx, deviceID string, reason int, now time.Time) error {
	list, err := tx.DeviceCertificates(deviceID)
	if err != nil {
		return err
	}
	for _, c := range list {
		if c.RevokedAt != nil {
			continue
		}
		c.RevokedAt, c.Reason = &now, reason
		if err := tx.PutCertificate(c); err != nil {
			return err
		}
	}
	return nil
}

// DeviceCertificate is the device's current certificate: its newest, unless that is revoked
// or expired (storage.ErrNotFound then).
func (s *Service) DeviceCertificate(ctx context.Context, deviceID string) (storage.Certificate, error) {
	list, err := storage.Get(ctx, s.Store, func(tx storage.ReadTx) ([]storage.Certificate, error) { return tx.DeviceCertificates(deviceID) })
	if err != nil {
		return storage.Certificate{}, err
	}
	if len(list) == 0 {
		return storage.Certificate{}, storage.ErrNotFound
	}
	c := list[len(list)-1]
	if c.RevokedAt != nil || !s.now().Before(c.NotAfter) {
		return storage.Certificate{}, storage.ErrNotFound
	}
	return c, nil
}

// CertificateStatus is what OCSP answers of a serial number, from the store as it is now.
func (s *Service) CertificateStatus(ctx context.Context, serial *big.Int) (pki.Status, error) {
	c, err := storage.Get(ctx, s.Store, func(tx storage.ReadTx) (storage.Certificate, error) { return tx.Certificate(serial.Bytes()) })
	if errors.Is(err, storage.ErrNotFound) {
		return pki.Status{}, nil
	}
	if err != nil {
		return pki.Status{}, err
	}
	st := pki.Status{Issued: true}
	switch now := s.now(); {
	case c.RevokedAt != nil:
		st.RevokedAt, st.Reason = *c.RevokedAt, c.Reason
	case !now.Before(c.NotAfter):
		// The device's year is over, and with it the certificate, which section 9 has OCSP
		// answer as revoked from then on.
		st.RevokedAt, st.Reason = c.NotAfter, reasonCessation
	}
	return st, nil
}

// CRL is mcert's CRL as of now: every revoked certificate that has not expired.
func (s *Service) CRL(ctx context.Context) ([]byte, error) {
	ca, err := s.CA(ctx)
	if err != nil {
		return nil, err
	}
	list, err := storage.Get(ctx, s.Store, func(tx storage.ReadTx) ([]storage.Certificate, error) { return tx.RevokedCertificates() })
	if err != nil {
		return nil, err
	}
	now := s.now()
	var revoked []pki.Revoked
	for _, c := range list {
		if now.Before(c.NotAfter) {
			revoked = append(revoked, pki.Revoked{Serial: new(big.Int).SetBytes(c.Serial), At: *c.RevokedAt, Reason: c.Reason})
		}
	}
	// The CRL number must grow with each CRL, from whichever instance: the time does.
	return ca.CRL(rand.Reader, big.NewInt(now.UnixMilli()), now, now.Add(CRLLifetime), revoked)
}

// OCSP answers an RFC 6960 request from the store as it is now: a revocation is answered at
// once. A request that is not one gets OCSP's own malformedRequest answer.
func (s *Service) OCSP(ctx context.Context, request []byte) ([]byte, error) {
	ca, err := s.CA(ctx)
	if err != nil {
		return nil, err
	}
	return ca.OCSP(request, s.now(), func(serial *big.Int) (pki.Status, error) { return s.CertificateStatus(ctx, serial) })
}

// CACSR is a certificate request for mcert's CA key, for an operator's own root to certify
// the CA (mcert pki csr).
func (s *Service) CACSR(ctx context.Context) ([]byte, error) {
	ca, err := s.CA(ctx)
	if err != nil {
		return nil, err
	}
	return ca.CSR(rand.Reader)
}

// InstallCAChain replaces mcert's self-signed CA certificate by chainPEM, a certificate for the
// same key from the operator's root followed by its chain to that root (mcert pki install).
// The phones' certificates issued before keep chaining to the self-signed one; instances pick
// the new chain up when they start.
func (s *Service) InstallCAChain(ctx context.Context, chainPEM []byte) (*pki.CA, error) {
	var installed *pki.CA
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		v, err := tx.Secret(caSecret)
		if errors.Is(err, storage.ErrNotFound) {
			return errors.New("there is no signing CA yet: mcert pki csr makes it")
		}
		if err != nil {
			return err
		}
		ca, err := decodeCA(v)
		if err != nil {
			return fmt.Errorf("signing CA in the store: %w", err)
		}
		if installed, err = ca.WithChain(chainPEM); err != nil {
			return err
		}
		return tx.PutSecret(caSecret, encodeCA(installed))
	})
	if err != nil {
		return nil, err
	}
	s.keys.Store(caSecret, installed)
	return installed, nil
}
