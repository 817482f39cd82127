package pki

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"testing"
	"time"
)

func TestNewCA(t *testing.T) {
	ca := newCA(t)
	c := ca.Certificate()
	if c.Subject.CommonName != "mcert citizen signing CA test" {
		t.Errorf("common name %q", c.Subject.CommonName)
	}
	if !c.IsCA || !c.BasicConstraintsValid || c.MaxPathLen != 0 || !c.MaxPathLenZero {
		t.Errorf("basic constraints CA %v (valid %v), path length %d", c.IsCA, c.BasicConstraintsValid, c.MaxPathLen)
	}
	if c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("key usage %b", c.KeyUsage)
	}
	if !c.NotBefore.Equal(caTime) || !c.NotAfter.Equal(caTime.AddDate(10, 0, 0)) {
		t.Errorf("valid from %s to %s, want ten years from %s", c.NotBefore, c.NotAfter, caTime)
	}
	if err := c.CheckSignatureFrom(c); err != nil || len(ca.ChainDER()) != 1 {
		t.Errorf("not a self-signed root alone in its chain: %v", err)
	}

	again, err := LoadCA(ca.KeyDER(), ca.ChainDER())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.KeyDER(), ca.KeyDER()) || !again.Certificate().Equal(c) {
		t.Error("LoadCA gave another CA than the one stored")
	}
	block, rest := pem.Decode(ca.PEM())
	if block == nil || block.Type != "CERTIFICATE" || !bytes.Equal(block.Bytes, c.Raw) || len(rest) != 0 {
		t.Errorf("PEM is not the CA certificate alone:\n%s", ca.PEM())
	}
}

func TestLoadCARefusals(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	root, rootKey := operatorRoot(t)
	key := ecKey(t)
	caTemplate := func(ku x509.KeyUsage) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: "CA"}, IsCA: true, BasicConstraintsValid: true, KeyUsage: ku}
	}
	noCRL := create(t, caTemplate(x509.KeyUsageCertSign), root, key.Public(), rootKey)
	notCA := create(t, &x509.Certificate{Subject: pkix.Name{CommonName: "not a CA"}, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, root, key.Public(), rootKey)
	issuing := create(t, caTemplate(x509.KeyUsageCertSign|x509.KeyUsageCRLSign), root, key.Public(), rootKey)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		key   []byte
		chain [][]byte
		want  string
	}{
		{"key of another CA", other.KeyDER(), ca.ChainDER(), "the CA key is not the key of certificate"},
		{"no certificate", ca.KeyDER(), nil, "holds no certificate"},
		{"key not PKCS#8", []byte("not a key"), ca.ChainDER(), "CA key"},
		{"certificate not DER", ca.KeyDER(), [][]byte{[]byte("not a certificate")}, "certificate 1 of the CA chain"},
		{"not a CA", keyDER, [][]byte{notCA.Raw, root.Raw}, "is not a CA certificate"},
		{"may not sign CRLs", keyDER, [][]byte{noCRL.Raw, root.Raw}, "may not sign both certificates and CRLs"},
		{"chain to another root", keyDER, [][]byte{issuing.Raw, other.Certificate().Raw}, "does not verify up to"},
		{"chain in the wrong order", keyDER, [][]byte{root.Raw, issuing.Raw}, "the CA key is not the key of certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadCA(tc.key, tc.chain)
			wantErr(t, err, tc.want)
		})
	}
	if _, err := LoadCA(keyDER, [][]byte{issuing.Raw, root.Raw}); err != nil {
		t.Fatalf("a good chain under an operator's root: %v", err)
	}
}

