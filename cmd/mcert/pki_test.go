package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/mcert/mcert/storage"
)

// TestSigningCertificate: a bound phone has a signing certificate from mcert's CA, which
// OpenSSL verifies for signing with the CA mcert publishes, whose subject masks the national
// ID; its OCSP status and the CRL follow the suspension of the account, the certificate the
// reinstatement gives, and the revocation of the phone.
func TestSigningCertificate(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed for the interop checks")
	}
	// Real time: OpenSSL checks OCSP answers and CRLs against the machine's clock.
	s := startServer(t, func(c *Config) { c.Now = time.Now })
	ph, card := boundCitizen(t, s)
	deviceID := ph.Phone.Credentials()[0].DeviceID
	dir := t.TempDir()
	caFile, certFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem")
	caPEM := get(t, s.PublicURL+"/pki/ca.pem", "application/x-pem-file")
	write(t, caFile, caPEM)
	block, _ := pem.Decode(caPEM)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}

	current := func() storage.Certificate {
		t.Helper()
		c, err := s.service.DeviceCertificate(context.Background(), deviceID)
		if err != nil {
			t.Fatalf("the phone's certificate: %v", err)
		}
		write(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))
		return c
	}
	first := current()
	if out := openssl(t, "verify", "-CAfile", caFile, "-purpose", "smimesign", certFile); !strings.Contains(out, "OK") {
		t.Fatalf("openssl verify: %s", out)
	}
	subject := openssl(t, "x509", "-in", certFile, "-noout", "-subject", "-nameopt", "utf8,sep_comma_plus_space")
	if !strings.Contains(subject, "A12****789") || !strings.Contains(subject, "王小明") || strings.Contains(subject, "A123456789") {
		t.Fatalf("subject %q: want the name and the masked ID, never the whole ID", subject)
	}
	whole := startServer(t, func(c *Config) { c.CertificateCitizenID = true })
	wholePhone, _ := boundCitizen(t, whole)
	wc, err := whole.service.DeviceCertificate(context.Background(), wholePhone.Phone.Credentials()[0].DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	if parsed, _ := x509.ParseCertificate(wc.DER); parsed.Subject.SerialNumber != "A123456789" {
		t.Fatalf("with --certificate-citizen-id the subject is %v", parsed.Subject)
	}
	status := func(want string) {
		t.Helper()
		out := openssl(t, "ocsp", "-issuer", caFile, "-cert", certFile, "-url", s.PublicURL+"/pki/ocsp", "-CAfile", caFile)
		if !strings.Contains(out, certFile+": "+want) || !strings.Contains(out, "Response verify OK") {
			t.Fatalf("openssl ocsp, want %s:\n%s", want, out)
		}
	}
	status("good")
	if got := ocspByGet(t, s.PublicURL, first.DER, ca); got.Status != ocsp.Good {
		t.Fatalf("OCSP by GET: status %d, want good", got.Status)
	}

	b := s.loggedIn(t, card)
	b.do("POST", "/api/v1/account/suspend", nil).want(t, 200)
	status("revoked")
	waitRevoked(t, s.PublicURL, ca, first.Serial)
	if _, err := s.service.DeviceCertificate(context.Background(), deviceID); err == nil {
		t.Fatal("a suspended account's phone still has a current certificate")
	}

	b.do("POST", "/api/v1/account/reinstate", nil).want(t, 200)
	second := current()
	if bytes.Equal(second.Serial, first.Serial) {
		t.Fatal("the reinstatement gave no new certificate")
	}
	status("good")

	b.do("DELETE", "/api/v1/devices/"+deviceID, nil).want(t, 200)
	status("revoked")
	waitRevoked(t, s.PublicURL, ca, second.Serial)
}

// TestOCSPBadInput: requests that are not OCSP requests get OCSP's own malformedRequest
// answer, a request too large 413, and nothing changes.
func TestOCSPBadInput(t *testing.T) {
	s := startServer(t)
	for _, req := range []*http.Request{
		mustRequest(t, "POST", s.PublicURL+"/pki/ocsp", []byte("not DER")),
		mustRequest(t, "POST", s.PublicURL+"/pki/ocsp", nil),
		mustRequest(t, "GET", s.PublicURL+"/pki/ocsp/%21%21%21", nil),
		mustRequest(t, "GET", s.PublicURL+"/pki/ocsp/"+base64.RawURLEncoding.EncodeToString([]byte{0x30, 0x03, 0x02, 0x01}), nil),
	} {
		res, body, err := roundTrip(http.DefaultClient, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ocsp.ParseResponse(body, nil); res.StatusCode != 200 || err != (ocsp.ResponseError{Status: ocsp.Malformed}) {
			t.Errorf("%s %s: %d, %v; want 200 and malformedRequest", req.Method, req.URL.Path, res.StatusCode, err)
		}
	}
	res, _, err := roundTrip(http.DefaultClient, mustRequest(t, "POST", s.PublicURL+"/pki/ocsp", make([]byte, 5000)))
	if err != nil || res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 5000-byte OCSP request: %v, %v; want 413", res.StatusCode, err)
	}
}

