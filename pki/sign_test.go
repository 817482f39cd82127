package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
)

// TestSignCMSOpenSSL has openssl verify SignCMS's signatures as PROTOCOL.md 9 says relying
// parties will, with openssl's default purpose, and refuse them for another document.
func TestSignCMSOpenSSL(t *testing.T) {
	ca := newCA(t)
	c := newCitizen(t, ca)
	sig := c.signCMS(t, ca, document, now)
	f := files(t, map[string][]byte{
		"sig.der":  sig,
		"document": document,
		"tampered": append(bytes.Clone(document), '!'),
		"ca.pem":   ca.PEM(),
	})
	verify := func(content string) (string, error) {
		return openssl(t, "cms", "-verify", "-binary", "-inform", "DER", "-in", f["sig.der"], "-content", content, "-CAfile", f["ca.pem"], "-out", os.DevNull)
	}
	if out, err := verify(f["document"]); err != nil || !strings.Contains(out, "Verification successful") {
		t.Fatalf("openssl cms -verify: %v\n%s", err, out)
	}
	if out, err := verify(f["tampered"]); err == nil || !strings.Contains(out, "content verify error") {
		t.Fatalf("openssl cms -verify accepted the signature for another document (%v):\n%s", err, out)
	}
	out, err := openssl(t, "cms", "-cmsout", "-print", "-inform", "DER", "-in", f["sig.der"])
	if err != nil {
		t.Fatalf("openssl cms -cmsout -print: %v\n%s", err, out)
	}
	for _, want := range []string{"eContent: <ABSENT>", "contentType", "messageDigest", "signingTime", "ecdsa-with-SHA256", "sha256"} {
		if !strings.Contains(out, want) {
			t.Errorf("openssl's view of the SignedData lacks %q:\n%s", want, out)
		}
	}
}

