package push_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcert/mcert/internal/testkit"
	"github.com/mcert/mcert/push"
	"github.com/mcert/mcert/push/pushtest"
)

// start is a fixed time for the service's clock, which the tests move by hand.
var start = time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)

// harness is a Sender on a fake clock, a push service, and what the sender told and logged.
type harness struct {
	svc    *pushtest.Service
	key    []byte
	sender *push.Sender
	clock  *clock
	gone   chan push.Subscription
	log    *syncBuffer
}

// newHarness makes a harness; change adjusts the Sender's Config.
func newHarness(t *testing.T, change func(*push.Config)) *harness {
	t.Helper()
	h := &harness{
		svc:   pushtest.New(t),
		key:   push.NewKey(),
		clock: testkit.NewClock(start),
		gone:  make(chan push.Subscription, 1000),
		log:   &syncBuffer{},
	}
	c := push.Config{
		Key:           h.key,
		Contact:       "ops@mcert.example",
		Now:           h.clock.Now,
		Log:           slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		AllowLoopback: true,
	}
	if change != nil {
		change(&c)
	}
	h.sender = push.NewSender(c)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.sender.Wait(ctx); err != nil {
			t.Errorf("deliveries still in flight at the test's end: %v", err)
		}
		if t.Failed() {
			t.Logf("the sender's log:\n%s", h.log)
		}
	})
	return h
}

// goneOf is the gone callback of a send to sub: it tells the harness.
func (h *harness) goneOf(sub push.Subscription) func() {
	return func() { h.gone <- sub }
}

// wait waits for every delivery to end.
func (h *harness) wait(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := h.sender.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

// outcomes are the sender's counts by outcome.
func (h *harness) outcomes(t *testing.T) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(h.sender.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "mcert_push_notifications_total" {
			t.Fatalf("unexpected metric %s", f.GetName())
		}
		for _, m := range f.Metric {
			got[m.Label[0].GetValue()] = m.Counter.GetValue()
		}
	}
	return got
}

// wantOutcomes checks the counts that are not 0.
func (h *harness) wantOutcomes(t *testing.T, want map[string]float64) {
	t.Helper()
	for outcome, n := range h.outcomes(t) {
		if n != want[outcome] {
			t.Errorf("outcome %q counted %v, want %v", outcome, n, want[outcome])
		}
	}
}

// wantGone checks that Gone was told of sub, and of nothing else.
func (h *harness) wantGone(t *testing.T, sub push.Subscription) {
	t.Helper()
	select {
	case got := <-h.gone:
		if got != sub {
			t.Errorf("Gone(%+v), want Gone(%+v)", got, sub)
		}
	default:
		t.Fatal("Gone was not called")
	}
	h.wantNoneGone(t)
}

func (h *harness) wantNoneGone(t *testing.T) {
	t.Helper()
	select {
	case got := <-h.gone:
		t.Errorf("Gone(%+v) called", got)
	default:
	}
}

// wantNoPathLogged checks that the log never shows sub's endpoint beyond its host.
func (h *harness) wantNoPathLogged(t *testing.T, sub push.Subscription) {
	t.Helper()
	u, err := url.Parse(sub.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h.log.String(), u.Path) {
		t.Errorf("the log shows the endpoint's path %s:\n%s", u.Path, h.log)
	}
}

func (h *harness) message(t *testing.T) pushtest.Received {
	t.Helper()
	select {
	case m := <-h.svc.Messages():
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message delivered")
		return pushtest.Received{}
	}
}

func (h *harness) wantNoMessage(t *testing.T) {
	t.Helper()
	select {
	case m := <-h.svc.Messages():
		t.Errorf("delivered %s", m.Plaintext)
	default:
	}
}

var message = push.Message{Kind: "login", ClientName: "示範網站 Demo RP", ExpiresAt: "2031-05-06T07:13:09Z"}

