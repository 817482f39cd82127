package pki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// The fuzz targets cover every function that reads bytes from outside: signatures to verify,
// OCSP requests and responses, and the CA's own key and chain, which come from the store or an
// operator. The seeds are valid inputs made at the start of each run (their keys differ from
// run to run), so that mutations reach past the parsers into the checks. Run one with
//
//	go test ./pki/ -run '^$' -fuzz '^FuzzVerifyCMS$' -fuzztime 20s -fuzzminimizetime 1s
//
// The default minimizes every new input for up to a minute, which with a signature check per
// attempt takes a short run whole without a report.

func FuzzVerifyCMS(f *testing.F) {
	ca := newCA(f)
	c := newCitizen(f, ca)
	f.Add(c.signCMS(f, ca, document, now), document)
	digest := sha256.Sum256(document)
	noChain, err := SignCMS(rand.Reader, digest[:], c.key, c.der, nil, now)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(noChain, document)
	roots := pool(ca.Certificate())
	f.Fuzz(func(t *testing.T, sig, content []byte) {
		v, err := VerifyCMS(sig, content, roots)
		if err != nil {
			return
		}
		if len(v.Chain) < 2 || !v.Chain[0].Equal(v.Cert) || !v.Chain[len(v.Chain)-1].Equal(ca.Certificate()) {
			t.Fatalf("VerifyCMS accepted a chain of %d not from the signer to the CA", len(v.Chain))
		}
		if v.SigningTime.Before(v.Cert.NotBefore) || v.SigningTime.After(v.Cert.NotAfter) {
			t.Fatalf("VerifyCMS accepted a signature of %s by a certificate valid from %s to %s", v.SigningTime, v.Cert.NotBefore, v.Cert.NotAfter)
		}
	})
}

func FuzzVerifyRaw(f *testing.F) {
	ca := newCA(f)
	c := newCitizen(f, ca)
	digest := sha256.Sum256(document)
	sig, err := SignRaw(rand.Reader, digest[:], c.key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sig, c.der)
	roots := pool(ca.Certificate())
	f.Fuzz(func(t *testing.T, sig, cert []byte) {
		v, err := VerifyRaw(sig, document, cert, roots, now)
		if err != nil {
			return
		}
		if !v.Chain[len(v.Chain)-1].Equal(ca.Certificate()) {
			t.Fatal("VerifyRaw accepted a certificate not from the CA")
		}
	})
}

func FuzzOCSP(f *testing.F) {
	ca, other := newCA(f), newCA(f)
	good, revoked := newCitizen(f, ca), newCitizen(f, ca)
	recs := records{
		good.cert.SerialNumber.String():    {Issued: true},
		revoked.cert.SerialNumber.String(): {Issued: true, RevokedAt: now, Reason: ocsp.KeyCompromise},
	}
	for _, seed := range []struct {
		cert   *x509.Certificate
		issuer *CA
		hash   crypto.Hash
	}{
		{good.cert, ca, crypto.SHA1},
		{revoked.cert, ca, crypto.SHA256},
		{newCitizen(f, ca).cert, ca, crypto.SHA512},
		{good.cert, other, crypto.SHA1},
	} {
		req, err := ocsp.CreateRequest(seed.cert, seed.issuer.Certificate(), &ocsp.RequestOptions{Hash: seed.hash})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(req)
	}
	f.Fuzz(func(t *testing.T, req []byte) {
		der, err := ca.OCSP(req, now, recs.status)
		if err != nil {
			t.Fatalf("OCSP failed with records that do not: %v", err)
		}
		if bytes.Equal(der, ocsp.MalformedRequestErrorResponse) || bytes.Equal(der, ocsp.UnauthorizedErrorResponse) {
			return
		}
		parsed, err := ocsp.ParseRequest(req)
		if err != nil {
			t.Fatalf("OCSP answered a request that does not parse: %v", err)
		}
		resp, err := ocsp.ParseResponse(der, ca.Certificate())
		if err != nil {
			t.Fatalf("OCSP answered with a response that does not verify: %v", err)
		}
		want := recs[parsed.SerialNumber.String()]
		status := map[bool]int{false: ocsp.Unknown, true: ocsp.Good}[want.Issued]
		if !want.RevokedAt.IsZero() {
			status = ocsp.Revoked
		}
		if resp.SerialNumber.Cmp(parsed.SerialNumber) != 0 || resp.IssuerHash != parsed.HashAlgorithm || resp.Status != status {
			t.Fatalf("answer about %x (%v) with status %d, for a request about %x (%v) whose status is %d",
				resp.SerialNumber, resp.IssuerHash, resp.Status, parsed.SerialNumber, parsed.HashAlgorithm, status)
		}
	})
}

func FuzzCheckOCSP(f *testing.F) {
	ca := newCA(f)
	c := newCitizen(f, ca)
	req, err := ocsp.CreateRequest(c.cert, ca.Certificate(), nil)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []Status{{Issued: true}, {Issued: true, RevokedAt: now, Reason: ocsp.Superseded}, {}} {
		der, err := ca.OCSP(req, now, func(*big.Int) (Status, error) { return s, nil })
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Add(ocsp.TryLaterErrorResponse)
	f.Fuzz(func(t *testing.T, resp []byte) {
		if _, err := CheckOCSP(resp, c.cert, ca.Certificate(), now.Add(-time.Second)); err != nil {
			return
		}
		parsed, err := ocsp.ParseResponseForCert(resp, c.cert, ca.Certificate())
		if err != nil || parsed.Status == ocsp.Unknown || parsed.Status == ocsp.Revoked && !parsed.RevokedAt.After(now.Add(-time.Second)) {
			t.Fatalf("CheckOCSP accepted a response that says %v (%v)", parsed, err)
		}
	})
}

func FuzzLoadCA(f *testing.F) {
	ca := newCA(f)
	f.Add(ca.KeyDER(), ca.ChainDER()[0], []byte(nil))
	root, rootKey := operatorRoot(f)
	issuing := create(f, &x509.Certificate{
		Subject: pkix.Name{CommonName: "mcert CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, root, ca.key.Public(), rootKey)
	f.Add(ca.KeyDER(), issuing.Raw, root.Raw)
	f.Fuzz(func(t *testing.T, key, first, second []byte) {
		chain := [][]byte{first}
		if len(second) > 0 {
			chain = append(chain, second)
		}
		loaded, err := LoadCA(key, chain)
		if err != nil {
			return
		}
		c := loaded.Certificate()
		if !loaded.key.PublicKey.Equal(c.PublicKey) || !c.IsCA || !bytes.Equal(loaded.KeyDER(), key) {
			t.Fatalf("LoadCA accepted the key and chain of %q, whose key is not the CA's or that is no CA", c.Subject)
		}
	})
}

func FuzzWithChain(f *testing.F) {
	ca := newCA(f)
	root, rootKey := operatorRoot(f)
	issuing := create(f, &x509.Certificate{
		Subject: pkix.Name{CommonName: "mcert CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, root, ca.key.Public(), rootKey)
	f.Add(pemOf(issuing, root))
	f.Add(ca.PEM())
	f.Fuzz(func(t *testing.T, chainPEM []byte) {
		chained, err := ca.WithChain(chainPEM)
		if err != nil {
			return
		}
		if c := chained.Certificate(); !ca.key.PublicKey.Equal(c.PublicKey) || !c.IsCA || c.KeyUsage&x509.KeyUsageCRLSign == 0 {
			t.Fatalf("WithChain accepted a chain whose first certificate %q is not a CRL-signing CA of the key", c.Subject)
		}
	})
}
