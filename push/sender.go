package push

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"
	"github.com/prometheus/client_golang/prometheus"
)

// maxInFlight bounds the deliveries of one Sender: each holds a goroutine and a connection for
// up to a request's lifetime, and a push service that hangs must not pile them up without end.
const maxInFlight = 256

// maxBackoff caps the wait between attempts.
const maxBackoff = 30 * time.Second

// Config is what a Sender needs.
type Config struct {
	Key     []byte           // VAPID private key (NewKey)
	Contact string           // the operator's contact for VAPID's sub: an email address or an https URL
	Now     func() time.Time // the service's clock (tests advance it); nil = time.Now
	Log     *slog.Logger     // nil = slog.Default()
	// AllowLoopback lets the sender connect to loopback addresses (development, tests);
	// otherwise the dialer refuses loopback, private, link-local, unspecified, multicast and
	// reserved addresses at connect time, after DNS resolution. Redirects are never followed.
	AllowLoopback bool
	// Client overrides the HTTP client (tests); nil = one with a 10 s timeout and the guarded
	// dialer.
	Client *http.Client
}

// Sender delivers notifications in the background: Send returns at once.
type Sender struct {
	private, public string // VAPID keys, base64url as the library takes them
	keyErr          error  // a bad Config.Key: every delivery fails, saying so
	contact         string
	now             func() time.Time
	log             *slog.Logger
	client          *http.Client
	outcomes        *prometheus.CounterVec

	mu       sync.Mutex
	inFlight int
	idle     chan struct{} // closed when inFlight drops to 0
}

// NewSender makes a Sender. A bad key does not stop the service from starting: each delivery
// then fails with the reason in the log.
func NewSender(c Config) *Sender {
	s := &Sender{
		private: base64.RawURLEncoding.EncodeToString(c.Key),
		// The library prefixes "mailto:" to anything but an https URL.
		contact: strings.TrimPrefix(c.Contact, "mailto:"),
		now:     c.Now,
		log:     c.Log,
		client:  c.Client,
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcert_push_notifications_total",
			Help: "Phone notifications by outcome: sent, gone (subscription dropped), failed (gave up), dropped (too many in flight), retried (each retry).",
		}, []string{"outcome"}),
	}
	s.public, s.keyErr = PublicKey(c.Key)
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.client == nil {
		s.client = newClient(c.AllowLoopback)
	}
	for _, o := range []string{"sent", "gone", "failed", "dropped", "retried"} {
		s.outcomes.WithLabelValues(o) // exported as 0 from the start
	}
	if s.keyErr != nil {
		s.log.Error("push: no phone notification can be sent", "err", s.keyErr)
	}
	return s
}

// Collector exports mcert_push_notifications_total{outcome}.
func (s *Sender) Collector() prometheus.Collector { return s.outcomes }

// Send delivers m to sub until expires, on Config.Now's clock, retrying while the push service
// is busy or unreachable. When too many deliveries are in flight it drops the notification: the
// phone still finds the request in its inbox. gone, when not nil, is told that the
// subscription is gone (the push service answered 404 or 410) or can never be sent to (no HTTP
// answer on any attempt while the request lasted, an address the dialer refuses, or one Check
// refuses), so that the caller drops it; it is called from the sender's goroutine.
func (s *Sender) Send(sub Subscription, m Message, expires time.Time, gone func()) {
	if !s.start() {
		s.outcomes.WithLabelValues("dropped").Inc()
		s.log.Warn("push: too many notifications in flight; dropped one", "host", hostOf(sub.Endpoint), "in_flight", maxInFlight)
		return
	}
	go func() {
		defer s.end()
		s.deliver(sub, m, expires, gone)
	}()
}

// Wait blocks until every delivery in flight has ended, or ctx ends.
func (s *Sender) Wait(ctx context.Context) error {
	s.mu.Lock()
	idle, n := s.idle, s.inFlight
	s.mu.Unlock()
	if n == 0 {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Sender) start() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight >= maxInFlight {
		return false
	}
	if s.inFlight == 0 {
		s.idle = make(chan struct{})
	}
	s.inFlight++
	return true
}

func (s *Sender) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight--
	if s.inFlight == 0 {
		close(s.idle)
	}
}

