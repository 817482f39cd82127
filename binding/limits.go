package binding

import (
	"context"
	"net/netip"
	"time"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/storage"
)

// Limit is at most N requests per Window.
type Limit struct {
	N      int
	Window time.Duration
}

// Limits are the rate limits against guessing, enumeration and floods. They are counted in the
// store, so they hold across instances. A request that carries what it needs (a valid token, a
// trusted card's signature) is never refused because of other requests' failures: the limits
// per address count refusals only, so a junk client behind a carrier's NAT or an office's
// proxy cannot lock out the citizens who share its address.
type Limits struct {
	CardLoginPerIP      Limit // refused card logins from one address
	CardLoginPerCitizen Limit // card logins of one citizen, from anywhere
	PhoneBeginPerIP     Limit // refused phone begins, finishes and denies from one address: unknown, used or expired tokens
	LoginPerIP          Limit // relying-party logins (authorization requests) started from one address
	CIBAPerClient       Limit // decoupled logins one relying party may start: login_hint enumeration
	PushPerDevice       Limit // changes of one phone's push subscription
	MailPerAccount      Limit // verification mails one account asks for again
}

// DefaultLimits are far above what a person or an office behind one address does, and far
// below what guessing or enumerating needs. (Guessing itself is hopeless: tokens have 256 bits
// and a card login needs the card's signature; the limits bound the load and the writes a
// script can cause.)
var DefaultLimits = Limits{
	CardLoginPerIP:      Limit{N: 300, Window: time.Minute},
	CardLoginPerCitizen: Limit{N: 30, Window: time.Minute},
	PhoneBeginPerIP:     Limit{N: 300, Window: time.Minute},
	LoginPerIP:          Limit{N: 300, Window: time.Minute},
	CIBAPerClient:       Limit{N: 600, Window: time.Minute},
	PushPerDevice:       Limit{N: 30, Window: time.Hour},
	MailPerAccount:      Limit{N: 5, Window: time.Hour},
}

func (s *Service) limits() Limits {
	l, d := s.Limits, DefaultLimits
	for _, p := range []struct{ got, def *Limit }{
		{&l.CardLoginPerIP, &d.CardLoginPerIP}, {&l.CardLoginPerCitizen, &d.CardLoginPerCitizen},
		{&l.PhoneBeginPerIP, &d.PhoneBeginPerIP}, {&l.LoginPerIP, &d.LoginPerIP}, {&l.CIBAPerClient, &d.CIBAPerClient},
		{&l.PushPerDevice, &d.PushPerDevice}, {&l.MailPerAccount, &d.MailPerAccount},
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

// hits is key's count without counting: a read.
func (s *Service) hits(ctx context.Context, key string, window time.Duration, now time.Time) (int, error) {
	return storage.Get(ctx, s.Store, func(tx storage.ReadTx) (int, error) { return tx.Hits(key, window, now) })
}

func rateLimited(now time.Time, window time.Duration) error {
	windowEnd := time.Unix(0, 0).Add((now.Sub(time.Unix(0, 0))/window + 1) * window)
	err := mcert.RateLimited.New()
	err.RetryAfter = windowEnd.Sub(now)
	return err
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

// refusal counts a refused request (err) against its address's allowance of refusals, l, and
// returns err; once the allowance is spent, it returns a rate-limit error instead and writes
// nothing more, so that a flood of refusals costs a read each. A request that succeeded, one
// refused by a limit already, and an internal failure are not counted. ok reports whether err
// was counted within the allowance: what a caller needs to know before writing anything else
// about the refusal, such as an audit event.
func (s *Service) refusal(ctx context.Context, l Limit, what string, err error) (counted bool, _ error) {
	if err == nil || mcert.ErrorKind(err) == mcert.TooMany || mcert.ErrorKind(err) == mcert.Internal {
		return false, err
	}
	ip := clientIP(ctx)
	if ip == "" {
		return true, err
	}
	key, now := what+" refused ip "+limitedNetwork(ip), s.now()
	n, herr := s.hits(ctx, key, l.Window, now)
	if herr == nil && n >= l.N {
		return false, rateLimited(now, l.Window)
	}
	if herr == nil {
		_, herr = s.Store.Hit(ctx, key, l.Window, now)
	}
	if herr != nil && s.Log != nil {
		s.Log.Error("rate limit: refusal not counted", "what", what, "err", herr)
	}
	return herr == nil, err
}

// refusePhone counts a phone request refused for its token: unknown, used or expired, which
// is what guessing looks like.
func (s *Service) refusePhone(ctx context.Context, err error) error {
	_, err = s.refusal(ctx, s.limits().PhoneBeginPerIP, "phone", err)
	return err
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
