package mailer_test

import (
	"context"
	"errors"
	"maps"
	"mime"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcert/mcert/mailer"
	"github.com/mcert/mcert/mailer/mailtest"
)

// transport is an SMTP transport to srv, with from_name added to its URL when not empty.
func transport(t *testing.T, srv *mailtest.Server, fromName string) *mailer.SMTP {
	t.Helper()
	raw := srv.URL()
	if fromName != "" {
		raw += "&from_name=" + fromName
	}
	c, err := mailer.ParseSMTPURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	c.RootCAs = srv.RootCAs()
	return mailer.NewSMTP(c)
}

// receive is the next message srv accepted.
func receive(t *testing.T, srv *mailtest.Server) mailtest.Message {
	t.Helper()
	select {
	case m := <-srv.Messages():
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message arrived")
		return mailtest.Message{}
	}
}

// nothing checks that srv accepted no message (any would have come before the good mail
// sent next, since SMTP sends one connection at a time).
func nothing(t *testing.T, srv *mailtest.Server, tr *mailer.SMTP) {
	t.Helper()
	if err := tr.Send(context.Background(), mailer.Mail{ID: "probe", To: "probe@example.tw", Subject: "probe", Body: "probe"}); err != nil {
		t.Fatal(err)
	}
	if m := receive(t, srv); m.Subject != "probe" {
		t.Fatalf("a message before the probe: %q to %v", m.Subject, m.To)
	}
}

