package mailtest_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mcert/mcert/mailer"
	"github.com/mcert/mcert/mailer/mailtest"
)

func sender(t *testing.T, srv *mailtest.Server, raw string) *mailer.SMTP {
	t.Helper()
	c, err := mailer.ParseSMTPURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	c.RootCAs = srv.RootCAs()
	return mailer.NewSMTP(c)
}

var mail = mailer.Mail{ID: "t1", To: "citizen@example.tw", Subject: "主旨", Body: "內文\n"}

func TestStopStart(t *testing.T) {
	srv := mailtest.New(t)
	addr := srv.Addr()
	srv.Stop()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("a connection while stopped")
	}
	srv.Stop() // twice is fine
	srv.Start()
	srv.Start() // and so is starting a running server
	if srv.Addr() != addr {
		t.Errorf("address %s, then %s", addr, srv.Addr())
	}
	if err := sender(t, srv, srv.URL()).Send(context.Background(), mail); err != nil {
		t.Fatal(err)
	}
	if m := <-srv.Messages(); m.Subject != "主旨" || m.Body != "內文\n" {
		t.Errorf("subject %q, body %q", m.Subject, m.Body)
	}
}

func TestRejectNext(t *testing.T) {
	srv := mailtest.New(t)
	s := sender(t, srv, srv.URL())
	srv.RejectNext(450, 2)
	for i := range 2 {
		if err := s.Send(context.Background(), mail); err == nil || !strings.Contains(err.Error(), "450") {
			t.Errorf("send %d: %v, want a 450", i, err)
		}
	}
	if err := s.Send(context.Background(), mail); err != nil {
		t.Errorf("the third send: %v", err)
	}
}

func TestAuthRequired(t *testing.T) {
	srv := mailtest.New(t, mailtest.WithTLS(), mailtest.WithAuth("mcert", "secret"))
	if !strings.Contains(srv.URL(), "mcert:secret@") {
		t.Errorf("URL %s", srv.URL())
	}
	// Without a user name, the client does not authenticate, and MAIL FROM is refused.
	anonymous := strings.Replace(srv.URL(), "mcert:secret@", "", 1)
	if err := sender(t, srv, anonymous).Send(context.Background(), mail); err == nil {
		t.Error("sent without AUTH")
	}
	if err := sender(t, srv, srv.URL()).Send(context.Background(), mail); err != nil {
		t.Error(err)
	}
	if m := <-srv.Messages(); !m.TLS || m.From != mailtest.From {
		t.Errorf("TLS %v, from %q", m.TLS, m.From)
	}
}
