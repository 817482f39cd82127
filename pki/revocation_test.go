package pki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

func TestCRL(t *testing.T) {
	ca := newCA(t)
	lost, superseded := newCitizen(t, ca), newCitizen(t, ca)
	revoked := []Revoked{
		{Serial: lost.cert.SerialNumber, At: now.Add(-time.Minute), Reason: ocsp.KeyCompromise},
		{Serial: superseded.cert.SerialNumber, At: now.Add(-time.Second), Reason: ocsp.Unspecified},
	}
	der, err := ca.CRL(rand.Reader, big.NewInt(7), now, now.Add(time.Hour), revoked)
	if err != nil {
		t.Fatal(err)
	}
	list, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := list.CheckSignatureFrom(ca.Certificate()); err != nil {
		t.Fatal(err)
	}
	if list.Number.Int64() != 7 || !list.ThisUpdate.Equal(now) || !list.NextUpdate.Equal(now.Add(time.Hour)) {
		t.Errorf("CRL number %v, from %s to %s", list.Number, list.ThisUpdate, list.NextUpdate)
	}
	if !bytes.Equal(list.AuthorityKeyId, ca.Certificate().SubjectKeyId) {
		t.Error("the CRL's authority key identifier is not the CA's key identifier")
	}
	if len(list.RevokedCertificateEntries) != 2 {
		t.Fatalf("%d entries", len(list.RevokedCertificateEntries))
	}
	for i, e := range list.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(revoked[i].Serial) != 0 || !e.RevocationTime.Equal(revoked[i].At) || e.ReasonCode != revoked[i].Reason {
			t.Errorf("entry %d: %v at %s for %d, want %+v", i, e.SerialNumber, e.RevocationTime, e.ReasonCode, revoked[i])
		}
	}
	if len(list.RevokedCertificateEntries[1].Extensions) != 0 {
		t.Error("reason unspecified is written in the CRL, which RFC 5280 asks to leave out")
	}

	f := files(t, map[string][]byte{"crl.der": der, "ca.pem": ca.PEM()})
	out, err := openssl(t, "crl", "-inform", "DER", "-in", f["crl.der"], "-CAfile", f["ca.pem"], "-noout", "-text")
	if err != nil || !strings.Contains(out, "verify OK") || !strings.Contains(out, "Key Compromise") {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
}

func TestCRLRefusals(t *testing.T) {
	ca := newCA(t)
	tests := []struct {
		name       string
		number     *big.Int
		next       time.Time
		revoked    []Revoked
		wantErrMsg string
	}{
		{"reason 7", big.NewInt(1), now.Add(time.Hour), []Revoked{{Serial: big.NewInt(5), At: now, Reason: 7}}, "7 is not a CRL reason code"},
		{"reason 11", big.NewInt(1), now.Add(time.Hour), []Revoked{{Serial: big.NewInt(5), At: now, Reason: 11}}, "11 is not a CRL reason code"},
		{"no serial", big.NewInt(1), now.Add(time.Hour), []Revoked{{At: now}}, "nil SerialNumber"},
		{"no time", big.NewInt(1), now.Add(time.Hour), []Revoked{{Serial: big.NewInt(5)}}, "zero RevocationTime"},
		{"no number", nil, now.Add(time.Hour), nil, "nil Number"},
		{"next update first", big.NewInt(1), now.Add(-time.Hour), nil, "ThisUpdate is after"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ca.CRL(rand.Reader, tc.number, now, tc.next, tc.revoked)
			wantErr(t, err, tc.wantErrMsg)
		})
	}
}

// records is a CA's records of what it issued, for CA.OCSP.
type records map[string]Status

func (r records) status(serial *big.Int) (Status, error) { return r[serial.String()], nil }

