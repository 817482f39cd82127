package pki

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/smallstep/pkcs7"
)

// The ways a signature fails that a verifier tells apart (errors.Is); the errors' texts say
// more.
var (
	ErrWrongDocument = errors.New("the signature is not of this document")
	ErrBadSignature  = errors.New("the signature does not verify")
	ErrUntrusted     = errors.New("the signer's certificate is not trusted")
	ErrRevoked       = errors.New("the signer's certificate was revoked")
)

// Verified is a signature that verified.
type Verified struct {
	Cert        *x509.Certificate   // the signer's
	Chain       []*x509.Certificate // from Cert up to one of the trusted roots
	SigningTime time.Time           // the CMS signing-time, or the time given to VerifyRaw
}

// VerifyCMS verifies a detached CMS SignedData (DER, or BER) over content: exactly one signer,
// whose signed attributes hold content-type id-data, a SHA-256 message-digest equal to
// content's and a signing-time; a valid signature by a certificate included in it; and a chain
// from that certificate to roots, valid at the signing time, for id-kp-documentSigning or
// emailProtection. The signing time is the signer's claim, which mcert, the signer of its
// citizens' signatures, makes from its own clock. Revocation is CheckOCSP's.
func VerifyCMS(sigDER, content []byte, roots *x509.CertPool) (Verified, error) {
	p7, err := pkcs7.Parse(sigDER)
	if err != nil {
		return Verified{}, fmt.Errorf("not a CMS signature: %w", err)
	}
	// Parse does not fail on a SignedData that does not decode; it then has no signers.
	if len(p7.Signers) != 1 {
		return Verified{}, fmt.Errorf("the CMS signature has %d signers, not one", len(p7.Signers))
	}
	if len(p7.Content) > 0 {
		return Verified{}, errors.New("the CMS signature holds its document: only detached signatures are verified")
	}
	signer := p7.Signers[0]
	if !signer.DigestAlgorithm.Algorithm.Equal(pkcs7.OIDDigestAlgorithmSHA256) {
		return Verified{}, fmt.Errorf("the CMS signature's digest algorithm is %v, not SHA-256", signer.DigestAlgorithm.Algorithm)
	}
	// Each of the three once: without signed attributes the library would verify a signature
	// over the content itself, and of two message digests it would read the first.
	seen := map[string]int{}
	for _, a := range signer.AuthenticatedAttributes {
		seen[a.Type.String()]++
	}
	for _, oid := range []asn1.ObjectIdentifier{pkcs7.OIDAttributeContentType, pkcs7.OIDAttributeMessageDigest, pkcs7.OIDAttributeSigningTime} {
		if n := seen[oid.String()]; n != 1 {
			return Verified{}, fmt.Errorf("the CMS signature has %d signed attributes %v, not one", n, oid)
		}
	}
	var contentType asn1.ObjectIdentifier
	if err := p7.UnmarshalSignedAttribute(pkcs7.OIDAttributeContentType, &contentType); err != nil || !contentType.Equal(pkcs7.OIDData) {
		return Verified{}, fmt.Errorf("the CMS signature's content type is not id-data (%v)", contentType)
	}
	var signingTime time.Time
	if err := p7.UnmarshalSignedAttribute(pkcs7.OIDAttributeSigningTime, &signingTime); err != nil {
		return Verified{}, fmt.Errorf("the CMS signature's signing time: %w", err)
	}
	cert := p7.GetOnlySigner()
	if cert == nil {
		return Verified{}, errors.New("the CMS signature does not include its signer's certificate")
	}

	// With no trust store the library checks the digest, the signing time against the
	// certificate's validity and the signature; the chain is checked below, for the purposes
	// the library does not know.
	p7.Content = content
	var mismatch *pkcs7.MessageDigestMismatchError
	var outside *pkcs7.SigningTimeNotValidError
	switch err := p7.VerifyWithChainAtTime(nil, signingTime); {
	case errors.As(err, &mismatch):
		return Verified{}, fmt.Errorf("%w: it signs SHA-256 %x, the document's is %x", ErrWrongDocument, mismatch.ExpectedDigest, mismatch.ActualDigest)
	case errors.As(err, &outside):
		return Verified{}, fmt.Errorf("%w: it was signed at %s, outside its validity (%s to %s)", ErrUntrusted,
			stamp(outside.SigningTime), stamp(outside.NotBefore), stamp(outside.NotAfter))
	case err != nil:
		return Verified{}, fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	var intermediates []*x509.Certificate
	for _, c := range p7.Certificates {
		if !c.Equal(cert) {
			intermediates = append(intermediates, c)
		}
	}
	chain, err := verifyChain(cert, intermediates, roots, signingTime)
	if err != nil {
		return Verified{}, err
	}
	return Verified{Cert: cert, Chain: chain, SigningTime: signingTime}, nil
}

// VerifyRaw verifies a raw signature (SignRaw's) over content by the key of cert (DER), and
// cert's chain to roots at the given time, when the signature was made as its evidence tells:
// a raw signature carries no time and no chain, so roots must hold the CA that issued cert
// (mcert's ca.pem does, in full).
func VerifyRaw(sig, content, cert []byte, roots *x509.CertPool, at time.Time) (Verified, error) {
	c, err := x509.ParseCertificate(cert)
	if err != nil {
		return Verified{}, fmt.Errorf("the signer's certificate: %w", err)
	}
	// ECDSA over the SHA-256 digest as hash input is ecdsa-with-SHA256 over the document.
	if err := c.CheckSignature(x509.ECDSAWithSHA256, content, sig); err != nil {
		return Verified{}, fmt.Errorf("%w: not of this document, or not by the key of the certificate of %q (%v)", ErrBadSignature, c.Subject, err)
	}
	chain, err := verifyChain(c, nil, roots, at)
	if err != nil {
		return Verified{}, err
	}
	return Verified{Cert: c, Chain: chain, SigningTime: at}, nil
}

// verifyChain is a chain from cert through intermediates to roots, valid at the given time,
// for signing documents: cert's key usage, if restricted, allows signatures, and cert lists
// id-kp-documentSigning or emailProtection, which every CA certificate above it that restricts
// extended key usages allows too. crypto/x509 knows no documentSigning, so chains are built
// for any purpose and their purposes checked here.
func verifyChain(cert *x509.Certificate, intermediates []*x509.Certificate, roots *x509.CertPool, at time.Time) ([]*x509.Certificate, error) {
	if roots == nil {
		return nil, fmt.Errorf("%w: no trusted CA given", ErrUntrusted)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return nil, fmt.Errorf("%w: the certificate of %q is not for signatures (key usage)", ErrUntrusted, cert.Subject)
	}
	pool := x509.NewCertPool()
	for _, c := range intermediates {
		pool.AddCert(c)
	}
	chains, err := cert.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: pool,
		CurrentTime:   at,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: the certificate of %q at %s: %v", ErrUntrusted, cert.Subject, stamp(at), err)
	}
	for _, chain := range chains {
		if forSigning(chain) {
			return chain, nil
		}
	}
	return nil, fmt.Errorf("%w: the certificate of %q, or a CA above it, is not for document signing or e-mail protection (extended key usage)", ErrUntrusted, cert.Subject)
}

func forSigning(chain []*x509.Certificate) bool {
	doc := func(c *x509.Certificate) bool {
		return slices.ContainsFunc(c.UnknownExtKeyUsage, oidDocumentSigning.Equal)
	}
	email := func(c *x509.Certificate) bool { return slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageEmailProtection) }
	okDoc, okEmail := doc(chain[0]), email(chain[0])
	for _, ca := range chain[1:] {
		if len(ca.ExtKeyUsage) == 0 && len(ca.UnknownExtKeyUsage) == 0 || slices.Contains(ca.ExtKeyUsage, x509.ExtKeyUsageAny) {
			continue
		}
		okDoc, okEmail = okDoc && doc(ca), okEmail && email(ca)
	}
	return okDoc || okEmail
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }
