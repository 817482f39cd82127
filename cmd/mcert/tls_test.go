package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcert/mcert/authn"
)

// selfSigned writes a certificate for localhost and its key as PEM files in dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

func TestServeTLS(t *testing.T) {
	certFile, keyFile, cert := selfSigned(t, t.TempDir())
	s := startServer(t, func(c *Config) { c.TLSCert, c.TLSKey, c.Dev, c.AdminAddr = certFile, keyFile, true, "127.0.0.1:0" })
	if !strings.HasPrefix(s.PublicURL, "https://localhost:") {
		t.Fatalf("public URL %q, want https://localhost:<port>", s.PublicURL)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	client := func(minVersion, maxVersion uint16) *http.Client {
		jar, _ := cookiejar.New(nil)
		return &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: minVersion, MaxVersion: maxVersion},
		}}
	}

	b := &browser{t: t, base: s.PublicURL, http: client(0, 0)}
	for _, path := range []string{"/", "/api/v1/card/challenge", "/api/v1/nothing"} {
		checkSecurityHeaders(t, "GET "+path, b.do("GET", path, nil).Header, true)
	}
	login := b.do("POST", "/api/v1/card/login", signedLogin(t, b, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))).want(t, 200)
	if ck := login.Header.Get("Set-Cookie"); !strings.Contains(ck, "Secure") || !strings.Contains(ck, "HttpOnly") {
		t.Errorf("session cookie over https: %q", ck)
	}
	b.do("POST", "/api/v1/account", map[string]string{"email": "wang@example.tw", "phone": "0912345678"}).want(t, 201)

	// The admin listener speaks HTTPS too: the admin token must not cross the network in the clear.
	admin := "https://" + s.adminListener.Addr().String()
	if res, err := client(0, 0).Get(admin + "/healthz"); err != nil || res.StatusCode != 200 {
		t.Errorf("GET %s/healthz: %v", admin, err)
	} else {
		res.Body.Close()
	}
	if res, err := http.Get("http://" + s.adminListener.Addr().String() + "/healthz"); err == nil && res.StatusCode == 200 {
		res.Body.Close()
		t.Error("the admin listener answers plain HTTP beside a TLS public listener")
	}

	res, err := client(tls.VersionTLS10, tls.VersionTLS11).Get(s.PublicURL + "/healthz")
	if err == nil {
		res.Body.Close()
	}
	if !strings.Contains(fmt.Sprint(err), "protocol version") {
		t.Fatalf("a TLS 1.1 client: %v, want the server to refuse its protocol version", err)
	}
}

func TestTLSConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name, cert, key, publicURL, want string
	}{
		{"certificate without key", "cert.pem", "", "", "--tls-cert and --tls-key go together"},
		{"key without certificate", "", "key.pem", "", "--tls-cert and --tls-key go together"},
		{"http public URL", "cert.pem", "key.pem", "http://localhost:8080", "must be https"},
		{"both", "cert.pem", "key.pem", "https://mcert.example.tw", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Addr: "127.0.0.1:0", DataDir: "data", TLSCert: tc.cert, TLSKey: tc.key, PublicURL: tc.publicURL, CardCA: "ca.pem"}
			err := cfg.Validate()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}