func TestOCSP(t *testing.T) {
	ca := newCA(t)
	good, revoked, forgotten := newCitizen(t, ca), newCitizen(t, ca), newCitizen(t, ca)
	revokedAt := now.Add(-time.Minute)
	recs := records{
		good.cert.SerialNumber.String():    {Issued: true},
		revoked.cert.SerialNumber.String(): {Issued: true, RevokedAt: revokedAt, Reason: ocsp.CessationOfOperation},
	}
	tests := []struct {
		name   string
		cert   citizen
		hash   crypto.Hash
		status int
	}{
		{"good, SHA-1", good, crypto.SHA1, ocsp.Good},
		{"good, SHA-256", good, crypto.SHA256, ocsp.Good},
		{"revoked, SHA-1", revoked, crypto.SHA1, ocsp.Revoked},
		{"revoked, SHA-256", revoked, crypto.SHA256, ocsp.Revoked},
		{"never issued", forgotten, crypto.SHA256, ocsp.Unknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ocsp.CreateRequest(tc.cert.cert, ca.Certificate(), &ocsp.RequestOptions{Hash: tc.hash})
			if err != nil {
				t.Fatal(err)
			}
			der, err := ca.OCSP(req, now, recs.status)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := ocsp.ParseResponseForCert(der, tc.cert.cert, ca.Certificate())
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tc.status || resp.IssuerHash != tc.hash || resp.Certificate != nil {
				t.Errorf("status %d for CertID hash %v, responder certificate %v; want %d for %v and none", resp.Status, resp.IssuerHash, resp.Certificate, tc.status, tc.hash)
			}
			if !resp.ThisUpdate.Equal(now) || !resp.NextUpdate.Equal(now.Add(OCSPValidity)) {
				t.Errorf("current from %s to %s, want %s for %s", resp.ThisUpdate, resp.NextUpdate, now, OCSPValidity)
			}
			if tc.status == ocsp.Revoked && (!resp.RevokedAt.Equal(revokedAt) || resp.RevocationReason != ocsp.CessationOfOperation) {
				t.Errorf("revoked at %s for %d", resp.RevokedAt, resp.RevocationReason)
			}
		})
	}
}

func TestOCSPRefusals(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	c, stranger := newCitizen(t, ca), newCitizen(t, other)
	request := func(cert *citizen, issuer *x509.Certificate) []byte {
		t.Helper()
		req, err := ocsp.CreateRequest(cert.cert, issuer, nil)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	// Another CA of the same name: the key hash differs.
	sameName, err := NewCA(rand.Reader, caTime, "test")
	if err != nil {
		t.Fatal(err)
	}
	good := records{c.cert.SerialNumber.String(): {Issued: true}}.status
	tests := []struct {
		name   string
		req    []byte
		status func(*big.Int) (Status, error)
		want   []byte
		err    string
	}{
		{"not DER", []byte("GET / HTTP/1.1"), good, ocsp.MalformedRequestErrorResponse, ""},
		{"empty", nil, good, ocsp.MalformedRequestErrorResponse, ""},
		{"trailing bytes", append(request(&c, ca.Certificate()), 0), good, ocsp.MalformedRequestErrorResponse, ""},
		{"another CA's certificate", request(&stranger, other.Certificate()), good, ocsp.UnauthorizedErrorResponse, ""},
		{"a CA of the same name", request(&c, sameName.Certificate()), good, ocsp.UnauthorizedErrorResponse, ""},
		{"records unavailable", request(&c, ca.Certificate()), func(*big.Int) (Status, error) { return Status{}, errors.New("database down") }, nil, "database down"},
		{"bad reason in the records", request(&c, ca.Certificate()), func(*big.Int) (Status, error) { return Status{Issued: true, RevokedAt: now, Reason: 7}, nil }, nil, "7 is not a CRL reason code"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			der, err := ca.OCSP(tc.req, now, tc.status)
			if tc.err != "" {
				wantErr(t, err, tc.err)
				return
			}
			if err != nil || !bytes.Equal(der, tc.want) {
				t.Fatalf("answer %x, %v; want %x", der, err, tc.want)
			}
		})
	}
}

