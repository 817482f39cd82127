package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/mcert/mcert/authn"
)

// cardPKI is a production-like card PKI in the test: a root, like GRCA, an issuing CA, like
// MOICA, whose cards name a CRL distribution point and an OCSP responder, and one local HTTP
// server that is both, as MOICA's service is.
type cardPKI struct {
	t            testing.TB
	root, ca     *x509.Certificate
	rootKey, key crypto.Signer
	srv          *httptest.Server
	bundle       string // the PEM file for --card-ca: the issuing CA and the root

	mu        sync.Mutex
	now       func() time.Time
	revoked   map[string]bool // serials
	crlNext   time.Duration   // how long a CRL made now is valid
	crlAt     time.Time       // when the CRL served was made; zero: make it at each request
	ocspDown  bool
	ocspAsked int
}

func newCardPKI(t testing.TB, now func() time.Time) *cardPKI {
	t.Helper()
	p := &cardPKI{t: t, now: now, revoked: map[string]bool{}, crlNext: 24 * time.Hour}
	p.rootKey, p.root = selfSignedCA(t, "Test GRCA", now())
	p.key = mustRSA(t, 2048)
	p.ca = mustCert(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "Test MOICA", Country: []string{"TW"}}, NotBefore: now().Add(-time.Hour), NotAfter: now().AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, p.root, p.key.Public(), p.rootKey)
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	p.bundle = filepath.Join(t.TempDir(), "card-ca.pem")
	var pemBytes []byte
	for _, c := range []*x509.Certificate{p.ca, p.root} {
		pemBytes = append(pemBytes, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(p.bundle, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustRSA(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustCert(t testing.TB, template, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	template.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, template, parent, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func selfSignedCA(t testing.TB, name string, now time.Time) (crypto.Signer, *x509.Certificate) {
	t.Helper()
	key := mustRSA(t, 2048)
	template := &x509.Certificate{
		Subject: pkix.Name{CommonName: name, Country: []string{"TW"}}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(20, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	return key, mustCert(t, template, template, key.Public(), key)
}

// cardOptions shape a card of the PKI.
type cardOptions struct {
	key         crypto.Signer      // default RSA-2048
	extKeyUsage []x509.ExtKeyUsage // default none, as a citizen card
}

// card issues a MOICA-shaped card: the name in CN, the last four digits of the ID in the
// Subject Directory Attributes, and the PKI's CRL and OCSP addresses.
func (p *cardPKI) card(name, lastFour string, o cardOptions) *authn.Card {
	p.t.Helper()
	if o.key == nil {
		o.key = mustRSA(p.t, 2048)
	}
	ext, err := authn.MOICALastFourExtension(lastFour)
	if err != nil {
		p.t.Fatal(err)
	}
	cert := mustCert(p.t, &x509.Certificate{
		Subject: pkix.Name{CommonName: name, Country: []string{"TW"}}, NotBefore: p.now().Add(-time.Hour), NotAfter: p.now().AddDate(5, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment, ExtKeyUsage: o.extKeyUsage,
		CRLDistributionPoints: []string{p.srv.URL + "/moica.crl"}, OCSPServer: []string{p.srv.URL + "/ocsp"},
		ExtraExtensions: []pkix.Extension{ext},
	}, p.ca, o.key.Public(), p.key)
	return &authn.Card{Certificate: cert, Key: o.key}
}

func (p *cardPKI) revoke(c *authn.Card) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revoked[c.Certificate.SerialNumber.String()] = true
}

// crl is the CRL of the issuing CA as of at.
func (p *cardPKI) crl(at time.Time) []byte {
	p.t.Helper()
	p.mu.Lock()
	var entries []x509.RevocationListEntry
	for serial := range p.revoked {
		n, _ := new(big.Int).SetString(serial, 10)
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: at.Add(-time.Minute)})
	}
	next := p.crlNext
	p.mu.Unlock()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(at.UnixNano()), ThisUpdate: at, NextUpdate: at.Add(next), RevokedCertificateEntries: entries,
	}, p.ca, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	return der
}

func (p *cardPKI) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/moica.crl":
		p.mu.Lock()
		at := p.crlAt
		p.mu.Unlock()
		if at.IsZero() {
			at = p.now()
		}
		w.Write(p.crl(at))
	case "/ocsp":
		p.mu.Lock()
		p.ocspAsked++
		down := p.ocspDown
		p.mu.Unlock()
		if down {
			http.Error(w, "responder down", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		now := p.now()
		template := ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: now, NextUpdate: now.Add(time.Hour)}
		p.mu.Lock()
		if p.revoked[req.SerialNumber.String()] {
			template.Status, template.RevokedAt, template.RevocationReason = ocsp.Revoked, now.Add(-time.Minute), ocsp.KeyCompromise
		}
		p.mu.Unlock()
		der, err := ocsp.CreateResponse(p.ca, p.ca, template, p.key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		w.Write(der)
	default:
		http.NotFound(w, r)
	}
}

// cardServer is a production-like server: it trusts the PKI's CAs and checks revocation as
// mode says, with the given CRL files.
func (p *cardPKI) cardServer(t *testing.T, mode string, crlFiles ...string) *server {
	t.Helper()
	s := startServer(t, func(c *Config) { c.CardCA, c.CardRevocation, c.CardCRL = p.bundle, mode, crlFiles })
	p.now = s.clock.Now
	return s
}

// pkcs7Body is a card login in the PKCS#7 form, as the card component signs it: over the
// challenge's tbs, or over what tbs says when given.
func pkcs7Body(t *testing.T, b *browser, card *authn.Card, citizenID string, tbs ...string) map[string]any {
	t.Helper()
	ch := b.do("GET", "/api/v1/card/challenge", nil).want(t, 200).json(t)
	text := ch["tbs"].(string)
	if len(tbs) > 0 {
		text = tbs[0]
	}
	der, err := card.SignPKCS7([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"challenge": ch["challenge"], "pkcs7": base64.StdEncoding.EncodeToString(der)}
	if citizenID != "" {
		body["citizen_id"] = citizenID
	}
	return body
}

// TestRealCards logs in with MOICA-shaped cards of a production-like PKI, revocation checked
// live over OCSP and the CRL of a local stand-in for MOICA's service, and tries each refusal.
func TestRealCards(t *testing.T) {
	p := newCardPKI(t, newClock().Now)
	s := p.cardServer(t, "ocsp,crl")
	b := s.browser(t)
	good := p.card("王小明", "6789", cardOptions{})

	r := b.do("POST", "/api/v1/card/login", pkcs7Body(t, b, good, "A123456789")).want(t, 200).json(t)
	if c := r["citizen"].(map[string]any); c["name"] != "王小明" || c["id_masked"] != "A12****789" || r["account"] != nil {
		t.Fatalf("card login: %v", r)
	}
	b.do("POST", "/api/v1/account", map[string]string{"email": "wang@example.tw", "phone": "0912345678"}).want(t, 201)

	revoked := p.card("王小明", "6789", cardOptions{})
	p.revoke(revoked)
	foreignKey, foreignCA := selfSignedCA(t, "Foreign CA", s.clock.Now())
	foreign := &authn.Card{Key: mustRSA(t, 2048)}
	foreign.Certificate = mustCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "王小明"}, NotBefore: s.clock.Now().Add(-time.Hour),
		NotAfter: s.clock.Now().AddDate(1, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature, ExtraExtensions: good.Certificate.Extensions[len(good.Certificate.Extensions)-1:]},
		foreignCA, foreign.Key.Public(), foreignKey)
	other := p.card("陳大文", "6789", cardOptions{}) // the same last four, another person
	tests := []struct {
		name      string
		body      map[string]any
		status    int
		code      string
		citizenID string
	}{
		{name: "revoked, by OCSP", body: pkcs7Body(t, b, revoked, "A123456789"), status: 401, code: "card_revoked"},
		{name: "foreign CA", body: pkcs7Body(t, b, foreign, "A123456789"), status: 401, code: "card_untrusted"},
		{name: "last four digits of another ID", body: pkcs7Body(t, b, good, "F131104093"), status: 401, code: "citizen_id_mismatch"},
		{name: "no national ID typed", body: pkcs7Body(t, b, good, ""), status: 400, code: "citizen_id_required"},
		{name: "a wrong check digit", body: pkcs7Body(t, b, good, "A123456788"), status: 400, code: "invalid_citizen_id"},
		{name: "another holder's card for a registered ID", body: pkcs7Body(t, b, other, "A123456789"), status: 401, code: "citizen_id_mismatch"},
		{name: "signed for another site", body: pkcs7Body(t, b, good, "A123456789", authn.CardLoginTBS("https://evil.example", "x")), status: 401, code: "bad_signature"},
		{name: "RSA-1024", body: pkcs7Body(t, b, p.card("王小明", "6789", cardOptions{key: mustRSA(t, 1024)}), "A123456789"), status: 401, code: "card_key_type"},
		{name: "a TLS server's certificate of the card CA", body: pkcs7Body(t, b, p.card("王小明", "6789", cardOptions{extKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}), "A123456789"), status: 401, code: "card_key_usage"},
		{name: "malformed PKCS#7", body: map[string]any{"challenge": pkcs7Body(t, b, good, "")["challenge"], "pkcs7": "MIIB", "citizen_id": "A123456789"}, status: 400, code: "bad_pkcs7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { s.refused(t, b, "POST", "/api/v1/card/login", tc.body, tc.status, tc.code) })
	}
	t.Run("reused challenge", func(t *testing.T) {
		body := pkcs7Body(t, b, good, "A123456789")
		b.do("POST", "/api/v1/card/login", body).want(t, 200)
		s.refused(t, b, "POST", "/api/v1/card/login", body, 409, "challenge_used")
	})
	t.Run("responder down, decided by the CRL", func(t *testing.T) {
		fresh, gone := p.card("王小明", "6789", cardOptions{}), p.card("王小明", "6789", cardOptions{})
		p.revoke(gone) // before the server fetches the CRL, at the first login with the responder down
		p.mu.Lock()
		p.ocspDown = true
		p.mu.Unlock()
		defer func() { p.mu.Lock(); p.ocspDown = false; p.mu.Unlock() }()
		b.do("POST", "/api/v1/card/login", pkcs7Body(t, b, fresh, "A123456789")).want(t, 200)
		s.refused(t, b, "POST", "/api/v1/card/login", pkcs7Body(t, b, gone, "A123456789"), 401, "card_revoked")
	})
	t.Run("OpenSSL's SignedData", func(t *testing.T) {
		openssl, err := exec.LookPath("openssl")
		if err != nil {
			t.Skip("openssl is not installed")
		}
		dir := t.TempDir()
		keyDER, _ := x509.MarshalPKCS8PrivateKey(good.Key)
		certPath, keyPath, tbsPath, out := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), filepath.Join(dir, "tbs.txt"), filepath.Join(dir, "s.der")
		os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: good.Certificate.Raw}), 0o600)
		os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
		ch := b.do("GET", "/api/v1/card/challenge", nil).want(t, 200).json(t)
		os.WriteFile(tbsPath, []byte(ch["tbs"].(string)), 0o600)
		if msg, err := exec.Command(openssl, "cms", "-sign", "-binary", "-nodetach", "-md", "sha256", "-signer", certPath, "-inkey", keyPath,
			"-in", tbsPath, "-outform", "DER", "-out", out).CombinedOutput(); err != nil {
			t.Fatalf("openssl cms -sign: %v: %s", err, msg)
		}
		der, _ := os.ReadFile(out)
		b.do("POST", "/api/v1/card/login", map[string]any{"challenge": ch["challenge"], "pkcs7": base64.StdEncoding.EncodeToString(der), "citizen_id": "A123456789"}).want(t, 200)
	})
}