func send(t *testing.T, tr mailer.Transport, m mailer.Mail) {
	t.Helper()
	if err := tr.Send(context.Background(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

func TestSMTPDelivers(t *testing.T) {
	srv := mailtest.New(t, mailtest.WithTLS(), mailtest.WithAuth("mcert", "p@ss:w/rd%"))
	tr := transport(t, srv, "內政部")
	subject, body := render(t, mailer.PhoneBound, "zh-TW", params[mailer.PhoneBound])
	send(t, tr, mailer.Mail{ID: "01JDX5Q8ZK7M3", To: "王小明 <citizen@example.tw>", Subject: subject, Body: body})

	m := receive(t, srv)
	if m.From != mailtest.From || len(m.To) != 1 || m.To[0] != "citizen@example.tw" {
		t.Errorf("envelope from %q to %q", m.From, m.To)
	}
	if !m.TLS {
		t.Error("the message came in the clear, though the server offered STARTTLS")
	}
	if m.Subject != subject {
		t.Errorf("subject %q, want %q", m.Subject, subject)
	}
	if m.Body != body {
		t.Errorf("body\n%q\nwant\n%q", m.Body, body)
	}
	from, err := m.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "內政部" || from[0].Address != mailtest.From {
		t.Errorf("From %q: %v %v", m.Header.Get("From"), from, err)
	}
	to, err := m.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != "王小明" || to[0].Address != "citizen@example.tw" {
		t.Errorf("To %q: %v %v", m.Header.Get("To"), to, err)
	}
	for name, want := range map[string]string{
		"Message-Id":      "<01JDX5Q8ZK7M3@example.tw>",
		"X-Mcert-Mail-Id": "01JDX5Q8ZK7M3",
		"Auto-Submitted":  "auto-generated",
	} {
		if got := m.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if d, err := m.Header.Date(); err != nil || time.Since(d).Abs() > time.Minute {
		t.Errorf("Date %q: %v", m.Header.Get("Date"), err)
	}
	media, ps, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || media != "text/plain" || !strings.EqualFold(ps["charset"], "utf-8") {
		t.Errorf("Content-Type %q", m.Header.Get("Content-Type"))
	}
	if cte := strings.ToLower(m.Header.Get("Content-Transfer-Encoding")); cte != "quoted-printable" && cte != "base64" {
		t.Errorf("Content-Transfer-Encoding %q", cte)
	}
	for _, name := range []string{"Bcc", "Cc", "Reply-To"} {
		if v, ok := m.Header[name]; ok {
			t.Errorf("%s: %q", name, v)
		}
	}
	// Every byte on the wire is ASCII: the Chinese went through RFC 2047 and the transfer
	// encoding, as no SMTPUTF8 was offered.
	for i, c := range m.Raw {
		if c >= 0x80 {
			t.Fatalf("a raw byte %#x at %d:\n%s", c, i, m.Raw)
		}
	}
}

// TestSMTPImplicitTLSDelivers: smtps, TLS from the first byte, and AUTH PLAIN over it.
func TestSMTPImplicitTLSDelivers(t *testing.T) {
	srv := mailtest.New(t, mailtest.WithImplicitTLS(), mailtest.WithAuth("mcert", "secret"))
	tr := transport(t, srv, "")
	subject, body := render(t, mailer.AccountSuspended, "en", params[mailer.AccountSuspended])
	send(t, tr, mailer.Mail{ID: "tls465", To: "citizen@example.tw", Subject: subject, Body: body})
	m := receive(t, srv)
	if !m.TLS || m.Subject != subject || m.Body != body || len(m.To) != 1 {
		t.Errorf("TLS %v, to %q, subject %q, body\n%s", m.TLS, m.To, m.Subject, m.Body)
	}
}

func TestSMTPWrongPassword(t *testing.T) {
	srv := mailtest.New(t, mailtest.WithTLS(), mailtest.WithAuth("mcert", "right"))
	c, err := mailer.ParseSMTPURL(strings.Replace(srv.URL(), ":right@", ":wrong@", 1))
	if err != nil {
		t.Fatal(err)
	}
	c.RootCAs = srv.RootCAs()
	err = mailer.NewSMTP(c).Send(context.Background(), mailer.Mail{ID: "a", To: "a@example.tw", Subject: "s", Body: "b"})
	if err == nil || mailer.IsPermanent(err) {
		t.Fatalf("error %v, want a temporary one (the operator mends the password, the mail waits)", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the password in %q", err)
	}
}

func TestSMTPUntrustedCertificate(t *testing.T) {
	srv := mailtest.New(t, mailtest.WithTLS())
	c, err := mailer.ParseSMTPURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	// No RootCAs: the self-signed certificate is not trusted, even on loopback.
	err = mailer.NewSMTP(c).Send(context.Background(), mailer.Mail{ID: "a", To: "a@example.tw", Subject: "s", Body: "b"})
	if err == nil || mailer.IsPermanent(err) {
		t.Fatalf("error %v, want a temporary certificate error", err)
	}
}

// TestSMTPLoopbackInTheClear: a local relay without STARTTLS is used as it is.
func TestSMTPLoopbackInTheClear(t *testing.T) {
	srv := mailtest.New(t)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		t.Run(host, func(t *testing.T) {
			_, port, _ := net.SplitHostPort(srv.Addr())
			c, err := mailer.ParseSMTPURL("smtp://" + net.JoinHostPort(host, port) + "?from=mcert@example.tw")
			if err != nil {
				t.Fatal(err)
			}
			send(t, mailer.NewSMTP(c), mailer.Mail{ID: "clear", To: "citizen@example.tw", Subject: "測試", Body: "內容\n"})
			if m := receive(t, srv); m.Subject != "測試" || m.Body != "內容\n" || m.TLS {
				t.Errorf("subject %q, body %q, TLS %v", m.Subject, m.Body, m.TLS)
			}
		})
	}
}

func TestSMTPRefusedRecipient(t *testing.T) {
	tests := []struct {
		name      string
		code      int
		permanent bool
	}{
		{"550 mailbox unavailable", 550, true},
		{"553 mailbox name not allowed", 553, true},
		{"450 mailbox busy", 450, false},
		{"451 local error", 451, false},
	}
	srv := mailtest.New(t, mailtest.WithTLS())
	tr := transport(t, srv, "")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv.RejectNext(tc.code, 1)
			err := tr.Send(context.Background(), mailer.Mail{ID: "r", To: "gone@example.tw", Subject: "s", Body: "b"})
			if err == nil {
				t.Fatal("sent")
			}
			if got := mailer.IsPermanent(err); got != tc.permanent {
				t.Errorf("permanent %v, want %v: %v", got, tc.permanent, err)
			}
			var p *mailer.PermanentError
			if errors.As(err, &p) && p.Unwrap() == nil {
				t.Error("a PermanentError wrapping nothing")
			}
			// The refusal was for one recipient only: the next mail goes.
			nothing(t, srv, tr)
		})
	}
}

func TestSMTPServerDown(t *testing.T) {
	srv := mailtest.New(t, mailtest.WithTLS())
	tr := transport(t, srv, "")
	m := mailer.Mail{ID: "down", To: "citizen@example.tw", Subject: "s", Body: "b"}
	send(t, tr, m)
	receive(t, srv)

	srv.Stop()
	err := tr.Send(context.Background(), m)
	if err == nil || mailer.IsPermanent(err) {
		t.Fatalf("server down: error %v, want a temporary one", err)
	}

	srv.Start()
	send(t, tr, m)
	if got := receive(t, srv); got.Header.Get("X-Mcert-Mail-Id") != "down" {
		t.Errorf("after Start: %v", got.Header)
	}
}

// TestSMTPContext: a server that never answers holds a Send no longer than its context.
func TestSMTPContext(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent until the test ends
		}
	}()
	c, err := mailer.ParseSMTPURL("smtp://" + l.Addr().String() + "?from=mcert@example.tw")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = mailer.NewSMTP(c).Send(ctx, mailer.Mail{ID: "slow", To: "a@example.tw", Subject: "s", Body: "b"})
	if err == nil || mailer.IsPermanent(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want a temporary deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %s", d)
	}
}