func TestSendDelivers(t *testing.T) {
	tests := []struct {
		contact, wantSubject string
	}{
		{"ops@mcert.example", "mailto:ops@mcert.example"},
		{"mailto:ops@mcert.example", "mailto:ops@mcert.example"},
		{"https://mcert.example/contact", "https://mcert.example/contact"},
	}
	for _, tc := range tests {
		t.Run(tc.contact, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, func(c *push.Config) { c.Contact = tc.contact })
			sub := h.svc.Subscribe()
			h.sender.Send(sub, message, start.Add(5*time.Minute), h.goneOf(sub))
			m := h.message(t)
			h.wait(t)

			var got push.Message
			if err := json.Unmarshal(m.Plaintext, &got); err != nil || got != message {
				t.Errorf("plaintext %s (%v), want %+v", m.Plaintext, err, message)
			}
			if m.Endpoint != sub.Endpoint {
				t.Errorf("delivered to %s, want %s", m.Endpoint, sub.Endpoint)
			}
			if m.TTL != 300 {
				t.Errorf("TTL %d, want 300", m.TTL)
			}
			if m.Urgency != "high" {
				t.Errorf("Urgency %q, want high", m.Urgency)
			}
			u, _ := url.Parse(sub.Endpoint)
			if want := u.Scheme + "://" + u.Host; m.Audience != want {
				t.Errorf("aud %q, want %q", m.Audience, want)
			}
			if m.Subject != tc.wantSubject {
				t.Errorf("sub %q, want %q", m.Subject, tc.wantSubject)
			}
			if want, _ := push.PublicKey(h.key); m.VAPIDKey != want {
				t.Errorf("k=%s, want %s", m.VAPIDKey, want)
			}
			if now := time.Now(); !m.Expiry.After(now) || m.Expiry.After(now.Add(24*time.Hour)) {
				t.Errorf("exp %s, want within 24 hours of now", m.Expiry)
			}
			if n := h.svc.Attempts(sub); n != 1 {
				t.Errorf("%d attempts, want 1", n)
			}
			h.wantOutcomes(t, map[string]float64{"sent": 1})
			h.wantNoneGone(t)
			h.wantNoPathLogged(t, sub)
		})
	}
}

func TestSendGone(t *testing.T) {
	for _, status := range []int{http.StatusNotFound, http.StatusGone} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			sub := h.svc.Subscribe()
			h.svc.Answer(sub, status, 1)
			h.sender.Send(sub, message, start.Add(5*time.Minute), h.goneOf(sub))
			h.wait(t)
			h.wantGone(t, sub)
			if n := h.svc.Attempts(sub); n != 1 {
				t.Errorf("%d attempts, want 1", n)
			}
			h.wantNoMessage(t)
			h.wantOutcomes(t, map[string]float64{"gone": 1})
			h.wantNoPathLogged(t, sub)
		})
	}
}

func TestSendUnknownEndpointIsGone(t *testing.T) {
	h := newHarness(t, nil)
	sub := h.svc.Subscribe()
	sub.Endpoint += "x" // the push service knows no such subscription: 404
	h.sender.Send(sub, message, start.Add(5*time.Minute), h.goneOf(sub))
	h.wait(t)
	h.wantGone(t, sub)
	h.wantOutcomes(t, map[string]float64{"gone": 1})
}

func TestSendRetries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	sub := h.svc.Subscribe()
	h.svc.Answer(sub, http.StatusInternalServerError, 2)
	began := time.Now()
	h.sender.Send(sub, message, start.Add(5*time.Minute), h.goneOf(sub))
	h.message(t)
	h.wait(t)
	if n := h.svc.Attempts(sub); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	// 1 s after the first attempt, 2 s after the second.
	if took := time.Since(began); took < 3*time.Second {
		t.Errorf("delivered after %s, want the back-off of 1 s then 2 s", took)
	}
	h.wantOutcomes(t, map[string]float64{"sent": 1, "retried": 2})
	h.wantNoneGone(t)
	h.wantNoPathLogged(t, sub)
}

func TestSendRetriesTooManyRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	sub := h.svc.Subscribe()
	h.svc.Answer(sub, http.StatusTooManyRequests, 1)
	h.sender.Send(sub, message, start.Add(5*time.Minute), h.goneOf(sub))
	h.message(t)
	h.wait(t)
	if n := h.svc.Attempts(sub); n != 2 {
		t.Errorf("%d attempts, want 2", n)
	}
	h.wantOutcomes(t, map[string]float64{"sent": 1, "retried": 1})
}

func TestSendRefusedIsNotRetried(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestEntityTooLarge} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, nil)
			sub := h.svc.Subscribe()
			h.svc.Answer(sub, status, 1)
			h.sender.Send(sub, message, start.Add(5*time.Minute), h.goneOf(sub))
			h.wait(t)
			if n := h.svc.Attempts(sub); n != 1 {
				t.Errorf("%d attempts, want 1", n)
			}
			h.wantNoneGone(t)
			h.wantNoMessage(t)
			h.wantOutcomes(t, map[string]float64{"failed": 1})
			if want := "status=" + strconv.Itoa(status); !strings.Contains(h.log.String(), want) {
				t.Errorf("the log does not give the status:\n%s", h.log)
			}
		})
	}
}