// TestWithChain certifies mcert's CA by an operator's root from its CSR: citizens'
// certificates then chain through it to the root, which alone relying parties trust.
func TestWithChain(t *testing.T) {
	ca := newCA(t)
	root, rootKey := operatorRoot(t)
	csrPEM, err := ca.CSR(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("CSR is not a PEM certificate request:\n%s", csrPEM)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil || !ca.key.PublicKey.Equal(csr.PublicKey) {
		t.Fatalf("CSR %v, its signature %v, or not for the CA key", err, csr.CheckSignature())
	}
	if csr.Subject.CommonName != ca.Certificate().Subject.CommonName {
		t.Errorf("CSR in the name of %q", csr.Subject)
	}
	issuing := create(t, &x509.Certificate{
		Subject:               csr.Subject,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, root, csr.PublicKey, rootKey)

	// openssl's "subject=" lines around the certificates are ignored.
	chained, err := ca.WithChain(append([]byte("subject=CN = mcert\n"), pemOf(issuing, root)...))
	if err != nil {
		t.Fatal(err)
	}
	if len(chained.ChainDER()) != 2 || !bytes.Equal(chained.PEM(), pemOf(issuing, root)) {
		t.Fatalf("chain of %d certificates; PEM:\n%s", len(chained.ChainDER()), chained.PEM())
	}
	if !bytes.Equal(ca.Certificate().Raw, ca.ChainDER()[0]) || len(ca.ChainDER()) != 1 {
		t.Error("WithChain changed the CA it was called on")
	}
	loaded, err := LoadCA(chained.KeyDER(), chained.ChainDER())
	if err != nil {
		t.Fatal(err)
	}
	c := newCitizen(t, loaded)
	sig := c.signCMS(t, loaded, document, now)
	v, err := VerifyCMS(sig, document, pool(root))
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Chain) != 3 || !v.Chain[2].Equal(root) {
		t.Errorf("verified chain of %d certificates, want citizen, mcert's CA, operator's root", len(v.Chain))
	}
	crl, err := loaded.CRL(rand.Reader, serial(t), now, now.Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	if list, err := x509.ParseRevocationList(crl); err != nil || list.CheckSignatureFrom(issuing) != nil {
		t.Fatalf("CRL of the certified CA: %v", err)
	}
}

func TestWithChainRefusals(t *testing.T) {
	ca := newCA(t)
	root, rootKey := operatorRoot(t)
	other, _ := operatorRoot(t)
	pub := ca.key.Public()
	caTemplate := func() *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: "mcert CA"}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	}
	issuing := create(t, caTemplate(), root, pub, rootKey)
	otherKey := create(t, caTemplate(), root, ecKey(t).Public(), rootKey)
	notCA := create(t, &x509.Certificate{Subject: pkix.Name{CommonName: "mcert CA"}, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, root, pub, rootKey)
	noCertSign := caTemplate()
	noCertSign.KeyUsage = x509.KeyUsageCRLSign
	noCertSignCert := create(t, noCertSign, root, pub, rootKey)
	leafOnly := ecKey(t)
	tightRoot := create(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "Root for end entities only"}, IsCA: true, BasicConstraintsValid: true,
		MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, leafOnly.Public(), leafOnly)
	underTight := create(t, caTemplate(), tightRoot, pub, leafOnly)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ca.KeyDER()})

	tests := []struct {
		name  string
		chain []byte
		want  string
	}{
		{"empty", nil, "holds no certificate"},
		{"text only", []byte("not PEM at all"), "holds no certificate"},
		{"another key's certificate", pemOf(otherKey, root), "the CA key is not the key of certificate"},
		{"not a CA", pemOf(notCA, root), "is not a CA certificate"},
		{"may not sign certificates", pemOf(noCertSignCert, root), "may not sign both certificates and CRLs"},
		{"another root", pemOf(issuing, other), "does not verify up to"},
		{"no root", pemOf(issuing), "add the certificates up to its root"},
		{"root that allows no CA below", pemOf(underTight, tightRoot), "allows 0 CA certificates below it"},
		{"a private key in it", append(pemOf(issuing, root), keyPEM...), "holds a PRIVATE KEY block"},
		{"a broken certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0}}), "certificate 1 of the chain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ca.WithChain(tc.chain)
			wantErr(t, err, tc.want)
		})
	}
}