// TestOCSPOpenSSL answers openssl's requests and has openssl check the answers.
func TestOCSPOpenSSL(t *testing.T) {
	ca := newCA(t)
	good, revoked := newCitizen(t, ca), newCitizen(t, ca)
	recs := records{
		good.cert.SerialNumber.String():    {Issued: true},
		revoked.cert.SerialNumber.String(): {Issued: true, RevokedAt: now.Add(-time.Minute), Reason: ocsp.KeyCompromise},
	}
	f := files(t, map[string][]byte{"ca.pem": ca.PEM(), "good.pem": pemOf(good.cert), "revoked.pem": pemOf(revoked.cert)})
	tests := []struct {
		cert, hash, want string
	}{
		{"good.pem", "-sha1", ": good"},
		{"good.pem", "-sha256", ": good"},
		{"revoked.pem", "-sha256", ": revoked"},
	}
	for _, tc := range tests {
		t.Run(tc.cert+tc.hash, func(t *testing.T) {
			reqFile, respFile := f[tc.cert]+tc.hash+".req", f[tc.cert]+tc.hash+".resp"
			if out, err := openssl(t, "ocsp", "-issuer", f["ca.pem"], tc.hash, "-cert", f[tc.cert], "-no_nonce", "-reqout", reqFile); err != nil {
				t.Fatalf("openssl ocsp -reqout: %v\n%s", err, out)
			}
			req, err := os.ReadFile(reqFile)
			if err != nil {
				t.Fatal(err)
			}
			der, err := ca.OCSP(req, time.Now(), recs.status)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(respFile, der, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := openssl(t, "ocsp", "-respin", respFile, "-issuer", f["ca.pem"], "-CAfile", f["ca.pem"], tc.hash, "-cert", f[tc.cert], "-no_nonce", "-resp_text")
			if err != nil || !strings.Contains(out, "Response verify OK") || !strings.Contains(out, tc.want) || !strings.Contains(out, "Hash Algorithm: "+tc.hash[1:]) {
				t.Fatalf("openssl ocsp -respin: %v\n%s", err, out)
			}
		})
	}
}

func TestCheckOCSP(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	c := newCitizen(t, ca)
	signed := now.Add(-time.Hour / 2)
	answer := func(ca *CA, s Status, at time.Time) []byte {
		t.Helper()
		req, err := ocsp.CreateRequest(c.cert, ca.Certificate(), nil)
		if err != nil {
			t.Fatal(err)
		}
		der, err := ca.OCSP(req, at, func(*big.Int) (Status, error) { return s, nil })
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	// other, given c's certificate, signs an answer for ca's name and key hash.
	forged, err := ocsp.CreateResponse(ca.Certificate(), ca.Certificate(), ocsp.Response{
		Status: ocsp.Good, SerialNumber: c.cert.SerialNumber, ThisUpdate: now, NextUpdate: now.Add(time.Minute),
	}, other.key)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		resp []byte
		is   error
		want string // "" for valid
	}{
		{"good now", answer(ca, Status{Issued: true}, now), nil, ""},
		{"good at the signing", answer(ca, Status{Issued: true}, signed.Add(-time.Second)), nil, ""},
		{"revoked after the signing", answer(ca, Status{Issued: true, RevokedAt: signed.Add(time.Second), Reason: ocsp.KeyCompromise}, now), nil, ""},
		{"revoked at the signing", answer(ca, Status{Issued: true, RevokedAt: signed, Reason: ocsp.KeyCompromise}, now), ErrRevoked, "revoked since " + stamp(signed) + " (keyCompromise)"},
		{"revoked before the signing", answer(ca, Status{Issued: true, RevokedAt: signed.Add(-time.Minute)}, now), ErrRevoked, "(unspecified), before the signature"},
		{"good long before the signing", answer(ca, Status{Issued: true}, signed.Add(-time.Hour)), nil, "older than the signature"},
		{"unknown", answer(ca, Status{}, now), nil, "status unknown"},
		{"signed by another CA", forged, nil, "is not valid for the certificate"},
		{"from another responder", answer(other, Status{Issued: true}, now), nil, "is not valid for the certificate"},
		{"refused request", ocsp.UnauthorizedErrorResponse, nil, "gave no status: unauthorized"},
		{"not DER", []byte("<html>"), nil, "is not valid for the certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CheckOCSP(tc.resp, c.cert, ca.Certificate(), signed)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tc.want)
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
}