// A Retry-After past the request's expiry leaves nothing to retry for.
func TestSendRetryAfterPastExpiry(t *testing.T) {
	h := newHarness(t, nil)
	var attempts int
	var mu sync.Mutex
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		attempts++
		mu.Unlock()
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(busy.Close)
	sub := h.svc.Subscribe()
	sub.Endpoint = busy.URL + "/push/busy"
	began := time.Now()
	h.sender.Send(sub, message, start.Add(5*time.Minute), h.goneOf(sub))
	h.wait(t)
	if took := time.Since(began); took > 900*time.Millisecond {
		t.Errorf("gave up after %s, want at once", took)
	}
	mu.Lock()
	defer mu.Unlock()
	if attempts != 1 {
		t.Errorf("%d attempts, want 1", attempts)
	}
	h.wantNoneGone(t)
	h.wantOutcomes(t, map[string]float64{"failed": 1})
}

// The service's clock decides when the request is over, however little real time has passed.
func TestSendStopsWhenTheRequestExpires(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	sub := h.svc.Subscribe()
	h.svc.Answer(sub, http.StatusServiceUnavailable, 1000)
	h.sender.Send(sub, message, start.Add(5*time.Minute), h.goneOf(sub))
	for !strings.Contains(h.log.String(), "will retry") {
		time.Sleep(10 * time.Millisecond)
	}
	h.clock.Advance(10 * time.Minute)
	began := time.Now()
	h.wait(t)
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("went on for %s after the request expired", took)
	}
	if n := h.svc.Attempts(sub); n != 1 {
		t.Errorf("%d attempts, want none after the request expired", n)
	}
	h.wantNoneGone(t) // it answered, so it is there
	h.wantOutcomes(t, map[string]float64{"failed": 1})
}

func TestSendExpired(t *testing.T) {
	h := newHarness(t, nil)
	sub := h.svc.Subscribe()
	h.sender.Send(sub, message, start.Add(-time.Second), h.goneOf(sub))
	h.wait(t)
	if n := h.svc.Attempts(sub); n != 0 {
		t.Errorf("%d attempts for an expired request", n)
	}
	h.wantNoneGone(t)
	h.wantOutcomes(t, map[string]float64{"failed": 1})
}

func TestSendUnreachable(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *push.Config) { c.Now = time.Now })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	sub := h.svc.Subscribe()
	sub.Endpoint = "http://" + closed + "/push/unreachable"
	h.sender.Send(sub, message, time.Now().Add(3*time.Second), h.goneOf(sub))
	h.wait(t)
	h.wantGone(t, sub)
	h.wantOutcomes(t, map[string]float64{"gone": 1, "retried": 1})
	if !strings.Contains(h.log.String(), "connection refused") {
		t.Errorf("the log does not say why:\n%s", h.log)
	}
	h.wantNoPathLogged(t, sub)
}

// A phone must not make mcert connect to the operator's own network. The dialer refuses
// before connecting, so no packet leaves for these addresses.
func TestSendRefusesInternalAddresses(t *testing.T) {
	h := newHarness(t, func(c *push.Config) { c.AllowLoopback = false })
	local := h.svc.Subscribe()
	u, _ := url.Parse(local.Endpoint)
	byName := h.svc.Subscribe()
	byName.Endpoint = strings.Replace(byName.Endpoint, "127.0.0.1", "localhost", 1)
	private, metadata := h.svc.Subscribe(), h.svc.Subscribe()
	private.Endpoint = "https://10.1.2.3/push/secret-capability"
	metadata.Endpoint = "https://169.254.169.254/latest/meta-data"
	for _, sub := range []push.Subscription{local, byName, private, metadata} {
		t.Run(sub.Endpoint, func(t *testing.T) {
			if err := sub.Check(); err != nil {
				t.Fatalf("Check() = %v: the dialer is to refuse it, not Check", err)
			}
			began := time.Now()
			h.sender.Send(sub, message, start.Add(5*time.Minute), h.goneOf(sub))
			h.wait(t)
			if took := time.Since(began); took > time.Second {
				t.Errorf("refused after %s, want at once", took)
			}
			h.wantGone(t, sub)
			if !strings.Contains(h.log.String(), "not a public address") {
				t.Errorf("the log does not say the address was refused:\n%s", h.log)
			}
			h.wantNoPathLogged(t, sub)
		})
	}
	if n := h.svc.Attempts(local) + h.svc.Attempts(byName); n != 0 {
		t.Errorf("%d requests reached the push service on %s", n, u.Host)
	}
	h.wantOutcomes(t, map[string]float64{"gone": 4})
}

