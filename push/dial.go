package push

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// A phone chooses the endpoint mcert POSTs to, so without a guard it could aim mcert at the
// operator's internal network (SSRF). The guard looks at the address actually dialled, after
// DNS resolution, so a public name that resolves to an internal address is refused too, and so
// is a name whose answer changes between a check and the connection (DNS rebinding).

// errRefused marks a connection the guard would not make: the endpoint can never be reached.
var errRefused = errors.New("not a public address")

// reserved are internal ranges that netip's predicates leave out: "this network" (Linux
// connects 0.x.x.x to the machine itself), carrier-grade NAT (internal in many clouds) and the
// reserved class E with the broadcast address.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

// allowed says whether the sender may connect to a.
func allowed(a netip.Addr, allowLoopback bool) bool {
	a = a.Unmap() // ::ffff:10.0.0.1 is 10.0.0.1
	if a.IsLoopback() {
		return allowLoopback
	}
	if a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range reserved {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// control is the dialer's last word before connect(2): the socket exists, nothing is sent yet.
func control(allowLoopback bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%s is not an IP address and port: %w", address, errRefused)
		}
		if !allowed(ap.Addr(), allowLoopback) {
			return errRefused // the dialer's error names the address
		}
		return nil
	}
}

// newClient is the client for push services: guarded, with no proxy (the guard would judge the
// proxy's address, not the push service's) and no redirects (a redirect is a second, unchecked
// choice of target, and a push service has no reason to send one).
func newClient(allowLoopback bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, Control: control(allowLoopback)}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext:         d.DialContext,
			ForceAttemptHTTP2:   true,
			MaxIdleConns:        100,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 5 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
