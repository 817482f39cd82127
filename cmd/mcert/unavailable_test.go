package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/storage/postgres/pgtest"
)

// dbLink stands between mcert and PostgreSQL as the network does, and breaks as it does: cut,
// the database refuses connections and the open ones drop; silent, it takes connections and
// answers nothing, like a host that has gone away behind a firewall.
type dbLink struct {
	t      *testing.T
	target string
	l      net.Listener
	addr   string
	mu     sync.Mutex
	conns  []net.Conn
	silent bool
}

func newDBLink(t *testing.T, target string) *dbLink {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k := &dbLink{t: t, target: target, addr: l.Addr().String()}
	k.serve(l)
	t.Cleanup(func() { k.cut() })
	return k
}

func (k *dbLink) serve(l net.Listener) {
	k.mu.Lock()
	k.l = l
	k.mu.Unlock()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			k.mu.Lock()
			silent := k.silent
			k.conns = append(k.conns, c)
			k.mu.Unlock()
			if silent {
				continue // held open, never answered
			}
			up, err := net.Dial("tcp", k.target)
			if err != nil {
				c.Close()
				continue
			}
			k.mu.Lock()
			k.conns = append(k.conns, up)
			k.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut refuses new connections and drops the open ones.
func (k *dbLink) cut() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.l != nil {
		k.l.Close()
		k.l = nil
	}
	for _, c := range k.conns {
		c.Close()
	}
	k.conns = nil
}

// hang drops the open connections and takes new ones without answering.
func (k *dbLink) hang() {
	k.cut()
	k.mu.Lock()
	k.silent = true
	k.mu.Unlock()
	k.listen()
}

// mend lets connections through again, on the same address.
func (k *dbLink) mend() {
	k.cut()
	k.mu.Lock()
	k.silent = false
	k.mu.Unlock()
	k.listen()
}

func (k *dbLink) listen() {
	var l net.Listener
	var err error
	for range 100 { // the port was ours a moment ago
		if l, err = net.Listen("tcp", k.addr); err == nil {
			k.serve(l)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	k.t.Fatalf("listen again on %s: %v", k.addr, err)
}

// via is the database URL u through the link.
func (k *dbLink) via(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		k.t.Fatal(err)
	}
	p.Host = k.addr
	return p.String()
}

// TestDatabaseDown: with the database unreachable, or silent, every request is answered 503 in
// seconds with a JSON error and /healthz fails, never a hang and never a 500; once it is back,
// everything acknowledged before is there and the server serves as before.
func TestDatabaseDown(t *testing.T) {
	db := pgtest.URL(t)
	u, _ := url.Parse(db)
	link := newDBLink(t, u.Host)
	s := startServer(t, func(c *Config) { c.Store = link.via(db) })
	ph, _ := boundCitizen(t, s)
	rp := s.relyingParty(t, "健保署", provider.ClientSpec{})
	rp.login(ph)

	for _, fail := range []struct {
		name   string
		break_ func()
	}{{"refused", link.cut}, {"silent", link.hang}} {
		t.Run(fail.name, func(t *testing.T) {
			fail.break_()
			defer link.mend()
			b := s.browser(t)
			for _, probe := range []struct {
				method, path, body string
				wantCode           string
			}{
				{"GET", "/healthz", "", "store_unavailable"},
				{"GET", "/api/v1/logins/" + strings.Repeat("x", 22), "", "store_unavailable"},
				{"POST", "/api/v1/phone/login/begin", `{"token":"` + strings.Repeat("x", 43) + `"}`, "store_unavailable"},
				{"GET", "/oidc/keys", "", "temporarily_unavailable"},
				{"POST", "/oidc/token", "grant_type=authorization_code&code=x&client_id=" + rp.oauth.ClientID, "temporarily_unavailable"},
			} {
				start := time.Now()
				req, _ := http.NewRequest(probe.method, s.PublicURL+probe.path, strings.NewReader(probe.body))
				switch {
				case strings.HasPrefix(probe.path, "/oidc/"):
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				case probe.body != "":
					req.Header.Set("Content-Type", "application/json")
				}
				res, data, err := roundTrip(b.http, req)
				took := time.Since(start)
				if err != nil {
					t.Fatalf("%s %s: %v after %v", probe.method, probe.path, err, took)
				}
				r := reply{Status: res.StatusCode, Header: res.Header, Body: data}
				if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(data), `"`+probe.wantCode+`"`) || res.Header.Get("Retry-After") == "" {
					t.Errorf("%s %s with the database %s: %d %s (Retry-After %q), want 503 %s", probe.method, probe.path, fail.name, r.Status, data, res.Header.Get("Retry-After"), probe.wantCode)
				}
				if took > 8*time.Second {
					t.Errorf("%s %s took %v to answer", probe.method, probe.path, took)
				}
			}
		})
	}
	// Back: what was acknowledged is there, and the phone logs in again.
	if _, err := ph.Login(context.Background(), rp.startLogin().scan(t), phone.GetOptions{}); err != nil {
		t.Fatalf("login once the database is back: %v", err)
	}
	s.get(t, "/healthz", nil).want(t, 200)
}
