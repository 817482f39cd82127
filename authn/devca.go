package authn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mcert/mcert"
)

const (
	devCACertFile = "card-ca.pem"
	devCAKeyFile  = "card-ca-key.pem"
)

// DevCA is the development card CA: it issues software citizen cards so that mcert can be run
// and tested without a card reader. Its certificate says it is not for production.
type DevCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// LoadOrCreateDevCA loads the development card CA from dir, creating dir and the CA when
// missing; created reports that this call made the CA.
//
// The server and `mcert card issue` may both start on an empty dir at once, so the files are
// published with os.Link, which never overwrites: the key first, then the certificate. A reader
// that finds the certificate therefore finds its key; a process that loses either race adopts
// the winner's file, so every process ends with the same CA. If a process dies between the two
// links, the next one certifies the key it finds.
func LoadOrCreateDevCA(dir string, now time.Time) (ca *DevCA, created bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create the data directory for the development card CA: %w", err)
	}
	certPath, keyPath := filepath.Join(dir, devCACertFile), filepath.Join(dir, devCAKeyFile)
	ca, err = loadDevCA(certPath, keyPath, now)
	if !errors.Is(err, fs.ErrNotExist) {
		return ca, false, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("generate the development card CA key: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, false, err
	}
	if err := publishFile(keyPath, keyPEM, 0o600); errors.Is(err, fs.ErrExist) {
		keyPEM, err = os.ReadFile(keyPath)
		if err != nil {
			return nil, false, fmt.Errorf("read the development card CA key: %w", err)
		}
	} else if err != nil {
		return nil, false, err
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, false, fmt.Errorf("%s holds no PRIVATE KEY block; remove it and start again", keyPath)
	}
	signer, err := parsePrivateKey(block.Bytes)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w; remove it and start again", keyPath, err)
	}

	template := &x509.Certificate{
		Subject: pkix.Name{
			CommonName:   "mcert development card CA (not for production)",
			Organization: []string{"mcert"},
			Country:      []string{"TW"},
		},
		NotBefore:             now,
		NotAfter:              now.AddDate(10, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	certPEM, err := createCertificate(template, template, signer.Public(), signer)
	if err != nil {
		return nil, false, err
	}
	err = publishFile(certPath, certPEM, 0o644)
	if errors.Is(err, fs.ErrExist) {
		ca, err = loadDevCA(certPath, keyPath, now)
		return ca, false, err
	}
	if err != nil {
		return nil, false, err
	}
	ca, err = loadDevCA(certPath, keyPath, now)
	return ca, err == nil, err
}

// loadDevCA returns an error matching fs.ErrNotExist only when the certificate is missing,
// the one state in which creating the CA is right.
func loadDevCA(certPath, keyPath string, now time.Time) (*DevCA, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("read the development card CA: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s exists without its key %s; restore the key, or remove both files to create a new CA (cards it issued stop working)", certPath, keyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("read the development card CA key: %w", err)
	}
	pair, err := ParseCard(append(certPEM, keyPEM...))
	if err != nil {
		return nil, fmt.Errorf("development card CA in %s: %w; remove %s and %s to create a new one", filepath.Dir(certPath), err, devCACertFile, devCAKeyFile)
	}
	if now.After(pair.Certificate.NotAfter) {
		return nil, fmt.Errorf("the development card CA %s expired on %s; remove it and %s to create a new one", certPath, pair.Certificate.NotAfter.Format(time.DateOnly), devCAKeyFile)
	}
	return &DevCA{cert: pair.Certificate, key: pair.Key}, nil
}

// publishFile makes path appear with its whole content or not at all, and fails with an error
// matching fs.ErrExist when path already exists.
func publishFile(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("publish %s (the file system must support hard links): %w", path, err)
	}
	return nil
}

