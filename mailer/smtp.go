package mailer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/mcert/mcert"
)

// sendTimeout bounds one Send, from dialling to QUIT.
const sendTimeout = 30 * time.Second

// SMTPConfig is where and how SMTP sends: what an --smtp-url says, plus what only a program
// can give (the test server's CA, a clock).
type SMTPConfig struct {
	Host        string
	Port        int
	ImplicitTLS bool   // smtps: TLS from the first byte; otherwise STARTTLS
	Username    string // empty: no SMTP AUTH
	Password    string
	From        string // the envelope sender and From address, e.g. mcert@example.tw
	FromName    string // the From display name, e.g. 內政部; optional

	// RootCAs, if set, are the CAs the server's certificate must chain to, instead of the
	// system's (a test server's self-signed certificate).
	RootCAs *x509.CertPool
	// Now is the clock of the Date header; time.Now if nil.
	Now func() time.Time
}

// ParseSMTPURL reads an --smtp-url:
//
//	smtp://[user:password@]host[:port]?from=addr[&from_name=name]    STARTTLS, port 587
//	smtps://[user:password@]host[:port]?from=addr[&from_name=name]   implicit TLS, port 465
//
// STARTTLS is required, except to a loopback host (localhost, 127.0.0.0/8, ::1), where it is
// used when the server offers it, so that a local relay for development works. A user name
// and password are percent-encoded. Errors name every problem and never the password.
func ParseSMTPURL(raw string) (SMTPConfig, error) {
	var c SMTPConfig
	var problems []string
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// The user information is taken apart here, so that no error from net/url (which quotes
	// the URL, or a piece of it) can show the password.
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return SMTPConfig{}, errors.New("smtp url: want smtp://[user:password@]host[:port]?from=address or smtps://…")
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo := authority[:i]
		authority = authority[i+1:]
		user, pass, hasPass := strings.Cut(userinfo, ":")
		var err error
		if c.Username, err = url.PathUnescape(user); err != nil {
			problem("the user name is not properly percent-encoded")
		}
		if c.Password, err = url.PathUnescape(pass); err != nil {
			problem("the password is not properly percent-encoded")
		}
		switch {
		case user == "" && hasPass:
			problem("a password without a user name")
		case user == "":
			problem("an empty user name before @")
		case !hasPass || pass == "":
			problem("user %q has no password", c.Username)
		}
	}

	switch strings.ToLower(scheme) {
	case "smtp":
		c.Port = gomail.DefaultPortTLS
	case "smtps":
		c.ImplicitTLS, c.Port = true, gomail.DefaultPortSSL
	default:
		problem("scheme %q: want smtp (STARTTLS) or smtps (implicit TLS)", scheme)
	}
	u, err := url.Parse("smtp://" + authority + tail)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		problem("%v", err)
		return SMTPConfig{}, fmt.Errorf("smtp url: %s", strings.Join(problems, "; "))
	}
	if c.Host = u.Hostname(); c.Host == "" {
		problem("no host")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			problem("port %q is not a number from 1 to 65535", p)
		}
		c.Port = n
	} else if strings.HasSuffix(authority, ":") {
		problem("an empty port")
	}
	if u.Path != "" && u.Path != "/" {
		problem("unexpected path %q", u.Path)
	}
	if u.Fragment != "" {
		problem("unexpected fragment %q", u.Fragment)
	}

	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		problem("the query does not parse: %v", err)
	}
	for _, key := range slices.Sorted(maps.Keys(query)) {
		switch {
		case key != "from" && key != "from_name":
			problem("unknown parameter %q (want from= and optionally from_name=)", key)
		case len(query[key]) > 1:
			problem("%s= is given %d times", key, len(query[key]))
		}
	}
	c.From, c.FromName = query.Get("from"), query.Get("from_name")
	switch from, err := mail.ParseAddress(c.From); {
	case c.From == "":
		problem("from= is required: the sender's address, e.g. ?from=mcert@example.tw")
	case err != nil:
		problem("from=%q is not an email address: %v", c.From, err)
	case from.Address != c.From:
		problem("from=%q must be a bare address such as mcert@example.tw; give the display name in from_name=", c.From)
	case !ascii(c.From):
		problem("from=%q: write the domain in its ASCII (xn--) form", c.From)
	}
	if !mcert.PlainText(c.FromName, 200) {
		problem("from_name= has a control character or is longer than 200 characters")
	}
	if len(problems) > 0 {
		// No half-read configuration, which would hold the password, goes with the error.
		return SMTPConfig{}, fmt.Errorf("smtp url: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// String is the configuration as an --smtp-url, without the password.
func (c SMTPConfig) String() string {
	scheme := "smtp"
	if c.ImplicitTLS {
		scheme = "smtps"
	}
	u := url.URL{Scheme: scheme, Host: net.JoinHostPort(c.Host, strconv.Itoa(c.Port))}
	if c.Username != "" {
		u.User = url.User(c.Username)
	}
	q := url.Values{"from": {c.From}}
	if c.FromName != "" {
		q.Set("from_name", c.FromName)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// tlsMode is how a connection is protected.
type tlsMode int

const (
	implicitTLS       tlsMode = iota // TLS from the first byte (smtps)
	startTLSRequired                 // STARTTLS, or no mail
	startTLSIfOffered                // STARTTLS when the server offers it, else in the clear
)

// modeFor says how a connection to host is protected. Only on a loopback host, whose traffic
// never leaves the machine, may mail go in the clear.
func modeFor(implicit bool, host string) tlsMode {
	switch {
	case implicit:
		return implicitTLS
	case isLoopback(host):
		return startTLSIfOffered
	default:
		return startTLSRequired
	}
}

// isLoopback reports whether host is localhost or a loopback address.
func isLoopback(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SMTP is the Transport that sends through an SMTP server, one connection per mail.
type SMTP struct {
	c SMTPConfig
	// redirect, for tests, maps the address dialled to another (a test server standing in
	// for a remote host).
	redirect func(addr string) string
}

var _ Transport = (*SMTP)(nil)

// NewSMTP is a Transport sending with c.
func NewSMTP(c SMTPConfig) *SMTP {
	if c.Now == nil {
		c.Now = time.Now
	}
	return &SMTP{c: c}
}

// Send delivers m, in at most 30 seconds. The mail carries From, To, Subject, Date,
// Message-ID <ID@from's domain>, X-Mcert-Mail-ID and Auto-Submitted: auto-generated.
func (s *SMTP) Send(ctx context.Context, m Mail) error {
	to, err := check(m)
	if err != nil {
		return err
	}
	at := strings.LastIndex(s.c.From, "@")
	if from, err := mail.ParseAddress(s.c.From); err != nil || from.Address != s.c.From || at < 0 {
		// A configuration not read by ParseSMTPURL; the mail can go once it is mended.
		return fmt.Errorf("mailer: the SMTP configuration's From %q is not a bare address", s.c.From)
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(&mail.Address{Name: s.c.FromName, Address: s.c.From})
	msg.ToMailAddress(to)
	msg.Subject(m.Subject)
	msg.SetDateWithValue(s.c.Now().In(taipei))
	msg.SetMessageIDWithValue(m.ID + "@" + s.c.From[at+1:])
	msg.SetGenHeader("X-Mcert-Mail-ID", m.ID)
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)

	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	client, err := s.client(ctx)
	if err != nil {
		return fmt.Errorf("mailer: smtp client for %s: %w", s.c, err)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		if ctx.Err() != nil {
			err = errors.Join(ctx.Err(), err)
		}
		err = fmt.Errorf("mailer: mail %s to %s through %s:%d: %w", m.ID, to.Address, s.c.Host, s.c.Port, err)
		var se *gomail.SendError
		if errors.As(err, &se) && se.Reason == gomail.ErrSMTPRcptTo && se.ErrorCode()/100 == 5 {
			return &PermanentError{Err: err}
		}
		return err
	}
	return nil
}

// client is a go-mail client for one send under ctx.
//
// SMTP dials itself, so that ctx ends the connection whatever the client is waiting for (go-mail
// heeds a context only while dialling). For smtps it makes the TLS connection too, and tells
// go-mail to use STARTTLS "opportunistically": a server already speaking TLS offers no
// STARTTLS, and go-mail then sees the connection is encrypted, as SMTP AUTH needs.
func (s *SMTP) client(ctx context.Context) (*gomail.Client, error) {
	mode := modeFor(s.c.ImplicitTLS, s.c.Host)
	tlsConfig := &tls.Config{ServerName: s.c.Host, MinVersion: tls.VersionTLS12, RootCAs: s.c.RootCAs}
	dial := func(dialCtx context.Context, network, addr string) (net.Conn, error) {
		if s.redirect != nil {
			addr = s.redirect(addr)
		}
		var d net.Dialer
		conn, err := d.DialContext(dialCtx, network, addr)
		if err != nil {
			return nil, err
		}
		context.AfterFunc(ctx, func() { conn.Close() })
		if mode != implicitTLS {
			return conn, nil
		}
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(dialCtx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}
	policy := gomail.TLSMandatory
	if mode != startTLSRequired {
		policy = gomail.TLSOpportunistic
	}
	opts := []gomail.Option{
		gomail.WithPort(s.c.Port),
		gomail.WithTimeout(sendTimeout),
		gomail.WithDialContextFunc(dial),
		gomail.WithTLSPolicy(policy),
		gomail.WithTLSConfig(tlsConfig),
	}
	if s.c.Username != "" {
		// Auto-discovery picks the strongest mechanism offered, and PLAIN or LOGIN only on an
		// encrypted connection: a password never goes in the clear.
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(s.c.Username), gomail.WithPassword(s.c.Password))
	}
	return gomail.NewClient(s.c.Host, opts...)
}
