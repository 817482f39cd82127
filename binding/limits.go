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
	PhoneBeginPerIP     Limit // bind and login begins from one address: QR token guessing
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
	windowEnd := time.Unix(0, 0).Add((now.Sub(time.Unix(0, 0))/l.Window + 1) * l.Window)
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

// limitedNetwork is what one client controls: an IPv4 address, or an IPv6 /64.
func limitedNetwork(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Unmap().Is4() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}