// TestSMTPHeaderInjection: nothing in a Mail becomes a header of its own or a recipient.
func TestSMTPHeaderInjection(t *testing.T) {
	srv := mailtest.New(t, mailtest.WithTLS())
	tr := transport(t, srv, "")
	good := mailer.Mail{ID: "inj", To: "citizen@example.tw", Subject: "s", Body: "b"}
	tests := []struct {
		name   string
		change func(m *mailer.Mail)
	}{
		{"CRLF in the subject", func(m *mailer.Mail) { m.Subject = "hello\r\nBcc: evil@example.com" }},
		{"LF in the subject", func(m *mailer.Mail) { m.Subject = "hello\nBcc: evil@example.com" }},
		{"CR in the subject", func(m *mailer.Mail) { m.Subject = "hello\rBcc: evil@example.com" }},
		{"CRLF in the recipient", func(m *mailer.Mail) { m.To = "citizen@example.tw\r\nBcc: evil@example.com" }},
		{"LF in the recipient's name", func(m *mailer.Mail) { m.To = "\"a\nBcc: evil@example.com\" <citizen@example.tw>" }},
		{"two recipients", func(m *mailer.Mail) { m.To = "citizen@example.tw, evil@example.com" }},
		{"a group", func(m *mailer.Mail) { m.To = "all: citizen@example.tw, evil@example.com;" }},
		{"not an address", func(m *mailer.Mail) { m.To = "citizen" }},
		{"no recipient", func(m *mailer.Mail) { m.To = "" }},
		{"no subject", func(m *mailer.Mail) { m.Subject = "" }},
		{"an ID with a space", func(m *mailer.Mail) { m.ID = "a b" }},
		{"an ID with a line break", func(m *mailer.Mail) { m.ID = "a\r\nBcc: evil@example.com" }},
		{"an ID with an @", func(m *mailer.Mail) { m.ID = "a@evil" }},
		{"no ID", func(m *mailer.Mail) { m.ID = "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := good
			tc.change(&m)
			err := tr.Send(context.Background(), m)
			if !mailer.IsPermanent(err) {
				t.Fatalf("error %v, want a PermanentError", err)
			}
		})
	}
	nothing(t, srv, tr)

	// A device name that tries the same, through Render, stays in the body.
	p := maps.Clone(params[mailer.PhoneBound])
	p["device"] = "x\r\nBcc: evil@example.com"
	p["name"] = "王小明\r\n\r\nTo: evil@example.com"
	subject, body := render(t, mailer.PhoneBound, "en", p)
	send(t, tr, mailer.Mail{ID: "inj2", To: "citizen@example.tw", Subject: subject, Body: body})
	got := receive(t, srv)
	if len(got.To) != 1 || got.To[0] != "citizen@example.tw" {
		t.Errorf("envelope recipients %q", got.To)
	}
	if _, ok := got.Header["Bcc"]; ok {
		t.Errorf("a Bcc header: %q", got.Header["Bcc"])
	}
	if to, _ := got.Header.AddressList("To"); len(to) != 1 {
		t.Errorf("To %q", got.Header.Get("To"))
	}
	if !strings.Contains(got.Body, "Device: x Bcc: evil@example.com\n") {
		t.Errorf("body\n%s", got.Body)
	}
}

