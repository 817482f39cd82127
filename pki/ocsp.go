package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/ocsp"
)

// OCSPValidity is how long an OCSP answer stays current (its nextUpdate after its
// thisUpdate), and so how long a client may cache it. Answers are made on request from the
// caller's records, and a revocation takes effect at once, so a cached "good" should not
// outlive it by much; an HTTP handler may send it as Cache-Control max-age.
const OCSPValidity = time.Minute

// Status is what the caller's records say of a serial number, for OCSP. The zero Status is
// "unknown": the CA never issued that serial number.
type Status struct {
	Issued    bool      // the CA issued a certificate of this serial number
	RevokedAt time.Time // when it was revoked; zero while it is good
	Reason    int       // the RFC 5280 CRLReason of the revocation
}

// OCSP answers an RFC 6960 request (DER, as POSTed to /pki/ocsp or base64url-decoded from
// GET /pki/ocsp/<request>) with a DER response for Content-Type application/ocsp-response.
//
// The answer is about the request's first certificate, for a CertID of SHA-1, SHA-256, SHA-384
// or SHA-512 (those that x/crypto/ocsp reads), with the request's hash; status tells whether the
// serial number is good, revoked or unknown. The CA key signs it directly (the responder ID is
// the CA's name; no delegated responder certificate), with thisUpdate now and nextUpdate
// OCSPValidity later; producedAt is the library's clock, to the minute. Request nonces are not
// echoed (the library does not read them): RFC 5019 responders may leave them out, and
// thisUpdate shows freshness.
//
// A request that does not parse gets the unsigned "malformedRequest" response, and one for a
// certificate of another issuer (name or key hash not this CA's) the unsigned "unauthorized"
// response, as RFC 5019 2.2.3 asks of a responder without authoritative records for it, rather
// than a signed "unknown" about a CA that is not ours: both are responses to send, not errors.
// The error is status's, or the signer's.
func (ca *CA) OCSP(requestDER []byte, now time.Time, status func(serial *big.Int) (Status, error)) ([]byte, error) {
	req, err := ocsp.ParseRequest(requestDER)
	if err != nil {
		return bytes.Clone(ocsp.MalformedRequestErrorResponse), nil
	}
	issuer := ca.chain[0]
	nameHash, keyHash, err := issuerHashes(issuer, req)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(req.IssuerNameHash, nameHash) || !bytes.Equal(req.IssuerKeyHash, keyHash) {
		return bytes.Clone(ocsp.UnauthorizedErrorResponse), nil
	}
	s, err := status(req.SerialNumber)
	if err != nil {
		return nil, fmt.Errorf("status of serial number %x: %w", req.SerialNumber, err)
	}
	template := ocsp.Response{
		Status:       ocsp.Unknown,
		SerialNumber: req.SerialNumber,
		IssuerHash:   req.HashAlgorithm,
		ThisUpdate:   now,
		NextUpdate:   now.Add(OCSPValidity),
	}
	switch {
	case !s.Issued:
	case s.RevokedAt.IsZero():
		template.Status = ocsp.Good
	default:
		if _, ok := reasons[s.Reason]; !ok {
			return nil, fmt.Errorf("serial number %x: %d is not a CRL reason code", req.SerialNumber, s.Reason)
		}
		template.Status, template.RevokedAt, template.RevocationReason = ocsp.Revoked, s.RevokedAt, s.Reason
	}
	der, err := ocsp.CreateResponse(issuer, issuer, template, ca.key)
	if err != nil {
		return nil, fmt.Errorf("OCSP response: %w", err)
	}
	return der, nil
}

// issuerHashes are the CertID hashes of issuer's name and key, with the request's hash. Every
// hash ParseRequest accepts is linked in by crypto/x509.
func issuerHashes(issuer *x509.Certificate, req *ocsp.Request) (name, key []byte, err error) {
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, nil, fmt.Errorf("the CA's public key: %w", err)
	}
	h := req.HashAlgorithm.New()
	h.Write(issuer.RawSubject)
	name = h.Sum(nil)
	h.Reset()
	h.Write(spki.PublicKey.RightAlign())
	return name, h.Sum(nil), nil
}

// CheckOCSP reads an OCSP response about cert from its issuer and says whether a signature made
// with cert's key at the given time still counts: nil unless the certificate was revoked at or
// before then. A revocation after the signature leaves it valid: the key was the citizen's
// until then. A "good" answer counts only
// if it covers the signing time (thisUpdate at or after it, or nextUpdate not before it): an
// older one says nothing of a revocation between. It accepts only answers signed by issuer
// itself, as mcert's are. It returns the response it read, whatever it decided.
func CheckOCSP(responseDER []byte, cert, issuer *x509.Certificate, at time.Time) (*ocsp.Response, error) {
	resp, err := ocsp.ParseResponseForCert(responseDER, cert, issuer)
	if err != nil {
		var re ocsp.ResponseError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("the OCSP responder gave no status: %s", re.Status)
		}
		return nil, fmt.Errorf("the OCSP response is not valid for the certificate of %q from %q: %w", cert.Subject, issuer.Subject, err)
	}
	// With an embedded certificate, ParseResponseForCert checks only that issuer signed it.
	if resp.Certificate != nil && !resp.Certificate.Equal(issuer) {
		return resp, fmt.Errorf("the OCSP response is signed by %q, a delegated responder, not by the CA %q", resp.Certificate.Subject, issuer.Subject)
	}
	switch resp.Status {
	case ocsp.Good:
		if resp.ThisUpdate.Before(at) && (resp.NextUpdate.IsZero() || resp.NextUpdate.Before(at)) {
			return resp, fmt.Errorf("the OCSP response, of %s, is older than the signature (%s): it cannot show the certificate was good then", stamp(resp.ThisUpdate), stamp(at))
		}
		return resp, nil
	case ocsp.Revoked:
		if resp.RevokedAt.After(at) {
			return resp, nil
		}
		return resp, fmt.Errorf("%w since %s (%s), before the signature (%s)", ErrRevoked, stamp(resp.RevokedAt), reasonName(resp.RevocationReason), stamp(at))
	}
	return resp, fmt.Errorf("the OCSP responder does not know the certificate of serial number %x (status unknown)", cert.SerialNumber)
}