func TestSendInvalidSubscriptionIsGone(t *testing.T) {
	h := newHarness(t, nil)
	sub := h.svc.Subscribe()
	sub.Keys.Auth = "short"
	h.sender.Send(sub, message, start.Add(5*time.Minute), h.goneOf(sub))
	h.wait(t)
	h.wantGone(t, sub)
	if n := h.svc.Attempts(sub); n != 0 {
		t.Errorf("%d attempts with a bad subscription", n)
	}
	h.wantOutcomes(t, map[string]float64{"gone": 1})
}

// Send never waits: past 256 deliveries in flight it drops the notification.
func TestSendDropsOverTheBound(t *testing.T) {
	h := newHarness(t, nil)
	sub := h.svc.Subscribe()
	h.svc.Hold(sub)
	began := time.Now()
	for range 257 {
		h.sender.Send(sub, message, start.Add(5*time.Minute), h.goneOf(sub))
	}
	if took := time.Since(began); took > time.Second {
		t.Errorf("257 Sends took %s", took)
	}
	if got := h.outcomes(t)["dropped"]; got != 1 {
		t.Errorf("dropped %v, want 1", got)
	}
	h.svc.Release(sub)
	h.wait(t)
	for range 256 {
		h.message(t)
	}
	h.wantNoMessage(t)
	h.wantOutcomes(t, map[string]float64{"sent": 256, "dropped": 1})
	if !strings.Contains(h.log.String(), "too many notifications in flight") {
		t.Errorf("the log does not say a notification was dropped:\n%s", h.log)
	}
	h.wantNoPathLogged(t, sub)
}

func TestWaitEndsWithItsContext(t *testing.T) {
	h := newHarness(t, nil)
	sub := h.svc.Subscribe()
	if err := h.sender.Wait(context.Background()); err != nil {
		t.Fatalf("Wait with nothing in flight: %v", err)
	}
	h.svc.Hold(sub)
	h.sender.Send(sub, message, start.Add(5*time.Minute), h.goneOf(sub))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := h.sender.Wait(ctx); err != context.DeadlineExceeded {
		t.Errorf("Wait with a delivery held = %v, want %v", err, context.DeadlineExceeded)
	}
	h.svc.Release(sub)
	h.wait(t)
	h.message(t)
}

func TestSendWithABadKey(t *testing.T) {
	h := newHarness(t, func(c *push.Config) { c.Key = make([]byte, 32) })
	sub := h.svc.Subscribe()
	h.sender.Send(sub, message, start.Add(5*time.Minute), h.goneOf(sub))
	h.wait(t)
	if n := h.svc.Attempts(sub); n != 0 {
		t.Errorf("%d attempts with a bad key", n)
	}
	h.wantNoneGone(t)
	h.wantOutcomes(t, map[string]float64{"failed": 1})
}

func TestPublicKey(t *testing.T) {
	key := push.NewKey()
	if len(key) != 32 {
		t.Fatalf("NewKey() is %d bytes, want 32", len(key))
	}
	pub, err := push.PublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	s := goodSubscription(t)
	s.Keys.P256dh = pub // Check holds it to what a VAPID key must be too
	if err := s.Check(); err != nil {
		t.Errorf("the public key %s: %v", pub, err)
	}
	if again, _ := push.PublicKey(key); again != pub {
		t.Errorf("PublicKey is %s, then %s", pub, again)
	}
	order := []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51}
	for name, bad := range map[string][]byte{"empty": nil, "short": key[:31], "zero": make([]byte, 32), "the group order": order} {
		if _, err := push.PublicKey(bad); err == nil {
			t.Errorf("PublicKey(%s) did not fail", name)
		}
	}
}

type clock = testkit.Clock

// syncBuffer is a log the sender's goroutines write to while the test reads it.
type syncBuffer = testkit.Buffer
