package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/pki"
	"github.com/mcert/mcert/signing"
	"github.com/mcert/mcert/signing/signingtest"
)

// verifyFixture is a CA with its ca.pem and OCSP responder on 127.0.0.1, a citizen's
// certificate that names the responder, and a document signed with it in both formats, with
// the evidence of the phone's approval, all as files for mcert verify.
type verifyFixture struct {
	dir      string
	signedAt time.Time
	serial   *big.Int

	mu     sync.Mutex
	status map[string]pki.Status // by serial number, in hexadecimal
}

func (f *verifyFixture) path(name string) string { return filepath.Join(f.dir, name) }

func (f *verifyFixture) setStatus(s pki.Status) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status[f.serial.Text(16)] = s
}

func (f *verifyFixture) write(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(f.path(name), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func newVerifyFixture(t *testing.T) *verifyFixture {
	t.Helper()
	now := time.Now()
	// CMS signing times are whole seconds.
	f := &verifyFixture{dir: t.TempDir(), signedAt: now.Add(-10 * time.Minute).Truncate(time.Second), status: map[string]pki.Status{}}
	ca, err := pki.NewCA(rand.Reader, now.Add(-time.Hour), "test")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /pki/ca.pem", func(w http.ResponseWriter, r *http.Request) { w.Write(ca.PEM()) })
	mux.HandleFunc("POST /pki/ocsp", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		resp, err := ca.OCSP(body, time.Now(), func(serial *big.Int) (pki.Status, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.status[serial.Text(16)], nil
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(resp)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.write(t, "server", []byte(srv.URL))
	// A responder that is gone: its port refuses connections.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()

	other, err := pki.NewCA(rand.Reader, now.Add(-time.Hour), "other")
	if err != nil {
		t.Fatal(err)
	}
	f.write(t, "ca.pem", ca.PEM())
	f.write(t, "other-ca.pem", other.PEM())

	document := []byte("租賃契約 2026\n")
	digest := sha256.Sum256(document)
	f.write(t, "document.txt", document)
	f.write(t, "tampered.txt", []byte("租賃契約 2027\n"))

	// issue is a certificate whose OCSP responder is at ocspURL, with its key.
	issue := func(ocspURL string) (*ecdsa.PrivateKey, []byte, *big.Int) {
		key, cert, serial, err := signingtest.Certificate(ca, now, now.Add(24*time.Hour), srv.URL+"/pki/ca.crl", ocspURL)
		if err != nil {
			t.Fatal(err)
		}
		return key, cert, serial
	}
	signCMS := func(name string, key *ecdsa.PrivateKey, cert []byte) {
		sig, err := pki.SignCMS(rand.Reader, digest[:], key, cert, ca.ChainDER(), f.signedAt)
		if err != nil {
			t.Fatal(err)
		}
		f.write(t, name, sig)
	}

	key, cert, serial := issue(srv.URL + "/pki/ocsp")
	f.serial = serial
	f.setStatus(pki.Status{Issued: true})
	f.write(t, "cert.der", cert)
	signCMS("sig.der", key, cert)
	raw, err := pki.SignRaw(rand.Reader, digest[:], key)
	if err != nil {
		t.Fatal(err)
	}
	f.write(t, "raw.der", raw)
	goneKey, goneCert, _ := issue(gone.URL + "/pki/ocsp")
	signCMS("unreachable.der", goneKey, goneCert)

	device, err := signingtest.NewDevice(f.dir, "device-1", "127.0.0.1", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	approve := func(name string, digest []byte, signedAt time.Time) {
		e, err := device.Approve(signing.Request{
			ID: "req-1", ClientID: "client-1", Text: "簽署租約", Format: "cms",
			Documents: []signing.Document{{Name: "document.txt", Digest: digest}},
		}, cert, signedAt, phone.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		f.write(t, name, b)
	}
	approve("evidence.json", digest[:], f.signedAt)
	otherDigest := sha256.Sum256([]byte("another document"))
	approve("evidence-other-document.json", otherDigest[:], f.signedAt)
	approve("evidence-other-time.json", digest[:], f.signedAt.Add(time.Minute))
	return f
}

func TestVerify(t *testing.T) {
	f := newVerifyFixture(t)
	server, err := os.ReadFile(f.path("server"))
	if err != nil {
		t.Fatal(err)
	}
	p := f.path
	cms := []string{"--file", p("document.txt"), "--cms", p("sig.der"), "--ca", p("ca.pem")}
	raw := []string{"--file", p("document.txt"), "--signature", p("raw.der"), "--certificate", p("cert.der"), "--ca", p("ca.pem"), "--evidence", p("evidence.json")}
	with := func(args []string, more ...string) []string { return append(append([]string{}, args...), more...) }
	good := pki.Status{Issued: true}

	tests := []struct {
		name   string
		args   []string
		status pki.Status
		code   int
		want   []string // in stdout when code is 0, else in stderr
	}{
		{name: "CMS", args: cms, status: good, code: 0, want: []string{
			"valid CMS signature of " + p("document.txt"), "signer: 王小明, A12****789",
			"certificate serial number: " + f.serial.Text(16), "signing time: " + stampUTC(f.signedAt),
			"certificate good at signing time"}},
		{name: "CMS with the CA from the server", args: []string{"--file", p("document.txt"), "--cms", p("sig.der"), "--server", string(server)}, status: good, code: 0, want: []string{"certificate good at signing time"}},
		{name: "CMS with evidence", args: with(cms, "--evidence", p("evidence.json")), status: good, code: 0, want: []string{
			`approved on the phone device-1 for client-1 (request req-1): "簽署租約"`}},
		{name: "raw with evidence", args: raw, status: good, code: 0, want: []string{"valid raw signature", "approved on the phone device-1"}},
		{name: "tampered document", args: with(cms, "--file", p("tampered.txt")), status: good, code: 1, want: []string{"mcert verify: the signature is not of this document"}},
		{name: "tampered document, raw", args: with(raw, "--file", p("tampered.txt")), status: good, code: 1, want: []string{"mcert verify: the signature does not verify"}},
		{name: "untrusted CA", args: with(cms, "--ca", p("other-ca.pem")), status: good, code: 1, want: []string{"mcert verify: the signer's certificate is not trusted"}},
		{name: "revoked before signing", args: cms, status: pki.Status{Issued: true, RevokedAt: f.signedAt.Add(-time.Minute), Reason: 1}, code: 1, want: []string{
			"mcert verify: the signer's certificate was revoked since " + stampUTC(f.signedAt.Add(-time.Minute))}},
		{name: "revoked after signing", args: cms, status: pki.Status{Issued: true, RevokedAt: f.signedAt.Add(time.Minute), Reason: 1}, code: 0, want: []string{
			"certificate revoked at " + stampUTC(f.signedAt.Add(time.Minute)) + ", after the signature"}},
		{name: "unknown to the responder", args: cms, status: pki.Status{}, code: 1, want: []string{"does not know the certificate"}},
		{name: "OCSP unreachable", args: with(cms, "--cms", p("unreachable.der")), status: good, code: 1, want: []string{"mcert verify: the certificate's revocation could not be checked"}},
		{name: "evidence of another document", args: with(cms, "--evidence", p("evidence-other-document.json")), status: good, code: 1, want: []string{
			"the evidence does not show the phone's approval of this signature: the approved request lists no document of SHA-256"}},
		{name: "evidence of another time", args: with(cms, "--evidence", p("evidence-other-time.json")), status: good, code: 1, want: []string{"the evidence's signing time"}},
		{name: "evidence of another time, raw", args: with(raw, "--evidence", p("evidence-other-time.json")), status: good, code: 0, want: []string{"signing time: " + stampUTC(f.signedAt.Add(time.Minute))}},
		{name: "evidence not evidence", args: with(cms, "--evidence", p("ca.pem")), status: good, code: 1, want: []string{"the evidence is not mcert's JSON"}},
		{name: "no file", args: []string{"--cms", p("sig.der"), "--ca", p("ca.pem")}, code: 2, want: []string{"--file is required"}},
		{name: "no signature", args: []string{"--file", p("document.txt"), "--ca", p("ca.pem")}, code: 2, want: []string{"give --cms, or --signature with --certificate"}},
		{name: "both signatures", args: with(raw, "--cms", p("sig.der")), code: 2, want: []string{"give --cms, or --signature with --certificate"}},
		{name: "raw without certificate", args: []string{"--file", p("document.txt"), "--signature", p("raw.der"), "--ca", p("ca.pem"), "--evidence", p("evidence.json")}, code: 2, want: []string{"needs both --signature and --certificate"}},
		{name: "raw without evidence", args: []string{"--file", p("document.txt"), "--signature", p("raw.der"), "--certificate", p("cert.der"), "--ca", p("ca.pem")}, code: 2, want: []string{"a raw signature carries no signing time: give --evidence"}},
		{name: "no CA", args: []string{"--file", p("document.txt"), "--cms", p("sig.der")}, code: 2, want: []string{"give mcert's CA with --ca"}},
		{name: "both CAs", args: with(cms, "--server", string(server)), code: 2, want: []string{"not both"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.setStatus(tc.status)
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"verify"}, tc.args...), &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, &stdout, &stderr)
			}
			t.Logf("stdout:\n%sstderr:\n%s", &stdout, &stderr)
			out := stdout.String()
			if code != 0 {
				out = stderr.String()
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
