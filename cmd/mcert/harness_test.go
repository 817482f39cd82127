package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/internal/testkit"
	"github.com/mcert/mcert/web"
)

// clock is the injected time of a test server: it moves only when the test says so.
type clock = testkit.Clock

func newClock() *clock { return testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)) }

// server is the whole program running on 127.0.0.1:0 with a temp data directory.
type server struct {
	*Main
	clock *clock
	ca    *authn.DevCA
	// stop shuts the server down and closes its store, before the test ends if the test
	// restarts it on the same data directory.
	stop func()
}

// startServer starts the server; configure, if given, changes its configuration first.
func startServer(t testing.TB, configure ...func(*Config)) *server {
	t.Helper()
	clk := newClock()
	m := &Main{Config: Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), Now: clk.Now, CardAgentURL: "http://127.0.0.1:61161",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}}
	for _, f := range configure {
		f(&m.Config)
	}
	if err := m.Open(); err != nil {
		t.Fatalf("open: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("run: %v", err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	t.Cleanup(stop)
	ca, _, err := authn.LoadOrCreateDevCA(m.Config.DataDir, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &server{Main: m, clock: clk, ca: ca, stop: stop}
}

// issueCard makes a development card from the server's own development CA.
func (s *server) issueCard(t testing.TB, name, id string, opts authn.IssueOptions) *authn.Card {
	t.Helper()
	if opts.Now.IsZero() {
		opts.Now = s.clock.Now()
	}
	pemBytes, err := s.ca.Issue(name, id, opts)
	if err != nil {
		t.Fatal(err)
	}
	card, err := authn.ParseCard(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return card
}

// browser is a desktop browser: a cookie jar talking to the server's public URL.
type browser struct {
	t    testing.TB
	base string
	http *http.Client
}

func (s *server) browser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: s.PublicURL, http: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// reply is a decoded answer.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r reply) json(t testing.TB) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, r.Body)
	}
	return v
}

// errorCode checks PROTOCOL.md's error shape and returns its code.
func (r reply) errorCode(t testing.TB) string {
	t.Helper()
	v := r.json(t)
	code, _ := v["error"].(string)
	msg, _ := v["message"].(string)
	if code == "" || msg == "" || len(v) != 2 {
		t.Fatalf("error body is not {\"error\", \"message\"}: %s", r.Body)
	}
	return code
}

// do sends body (a string is sent as is, anything else as JSON) and reads the answer.
func (b *browser) do(method, path string, body any) reply {
	b.t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	default:
		data, err := json.Marshal(v)
		if err != nil {
			b.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	url := path
	if strings.HasPrefix(path, "/") {
		url = b.base + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method != http.MethodGet && method != http.MethodHead {
		req.Header.Set("Origin", b.base) // as a browser does for the pages' fetch() writes
	}
	res, err := b.http.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return reply{Status: res.StatusCode, Header: res.Header, Body: data}
}

// want fails the test unless the answer has the given status.
func (r reply) want(t testing.TB, status int) reply {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	return r
}

// cardLogin logs the browser in through a real card agent, as the page does.
func (b *browser) cardLogin(card *authn.Card) map[string]any {
	b.t.Helper()
	handler, err := web.NewCardAgent(web.CardAgentConfig{Origin: b.base, Card: &authn.CardFile{Certificate: card.Certificate, Key: card.Key}})
	if err != nil {
		b.t.Fatal(err)
	}
	agent := httptest.NewServer(handler)
	defer agent.Close()
	ch := b.do("GET", "/api/v1/card/challenge", nil).want(b.t, 200).json(b.t)
	signed := b.do("POST", agent.URL+"/sign", map[string]any{"challenge": ch["challenge"]}).want(b.t, 200).json(b.t)
	signed["challenge"] = ch["challenge"]
	return b.do("POST", "/api/v1/card/login", signed).want(b.t, 200).json(b.t)
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	if v == nil {
		return ""
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func readAll(res *http.Response) ([]byte, error) { return io.ReadAll(res.Body) }

// roundTrip sends req and reads the whole answer.
func roundTrip(client *http.Client, req *http.Request) (*http.Response, []byte, error) {
	res, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	return res, data, err
}