// TestVerifyCMSOpenSSL has VerifyCMS read what openssl signs with a citizen's key.
func TestVerifyCMSOpenSSL(t *testing.T) {
	ca := newCA(t)
	c := newCitizen(t, ca)
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	f := files(t, map[string][]byte{
		"document": document,
		"cert.pem": pemOf(c.cert),
		"key.pem":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	})
	sign := func(extra ...string) []byte {
		t.Helper()
		out := f["document"] + ".sig"
		args := append([]string{"cms", "-sign", "-binary", "-md", "sha256", "-signer", f["cert.pem"], "-inkey", f["key.pem"], "-in", f["document"], "-outform", "DER", "-out", out}, extra...)
		if msg, err := openssl(t, args...); err != nil {
			t.Fatalf("openssl cms -sign: %v\n%s", err, msg)
		}
		sig, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	v, err := VerifyCMS(sign(), document, pool(ca.Certificate()))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Cert.Equal(c.cert) || v.SigningTime.Before(now.Add(-time.Minute)) {
		t.Errorf("verified signer %q at %s", v.Cert.Subject, v.SigningTime)
	}
	_, err = VerifyCMS(sign("-nodetach"), document, pool(ca.Certificate()))
	wantErr(t, err, "only detached signatures")
}

func TestSignVerifyCMS(t *testing.T) {
	ca := newCA(t)
	c := newCitizen(t, ca)
	at := now.Add(-time.Minute)
	sig := c.signCMS(t, ca, document, at)
	v, err := VerifyCMS(sig, document, pool(ca.Certificate()))
	if err != nil {
		t.Fatal(err)
	}
	if !v.Cert.Equal(c.cert) || !v.SigningTime.Equal(at) || len(v.Chain) != 2 || !v.Chain[1].Equal(ca.Certificate()) {
		t.Errorf("verified %q at %s with a chain of %d, want %q at %s", v.Cert.Subject, v.SigningTime, len(v.Chain), c.cert.Subject, at)
	}
	p7, err := pkcs7.Parse(sig)
	if err != nil {
		t.Fatal(err)
	}
	if len(p7.Certificates) != 2 {
		t.Errorf("%d certificates in the SignedData, want the signer's and the CA's", len(p7.Certificates))
	}
}

func TestSignCMSRefusals(t *testing.T) {
	ca := newCA(t)
	c := newCitizen(t, ca)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(document)
	type args struct {
		digest []byte
		key    crypto.Signer
		cert   []byte
		chain  [][]byte
		at     time.Time
	}
	tests := []struct {
		name   string
		change func(*args)
		want   string
	}{
		{"no digest", func(a *args) { a.digest = nil }, "must be SHA-256, 32 bytes, not 0"},
		{"SHA-1 digest", func(a *args) { a.digest = digest[:20] }, "not 20"},
		{"digest too long", func(a *args) { a.digest = append(digest[:], 0) }, "not 33"},
		{"another key", func(a *args) { a.key = ecKey(t) }, "is not the key of the certificate"},
		{"RSA key", func(a *args) { a.key = rsaKey }, "must be ECDSA P-256"},
		{"certificate not DER", func(a *args) { a.cert = []byte("certificate") }, "the signer's certificate"},
		{"chain not DER", func(a *args) { a.chain = [][]byte{{0x30, 0x00}} }, "certificate 1 of the chain"},
		{"year 10000", func(a *args) { a.at = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "signed attribute"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := args{digest[:], c.key, c.der, ca.ChainDER(), now}
			tc.change(&a)
			_, err := SignCMS(rand.Reader, a.digest, a.key, a.cert, a.chain, a.at)
			wantErr(t, err, tc.want)
		})
	}
}

func TestVerifyCMSRefusals(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	c := newCitizen(t, ca)
	sig := c.signCMS(t, ca, document, now)
	roots := pool(ca.Certificate())

	// A byte of the signature value flipped, and the signing time moved by a second.
	badSignature := bytes.Clone(sig)
	badSignature[len(badSignature)-3] ^= 1
	timeAttr := func(at time.Time) []byte {
		value, err := asn1.Marshal(at.UTC())
		if err != nil {
			t.Fatal(err)
		}
		der, err := asn1.Marshal(attribute{pkcs7.OIDAttributeSigningTime, []asn1.RawValue{{FullBytes: value}}})
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	stamp, moved := timeAttr(now), timeAttr(now.Add(time.Second))
	if bytes.Count(sig, stamp) != 1 {
		t.Fatal("the signing time is not in the SignedData once")
	}
	badTime := bytes.Replace(sig, stamp, moved, 1)

	// A certificate from ca for TLS servers, not for signing documents.
	tlsKey := ecKey(t)
	tlsCert := create(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "server.example"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca.Certificate(), tlsKey.Public(), ca.key)
	digest := sha256.Sum256(document)
	tlsSig, err := SignCMS(rand.Reader, digest[:], tlsKey, tlsCert.Raw, ca.ChainDER(), now)
	if err != nil {
		t.Fatal(err)
	}
	noChain, err := SignCMS(rand.Reader, digest[:], c.key, c.der, nil, now)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		sig     []byte
		content []byte
		roots   *x509.CertPool
		is      error
		want    string
	}{
		{"another document", sig, []byte("another document"), roots, ErrWrongDocument, "it signs SHA-256"},
		{"empty document", sig, nil, roots, ErrWrongDocument, "it signs SHA-256"},
		{"signature value altered", badSignature, document, roots, ErrBadSignature, "does not verify"},
		{"signing time altered", badTime, document, roots, ErrBadSignature, "does not verify"},
		{"untrusted root", sig, document, pool(other.Certificate()), ErrUntrusted, "unknown authority"},
		{"no roots", sig, document, nil, ErrUntrusted, "no trusted CA"},
		{"signed before the certificate", c.signCMS(t, ca, document, c.cert.NotBefore.Add(-time.Second)), document, roots, ErrUntrusted, "outside its validity"},
		{"signed after the certificate", c.signCMS(t, ca, document, c.cert.NotAfter.Add(time.Second)), document, roots, ErrUntrusted, "outside its validity"},
		{"certificate for TLS", tlsSig, document, roots, ErrUntrusted, "not for document signing or e-mail protection"},
		{"not CMS", []byte("not a signature"), document, roots, nil, "not a CMS signature"},
		{"cut short", sig[:len(sig)/2], document, roots, nil, "not a CMS signature"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyCMS(tc.sig, tc.content, tc.roots)
			wantErr(t, err, tc.want)
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
	// The chain is the SignedData's: without it only roots holding the CA verify.
	if _, err := VerifyCMS(noChain, document, roots); err != nil {
		t.Errorf("a signature without the CA certificate, verified with the CA as root: %v", err)
	}
}

func TestSignVerifyRaw(t *testing.T) {
	ca := newCA(t)
	c := newCitizen(t, ca)
	digest := sha256.Sum256(document)
	sig, err := SignRaw(rand.Reader, digest[:], c.key)
	if err != nil {
		t.Fatal(err)
	}
	// The digest is ECDSA's hash input as it is, not hashed again.
	if !ecdsa.VerifyASN1(&c.key.PublicKey, digest[:], sig) {
		t.Fatal("the signature is not ECDSA over the digest itself")
	}
	v, err := VerifyRaw(sig, document, c.der, pool(ca.Certificate()), now)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Cert.Equal(c.cert) || !v.SigningTime.Equal(now) || len(v.Chain) != 2 {
		t.Errorf("verified %q at %s with a chain of %d", v.Cert.Subject, v.SigningTime, len(v.Chain))
	}

	for _, d := range [][]byte{nil, digest[:31], append(digest[:], 1)} {
		if _, err := SignRaw(rand.Reader, d, c.key); err == nil {
			t.Errorf("SignRaw signed a digest of %d bytes", len(d))
		}
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, err = SignRaw(rand.Reader, digest[:], rsaKey)
	wantErr(t, err, "must be ECDSA P-256")

	other := newCA(t)
	tests := []struct {
		name    string
		sig     []byte
		content []byte
		cert    []byte
		roots   *x509.CertPool
		at      time.Time
		is      error
		want    string
	}{
		{"another document", sig, []byte("another document"), c.der, pool(ca.Certificate()), now, ErrBadSignature, "not of this document"},
		{"another certificate", sig, document, newCitizen(t, ca).der, pool(ca.Certificate()), now, ErrBadSignature, "not by the key of the certificate"},
		{"not a signature", []byte{0x30, 0}, document, c.der, pool(ca.Certificate()), now, ErrBadSignature, "does not verify"},
		{"untrusted root", sig, document, c.der, pool(other.Certificate()), now, ErrUntrusted, "unknown authority"},
		{"certificate expired", sig, document, c.der, pool(ca.Certificate()), c.cert.NotAfter.Add(time.Second), ErrUntrusted, "expired"},
		{"certificate not DER", sig, document, []byte("cert"), pool(ca.Certificate()), now, nil, "the signer's certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyRaw(tc.sig, tc.content, tc.cert, tc.roots, tc.at)
			wantErr(t, err, tc.want)
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
}

// TestSignRawOpenSSL has openssl check a raw signature as an ECDSA-with-SHA256 signature of the
// document: the digest mcert was given is exactly what ECDSA signs.
func TestSignRawOpenSSL(t *testing.T) {
	ca := newCA(t)
	c := newCitizen(t, ca)
	digest := sha256.Sum256(document)
	sig, err := SignRaw(rand.Reader, digest[:], c.key)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&c.key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	f := files(t, map[string][]byte{
		"document": document,
		"tampered": []byte("another document"),
		"sig":      sig,
		"pub.pem":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
	})
	if out, err := openssl(t, "dgst", "-sha256", "-verify", f["pub.pem"], "-signature", f["sig"], f["document"]); err != nil || !strings.Contains(out, "Verified OK") {
		t.Fatalf("openssl dgst -verify: %v\n%s", err, out)
	}
	if out, err := openssl(t, "dgst", "-sha256", "-verify", f["pub.pem"], "-signature", f["sig"], f["tampered"]); err == nil {
		t.Fatalf("openssl dgst -verify accepted the signature for another document:\n%s", out)
	}
}