func TestParseSMTPURL(t *testing.T) {
	const secret = "S3cr%2Et" // decodes to S3cr.t
	tests := []struct {
		name    string
		raw     string
		want    mailer.SMTPConfig
		wantErr []string // each in the error
	}{
		{name: "STARTTLS default port", raw: "smtp://mail.example.tw?from=mcert@example.tw",
			want: mailer.SMTPConfig{Host: "mail.example.tw", Port: 587, From: "mcert@example.tw"}},
		{name: "implicit TLS default port", raw: "smtps://mail.example.tw?from=mcert@example.tw",
			want: mailer.SMTPConfig{Host: "mail.example.tw", Port: 465, ImplicitTLS: true, From: "mcert@example.tw"}},
		{name: "user, password, port and name", raw: "smtp://relay%40example.tw:" + secret + "@mail.example.tw:2525/?from=mcert@example.tw&from_name=%E5%85%A7%E6%94%BF%E9%83%A8",
			want: mailer.SMTPConfig{Host: "mail.example.tw", Port: 2525, Username: "relay@example.tw", Password: "S3cr.t", From: "mcert@example.tw", FromName: "內政部"}},
		{name: "a password with @ and :", raw: "smtps://u:a@b:c@mail.example.tw?from=mcert@example.tw",
			want: mailer.SMTPConfig{Host: "mail.example.tw", Port: 465, ImplicitTLS: true, Username: "u", Password: "a@b:c", From: "mcert@example.tw"}},
		{name: "IPv6", raw: "smtp://[::1]:25?from=mcert@example.tw",
			want: mailer.SMTPConfig{Host: "::1", Port: 25, From: "mcert@example.tw"}},
		{name: "scheme in capitals", raw: "SMTP://mail.example.tw?from=mcert@example.tw",
			want: mailer.SMTPConfig{Host: "mail.example.tw", Port: 587, From: "mcert@example.tw"}},

		{name: "missing from", raw: "smtp://u:" + secret + "@mail.example.tw", wantErr: []string{"from= is required"}},
		{name: "empty from", raw: "smtp://mail.example.tw?from=", wantErr: []string{"from= is required"}},
		{name: "from not an address", raw: "smtp://mail.example.tw?from=mcert", wantErr: []string{"not an email address"}},
		{name: "from with a name", raw: "smtp://mail.example.tw?from=%E5%85%A7%20%3Cmcert@example.tw%3E", wantErr: []string{"bare address", "from_name="}},
		{name: "from twice", raw: "smtp://mail.example.tw?from=a@example.tw&from=b@example.tw", wantErr: []string{"2 times"}},
		{name: "from_name with a line break", raw: "smtp://mail.example.tw?from=mcert@example.tw&from_name=a%0D%0ABcc:%20x@y", wantErr: []string{"from_name"}},
		{name: "bad scheme", raw: "http://mail.example.tw?from=mcert@example.tw", wantErr: []string{`scheme "http"`}},
		{name: "no scheme", raw: "mail.example.tw:587", wantErr: []string{"smtp://"}},
		{name: "port not a number", raw: "smtp://u:" + secret + "@mail.example.tw:smtp?from=mcert@example.tw", wantErr: []string{"port"}},
		{name: "port zero", raw: "smtp://u:" + secret + "@mail.example.tw:0?from=mcert@example.tw", wantErr: []string{`port "0"`}},
		{name: "port too big", raw: "smtp://u:" + secret + "@mail.example.tw:70000?from=mcert@example.tw", wantErr: []string{`port "70000"`}},
		{name: "empty port", raw: "smtp://mail.example.tw:?from=mcert@example.tw", wantErr: []string{"empty port"}},
		{name: "no host", raw: "smtp://u:" + secret + "@:587?from=mcert@example.tw", wantErr: []string{"no host"}},
		{name: "user without password", raw: "smtp://u@mail.example.tw?from=mcert@example.tw", wantErr: []string{"no password"}},
		{name: "password without user", raw: "smtp://:" + secret + "@mail.example.tw?from=mcert@example.tw", wantErr: []string{"without a user name"}},
		{name: "an empty user name", raw: "smtp://@mail.example.tw?from=mcert@example.tw", wantErr: []string{"empty user name"}},
		{name: "badly escaped password", raw: "smtp://u:" + secret + "%zz@mail.example.tw?from=mcert@example.tw", wantErr: []string{"password is not properly percent-encoded"}},
		{name: "unknown parameter", raw: "smtp://mail.example.tw?from=mcert@example.tw&tls=off", wantErr: []string{`unknown parameter "tls"`}},
		{name: "a path", raw: "smtp://mail.example.tw/relay?from=mcert@example.tw", wantErr: []string{"path"}},
		{name: "every problem at once", raw: "imap://u:" + secret + "@mail.example.tw:99999?form=x", wantErr: []string{"scheme", "port", "form", "from= is required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mailer.ParseSMTPURL(tc.raw)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if got.Host != tc.want.Host || got.Port != tc.want.Port || got.ImplicitTLS != tc.want.ImplicitTLS ||
					got.Username != tc.want.Username || got.Password != tc.want.Password || got.From != tc.want.From || got.FromName != tc.want.FromName {
					t.Errorf("got %+v\nwant %+v", got, tc.want)
				}
				if s := got.String(); got.Password != "" && strings.Contains(s, got.Password) {
					t.Errorf("String() %q shows the password", s)
				}
				// String is an --smtp-url again, without the password.
				again, err := mailer.ParseSMTPURL(strings.Replace(got.String(), "@", ":x@", 1))
				if got.Username == "" {
					again, err = mailer.ParseSMTPURL(got.String())
				}
				if err != nil || again.Host != got.Host || again.Port != got.Port || again.From != got.From || again.FromName != got.FromName || again.Username != got.Username {
					t.Errorf("String() %q reads as %+v, %v", got.String(), again, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("parsed as %+v", got)
			}
			if got.Host != "" || got.Username != "" || got.Password != "" || got.From != "" || got.Port != 0 {
				t.Errorf("a configuration with the error: %+v", got)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			for _, s := range []string{secret, "S3cr.t", "S3cr"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q shows the password", err)
				}
			}
		})
	}
}

func TestLog(t *testing.T) {
	var out strings.Builder
	l := mailer.NewLog(slogTo(&out))
	subject, body := render(t, mailer.VerifyEmail, "en", params[mailer.VerifyEmail])
	send(t, l, mailer.Mail{ID: "first", To: "citizen@example.tw", Subject: subject, Body: body})
	for _, want := range []string{"level=INFO", "to=citizen@example.tw", "first", "Verify your email address", params[mailer.VerifyEmail]["link"]} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in the log:\n%s", want, out.String())
		}
	}
	for i := range 104 {
		send(t, l, mailer.Mail{ID: "m" + strconv.Itoa(i), To: "citizen@example.tw", Subject: subject, Body: body})
	}
	send(t, l, mailer.Mail{ID: "last", To: "citizen@example.tw", Subject: subject, Body: body})
	recent := l.Recent()
	if len(recent) != 100 || recent[0].ID != "last" {
		t.Fatalf("%d recent, the newest %q", len(recent), recent[0].ID)
	}
	for _, m := range recent {
		if m.ID == "first" {
			t.Error("the oldest mail is still kept")
		}
	}
	if err := l.Send(context.Background(), mailer.Mail{ID: "x", To: "citizen@example.tw", Subject: "a\r\nBcc: x@y", Body: body}); !mailer.IsPermanent(err) {
		t.Errorf("a subject with CRLF: %v", err)
	}
	if len(l.Recent()) != 100 || l.Recent()[0].ID != "last" {
		t.Error("the refused mail was kept")
	}
}
