package revocation

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// The seed corpus in testdata/fuzz holds CRLs and OCSP answers of every shape these functions
// tell apart, made by a PKI with the serial numbers and names that newPKI gives, so mutations
// reach past the parsers into the checks; the keys differ from run to run, which only the
// signature checks, last, notice.

func FuzzParseCRL(f *testing.F) {
	p := newPKI(f)
	dp := "http://moica.example/crl/ca.crl"
	card := p.card(f, []string{dp}, nil)
	f.Add(p.crl(f, p.ca, p.caKey, crlSpec{revoked: []*x509.Certificate{card}, extensions: []pkix.Extension{idp(f, dp)}}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: p.crl(f, p.ca, p.caKey, crlSpec{})}))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := parseCRL(data, p.ca, base, 5*time.Minute)
		if err != nil {
			return
		}
		if l.nextUpdate.IsZero() || l.revoked == nil {
			t.Fatalf("parseCRL accepted a CRL without nextUpdate or entries map: %+v", l)
		}
		l.covers(card)
	})
}

func FuzzParseOCSP(f *testing.F) {
	p := newPKI(f)
	card := p.card(f, nil, []string{"http://moica.example/ocsp"})
	f.Add(p.ocspAnswer(f, card, p.ca, p.caKey, answer{status: ocsp.Good}))
	f.Add(p.ocspAnswer(f, card, p.responder, p.responderKey, answer{status: ocsp.Revoked}))
	f.Add(ocsp.TryLaterErrorResponse)
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := parseOCSP(data, card, p.ca, base, 5*time.Minute)
		if err != nil {
			return
		}
		if resp.Status != ocsp.Good && resp.Status != ocsp.Revoked || resp.SerialNumber.Cmp(card.SerialNumber) != 0 {
			t.Fatalf("parseOCSP accepted status %d for serial %v", resp.Status, resp.SerialNumber)
		}
	})
}
