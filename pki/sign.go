package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/smallstep/pkcs7"
)

// The CMS structures of RFC 5652 that SignCMS writes, as encoding/asn1 marshals them.
//
// They are written here because no maintained Go CMS library signs a digest it is given:
// smallstep/pkcs7 v0.2.3, like the forks it comes from (fullsailor/pkcs7, mozilla-services/pkcs7,
// where pull request 20 for a precomputed digest was closed unmerged) and digitorus/pkcs7,
// hashes the content passed to NewSignedData itself and stamps the signing time from
// time.Now(); its ExtraSignedAttributes would add a second message-digest beside its own. mcert
// is given only the documents' SHA-256 digests, and its clock is injected. Verification, which
// has the document, is smallstep/pkcs7's (verify.go), so that code other than this checks what
// this writes; openssl checks it in the tests.

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue // [0] EXPLICIT, tagged by the RawValue itself
}

type signedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo encapsulatedContentInfo
	// Marshal sorts a SET OF as DER asks, so the certificates' order is not kept.
	Certificates []asn1.RawValue `asn1:"optional,set,tag:0"`
	SignerInfos  []signerInfo    `asn1:"set"`
}

// encapsulatedContentInfo has no eContent: the signature is detached.
type encapsulatedContentInfo struct {
	EContentType asn1.ObjectIdentifier
}

type signerInfo struct {
	Version            int
	SID                issuerAndSerialNumber
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue // [0] IMPLICIT SET OF Attribute
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
}

type issuerAndSerialNumber struct {
	Issuer       asn1.RawValue
	SerialNumber *big.Int
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.RawValue `asn1:"set"`
}

// SignCMS is a detached CMS SignedData (DER) over a document of the given SHA-256 digest, made
// with signer, the key of cert (DER): signed attributes content-type id-data, message-digest
// the digest and signing-time; the signer identified by issuer and serial number; digest
// algorithm SHA-256 and signature ecdsa-with-SHA256; cert and chain (DER, the CA's) included.
// `openssl cms -verify -binary -inform DER -in sig.der -content document -CAfile ca.pem`
// verifies it, and so does VerifyCMS.
func SignCMS(rand io.Reader, digest []byte, signer crypto.Signer, cert []byte, chain [][]byte, signingTime time.Time) ([]byte, error) {
	if err := checkDigest(digest); err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(cert)
	if err != nil {
		return nil, fmt.Errorf("the signer's certificate: %w", err)
	}
	pub, err := signingKey(signer)
	if err != nil {
		return nil, err
	}
	if !pub.Equal(c.PublicKey) {
		return nil, fmt.Errorf("the signing key is not the key of the certificate of %q", c.Subject)
	}
	certs := []asn1.RawValue{{FullBytes: c.Raw}}
	for i, der := range chain {
		if _, err := x509.ParseCertificate(der); err != nil {
			return nil, fmt.Errorf("certificate %d of the chain: %w", i+1, err)
		}
		certs = append(certs, asn1.RawValue{FullBytes: der})
	}

	// Marshal writes a time as UTCTime from 1950 to 2049 and as GeneralizedTime otherwise, as
	// RFC 5652 11.3 asks, and in UTC, as DER asks, when given it in UTC.
	var attrs []attribute
	for _, a := range []struct {
		oid   asn1.ObjectIdentifier
		value any
	}{
		{pkcs7.OIDAttributeContentType, pkcs7.OIDData},
		{pkcs7.OIDAttributeMessageDigest, digest},
		{pkcs7.OIDAttributeSigningTime, signingTime.UTC()},
	} {
		der, err := asn1.Marshal(a.value)
		if err != nil {
			return nil, fmt.Errorf("signed attribute %v: %w", a.oid, err)
		}
		attrs = append(attrs, attribute{a.oid, []asn1.RawValue{{FullBytes: der}}})
	}
	// The signature covers the attributes' DER as a SET OF (RFC 5652 5.4), sorted by Marshal;
	// the SignerInfo holds the same bytes under the [0] tag.
	set, err := asn1.MarshalWithParams(attrs, "set")
	if err != nil {
		return nil, fmt.Errorf("signed attributes: %w", err)
	}
	var setTLV asn1.RawValue
	if _, err := asn1.Unmarshal(set, &setTLV); err != nil {
		return nil, fmt.Errorf("signed attributes: %w", err)
	}
	h := sha256.Sum256(set)
	sig, err := signer.Sign(rand, h[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}

	sha256ID := pkix.AlgorithmIdentifier{Algorithm: pkcs7.OIDDigestAlgorithmSHA256}
	sd := signedData{
		Version:          1, // issuerAndSerialNumber, id-data, no attribute certificates
		DigestAlgorithms: []pkix.AlgorithmIdentifier{sha256ID},
		EncapContentInfo: encapsulatedContentInfo{EContentType: pkcs7.OIDData},
		Certificates:     certs,
		SignerInfos: []signerInfo{{
			Version:            1,
			SID:                issuerAndSerialNumber{Issuer: asn1.RawValue{FullBytes: c.RawIssuer}, SerialNumber: c.SerialNumber},
			DigestAlgorithm:    sha256ID,
			SignedAttrs:        asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: setTLV.Bytes},
			SignatureAlgorithm: pkix.AlgorithmIdentifier{Algorithm: pkcs7.OIDDigestAlgorithmECDSASHA256},
			Signature:          sig,
		}},
	}
	inner, err := asn1.Marshal(sd)
	if err != nil {
		return nil, fmt.Errorf("SignedData: %w", err)
	}
	return asn1.Marshal(contentInfo{
		ContentType: pkcs7.OIDSignedData,
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner},
	})
}

// SignRaw is the DER ECDSA signature (ECDSA-Sig-Value) whose hash input is the SHA-256 digest
// itself, not hashed again: what VerifyRaw, or any ecdsa-with-SHA256 verifier given the
// document, accepts.
func SignRaw(rand io.Reader, digest []byte, signer crypto.Signer) ([]byte, error) {
	if err := checkDigest(digest); err != nil {
		return nil, err
	}
	if _, err := signingKey(signer); err != nil {
		return nil, err
	}
	sig, err := signer.Sign(rand, digest, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return sig, nil
}

func checkDigest(digest []byte) error {
	if len(digest) != sha256.Size {
		return fmt.Errorf("a digest must be SHA-256, %d bytes, not %d", sha256.Size, len(digest))
	}
	return nil
}

// signingKey is signer's public key, if it is one of the ECDSA P-256 keys mcert gives phones:
// the signature algorithms written are ECDSA's.
func signingKey(signer crypto.Signer) (*ecdsa.PublicKey, error) {
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("the signing key must be ECDSA P-256, not %T", signer.Public())
	}
	return pub, nil
}
