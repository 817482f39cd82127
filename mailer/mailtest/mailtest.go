// Package mailtest is a real SMTP server for tests (go-smtp), on 127.0.0.1: it takes mail as a
// relay does, optionally behind STARTTLS and AUTH PLAIN, and hands each message to the test
// decoded (subject, body) and raw. It can refuse recipients and go down and up again on the
// same port, so that a sender's retries can be tested.
package mailtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// From is the sender address in URL.
const From = "mcert@example.tw"

// Message is one message the server accepted.
type Message struct {
	From    string      // the envelope sender (MAIL FROM)
	To      []string    // the envelope recipients (RCPT TO)
	Header  mail.Header // as net/mail parses it
	Subject string      // decoded (RFC 2047)
	Body    string      // decoded per Content-Transfer-Encoding, UTF-8, lines ending in "\n"
	Raw     []byte      // as received after DATA
	TLS     bool        // whether it came over TLS (implicit or after STARTTLS)
}

// Option changes a Server.
type Option func(*options)

type options struct {
	tls, implicit bool
	user, pass    string
}

// WithTLS makes the server offer STARTTLS with a self-signed certificate for 127.0.0.1, ::1
// and localhost; RootCAs trusts it.
func WithTLS() Option { return func(o *options) { o.tls = true } }

// WithImplicitTLS makes the server speak TLS from the first byte, as on port 465 (smtps), with
// WithTLS's certificate; URL is then an smtps:// URL.
func WithImplicitTLS() Option { return func(o *options) { o.tls, o.implicit = true, true } }

// WithAuth makes the server require AUTH PLAIN with user and pass before MAIL FROM. Like any
// decent server it offers AUTH only after STARTTLS, so WithAuth needs WithTLS.
func WithAuth(user, pass string) Option {
	return func(o *options) { o.user, o.pass = user, pass }
}

// Server is an SMTP server on 127.0.0.1, closed at the test's end.
type Server struct {
	t     testing.TB
	opts  options
	addr  string // 127.0.0.1:port, kept across Stop and Start
	tls   *tls.Config
	roots *x509.CertPool
	msgs  chan Message
	done  chan struct{} // closed at the test's end

	mu      sync.Mutex
	srv     *smtp.Server  // nil while stopped
	lis     net.Listener  // srv's
	served  chan struct{} // closed when srv's Serve returns
	rejects []int         // codes for the next RCPT TOs, first first
}

// New starts a Server on a free port.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{t: t, msgs: make(chan Message, 100), done: make(chan struct{})}
	for _, o := range opts {
		o(&s.opts)
	}
	if s.opts.user != "" && !s.opts.tls {
		t.Fatal("mailtest: WithAuth needs WithTLS or WithImplicitTLS: the server offers AUTH only over TLS")
	}
	if s.opts.tls {
		s.tls, s.roots = selfSigned(t)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	s.addr = l.Addr().String()
	s.serve(l)
	t.Cleanup(func() {
		close(s.done)
		s.Stop()
	})
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// URL is an smtp:// URL of the server (smtps:// WithImplicitTLS), for mailer.ParseSMTPURL, with
// from=mcert@example.tw and WithAuth's user and password.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.addr, RawQuery: url.Values{"from": {From}}.Encode()}
	if s.opts.implicit {
		u.Scheme = "smtps"
	}
	if s.opts.user != "" {
		u.User = url.UserPassword(s.opts.user, s.opts.pass)
	}
	return u.String()
}

// RootCAs trusts the server's certificate (nil without WithTLS).
func (s *Server) RootCAs() *x509.CertPool { return s.roots }

// Messages has every message accepted, in order.
func (s *Server) Messages() <-chan Message { return s.msgs }

// RejectNext makes the next n RCPT TO commands get code (450 is temporary, 550 permanent).
func (s *Server) RejectNext(code int, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.rejects = append(s.rejects, code)
	}
}

// Stop closes the listener and every connection: the SMTP server is down, and connections
// are refused until Start.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, lis, served := s.srv, s.lis, s.served
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Close() // the connections, and the listener if Serve has begun
	lis.Close() // the listener if it has not
	<-served
}

