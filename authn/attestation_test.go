package authn

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func testRootPEM(t testing.TB) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Attestation Root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestParseAttestationRoots(t *testing.T) {
	root := testRootPEM(t)
	tests := []struct {
		name  string
		data  string
		certs int
		err   string
	}{
		{"one", string(root), 1, ""},
		{"bundle", string(root) + "\n" + string(root), 2, ""},
		{"empty", "", 0, "no PEM certificate"},
		{"not PEM", "hello", 0, "not PEM"},
		{"a key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}})), 0, `block 1 is a "PRIVATE KEY"`},
		{"bad DER", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}})), 0, "block 1 is not an X.509 certificate"},
		{"junk after", string(root) + "junk", 0, "after its last PEM certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			certs, err := ParseAttestationRoots([]byte(tc.data))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error saying %q", err, tc.err)
				}
				return
			}
			if err != nil || len(certs) != tc.certs {
				t.Fatalf("got %d certificates, %v; want %d", len(certs), err, tc.certs)
			}
		})
	}
}

// FuzzParseAttestationRoots: any bytes give certificates or an error, never a panic, and
// certificates only when there is at least one.
func FuzzParseAttestationRoots(f *testing.F) {
	f.Add(testRootPEM(f))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := ParseAttestationRoots(data)
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificate")
		}
	})
}

// TestParseFIDOMetadataRefuses: go-webauthn's decoder reads the blob; what is not a blob
// signed under the root is an error.
func TestParseFIDOMetadataRefuses(t *testing.T) {
	for _, blob := range []string{"", "junk", "a.b.c", "eyJhbGciOiJub25lIn0.e30."} {
		if _, err := ParseFIDOMetadata([]byte(blob), ""); err == nil || !strings.Contains(err.Error(), "not a FIDO metadata blob") {
			t.Errorf("blob %q: %v", blob, err)
		}
	}
}
