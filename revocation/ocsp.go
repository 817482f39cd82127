package revocation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"time"

	"golang.org/x/crypto/ocsp"
)

type ocspKey struct {
	issuer [32]byte
	serial string
}

type ocspEntry struct {
	revoked *Error    // nil: good
	expires time.Time // zero: kept for good
}

// maxOCSPResponse is far more than an answer with its responder certificate needs.
const maxOCSPResponse = 1 << 20

// errResponderUnknown is the responder's own "unknown": it answered, but not about this card.
var errResponderUnknown = errors.New("the responder does not know the card (status unknown)")

// checkOCSP asks the card's responder, or the cache: nil for good, a revoked *Error, or why no
// answer counts.
func (c *Checker) checkOCSP(ctx context.Context, a *authority, card *x509.Certificate) error {
	key := ocspKey{a.id, card.SerialNumber.String()}
	c.mu.Lock()
	e, ok := c.ocsp[key]
	c.mu.Unlock()
	if ok && (e.expires.IsZero() || c.cfg.Now().Before(e.expires)) {
		return e.result()
	}
	urls := httpURLs(card.OCSPServer)
	if len(urls) == 0 {
		return errors.New("the card names no HTTP OCSP responder")
	}
	// MOICA's responder expects a SHA-1 CertID, as most do; answers may use SHA-256.
	req, err := ocsp.CreateRequest(card, a.cert, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		return fmt.Errorf("building the OCSP request: %w", err)
	}
	var errs []error
	for _, u := range urls {
		resp, err := c.askOCSP(ctx, u, req, card, a.cert)
		if err != nil {
			outcome := "error"
			if errors.Is(err, errResponderUnknown) {
				outcome = "unknown"
			}
			c.ocspQueries.WithLabelValues(outcome).Inc()
			err = fmt.Errorf("OCSP responder %s: %w", u, err)
			c.log.Warn("OCSP query failed", "ca", a.name, "serial", card.SerialNumber.Text(16), "err", err)
			errs = append(errs, err)
			continue
		}
		return c.remember(key, resp, u)
	}
	return errors.Join(errs...)
}

func (e ocspEntry) result() error {
	if e.revoked == nil {
		return nil
	}
	r := *e.revoked // a copy, so that no caller can change the cached one
	return &r
}

func (c *Checker) askOCSP(ctx context.Context, u string, req []byte, card, issuer *x509.Certificate) (*ocsp.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.OCSPTimeout)
	defer cancel()
	der, err := c.fetch(ctx, http.MethodPost, u, req, "application/ocsp-request", maxOCSPResponse)
	if err != nil {
		return nil, err
	}
	return parseOCSP(der, card, issuer, c.cfg.Now(), c.cfg.ClockSkew)
}

// remember caches a verified answer and returns what it says.
func (c *Checker) remember(key ocspKey, resp *ocsp.Response, u string) error {
	var e ocspEntry
	outcome := "good"
	expires := resp.NextUpdate
	if expires.IsZero() {
		expires = c.cfg.Now().Add(c.cfg.OCSPTTL)
	}
	if resp.Status == ocsp.Revoked {
		outcome = "revoked"
		e.revoked = revokedError(resp.RevokedAt, resp.RevocationReason, "OCSP "+u)
	}
	// Revocation is final, but a hold may be lifted: that is cached like a good answer.
	if resp.Status == ocsp.Good || resp.RevocationReason == ocsp.CertificateHold {
		e.expires = expires
	}
	c.ocspQueries.WithLabelValues(outcome).Inc()
	c.mu.Lock()
	c.ocsp[key] = e
	c.mu.Unlock()
	return e.result()
}

// sweepOCSP drops the answers that have expired, so the cache holds about one answer per card
// seen within their lifetime.
func (c *Checker) sweepOCSP(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.ocsp {
		if !e.expires.IsZero() && !now.Before(e.expires) {
			delete(c.ocsp, k)
		}
	}
}