// Start listens again on the same port after Stop.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	running := s.srv != nil
	s.mu.Unlock()
	if running {
		return
	}
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatalf("mailtest: listen again on %s: %v", s.addr, err)
	}
	s.serve(l)
}

func (s *Server) serve(l net.Listener) {
	if s.opts.implicit {
		l = tls.NewListener(l, s.tls)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	srv.Domain = "mailtest.localhost"
	if !s.opts.implicit {
		srv.TLSConfig = s.tls // offers STARTTLS
	}
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	srv.MaxMessageBytes = 1 << 20
	srv.MaxRecipients = 50
	srv.ErrorLog = log.New(io.Discard, "", 0) // connections the tests cut are no news
	served := make(chan struct{})
	s.mu.Lock()
	s.srv, s.lis, s.served = srv, l, served
	s.mu.Unlock()
	go func() {
		defer close(served)
		srv.Serve(l)
	}()
}

// nextReject is the code for this RCPT TO, or 0 to accept it.
func (s *Server) nextReject() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rejects) == 0 {
		return 0
	}
	code := s.rejects[0]
	s.rejects = s.rejects[1:]
	return code
}

// session is one SMTP connection's state.
type session struct {
	s      *Server
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

func (se *session) AuthMechanisms() []string {
	if se.s.opts.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (se *session) Auth(mech string) (sasl.Server, error) {
	if se.s.opts.user == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if (identity != "" && identity != user) || user != se.s.opts.user || pass != se.s.opts.pass {
			return smtp.ErrAuthFailed
		}
		se.authed = true
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.opts.user != "" && !se.authed {
		return smtp.ErrAuthRequired
	}
	se.from, se.to = from, nil
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if code := se.s.nextReject(); code != 0 {
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: "mailtest refuses this recipient"}
	}
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := parse(raw)
	if err != nil {
		se.s.t.Errorf("mailtest: a message that does not parse: %v\n%s", err, raw)
	}
	m.From, m.To = se.from, append([]string(nil), se.to...)
	_, m.TLS = se.conn.TLSConnectionState()
	select {
	case se.s.msgs <- m:
		return nil
	case <-se.s.done:
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCodeNotSet, Message: "mailtest is closing"}
	}
}

func (se *session) Reset()        { se.from, se.to = "", nil }
func (se *session) Logout() error { return nil }

// parse decodes raw as a mail reader would: headers, the RFC 2047 subject, and the body
// per its Content-Transfer-Encoding. A multipart message is not decoded: mcert sends none.
func parse(raw []byte) (Message, error) {
	m := Message{Raw: raw}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return m, err
	}
	m.Header = msg.Header
	if m.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return m, fmt.Errorf("subject: %w", err)
	}
	if ct := msg.Header.Get("Content-Type"); ct != "" {
		media, params, err := mime.ParseMediaType(ct)
		if err != nil {
			return m, fmt.Errorf("content type: %w", err)
		}
		if strings.HasPrefix(media, "multipart/") {
			return m, fmt.Errorf("content type %s: mailtest decodes single parts only", media)
		}
		if cs := params["charset"]; cs != "" && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "us-ascii") {
			return m, fmt.Errorf("charset %q: want utf-8", cs)
		}
	}
	var body io.Reader
	switch cte := strings.ToLower(strings.TrimSpace(msg.Header.Get("Content-Transfer-Encoding"))); cte {
	case "quoted-printable":
		body = quotedprintable.NewReader(msg.Body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, msg.Body) // it skips line breaks
	case "", "7bit", "8bit", "binary":
		body = msg.Body
	default:
		return m, fmt.Errorf("content transfer encoding %q", cte)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return m, fmt.Errorf("body: %w", err)
	}
	m.Body = strings.ReplaceAll(string(b), "\r\n", "\n")
	return m, nil
}

// selfSigned is a TLS configuration with a fresh self-signed certificate for the loopback
// host, and a pool that trusts it.
func selfSigned(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		MinVersion:   tls.VersionTLS12,
	}, pool
}
