package revocation

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/mcert/mcert/internal/testkit"
)

// base is the tests' "now" at start: the injected clock moves from there.
var base = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

var issuingCAName = pkix.Name{Country: []string{"TW"}, Organization: []string{"mcert test"}, CommonName: "MOICA test issuing CA"}

type clock = testkit.Clock

// pki is a card CA as MOICA runs one: a root, an RSA issuing CA under it, and a delegated OCSP
// responder certificate the issuing CA signed. impostor has the issuing CA's name and another
// key of the same type, as a forger would.
type pki struct {
	root, ca, responder, impostor             *x509.Certificate
	rootKey, caKey, responderKey, impostorKey crypto.Signer
	cardKey                                   crypto.Signer
	serial                                    int64
}

func newPKI(t testing.TB) *pki {
	t.Helper()
	p := &pki{serial: 1000}
	p.rootKey = ecKey(t)
	p.root = p.issue(t, &x509.Certificate{
		Subject:               pkix.Name{Country: []string{"TW"}, Organization: []string{"mcert test"}, CommonName: "GRCA test root"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, p.rootKey, p.rootKey)
	keys := rsaKeys()
	p.caKey = keys[0]
	caTemplate := &x509.Certificate{
		Subject:               issuingCAName,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	p.ca = p.issue(t, caTemplate, p.root, p.rootKey, p.caKey)
	p.impostorKey = keys[1]
	p.impostor = p.issue(t, caTemplate, nil, p.impostorKey, p.impostorKey)
	p.responderKey = ecKey(t)
	p.responder = p.issue(t, &x509.Certificate{
		Subject:     pkix.Name{Country: []string{"TW"}, CommonName: "MOICA test OCSP responder"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
	}, p.ca, p.caKey, p.responderKey)
	p.cardKey = ecKey(t)
	return p
}

// rsaKeys are the issuing CA's key and the impostor's, of one type so that a refusal of the
// impostor's signatures is a signature check failing. They are made once per test binary: an
// RSA key takes long to make, and each test's certificates are its own anyway.
var rsaKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var keys [2]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
})

func ecKey(t testing.TB) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// issue signs template with parentKey (self-signed when parent is nil), valid a year either side
// of base unless template says otherwise.
func (p *pki) issue(t testing.TB, template, parent *x509.Certificate, parentKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	p.serial++
	template.SerialNumber = big.NewInt(p.serial)
	if template.NotBefore.IsZero() {
		template.NotBefore = base.AddDate(-1, 0, 0)
	}
	if template.NotAfter.IsZero() {
		template.NotAfter = base.AddDate(1, 0, 0)
	}
	if parent == nil {
		parent = template
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// card issues a citizen card from the issuing CA naming these CRL distribution points and OCSP
// responders.
func (p *pki) card(t testing.TB, crlDPs, ocspURLs []string) *x509.Certificate {
	t.Helper()
	return p.issue(t, &x509.Certificate{
		Subject:               pkix.Name{Country: []string{"TW"}, CommonName: "王小明", SerialNumber: "A123456789"},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		CRLDistributionPoints: crlDPs,
		OCSPServer:            ocspURLs,
	}, p.ca, p.caKey, p.cardKey)
}

// crlSpec describes a CRL to make; zero times mean a fresh one: thisUpdate an hour before base,
// nextUpdate a day after that.
type crlSpec struct {
	number                 int64
	thisUpdate, nextUpdate time.Time
	revoked                []*x509.Certificate
	extensions             []pkix.Extension
	entryExtensions        []pkix.Extension // on every entry
}

var (
	revokedAt     = base.Add(-3 * time.Hour)
	revokedReason = ocsp.KeyCompromise
)

// crl makes the CRL of spec, signed by signer (the issuing CA, or another to test refusals).
func (p *pki) crl(t testing.TB, signer *x509.Certificate, key crypto.Signer, spec crlSpec) []byte {
	t.Helper()
	if spec.thisUpdate.IsZero() {
		spec.thisUpdate = base.Add(-time.Hour)
	}
	if spec.nextUpdate.IsZero() {
		spec.nextUpdate = spec.thisUpdate.Add(24 * time.Hour)
	}
	if spec.number == 0 {
		spec.number = 1
	}
	template := &x509.RevocationList{
		Number:          big.NewInt(spec.number),
		ThisUpdate:      spec.thisUpdate,
		NextUpdate:      spec.nextUpdate,
		ExtraExtensions: spec.extensions,
	}
	for _, c := range spec.revoked {
		template.RevokedCertificateEntries = append(template.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber: c.SerialNumber, RevocationTime: revokedAt, ReasonCode: revokedReason, ExtraExtensions: spec.entryExtensions,
		})
	}
	der, err := x509.CreateRevocationList(rand.Reader, template, signer, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// idp is an issuing distribution point extension limiting a CRL to the cards naming uris.
func idp(t testing.TB, uris ...string) pkix.Extension {
	t.Helper()
	var names []asn1.RawValue
	for _, u := range uris {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(u)})
	}
	v, err := asn1.Marshal(issuingDistributionPoint{DistributionPoint: distributionPointName{FullName: names}})
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oidIssuingDistributionPoint, Critical: true, Value: v}
}

// answer is an OCSP response about card's serial: signed by signer with key, embedding signer
// unless it is the issuer itself, as responders do.
type answer struct {
	status                 int
	reason                 int      // for revoked; default key compromise
	serial                 *big.Int // default: the card's
	thisUpdate, nextUpdate time.Time
	noNextUpdate           bool
	hash                   crypto.Hash
	issuer                 *x509.Certificate // whose CertID; default the issuing CA
}

func (p *pki) ocspAnswer(t testing.TB, card, signer *x509.Certificate, key crypto.Signer, a answer) []byte {
	t.Helper()
	if a.serial == nil {
		a.serial = card.SerialNumber
	}
	if a.thisUpdate.IsZero() {
		a.thisUpdate = base.Add(-time.Minute)
	}
	if a.nextUpdate.IsZero() && !a.noNextUpdate {
		a.nextUpdate = base.Add(time.Hour)
	}
	if a.issuer == nil {
		a.issuer = p.ca
	}
	template := ocsp.Response{
		Status: a.status, SerialNumber: a.serial, ThisUpdate: a.thisUpdate, NextUpdate: a.nextUpdate, IssuerHash: a.hash,
	}
	if a.status == ocsp.Revoked {
		template.RevokedAt, template.RevocationReason = revokedAt, revokedReason
		if a.reason != 0 {
			template.RevocationReason = a.reason
		}
	}
	if !signer.Equal(p.ca) {
		template.Certificate = signer
	}
	der, err := ocsp.CreateResponse(a.issuer, signer, template, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// server is the CA's publication point and OCSP responder, as MOICA's service is: CRLs by path
// under /crl/ and OCSP by POST at /ocsp.
type server struct {
	*httptest.Server
	mu        sync.Mutex
	crls      map[string][]byte
	crlStatus int // when set, CRL requests get this status instead
	// hold, when set, keeps CRL requests waiting until it is closed or the client gives up.
	hold       chan struct{}
	responder  func(req *ocsp.Request) []byte
	crlCalls   int
	ocspCalls  int
	badRequest string // why the last OCSP request was refused, if one was
}

func newServer(t *testing.T) *server {
	s := &server{crls: map[string][]byte{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(s.Close)
	return s
}

func (s *server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.URL.Path == "/ocsp":
		s.ocspCalls++
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		switch {
		case r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/ocsp-request":
			s.badRequest = r.Method + " " + r.Header.Get("Content-Type")
		case err != nil:
			s.badRequest = err.Error()
		case req.HashAlgorithm != crypto.SHA1:
			s.badRequest = "CertID hash " + req.HashAlgorithm.String()
		}
		if s.badRequest != "" || s.responder == nil {
			w.Write(ocsp.MalformedRequestErrorResponse)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(s.responder(req))
	case r.URL.Path == "/slow":
		// The server notices the client hang up only once the body is read.
		io.Copy(io.Discard, r.Body)
		s.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		s.mu.Lock()
	case strings.HasPrefix(r.URL.Path, "/crl/"):
		s.crlCalls++
		if hold := s.hold; hold != nil {
			s.mu.Unlock()
			select {
			case <-hold:
			case <-r.Context().Done():
			}
			s.mu.Lock()
		}
		body, ok := s.crls[r.URL.Path]
		switch {
		case s.crlStatus != 0:
			w.WriteHeader(s.crlStatus)
		case !ok:
			http.NotFound(w, r)
		default:
			w.Header().Set("Content-Type", "application/pkix-crl")
			w.Write(body)
		}
	default:
		http.NotFound(w, r)
	}
}

func (s *server) setCRL(path string, der []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crls[path] = der
}

func (s *server) setResponder(f func(req *ocsp.Request) []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.responder = f
}

func (s *server) failCRLs(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crlStatus = status
}

func (s *server) holdCRLs(hold chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = hold
}

func (s *server) refused() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.badRequest
}

func (s *server) calls() (crl, ocsp int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.crlCalls, s.ocspCalls
}

// env is one test's world: the CA, its server, a clock and a directory for CRL files.
type env struct {
	t     *testing.T
	pki   *pki
	srv   *server
	clock *clock
	dir   string
	logs  *syncBuffer
	// down is the URL of a server that no longer listens.
	down string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	return &env{t: t, pki: newPKI(t), srv: newServer(t), clock: testkit.NewClock(base), dir: t.TempDir(), logs: &syncBuffer{}, down: gone.URL}
}

func (e *env) crlURL() string  { return e.srv.URL + "/crl/ca.crl" }
func (e *env) ocspURL() string { return e.srv.URL + "/ocsp" }

// card is a card naming e's CRL distribution point and OCSP responder.
func (e *env) card() *x509.Certificate {
	return e.pki.card(e.t, []string{e.crlURL()}, []string{e.ocspURL()})
}

func (e *env) config(mode Mode, files ...string) Config {
	return Config{
		Mode:        mode,
		CAs:         []CA{{Certificate: e.pki.ca, CRLFiles: files}},
		Now:         e.clock.Now,
		Logger:      slog.New(slog.NewTextHandler(e.logs, nil)),
		OCSPTimeout: 300 * time.Millisecond,
	}
}

func (e *env) checker(cfg Config) *Checker {
	e.t.Helper()
	c, err := New(cfg)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	return c
}

// writeFile writes data to a file in e's directory, as PEM when pemType is set.
func (e *env) writeFile(name string, data []byte, pemType string) string {
	e.t.Helper()
	if pemType != "" {
		data = pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: data})
	}
	path := filepath.Join(e.dir, name)
	// Replace as a CRL-fetching job does: write aside, then rename over the old file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		e.t.Fatal(err)
	}
	return path
}

type syncBuffer = testkit.Buffer