// parseOCSP reads der as the responder's answer about card and returns it when it counts: good
// or revoked, about this card, signed for issuer and current at now. Every byte of der is
// untrusted.
func parseOCSP(der []byte, card, issuer *x509.Certificate, now time.Time, skew time.Duration) (*ocsp.Response, error) {
	// With no issuer given, ParseResponseForCert checks only that an embedded responder
	// certificate signed the answer; checkSigner then decides whether that certificate speaks
	// for the issuer, including the OCSP-signing purpose that the library does not check.
	resp, err := ocsp.ParseResponseForCert(der, card, nil)
	if err != nil {
		var re ocsp.ResponseError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("the responder gave no status: %s", re.Status)
		}
		return nil, fmt.Errorf("malformed OCSP answer: %w", err)
	}
	if err := checkSigner(resp, issuer, now); err != nil {
		return nil, err
	}
	if err := checkCertID(resp, card, issuer); err != nil {
		return nil, err
	}
	if resp.ThisUpdate.After(now.Add(skew)) {
		return nil, fmt.Errorf("the answer's thisUpdate %s is in the future; check this computer's clock", resp.ThisUpdate.UTC().Format(time.RFC3339))
	}
	if !resp.NextUpdate.IsZero() && !now.Before(resp.NextUpdate) {
		return nil, fmt.Errorf("the answer is stale: its nextUpdate %s has passed", resp.NextUpdate.UTC().Format(time.RFC3339))
	}
	switch resp.Status {
	case ocsp.Good, ocsp.Revoked:
		return resp, nil
	case ocsp.Unknown:
		return nil, errResponderUnknown
	}
	return nil, fmt.Errorf("the answer has status %d, which OCSP does not define", resp.Status)
}

// checkSigner accepts an answer signed by the issuer itself, or by a responder certificate that
// the issuer signed for id-kp-OCSPSigning and that is valid now (RFC 6960 4.2.2.2).
func checkSigner(resp *ocsp.Response, issuer *x509.Certificate, now time.Time) error {
	signer := resp.Certificate
	if signer == nil {
		if err := resp.CheckSignatureFrom(issuer); err != nil {
			return fmt.Errorf("the answer is not signed by the card's CA %s: %w", issuer.Subject, err)
		}
		return nil
	}
	// ParseResponseForCert has checked that signer signed the answer.
	if signer.Equal(issuer) {
		return nil
	}
	if !bytes.Equal(signer.RawIssuer, issuer.RawSubject) {
		return fmt.Errorf("the answer's responder certificate %s is issued by %s, not by the card's CA %s", signer.Subject, signer.Issuer, issuer.Subject)
	}
	if err := signer.CheckSignatureFrom(issuer); err != nil {
		return fmt.Errorf("the answer's responder certificate %s is not signed by the card's CA %s: %w", signer.Subject, issuer.Subject, err)
	}
	if !slices.Contains(signer.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
		return fmt.Errorf("the answer's responder certificate %s is not meant for OCSP signing", signer.Subject)
	}
	if now.Before(signer.NotBefore) || now.After(signer.NotAfter) {
		return fmt.Errorf("the answer's responder certificate %s is valid only from %s to %s", signer.Subject, signer.NotBefore.UTC().Format(time.RFC3339), signer.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// The parts of an answer's tbsResponseData that name the certificates it is about; the
// library returns the answer for the card's serial number but not whose serial number it is.
type responseCertIDs struct {
	Version        int `asn1:"optional,default:0,explicit,tag:0"`
	RawResponderID asn1.RawValue
	ProducedAt     time.Time `asn1:"generalized"`
	Responses      []struct{ CertID certID }
}

type certID struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	NameHash      []byte
	IssuerKeyHash []byte
	SerialNumber  *big.Int
}

// checkCertID makes sure the answer the library picked is about the card's issuer as well as
// its serial number (RFC 6960 3.2): a responder that serves several CAs could otherwise answer
// for another CA's certificate of the same serial number.
func checkCertID(resp *ocsp.Response, card, issuer *x509.Certificate) error {
	var data responseCertIDs
	if _, err := asn1.Unmarshal(resp.TBSResponseData, &data); err != nil {
		return fmt.Errorf("malformed OCSP answer: %w", err)
	}
	if !resp.IssuerHash.Available() {
		return fmt.Errorf("the answer's CertID uses hash %v, which this server does not have", resp.IssuerHash)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return fmt.Errorf("the card CA's public key: %w", err)
	}
	sum := func(b []byte) []byte {
		h := resp.IssuerHash.New()
		h.Write(b)
		return h.Sum(nil)
	}
	for _, r := range data.Responses {
		if r.CertID.SerialNumber == nil || r.CertID.SerialNumber.Cmp(card.SerialNumber) != 0 {
			continue
		}
		// The first answer for the serial number is the one the library returned.
		if !bytes.Equal(r.CertID.NameHash, sum(issuer.RawSubject)) || !bytes.Equal(r.CertID.IssuerKeyHash, sum(spki.PublicKey.RightAlign())) {
			return fmt.Errorf("the answer is about serial number %s of another CA than %s", card.SerialNumber.Text(16), issuer.Subject)
		}
		return nil
	}
	return fmt.Errorf("the answer is not about serial number %s", card.SerialNumber.Text(16))
}
