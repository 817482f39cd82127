package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/storage"
)

// attestationCA is a test authenticator maker's attestation root and one attestation
// certificate under it, as FIDO's packed format wants them.
type attestationCA struct {
	rootPEM []byte
	key     *ecdsa.PrivateKey // the attestation certificate's key
	chain   [][]byte          // the attestation certificate, DER
}

func newAttestationCA(t *testing.T, name string) attestationCA {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " Attestation Root", Organization: []string{name}},
		NotBefore: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2035, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ = x509.ParseCertificate(rootDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject: pkix.Name{CommonName: name + " Phone", Organization: []string{name}, Country: []string{"TW"},
			OrganizationalUnit: []string{"Authenticator Attestation"}},
		NotBefore: root.NotBefore, NotAfter: root.NotAfter, BasicConstraintsValid: true, IsCA: false,
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, root, &key.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	return attestationCA{rootPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}), key: key, chain: [][]byte{leafDER}}
}

func (ca attestationCA) options(synced bool) phone.CreateOptions {
	return phone.CreateOptions{Attestation: "packed", AttestationKey: ca.key, AttestationChain: ca.chain, BackupEligible: synced}
}

// TestAssuranceAttested binds phones of each kind to one citizen, on a server that trusts one
// attestation root, and checks what each records and what its logins claim: only the phone
// attested by that root whose key is not synced logs in at phone-hardware with hwk.
func TestAssuranceAttested(t *testing.T) {
	trusted, other := newAttestationCA(t, "Trusted Maker"), newAttestationCA(t, "Unknown Maker")
	roots := t.TempDir() + "/roots.pem"
	if err := os.WriteFile(roots, trusted.rootPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, func(c *Config) { c.AttestationRoots = []string{roots} })
	card := s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})
	e := registerAndShowQR(t, s, card)
	ctx := context.Background()
	rp := s.relyingParty(t, "戶政線上申辦", provider.ClientSpec{})

	tests := []struct {
		name        string
		opts        phone.CreateOptions
		attestation string
		acr         string
		amr         []string
	}{
		{"hardware", trusted.options(false), storage.AttestationTrusted, acrHardware, []string{"hwk", "user"}},
		{"synced", trusted.options(true), storage.AttestationTrusted, acrBiometric, []string{"swk", "user"}},
		{"unknown maker", other.options(false), storage.AttestationUntrusted, acrBiometric, []string{"swk", "user"}},
		{"self attested", phone.CreateOptions{Attestation: "packed"}, storage.AttestationSelf, acrBiometric, []string{"swk", "user"}},
		{"none", phone.CreateOptions{}, storage.AttestationNone, acrBiometric, []string{"swk", "user"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			qrText := e.binding["qr_text"].(string)
			if i > 0 {
				qrText = e.browser.do("POST", "/api/v1/bindings", nil).want(t, 201).json(t)["qr_text"].(string)
			}
			p, err := phone.Open(t.TempDir() + "/phone.json")
			if err != nil {
				t.Fatal(err)
			}
			ph := &phone.Client{HTTP: http.DefaultClient, Phone: p}
			if _, err := ph.Bind(ctx, qrText, tc.name, tc.opts); err != nil {
				t.Fatalf("bind: %v", err)
			}
			d, err := storage.Get(ctx, s.store, func(tx storage.ReadTx) (storage.Device, error) { return tx.Device(p.Credentials()[0].DeviceID) })
			if err != nil || d.Attestation != tc.attestation || d.BackupEligible != tc.opts.BackupEligible || d.AttestationFmt != cmpOr(tc.opts.Attestation, "none") {
				t.Fatalf("device %+v, %v: want attestation %s", d, err, tc.attestation)
			}
			a := rp.startLogin(oauth2.SetAuthURLParam("acr_values", acrHardware))
			_, err = ph.Login(ctx, a.scan(t), phone.GetOptions{})
			if tc.acr != acrHardware {
				if !isAPIError(err, 403, "assurance_too_low") {
					t.Fatalf("login for %s: %v, want assurance_too_low", acrHardware, err)
				}
				a = rp.startLogin()
				if _, err := ph.Login(ctx, a.scan(t), phone.GetOptions{}); err != nil {
					t.Fatal(err)
				}
			} else if err != nil {
				t.Fatalf("login for %s: %v", acrHardware, err)
			}
			_, idt := rp.finish(a)
			var c claims
			if err := idt.Claims(&c); err != nil {
				t.Fatal(err)
			}
			if c.ACR != tc.acr || !slices.Equal(c.AMR, tc.amr) {
				t.Errorf("ID token acr %q amr %v, want %q %v", c.ACR, c.AMR, tc.acr, tc.amr)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestAttestationTrustFiles: a trust file that is missing or not what it should be stops the
// server's start, with an error naming it.
func TestAttestationTrustFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := dir + "/" + name
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing roots", Config{AttestationRoots: []string{dir + "/nothing.pem"}}, "read --attestation-roots"},
		{"roots not PEM", Config{AttestationRoots: []string{write("junk.pem", "junk")}}, "--attestation-roots " + dir + "/junk.pem"},
		{"missing MDS", Config{FIDOMDS: dir + "/nothing.jwt"}, "read --fido-mds"},
		{"MDS not a JWT", Config{FIDOMDS: write("blob.jwt", "not.a.jwt")}, "--fido-mds " + dir + "/blob.jwt: not a FIDO metadata blob"},
		{"MDS empty", Config{FIDOMDS: write("empty.jwt", "")}, "not a FIDO metadata blob"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := attestationTrust(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestDevicePolicy: with --device-policy synced=refuse,unattested=refuse a binding accepts only a
// trusted, non-synced key; the others are refused at the phone's finish (device_not_accepted),
// and the binding ends refused with that reason.
func TestDevicePolicy(t *testing.T) {
	trusted := newAttestationCA(t, "Trusted Maker")
	roots := t.TempDir() + "/roots.pem"
	if err := os.WriteFile(roots, trusted.rootPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, func(c *Config) {
		c.AttestationRoots, c.DevicePolicy = []string{roots}, "synced=refuse,unattested=refuse"
	})
	card := s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})
	e := registerAndShowQR(t, s, card)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts phone.CreateOptions
		ok   bool
	}{
		{"synced", trusted.options(true), false},
		{"none", phone.CreateOptions{}, false},
		{"self attested", phone.CreateOptions{Attestation: "packed"}, false},
		{"hardware", trusted.options(false), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bind := e.browser.do("POST", "/api/v1/bindings", nil).want(t, 201).json(t)
			p, err := phone.Open(t.TempDir() + "/phone.json")
			if err != nil {
				t.Fatal(err)
			}
			_, err = (&phone.Client{HTTP: http.DefaultClient, Phone: p}).Bind(ctx, bind["qr_text"].(string), "Pixel 8", tc.opts)
			if tc.ok {
				if err != nil {
					t.Fatalf("bind: %v", err)
				}
				return
			}
			if !isAPIError(err, 403, "device_not_accepted") {
				t.Fatalf("bind: %v, want 403 device_not_accepted", err)
			}
			st := e.browser.do("GET", "/api/v1/bindings/"+bind["id"].(string), nil).want(t, 200).json(t)
			if st["status"] != "refused" || st["reason"] != "device_not_accepted" {
				t.Fatalf("binding after the refusal: %v", st)
			}
		})
	}
	if err := (&Config{Addr: "x", DataDir: "x", DevicePolicy: "synced=maybe"}).Validate(); err == nil || !strings.Contains(err.Error(), "--device-policy") {
		t.Fatalf("a bad --device-policy: %v", err)
	}
}