// TestCRLModes checks the CRL alone: a revoked card refused, a stale CRL making every card's
// status unknown (and /healthz say so), and a CRL replaced on disk or at its address taking
// effect on SIGHUP, without a restart.
func TestCRLModes(t *testing.T) {
	t.Run("at the distribution point", func(t *testing.T) {
		p := newCardPKI(t, newClock().Now)
		s := p.cardServer(t, "crl")
		b := s.browser(t)
		card := p.card("王小明", "6789", cardOptions{})
		b.do("POST", "/api/v1/card/login", pkcs7Body(t, b, card, "A123456789")).want(t, 200)
		p.revoke(card)
		b.do("POST", "/api/v1/card/login", pkcs7Body(t, b, card, "A123456789")).want(t, 200) // the CRL in use does not list it yet
		hangUp(t, s, b, card, "card_revoked")
		if p.ocspAsked != 0 {
			t.Errorf("mode crl asked the OCSP responder %d times", p.ocspAsked)
		}

		// The CRL's nextUpdate passes and the service keeps serving that same CRL: stale.
		p.mu.Lock()
		p.crlAt = s.clock.Now()
		p.mu.Unlock()
		hangUp(t, s, b, card, "card_revoked")
		s.clock.Advance(25 * time.Hour)
		fresh := p.card("王小明", "6789", cardOptions{})
		hangUp(t, s, b, fresh, "card_status_unknown")
		h := b.do("GET", "/healthz", nil).want(t, 200).json(t)
		if h["status"] != "degraded" || h["revocation"] != "stale" {
			t.Errorf("/healthz with a stale CRL: %v", h)
		}
		metrics := s.admin(t)("GET", "/metrics", nil).want(t, 200).Body
		if !strings.Contains(string(metrics), "mcert_revocation_crl_next_update_seconds") {
			t.Error("/metrics has no CRL metrics")
		}
	})
	t.Run("from a file", func(t *testing.T) {
		p := newCardPKI(t, newClock().Now)
		crlFile := filepath.Join(t.TempDir(), "moica.crl")
		if err := os.WriteFile(crlFile, p.crl(newClock().Now()), 0o600); err != nil {
			t.Fatal(err)
		}
		s := p.cardServer(t, "crl", crlFile)
		b := s.browser(t)
		card := p.card("王小明", "6789", cardOptions{})
		b.do("POST", "/api/v1/card/login", pkcs7Body(t, b, card, "A123456789")).want(t, 200)
		p.revoke(card)
		if err := os.WriteFile(crlFile, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: p.crl(s.clock.Now())}), 0o600); err != nil {
			t.Fatal(err)
		}
		hangUp(t, s, b, card, "card_revoked")
	})
}

// hangUp sends the server SIGHUP, as an operator does after replacing a CRL, and waits until
// the card's login is refused with code.
func hangUp(t *testing.T, s *server, b *browser, card *authn.Card, code string) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := b.do("POST", "/api/v1/card/login", pkcs7Body(t, b, card, "A123456789"))
		if r.Status != 200 && r.errorCode(t) == code {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after SIGHUP the card login still answers %d %s, want %s", r.Status, r.Body, code)
		}
	}
}
