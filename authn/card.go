package authn

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/mcert/mcert"
)

// Citizen is the person a verified card speaks for.
type Citizen struct {
	ID, Name    string
	Certificate *x509.Certificate
}

// CardVerifier decides whether a card login is genuine: the card is trusted (PROTOCOL.md section
// 1) and it signed the challenge.
type CardVerifier struct {
	roots *x509.CertPool
	cas   []*x509.Certificate
	// crlIssuer is nil when no CRL is configured. A serial number is unique only per issuer, so
	// a listed serial revokes a card only when crlIssuer issued it.
	crlIssuer *x509.Certificate
	revoked   map[string]bool
}

// NewCardVerifier trusts the card CAs in caBundlePEM and refuses the cards on crl, which may be
// nil, PEM ("X509 CRL") or DER, and must be signed by one of those CAs.
func NewCardVerifier(caBundlePEM []byte, crl []byte) (*CardVerifier, error) {
	v := &CardVerifier{roots: x509.NewCertPool()}
	for i, block := range pemBlocks(caBundlePEM) {
		n := i + 1
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("card CA bundle: PEM block %d is a %q; the bundle may hold only CERTIFICATE blocks", n, block.Type)
		}
		ca, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("card CA bundle: PEM block %d is not a valid certificate: %w", n, err)
		}
		if !ca.IsCA {
			return nil, fmt.Errorf("card CA bundle: PEM block %d (%s) is not a CA certificate; configure the CA that issues the cards, not a card", n, ca.Subject)
		}
		v.roots.AddCert(ca)
		v.cas = append(v.cas, ca)
	}
	if len(v.cas) == 0 {
		return nil, errors.New("card CA bundle holds no PEM CERTIFICATE block; give the PEM file of the CA that issues the cards")
	}
	if len(crl) == 0 {
		return v, nil
	}
	if err := v.loadCRL(crl); err != nil {
		return nil, fmt.Errorf("card CRL: %w", err)
	}
	return v, nil
}

func (v *CardVerifier) loadCRL(crl []byte) error {
	der := crl
	if block, _ := pem.Decode(crl); block != nil {
		if block.Type != "X509 CRL" {
			return fmt.Errorf("the PEM block is a %q, want an X509 CRL", block.Type)
		}
		der = block.Bytes
	}
	list, err := x509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("not a valid CRL in PEM or DER: %w", err)
	}
	for _, ca := range v.cas {
		if list.CheckSignatureFrom(ca) == nil {
			v.crlIssuer = ca
			break
		}
	}
	if v.crlIssuer == nil {
		return fmt.Errorf("the CRL from %s is not signed by any of the configured card CAs; use the CRL of the CA that issues the cards", list.Issuer)
	}
	v.revoked = make(map[string]bool, len(list.RevokedCertificateEntries))
	for _, entry := range list.RevokedCertificateEntries {
		v.revoked[entry.SerialNumber.String()] = true
	}
	return nil
}

