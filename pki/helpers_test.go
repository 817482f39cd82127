package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// now is the tests' clock: the real time, since openssl checks certificates against it. The
// CAs are a day older, the citizens' certificates an hour.
var (
	now    = time.Now().UTC().Truncate(time.Second)
	caTime = now.AddDate(0, 0, -1)
)

const (
	crlURL  = "http://mcert.example/pki/ca.crl"
	ocspURL = "http://mcert.example/pki/ocsp"
)

var document = []byte("租賃契約，第一版\n")

func newCA(t testing.TB) *CA {
	t.Helper()
	ca, err := NewCA(rand.Reader, caTime, "test")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := NewSerial(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// citizen is a binding's key and the certificate ca issued for it, valid for a year from an
// hour ago.
type citizen struct {
	key  *ecdsa.PrivateKey
	der  []byte
	cert *x509.Certificate
}

func request(t testing.TB, key crypto.Signer) IssueRequest {
	t.Helper()
	return IssueRequest{
		PublicKey: key.Public(),
		Subject:   Subject{Name: "王小明", MaskedID: "A12****789"},
		Serial:    serial(t),
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.AddDate(1, 0, 0),
		CRLURL:    crlURL,
		OCSPURL:   ocspURL,
	}
}

func newCitizen(t testing.TB, ca *CA) citizen {
	t.Helper()
	key := ecKey(t)
	der, err := ca.Issue(rand.Reader, request(t, key))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return citizen{key, der, cert}
}

func (c citizen) signCMS(t testing.TB, ca *CA, content []byte, at time.Time) []byte {
	t.Helper()
	digest := sha256.Sum256(content)
	sig, err := SignCMS(rand.Reader, digest[:], c.key, c.der, ca.ChainDER(), at)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func pool(certs ...*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, c := range certs {
		p.AddCert(c)
	}
	return p
}

// create is a certificate of template for key, signed by parent (template itself when nil)
// with parentKey.
func create(t testing.TB, template, parent *x509.Certificate, key crypto.PublicKey, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	if template.SerialNumber == nil {
		template.SerialNumber = serial(t)
	}
	if template.NotBefore.IsZero() {
		template.NotBefore, template.NotAfter = now.Add(-time.Hour), now.AddDate(5, 0, 0)
	}
	if parent == nil {
		parent = template
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, key, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// operatorRoot is an operator's own root CA, which may certify CAs one level below it.
func operatorRoot(t testing.TB) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := ecKey(t)
	return create(t, &x509.Certificate{
		Subject:               pkix.Name{Country: []string{"TW"}, Organization: []string{"Operator"}, CommonName: "Operator root"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            1,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, key.Public(), key), key
}

func pemOf(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// opensslPath is the openssl binary, which CI must have; elsewhere its tests are skipped.
func opensslPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is missing; install the openssl package")
		}
		t.Skip("openssl is not installed")
	}
	return path
}

// files writes each name's bytes into a new directory and returns the paths by name.
func files(t *testing.T, contents map[string][]byte) map[string]string {
	t.Helper()
	dir := t.TempDir()
	paths := map[string]string{}
	for name, b := range contents {
		paths[name] = filepath.Join(dir, name)
		if err := os.WriteFile(paths[name], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

// openssl runs the openssl command with args and returns its output, stdout and stderr.
func openssl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(opensslPath(t), args...).CombinedOutput()
	return string(out), err
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one saying %q", err, want)
	}
}