// CertPEM is the CA certificate, for NewCardVerifier.
func (ca *DevCA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// IssueOptions tunes a development card; the zero value but for Now gives a card like a real
// one.
type IssueOptions struct {
	Now         time.Time
	Validity    time.Duration      // default 5 years, the lifetime of a real citizen card
	RSA         bool               // RSA-2048 instead of ECDSA P-256, as older cards have
	KeyUsage    x509.KeyUsage      // default DigitalSignature (MOICA: and ContentCommitment)
	ExtKeyUsage []x509.ExtKeyUsage // default none, as on a citizen card
	Key         crypto.Signer      // the card's key; default a new one as RSA says
	// MOICA shapes the card like MOICA's (PROTOCOL.md section 1b): RSA-2048, a subject of CN and
	// C only, the last four digits of the ID in the Subject Directory Attributes, key usage
	// digitalSignature and nonRepudiation.
	MOICA bool
	// PIN, when set, encrypts the card's key under it (ENCRYPTED PRIVATE KEY); see ValidatePIN.
	PIN string
}

// Issue makes a card for the citizen and returns its PEM (CERTIFICATE, then the PKCS#8 key), the
// form ReadCardFile reads. A MOICA-shaped card is issued for the whole ID, whose check digit
// the CA checks, but carries only its last four digits.
func (ca *DevCA) Issue(name, citizenID string, opts IssueOptions) ([]byte, error) {
	if err := ValidateCitizenID(citizenID); err != nil {
		return nil, err
	}
	if strings.TrimSpace(name) == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > 64 {
		return nil, mcert.InvalidName.New()
	}
	if opts.PIN != "" {
		if err := ValidatePIN(opts.PIN); err != nil {
			return nil, err
		}
	}
	if !opts.MOICA {
		return ca.issue(pkix.Name{CommonName: name, SerialNumber: citizenID, Country: []string{"TW"}}, nil, opts)
	}
	lastFour, err := MOICALastFourExtension(citizenID[len(citizenID)-4:])
	if err != nil {
		return nil, fmt.Errorf("encode the last four digits of the ID: %w", err)
	}
	opts.RSA = true
	if opts.KeyUsage == 0 {
		opts.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment
	}
	return ca.issue(pkix.Name{CommonName: name, Country: []string{"TW"}}, []pkix.Extension{lastFour}, opts)
}

func (ca *DevCA) issue(subject pkix.Name, extensions []pkix.Extension, opts IssueOptions) ([]byte, error) {
	if opts.Now.IsZero() {
		return nil, errors.New("IssueOptions.Now is required")
	}
	if opts.Validity < 0 {
		return nil, fmt.Errorf("card validity %s is negative; give a positive duration", opts.Validity)
	}
	notAfter := opts.Now.AddDate(5, 0, 0)
	if opts.Validity > 0 {
		notAfter = opts.Now.Add(opts.Validity)
	}
	// A card cannot outlive the CA that vouches for it.
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	keyUsage := opts.KeyUsage
	if keyUsage == 0 {
		keyUsage = x509.KeyUsageDigitalSignature
	}
	key, err := opts.Key, error(nil)
	switch {
	case key != nil:
	case opts.RSA:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("generate the card key: %w", err)
	}
	template := &x509.Certificate{
		Subject:               subject,
		NotBefore:             opts.Now,
		NotAfter:              notAfter,
		KeyUsage:              keyUsage,
		ExtKeyUsage:           opts.ExtKeyUsage,
		ExtraExtensions:       extensions,
		BasicConstraintsValid: true,
	}
	certPEM, err := createCertificate(template, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, err
	}
	var keyPEM []byte
	if opts.PIN != "" {
		keyPEM, err = encodeKeyWithPIN(key, opts.PIN)
	} else {
		keyPEM, err = encodeKey(key)
	}
	if err != nil {
		return nil, err
	}
	return append(certPEM, keyPEM...), nil
}

// RevocationList is a PEM CRL, signed by the CA, that revokes serials as of now: what
// `mcert serve --card-crl` reads.
func (ca *DevCA) RevocationList(serials []*big.Int, now time.Time) ([]byte, error) {
	entries := make([]x509.RevocationListEntry, len(serials))
	for i, serial := range serials {
		entries[i] = x509.RevocationListEntry{SerialNumber: serial, RevocationTime: now}
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		// Seconds since 1970 keep CRL numbers increasing without storing the last one.
		Number:                    big.NewInt(now.Unix()),
		ThisUpdate:                now,
		NextUpdate:                now.AddDate(0, 0, 30),
		RevokedCertificateEntries: entries,
	}, ca.cert, ca.key)
	if err != nil {
		return nil, fmt.Errorf("create the CRL: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), nil
}

// createCertificate signs template with a random 128-bit serial and returns it as PEM.
func createCertificate(template, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generate a certificate serial: %w", err)
	}
	template.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, template, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("create the certificate for %s: %w", template.Subject.CommonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode the private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