// Verify checks that certDER is a trusted card at now and that signature is its signature over
// challenge, and returns the citizen it names. Every failure is an *mcert.Error; once the card
// is known to be a trusted one, the citizen is returned with it.
func (v *CardVerifier) Verify(certDER, challenge, signature []byte, now time.Time) (Citizen, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return Citizen{}, mcert.Errorf(mcert.Invalid, "bad_certificate", "the card certificate is not valid DER X.509; send the certificate the card agent returned")
	}
	// The period and key usage are checked before the chain, which would also refuse an
	// expired card but only as "untrusted", telling the citizen less.
	if now.Before(cert.NotBefore) {
		return Citizen{}, mcert.Errorf(mcert.Unauthorized, "card_not_yet_valid", "the card is valid only from %s; check the computer's clock", cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(cert.NotAfter) {
		return Citizen{}, mcert.Errorf(mcert.Unauthorized, "card_expired", "the card expired on %s; renew it at a household registration office", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return Citizen{}, mcert.Errorf(mcert.Unauthorized, "card_key_usage", "the card's key is not meant for signing; use the citizen card's signing certificate")
	}
	if err := checkCardKey(cert.PublicKey); err != nil {
		return Citizen{}, err
	}
	chains, err := cert.Verify(x509.VerifyOptions{Roots: v.roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return Citizen{}, mcert.Errorf(mcert.Unauthorized, "card_untrusted", "the card was not issued by a trusted certificate authority")
	}
	if ValidateCitizenID(cert.Subject.SerialNumber) != nil {
		return Citizen{}, mcert.Errorf(mcert.Unauthorized, "card_no_citizen_id", "the card carries no valid national ID; log in with a citizen card")
	}
	// From here the card is a trusted one that names its citizen, and refusals say whose it was.
	citizen := Citizen{ID: cert.Subject.SerialNumber, Name: cert.Subject.CommonName, Certificate: cert}
	if v.isRevoked(cert, chains) {
		return citizen, mcert.Errorf(mcert.Unauthorized, "card_revoked", "the card has been revoked; use a valid citizen card")
	}
	if err := verifyChallenge(cert.PublicKey, challenge, signature); err != nil {
		return citizen, err
	}
	return citizen, nil
}

func (v *CardVerifier) isRevoked(cert *x509.Certificate, chains [][]*x509.Certificate) bool {
	if v.crlIssuer == nil || !v.revoked[cert.SerialNumber.String()] {
		return false
	}
	for _, chain := range chains {
		if len(chain) > 1 && chain[1].Equal(v.crlIssuer) {
			return true
		}
	}
	return false
}

// checkCardKey accepts the key types of PROTOCOL.md section 1, the ones verifyChallenge knows.
func checkCardKey(pub crypto.PublicKey) error {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		return nil
	case *ecdsa.PublicKey:
		if pub.Curve == elliptic.P256() {
			return nil
		}
	}
	return mcert.Errorf(mcert.Unauthorized, "card_key_type", "the card's key is neither RSA nor ECDSA P-256; use a citizen card")
}

func verifyChallenge(pub crypto.PublicKey, challenge, signature []byte) error {
	digest := sha256.Sum256(challenge)
	ok := false
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		ok = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], signature) == nil
	case *ecdsa.PublicKey:
		ok = ecdsa.VerifyASN1(pub, digest[:], signature)
	}
	if !ok {
		return mcert.Errorf(mcert.Unauthorized, "bad_signature", "the card's signature does not match the challenge; fetch a new challenge and sign it again")
	}
	return nil
}

// Card is a citizen card held in software: the development stand-in for a smart card.
type Card struct {
	Certificate *x509.Certificate
	Key         crypto.Signer
}

// ParseCard reads a card from PEM holding a CERTIFICATE and its PKCS#8 PRIVATE KEY, in either
// order.
func ParseCard(pemBytes []byte) (*Card, error) {
	var c Card
	for _, block := range pemBlocks(pemBytes) {
		switch {
		case block.Type == "CERTIFICATE" && c.Certificate == nil:
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("the CERTIFICATE block is not a valid certificate: %w", err)
			}
			c.Certificate = cert
		case block.Type == "PRIVATE KEY" && c.Key == nil:
			key, err := parsePrivateKey(block.Bytes)
			if err != nil {
				return nil, err
			}
			c.Key = key
		case block.Type == "CERTIFICATE" || block.Type == "PRIVATE KEY":
			return nil, fmt.Errorf("more than one %s block; a card file holds one certificate and its key", block.Type)
		default:
			return nil, fmt.Errorf("unexpected PEM block %q; a card file holds a CERTIFICATE and a PKCS#8 PRIVATE KEY (convert other keys with openssl pkcs8 -topk8 -nocrypt)", block.Type)
		}
	}
	if c.Certificate == nil {
		return nil, errors.New("no CERTIFICATE block; a card file holds a CERTIFICATE and its PKCS#8 PRIVATE KEY")
	}
	if c.Key == nil {
		return nil, errors.New("no PRIVATE KEY block; a card file holds a CERTIFICATE and its PKCS#8 PRIVATE KEY")
	}
	if pub, ok := c.Key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(c.Certificate.PublicKey) {
		return nil, errors.New("the private key does not belong to the certificate; put the certificate's own key in the card file")
	}
	return &c, nil
}

// pemBlocks are the PEM blocks in data; text between them, as in many PEM files, is ignored.
func pemBlocks(data []byte) []*pem.Block {
	var blocks []*pem.Block
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		blocks = append(blocks, block)
	}
	return blocks
}

func parsePrivateKey(der []byte) (crypto.Signer, error) {
	key, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("the PRIVATE KEY block is not a valid PKCS#8 key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok || checkCardKey(signer.Public()) != nil {
		return nil, fmt.Errorf("the private key is a %T; a card key is RSA or ECDSA P-256", key)
	}
	return signer, nil
}

// Sign signs challenge the way PROTOCOL.md section 1 wants: PKCS#1 v1.5 for RSA, ASN.1 ECDSA for
// EC keys, both over SHA-256.
func (c *Card) Sign(challenge []byte) ([]byte, error) {
	digest := sha256.Sum256(challenge)
	return c.Key.Sign(rand.Reader, digest[:], crypto.SHA256)
}
