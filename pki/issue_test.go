package pki

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"math/big"
	"slices"
	"testing"
	"time"
)

func TestIssue(t *testing.T) {
	ca := newCA(t)
	key := ecKey(t)
	r := request(t, key)
	r.IssuerURL = "http://mcert.example/pki/ca.cer"
	der, err := ca.Issue(rand.Reader, r)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject.CommonName != "王小明" || c.Subject.SerialNumber != "A12****789" || !slices.Equal(c.Subject.Country, []string{"TW"}) {
		t.Errorf("subject %q", c.Subject)
	}
	if c.SerialNumber.Cmp(r.Serial) != 0 || !c.NotBefore.Equal(r.NotBefore) || !c.NotAfter.Equal(r.NotAfter) {
		t.Errorf("serial %x valid from %s to %s", c.SerialNumber, c.NotBefore, c.NotAfter)
	}
	if c.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment {
		t.Errorf("key usage %b", c.KeyUsage)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}) || len(c.UnknownExtKeyUsage) != 1 || !c.UnknownExtKeyUsage[0].Equal(oidDocumentSigning) {
		t.Errorf("extended key usage %v and %v", c.ExtKeyUsage, c.UnknownExtKeyUsage)
	}
	if c.IsCA || !c.BasicConstraintsValid {
		t.Error("not marked CA:FALSE")
	}
	if !slices.Equal(c.CRLDistributionPoints, []string{crlURL}) || !slices.Equal(c.OCSPServer, []string{ocspURL}) || !slices.Equal(c.IssuingCertificateURL, []string{r.IssuerURL}) {
		t.Errorf("CRL %v, OCSP %v, CA %v", c.CRLDistributionPoints, c.OCSPServer, c.IssuingCertificateURL)
	}
	if len(c.SubjectKeyId) != 20 || !bytes.Equal(c.AuthorityKeyId, ca.Certificate().SubjectKeyId) {
		t.Errorf("subject key ID %x, authority key ID %x", c.SubjectKeyId, c.AuthorityKeyId)
	}
	if !key.PublicKey.Equal(c.PublicKey) {
		t.Error("certifies another key")
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool(ca.Certificate()), CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageEmailProtection}}); err != nil {
		t.Errorf("does not verify for e-mail protection: %v", err)
	}

	// The whole ID, when the operator asks for it, takes the masked ID's place.
	r = request(t, key)
	r.Subject.CitizenID = "A123456789"
	der, err = ca.Issue(rand.Reader, r)
	if err != nil {
		t.Fatal(err)
	}
	if c, err = x509.ParseCertificate(der); err != nil || c.Subject.SerialNumber != "A123456789" || bytes.Contains(der, []byte("A12****789")) {
		t.Errorf("subject %q with the whole ID (%v)", c.Subject, err)
	}
}

func TestIssueRefusals(t *testing.T) {
	ca := newCA(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*IssueRequest)
		want   string
	}{
		{"RSA key", func(r *IssueRequest) { r.PublicKey = rsaKey.Public() }, "must be ECDSA P-256"},
		{"no key", func(r *IssueRequest) { r.PublicKey = nil }, "must be ECDSA P-256"},
		{"no name", func(r *IssueRequest) { r.Subject.Name = "" }, "needs the holder's name"},
		{"no ID", func(r *IssueRequest) { r.Subject.MaskedID = "" }, "needs the masked ID"},
		{"no serial", func(r *IssueRequest) { r.Serial = nil }, "must be positive"},
		{"serial 0", func(r *IssueRequest) { r.Serial = big.NewInt(0) }, "must be positive"},
		{"negative serial", func(r *IssueRequest) { r.Serial = big.NewInt(-5) }, "must be positive"},
		{"serial over 20 bytes", func(r *IssueRequest) { r.Serial = new(big.Int).Lsh(big.NewInt(1), 159) }, "160 bits, over the 20 octets"},
		{"ends before it starts", func(r *IssueRequest) { r.NotAfter = r.NotBefore.Add(-time.Second) }, "ends"},
		{"outlives the CA", func(r *IssueRequest) { r.NotAfter = ca.Certificate().NotAfter.Add(time.Second) }, "after the CA's own certificate expires"},
		{"no CRL", func(r *IssueRequest) { r.CRLURL = "" }, "needs the CRL and OCSP URLs"},
		{"no OCSP", func(r *IssueRequest) { r.OCSPURL = "" }, "needs the CRL and OCSP URLs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := request(t, ecKey(t))
			tc.change(&r)
			_, err := ca.Issue(rand.Reader, r)
			wantErr(t, err, tc.want)
		})
	}
}

func TestNewSerial(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		n := serial(t)
		if n.Sign() <= 0 || n.BitLen() > 128 || seen[n.String()] {
			t.Fatalf("serial number %x: not positive, over 128 bits, or seen before", n)
		}
		seen[n.String()] = true
	}
}
