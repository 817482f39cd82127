package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mcert/mcert"
)

// Citizen is the person a verified card speaks for. A card names its citizen by the whole
// national ID (ID) or, as MOICA's do, by the last four digits of it (LastFour); which one, and
// what the citizen typed, the caller decides (PROTOCOL.md section 1b).
type Citizen struct {
	ID, LastFour, Name string
	Certificate        *x509.Certificate
	Issuer             *x509.Certificate // the CA that issued the card, from the verified chain
}

// Revocation establishes whether a trusted card has been revoked (package revocation).
type Revocation interface {
	Check(ctx context.Context, card, issuer *x509.Certificate) error
}

// CardVerifier decides whether a card login is genuine: the card is trusted (PROTOCOL.md section
// 1) and it signed the challenge.
type CardVerifier struct {
	roots      *x509.CertPool
	cas        []*x509.Certificate
	revocation Revocation // nil: no revocation check (the development CA's cards)
}

// NewCardVerifier trusts the card CAs in caBundlePEM and asks revocation, which may be nil,
// about each card they issued.
func NewCardVerifier(caBundlePEM []byte, revocation Revocation) (*CardVerifier, error) {
	v := &CardVerifier{roots: x509.NewCertPool(), revocation: revocation}
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
	return v, nil
}

// CAs are the trusted card CAs.
func (v *CardVerifier) CAs() []*x509.Certificate { return v.cas }

// Verify checks that certDER is a trusted card at now and that signature is its raw signature
// over challenge (PROTOCOL.md section 1), and returns the citizen it names. Every failure is
// an *mcert.Error; once the card is known to be a trusted one, the citizen is returned with it.
func (v *CardVerifier) Verify(ctx context.Context, certDER, challenge, signature []byte, now time.Time) (Citizen, error) {
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return Citizen{}, mcert.BadCertificate.New()
	}
	citizen, err := v.checkCard(ctx, cert, nil, now)
	if err != nil {
		return citizen, err
	}
	return citizen, verifyChallenge(cert.PublicKey, challenge, signature)
}

// Extended key usages a card may be restricted to: logging in (clientAuth) or signing
// (emailProtection, documentSigning of RFC 9336). A card restricted to anything else, such as
// a TLS server's certificate from the same CA, is refused.
var (
	oidDocumentSigning = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 36}
	cardEKUs           = []x509.ExtKeyUsage{x509.ExtKeyUsageAny, x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageEmailProtection}
)

func cardEKUAllowed(cert *x509.Certificate) bool {
	if len(cert.ExtKeyUsage) == 0 && len(cert.UnknownExtKeyUsage) == 0 {
		return true
	}
	for _, u := range cert.ExtKeyUsage {
		if slices.Contains(cardEKUs, u) {
			return true
		}
	}
	return slices.ContainsFunc(cert.UnknownExtKeyUsage, oidDocumentSigning.Equal)
}

// checkCard runs every check of a card certificate but its signature: validity period, key
// usage, key strength, extended key usage, the chain to a configured CA, the identity it
// carries, and revocation. intermediates may be nil.
func (v *CardVerifier) checkCard(ctx context.Context, cert *x509.Certificate, intermediates *x509.CertPool, now time.Time) (Citizen, error) {
	// The period and key usage are checked before the chain, which would also refuse an
	// expired card but only as "untrusted", telling the citizen less.
	if now.Before(cert.NotBefore) {
		return Citizen{}, mcert.CardNotYetValid.Newf(cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(cert.NotAfter) {
		return Citizen{}, mcert.CardExpired.Newf(cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 || !cardEKUAllowed(cert) {
		return Citizen{}, mcert.CardKeyUsage.New()
	}
	if err := checkCardKey(cert.PublicKey); err != nil {
		return Citizen{}, err
	}
	chains, err := cert.Verify(x509.VerifyOptions{Roots: v.roots, Intermediates: intermediates, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil || len(chains[0]) < 2 {
		return Citizen{}, mcert.CardUntrusted.New()
	}
	citizen, err := identity(cert)
	if err != nil {
		return Citizen{}, err
	}
	// From here the card is a trusted one that names its citizen, and refusals say whose it was.
	citizen.Issuer = chains[0][1]
	if v.revocation != nil {
		if err := v.revocation.Check(ctx, cert, citizen.Issuer); err != nil {
			return citizen, err
		}
	}
	return citizen, nil
}

// identity reads who a card names: a whole national ID in the subject's serialNumber, or the
// last four digits in MOICA's attribute.
func identity(cert *x509.Certificate) (Citizen, error) {
	c := Citizen{Name: cert.Subject.CommonName, Certificate: cert}
	switch serials := serialNumbers(cert); {
	case len(serials) > 1:
		return Citizen{}, mcert.CardManySerials.New()
	case len(serials) == 1 && ValidateCitizenID(serials[0]) == nil:
		c.ID = serials[0]
		return c, nil
	}
	last, err := moicaLastFour(cert)
	if errors.Is(err, errNoLastFour) {
		return Citizen{}, mcert.CardNoCitizenID.New()
	}
	if err != nil {
		return Citizen{}, mcert.CardUnclearCitizen.Newf(err)
	}
	c.LastFour = last
	return c, nil
}

// checkCardKey accepts the keys a citizen card may have: RSA of 2048 bits or more, ECDSA on
// P-256 or a larger NIST curve.
func checkCardKey(pub crypto.PublicKey) error {
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() >= 2048 {
			return nil
		}
	case *ecdsa.PublicKey:
		if pub.Curve == elliptic.P256() || pub.Curve == elliptic.P384() || pub.Curve == elliptic.P521() {
			return nil
		}
	}
	return mcert.CardKeyType.New()
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
		return mcert.BadSignature.New()
	}
	return nil
}

// Card is a citizen card held in software: the development stand-in for a smart card.
type Card struct {
	Certificate *x509.Certificate
	Key         crypto.Signer
}

// ParseCard reads a card from PEM holding a CERTIFICATE and its PKCS#8 PRIVATE KEY, in either
// order. A card whose key is encrypted under a PIN is ErrPINRequired: read it with
// ParseCardWithPIN.
func ParseCard(pemBytes []byte) (*Card, error) {
	f, err := ReadCardFile(pemBytes)
	if err != nil {
		return nil, err
	}
	if f.HasPIN() {
		return nil, ErrPINRequired
	}
	return f.Unlock("")
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
	return cardSigner(key)
}

func cardSigner(key any) (crypto.Signer, error) {
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
