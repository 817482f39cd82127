// Package pki does the cryptography of mcert's citizen signing certificates (PROTOCOL.md
// section 9): the CA that issues one certificate per phone binding, its CRL and OCSP answers,
// the signatures made with a phone's key over document digests (detached CMS and raw ECDSA),
// and their verification. It keeps no state and knows no storage: callers hand it the CA's key
// and chain as bytes and decide what is revoked.
package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"time"
)

// caName is the start of the common name of the CAs that NewCA makes.
const caName = "mcert citizen signing CA"

// CA is mcert's citizen signing CA: an ECDSA P-256 key and its chain, the issuing certificate
// first, then up to a root. A CA is never changed once made, so one may serve many goroutines.
type CA struct {
	key    *ecdsa.PrivateKey
	keyDER []byte // PKCS#8, kept from construction so that KeyDER cannot fail
	chain  []*x509.Certificate
}

// NewCA makes a CA of a new key with a self-signed root certificate, valid for ten years from
// now, whose common name is "mcert citizen signing CA" followed by name (the deployment's, for
// people to tell CAs apart; it may be empty). The root may issue only end-entity certificates
// (path length 0) and sign CRLs.
func NewCA(rand io.Reader, now time.Time, name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	serial, err := NewSerial(rand)
	if err != nil {
		return nil, err
	}
	cn := caName
	if name != "" {
		cn += " " + name
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now,
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	return LoadCA(keyDER, [][]byte{der})
}

// LoadCA makes a CA of what KeyDER and ChainDER returned: a PKCS#8 ECDSA P-256 key and DER
// certificates. It refuses a key that is not the first certificate's, a first certificate that
// may not sign certificates and CRLs, and a chain that does not verify up to a root, its last
// certificate (see WithChain).
func LoadCA(keyDER []byte, chainDER [][]byte) (*CA, error) {
	parsed, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	key, ok := parsed.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("CA key: a %T, not an ECDSA P-256 key", parsed)
	}
	chain := make([]*x509.Certificate, len(chainDER))
	for i, der := range chainDER {
		if chain[i], err = x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("certificate %d of the CA chain: %w", i+1, err)
		}
	}
	if err := checkChain(key, chain); err != nil {
		return nil, err
	}
	return &CA{key: key, keyDER: bytes.Clone(keyDER), chain: chain}, nil
}

// KeyDER is the CA's private key, PKCS#8 DER, for the caller to seal and store.
func (ca *CA) KeyDER() []byte { return bytes.Clone(ca.keyDER) }

// ChainDER is the CA's chain, DER, the issuing certificate first.
func (ca *CA) ChainDER() [][]byte {
	der := make([][]byte, len(ca.chain))
	for i, c := range ca.chain {
		der[i] = bytes.Clone(c.Raw)
	}
	return der
}

// Certificate is the CA's issuing certificate, the first of its chain: the issuer of the
// citizens' certificates, their CRL and OCSP answers.
func (ca *CA) Certificate() *x509.Certificate { return ca.chain[0] }

// PEM is the CA's chain as PEM certificates, the issuing certificate first: what
// GET /pki/ca.pem serves, and what `openssl cms -verify -CAfile` takes.
func (ca *CA) PEM() []byte {
	var out []byte
	for _, c := range ca.chain {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// CSR is a PEM certificate request for the CA's key, in the name of its issuing certificate, so
// that an operator's own root (or an intermediate under it) can certify mcert's CA; WithChain
// installs the chain that comes back. The request asks for no extensions: the operator's CA
// profile sets them, and WithChain checks that they let mcert's CA sign certificates and CRLs.
func (ca *CA) CSR(rand io.Reader) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand, &x509.CertificateRequest{Subject: ca.chain[0].Subject}, ca.key)
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// WithChain is the CA with another chain for its key, from PEM certificates (text around them,
// such as openssl's "subject=" lines, is ignored): the operator's certificate for mcert's CA
// first, then the certificates above it up to the operator's root. The first certificate's key
// must be the CA's, it must be a CA that may sign certificates and CRLs, and the chain must
// verify up to its last certificate, a root (self-signed), as relying parties' tools need it in
// ca.pem, leaving room below for the citizens' certificates.
func (ca *CA) WithChain(chainPEM []byte) (*CA, error) {
	var chain []*x509.Certificate
	for rest := chainPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("the chain holds a %s block: only certificates belong in it", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d of the chain: %w", len(chain)+1, err)
		}
		chain = append(chain, c)
	}
	if err := checkChain(ca.key, chain); err != nil {
		return nil, err
	}
	return &CA{key: ca.key, keyDER: ca.keyDER, chain: chain}, nil
}

// checkChain checks what makes chain usable as key's: chain[0] certifies key as a CA that may
// sign certificates and CRLs, each certificate is signed by the next up to a root, and no path
// length constraint above forbids the citizens' certificates below chain[0]. It takes no
// clock: how long the chain stays valid is the caller's to watch (Certificate().NotAfter).
func checkChain(key *ecdsa.PrivateKey, chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return errors.New("the CA chain holds no certificate")
	}
	c, root := chain[0], chain[len(chain)-1]
	if !key.PublicKey.Equal(c.PublicKey) {
		return fmt.Errorf("the CA key is not the key of certificate %q", c.Subject)
	}
	if !c.BasicConstraintsValid || !c.IsCA {
		return fmt.Errorf("certificate %q is not a CA certificate (basic constraints CA:TRUE)", c.Subject)
	}
	if c.KeyUsage&x509.KeyUsageCertSign == 0 || c.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return fmt.Errorf("certificate %q may not sign both certificates and CRLs (key usage keyCertSign and cRLSign)", c.Subject)
	}
	// x509.CreateRevocationList needs it for the CRLs' authority key identifier.
	if len(c.SubjectKeyId) == 0 {
		return fmt.Errorf("certificate %q has no subject key identifier", c.Subject)
	}
	if !bytes.Equal(root.RawIssuer, root.RawSubject) || root.CheckSignatureFrom(root) != nil {
		return fmt.Errorf("the CA chain ends with %q, issued by %q: add the certificates up to its root", root.Subject, root.Issuer)
	}
	// x509 checks chains only at an instant: one when every certificate is valid. If there is
	// none, the error says which certificate has expired.
	at := c.NotBefore
	for _, above := range chain[1:] {
		if above.NotBefore.After(at) {
			at = above.NotBefore
		}
	}
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, above := range chain[1:] {
		intermediates.AddCert(above)
	}
	if _, err := c.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return fmt.Errorf("the CA chain does not verify up to %q: %w", root.Subject, err)
	}
	// Each certificate is the issuer of the one before, the order ca.pem keeps; and none
	// forbids the CA certificates below it, which Verify counted without the citizens'
	// certificates to come: chain[i] has i of them.
	for i := 1; i < len(chain); i++ {
		if err := chain[i-1].CheckSignatureFrom(chain[i]); err != nil {
			return fmt.Errorf("certificate %d of the CA chain is not signed by certificate %d (%q): %w", i, i+1, chain[i].Subject, err)
		}
		if c := chain[i]; c.BasicConstraintsValid && c.MaxPathLen >= 0 && c.MaxPathLen < i {
			return fmt.Errorf("certificate %q allows %d CA certificates below it, and mcert's CA would be number %d", c.Subject, c.MaxPathLen, i)
		}
	}
	return nil
}
