package binding

import (
	"context"
	"net/netip"
	"time"

	"github.com/mcert/mcert"
)

// Limit is at most N requests per Window.
type Limit struct {
	N      int
	Window time.Duration
}

// Limits are the rate limits against guessing and enumeration. They are counted in the store,
// so they hold across instances.
type Limits struct {
	CardLoginPerIP      Limit // card logins from one address
	CardLoginPerCitizen Limit // card logins of one citizen, from anywhere
	PhoneBeginPerIP     Limit // refused bind and login begins from one address: QR token guessing
	CIBAPerClient       Limit // decoupled logins one relying party may start: login_hint enumeration
}

// DefaultLimits are far above what a person or an office behind one address does, and far
// below what guessing or enumerating needs. (Guessing itself is hopeless: tokens have 256 bits
// and a card login needs the card's signature; the limits bound the load a script can cause.)
var DefaultLimits = Limits{
	CardLoginPerIP:      Limit{N: 300, Window: time.Minute},
	CardLoginPerCitizen: Limit{N: 30, Window: time.Minute},
	PhoneBeginPerIP:     Limit{N: 300, Window: time.Minute},
	CIBAPerClient:       Limit{N: 600, Window: time.Minute},
}

func (s *Service) limits() Limits {
	l, d := s.Limits, DefaultLimits
	for _, p := range []struct{ got, def *Limit }{
		{&l.CardLoginPerIP, &d.CardLoginPerIP}, {&l.CardLoginPerCitizen, &d.CardLoginPerCitizen},
		{&l.PhoneBeginPerIP, &d.PhoneBeginPerIP}, {&l.CIBAPerClient, &d.CIBAPerClient},
	} {
		if p.got.N <= 0 || p.got.Window <= 0 {
			*p.got = *p.def
		}
	}
	return l
}

// limit counts a request under key and refuses it once the window's allowance is spent.
func (s *Service) limit(ctx context.Context, l Limit, key string) error {
	now := s.now()
	n, err := s.Store.Hit(ctx, key, l.Window, now)
	if err != nil {
		return err
	}
	if n <= l.N {
		return nil
	}
	return rateLimited(now, l.Window)
}

func rateLimited(now time.Time, window time.Duration) error {
	windowEnd := time.Unix(0, 0).Add((now.Sub(time.Unix(0, 0))/window + 1) * window)
	return &mcert.Error{
		Kind: mcert.TooMany, Code: "rate_limited", RetryAfter: windowEnd.Sub(now),
		Message: "too many requests; wait a little and try again",
	}
}

// limitIP limits by the client's address; without one (a test calling the service directly)
// there is nothing to count.
func (s *Service) limitIP(ctx context.Context, l Limit, what string) error {
	ip := clientIP(ctx)
	if ip == "" {
		return nil
	}
	return s.limit(ctx, l, what+" ip "+limitedNetwork(ip))
}

// phoneBeginKey is the counter of the refused phone begins of the client's address: a token
// that finds nothing is what guessing looks like. Only refusals are counted, so a citizen's begin costs a
// read, not a write; once an address has spent its allowance, every begin from it is refused,
// a right guess too. "" without an address.
func phoneBeginKey(ctx context.Context) string {
	if ip := clientIP(ctx); ip != "" {
		return "phone begin refused ip " + limitedNetwork(ip)
	}
	return ""
}

// checkPhoneBegin refuses a begin from an address that has spent its allowance of refusals.
func (s *Service) checkPhoneBegin(ctx context.Context) error {
	key, l := phoneBeginKey(ctx), s.limits().PhoneBeginPerIP
	if key == "" {
		return nil
	}
	now := s.now()
	n, err := s.Store.Hits(ctx, key, l.Window, now)
	if err != nil {
		return err
	}
	if n < l.N {
		return nil
	}
	return rateLimited(now, l.Window)
}

// countPhoneBegin counts a begin that was refused (err not nil, and not by the limit itself,
// so that a client past its allowance costs no writes).
func (s *Service) countPhoneBegin(ctx context.Context, err error) {
	key, l := phoneBeginKey(ctx), s.limits().PhoneBeginPerIP
	if err == nil || key == "" || mcert.ErrorKind(err) == mcert.TooMany {
		return
	}
	if _, herr := s.Store.Hit(ctx, key, l.Window, s.now()); herr != nil && s.Log != nil {
		s.Log.Error("rate limit: refused phone begin not counted", "err", herr)
	}
}

// limitedNetwork is what one client controls: an IPv4 address, or an IPv6 /64.
func limitedNetwork(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Unmap().Is4() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}