func mustRequest(t *testing.T, method, url string, body []byte) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	return req
}

// ocspByGet asks the responder by GET, as RFC 6960 appendix A.1 allows, with Go's client.
func ocspByGet(t *testing.T, base string, certDER []byte, ca *x509.Certificate) *ocsp.Response {
	t.Helper()
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		t.Fatal(err)
	}
	req, err := ocsp.CreateRequest(cert, ca, &ocsp.RequestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	body := get(t, base+"/pki/ocsp/"+base64.RawURLEncoding.EncodeToString(req), "application/ocsp-response")
	resp, err := ocsp.ParseResponseForCert(body, cert, ca)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// waitRevoked waits for the CRL to list the serial, which it must within the CRL's refresh.
func waitRevoked(t *testing.T, base string, ca *x509.Certificate, serial []byte) {
	t.Helper()
	want := new(big.Int).SetBytes(serial)
	for deadline := time.Now().Add(7 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		crl, err := x509.ParseRevocationList(get(t, base+"/pki/ca.crl", "application/pkix-crl"))
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.CheckSignatureFrom(ca); err != nil {
			t.Fatalf("the CRL's signature: %v", err)
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(want) == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the CRL does not list %x after 7 s", serial)
		}
	}
}

func get(t *testing.T, url, contentType string) []byte {
	t.Helper()
	res, body, err := roundTrip(http.DefaultClient, mustRequest(t, "GET", url, nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != contentType {
		t.Fatalf("GET %s: %d %s: %s", url, res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	return body
}

func write(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func openssl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestOperatorRootCA: the operator's own root certifies mcert's signing CA (mcert pki csr and
// install); the server then publishes the chain, and a phone bound after it has a certificate
// that verifies with only the operator's root trusted. A chain for another key is refused.
func TestOperatorRootCA(t *testing.T) {
	s := startServer(t, func(c *Config) { c.Now = time.Now })
	get(t, s.PublicURL+"/pki/ca.pem", "application/x-pem-file") // the CA is made on first use
	dir := s.Config.DataDir
	s.stop()

	block, _ := pem.Decode([]byte(runMcert(t, 0, "pki", "csr", "--data", dir)))
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("mcert pki csr: %v", err)
	}
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "內政部 operator root"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(20, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLen: 1, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, rootKey.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ = x509.ParseCertificate(rootDER)
	issue := func(pub any) []byte {
		der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
			SerialNumber: big.NewInt(2), Subject: csr.Subject, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
			IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}, root, pub, rootKey)
		if err != nil {
			t.Fatal(err)
		}
		return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})...)
	}
	chainFile := filepath.Join(t.TempDir(), "chain.pem")
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	write(t, chainFile, issue(otherKey.Public()))
	runMcert(t, 1, "pki", "install", "--data", dir, "--chain", chainFile)
	write(t, chainFile, issue(csr.PublicKey))
	if out := runMcert(t, 0, "pki", "install", "--data", dir, "--chain", chainFile); !strings.Contains(out, "內政部 operator root") {
		t.Fatalf("mcert pki install: %s", out)
	}

	s2 := startServer(t, func(c *Config) { c.DataDir, c.Now = dir, time.Now })
	intermediates := x509.NewCertPool()
	if !intermediates.AppendCertsFromPEM(get(t, s2.PublicURL+"/pki/ca.pem", "application/x-pem-file")) {
		t.Fatal("no CA certificate published")
	}
	ph, _ := boundCitizen(t, s2)
	c, err := s2.service.DeviceCertificate(context.Background(), ph.Phone.Credentials()[0].DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(c.DER)
	roots := x509.NewCertPool()
	roots.AddCert(root)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}); err != nil {
		t.Fatalf("a phone's certificate under the operator's root: %v", err)
	}
}

// TestCertificateExpiry: when the phone's year is over, OCSP answers its certificate revoked
// from the moment it expired, as PROTOCOL.md section 9 says.
func TestCertificateExpiry(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	c, err := s.service.DeviceCertificate(context.Background(), ph.Phone.Credentials()[0].DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	serial := new(big.Int).SetBytes(c.Serial)
	if st, err := s.service.CertificateStatus(context.Background(), serial); err != nil || !st.Issued || !st.RevokedAt.IsZero() {
		t.Fatalf("a current certificate: %+v, %v", st, err)
	}
	s.clock.Advance(366 * 24 * time.Hour)
	if st, err := s.service.CertificateStatus(context.Background(), serial); err != nil || !st.RevokedAt.Equal(c.NotAfter) {
		t.Fatalf("an expired certificate: %+v, %v; want revoked at %v", st, err, c.NotAfter)
	}
}