// deliver makes the attempts of one notification. The deadline is on the service's clock,
// which tests move ahead, while the waits between attempts are real time; the context's real
// deadline, fixed at the start, bounds the whole in case the service's clock stands still.
func (s *Sender) deliver(sub Subscription, m Message, expires time.Time, gone func()) {
	// The endpoint's path is a capability: whoever knows it can notify the phone. Only the host
	// is logged.
	log := s.log.With("host", hostOf(sub.Endpoint), "kind", m.Kind)
	if s.keyErr != nil {
		s.outcomes.WithLabelValues("failed").Inc()
		log.Error("push: notification not sent", "err", s.keyErr)
		return
	}
	if err := sub.Check(); err != nil {
		s.drop(log, gone, "push: a subscription that cannot be sent to; dropping it", "err", err)
		return
	}
	body, err := json.Marshal(m)
	if err != nil {
		s.outcomes.WithLabelValues("failed").Inc()
		log.Error("push: notification not sent", "err", err)
		return
	}
	left := expires.Sub(s.now())
	if left <= 0 {
		s.outcomes.WithLabelValues("failed").Inc()
		log.Warn("push: the request expired before its notification could be sent")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), left)
	defer cancel()

	answered := false // an unreachable endpoint is dropped, one that answers is not
	var last []any    // what the last attempt got, for the log when giving up
	for attempt := 1; ; attempt++ {
		ttl := max(int(expires.Sub(s.now())/time.Second), 0)
		res, err := webpush.SendNotificationWithContext(ctx, body, &webpush.Subscription{
			Endpoint: sub.Endpoint,
			Keys:     webpush.Keys{P256dh: sub.Keys.P256dh, Auth: sub.Keys.Auth},
		}, &webpush.Options{
			HTTPClient:      s.client,
			Subscriber:      s.contact,
			TTL:             ttl,
			Urgency:         webpush.UrgencyHigh,
			VAPIDPublicKey:  s.public,
			VAPIDPrivateKey: s.private,
		})
		var wait time.Duration // at least this long before the next attempt
		var netErr *url.Error
		switch {
		case errors.As(err, &netErr):
			// *url.Error's text holds the whole URL, path and all: log only what it wraps.
			last = []any{"attempts", attempt, "err", netErr.Err}
			if errors.Is(err, errRefused) {
				s.drop(log, gone, "push: the endpoint's address is not one mcert connects to; dropping the subscription", last...)
				return
			}
		case err != nil:
			// The library refused before sending: the message, not the service, is at fault.
			s.outcomes.WithLabelValues("failed").Inc()
			log.Error("push: notification not sent", "err", err)
			return
		default:
			answered = true
			io.Copy(io.Discard, io.LimitReader(res.Body, 4096)) // lets the connection be reused
			res.Body.Close()
			last = []any{"attempts", attempt, "status", res.StatusCode}
			switch {
			case res.StatusCode/100 == 2:
				s.outcomes.WithLabelValues("sent").Inc()
				log.Debug("push: notification sent", last...)
				return
			case res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusGone:
				s.drop(log, gone, "push: the push service says the subscription is gone; dropping it", last...)
				return
			case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
				wait = retryAfter(res)
			default:
				// 400, 401, 403, 413: a fault of mcert's request that the same request repeats,
				// but no sign that the phone's subscription has ended.
				s.outcomes.WithLabelValues("failed").Inc()
				log.Warn("push: the push service refused the notification", last...)
				return
			}
		}
		wait = max(wait, backoff(attempt))
		if ctx.Err() != nil || wait >= expires.Sub(s.now()) {
			s.giveUp(log, gone, answered, last)
			return
		}
		log.Debug("push: will retry", append(last, "wait", wait)...)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		if ctx.Err() != nil || !s.now().Before(expires) {
			s.giveUp(log, gone, answered, last)
			return
		}
		s.outcomes.WithLabelValues("retried").Inc()
	}
}

// giveUp ends a delivery whose time ran out: a subscription that never answered is dropped.
func (s *Sender) giveUp(log *slog.Logger, gone func(), answered bool, last []any) {
	if !answered {
		s.drop(log, gone, "push: the push service could not be reached while the request lasted; dropping the subscription", last...)
		return
	}
	s.outcomes.WithLabelValues("failed").Inc()
	log.Warn("push: the push service did not take the notification while the request lasted", last...)
}

func (s *Sender) drop(log *slog.Logger, gone func(), msg string, args ...any) {
	s.outcomes.WithLabelValues("gone").Inc()
	log.Info(msg, args...)
	if gone != nil {
		gone()
	}
}

// backoff is the wait after the given attempt: 1 s, 2 s, 4 s, ... up to maxBackoff.
func backoff(attempt int) time.Duration {
	if attempt > 5 {
		return maxBackoff
	}
	return min(time.Second<<(attempt-1), maxBackoff)
}

// retryAfter is a Retry-After in seconds (what push services send), or 0.
func retryAfter(res *http.Response) time.Duration {
	n, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || n < 0 {
		return 0
	}
	// Past a day it outlasts any request, and a larger number would overflow a Duration.
	return time.Duration(min(n, 86400)) * time.Second
}

// hostOf is what the log may say of an endpoint.
func hostOf(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	return u.Host
}
