package mailer

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mcert/mcert/mailer/mailtest"
)

func TestModeFor(t *testing.T) {
	tests := []struct {
		name     string
		implicit bool
		host     string
		want     tlsMode
	}{
		{"smtps to a name", true, "mail.example.tw", implicitTLS},
		{"smtps to loopback", true, "127.0.0.1", implicitTLS},
		{"a remote name", false, "mail.example.tw", startTLSRequired},
		{"a public address", false, "203.0.113.5", startTLSRequired},
		{"a private address", false, "10.0.0.25", startTLSRequired},
		{"IPv6 unspecified", false, "::", startTLSRequired},
		{"0.0.0.0", false, "0.0.0.0", startTLSRequired},
		{"a name that starts with localhost", false, "localhost.example.tw", startTLSRequired},
		{"a name that ends with localhost", false, "mail.localhost.example.tw", startTLSRequired},
		{"127.0.0.1", false, "127.0.0.1", startTLSIfOffered},
		{"127.1.2.3", false, "127.1.2.3", startTLSIfOffered},
		{"::1", false, "::1", startTLSIfOffered},
		{"localhost", false, "localhost", startTLSIfOffered},
		{"LOCALHOST.", false, "LOCALHOST.", startTLSIfOffered},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := modeFor(tc.implicit, tc.host); got != tc.want {
				t.Errorf("modeFor(%v, %q) = %d, want %d", tc.implicit, tc.host, got, tc.want)
			}
		})
	}
}

// remote is an SMTP transport to mail.example.tw whose connections go to srv instead: srv
// stands in for a remote relay.
func remote(t *testing.T, srv *mailtest.Server, user string) *SMTP {
	t.Helper()
	raw := "smtp://mail.example.tw:2525?from=mcert@example.tw"
	if user != "" {
		raw = "smtp://" + user + ":secret@mail.example.tw:2525?from=mcert@example.tw"
	}
	c, err := ParseSMTPURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	c.RootCAs = srv.RootCAs()
	s := NewSMTP(c)
	s.redirect = func(addr string) string {
		if addr != "mail.example.tw:2525" {
			t.Errorf("dialled %s", addr)
		}
		return srv.Addr()
	}
	return s
}

// TestSMTPRemoteNeedsSTARTTLS: to a host that is not loopback, no mail (and no password)
// goes in the clear.
func TestSMTPRemoteNeedsSTARTTLS(t *testing.T) {
	srv := mailtest.New(t) // no STARTTLS
	for _, user := range []string{"", "relay"} {
		err := remote(t, srv, user).Send(context.Background(), Mail{ID: "a", To: "citizen@example.tw", Subject: "s", Body: "b"})
		if err == nil || !strings.Contains(err.Error(), "STARTTLS") || IsPermanent(err) {
			t.Errorf("user %q: error %v, want a temporary one about STARTTLS", user, err)
		}
	}
	select {
	case m := <-srv.Messages():
		t.Errorf("a message went in the clear: %q", m.Raw)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestSMTPRemoteCertificateName: STARTTLS to a remote host checks the certificate against
// that host's name (mailtest's is for 127.0.0.1 and localhost only).
func TestSMTPRemoteCertificateName(t *testing.T) {
	srv := mailtest.New(t, mailtest.WithTLS())
	err := remote(t, srv, "").Send(context.Background(), Mail{ID: "a", To: "citizen@example.tw", Subject: "s", Body: "b"})
	if err == nil || !strings.Contains(err.Error(), "mail.example.tw") || IsPermanent(err) {
		t.Errorf("error %v, want a temporary certificate error naming mail.example.tw", err)
	}
}

// TestSMTPImplicitTLS: smtps speaks TLS from the first byte; a plain server is refused.
func TestSMTPImplicitTLS(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 5)
		n, _ := c.Read(b)
		got <- b[:n]
	}()
	c, err := ParseSMTPURL("smtps://" + l.Addr().String() + "?from=mcert@example.tw")
	if err != nil {
		t.Fatal(err)
	}
	err = NewSMTP(c).Send(context.Background(), Mail{ID: "a", To: "citizen@example.tw", Subject: "s", Body: "b"})
	if err == nil || IsPermanent(err) {
		t.Errorf("error %v, want a temporary one", err)
	}
	if b := <-got; len(b) == 0 || b[0] != 0x16 { // a TLS handshake record
		t.Errorf("first bytes %q, want a TLS ClientHello", b)
	}
}

func TestSMTPNeedsFrom(t *testing.T) {
	for _, from := range []string{"", "mcert", "內政部 <mcert@example.tw>"} {
		err := NewSMTP(SMTPConfig{Host: "127.0.0.1", Port: 1, From: from}).Send(context.Background(), Mail{ID: "a", To: "citizen@example.tw", Subject: "s", Body: "b"})
		if err == nil || !strings.Contains(err.Error(), "From") || IsPermanent(err) {
			t.Errorf("From %q: error %v, want a temporary one about From", from, err)
		}
	}
}
