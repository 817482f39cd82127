package web

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/provider"
)

// Keys of the values the middleware and the error handler pass along in the echo.Context.
const (
	requestIDKey = "mcert.request_id"
	errorCodeKey = "mcert.error_code"
)

// requestID gives every request an ID, answered as X-Request-ID and written in its log lines.
// A client's own ID is kept only when it is a short token, so that it cannot fill or forge
// log lines.
func requestID() echo.MiddlewareFunc {
	withID := middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		RequestIDHandler: func(c echo.Context, id string) { c.Set(requestIDKey, id) },
	})
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		h := withID(next)
		return func(c echo.Context) error {
			if hdr := c.Request().Header; !isShortToken(hdr.Get(echo.HeaderXRequestID)) {
				hdr.Del(echo.HeaderXRequestID)
			}
			return h(c)
		}
	}
}

func isShortToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// clientIPFrom finds the client's address: the peer's own, which the client cannot forge, so
// that rate limits and the audit log are not the client's to steer. Only when the peer is one
// of the trusted proxies is it the right-most address of X-Forwarded-For that is not a trusted
// proxy too: each proxy appends the address it was reached from, and everything to the left
// of what the first one appended is the client's to write.
func clientIPFrom(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	// Echo would also trust every loopback, link-local and private peer: only these here.
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		p = p.Masked()
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// observe writes one log line per request and counts it in the metrics. Both name the route
// pattern, never the path or query, which carry IDs, one-time tokens and OAuth codes.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now() // elapsed real time: the service's injected clock stands still in tests
		route := routeOf(c)
		if err := next(c); err != nil {
			c.Error(err) // here rather than after the chain, so that the status below is the one sent
			if errors.Is(err, echo.ErrNotFound) {
				route = "unmatched"
			}
		}
		took := time.Since(start)
		r, status, method := c.Request(), c.Response().Status, methodLabel(c.Request())
		code, _ := c.Get(errorCodeKey).(string)
		s.metrics.observe(route, method, status, ceremonyOf(r, route), outcome(status, code), took)
		attrs := []slog.Attr{
			slog.String("method", method), slog.String("route", route), slog.Int("status", status),
			slog.Duration("duration", took), slog.Any("request_id", c.Get(requestIDKey)), slog.String("remote_ip", c.RealIP()),
		}
		if code != "" {
			attrs = append(attrs, slog.String("error_code", code))
		}
		level := slog.LevelInfo
		if isPoll(method, route, status, code) {
			level = slog.LevelDebug
		}
		s.cfg.Logger.LogAttrs(r.Context(), level, "request", attrs...)
		return nil
	}
}

// pollRoutes are read again and again, every second or so, by the pages and phones that wait on
// them; their ordinary answers would drown every other line of the log at INFO.
var pollRoutes = map[string]bool{"/api/v1/logins/:id": true, "/api/v1/bindings/:id": true, "/api/v1/phone/inbox": true}

// isPoll reports whether a request was a client's poll that found nothing new: a read of a
// pollRoutes route, or a CIBA token request answered with the wait for the citizen.
func isPoll(method, route string, status int, code string) bool {
	if route == tokenRoute {
		return code == "authorization_pending" || code == "slow_down"
	}
	return method == http.MethodGet && pollRoutes[route] && status >= 200 && status < 300
}

// routeOf names the request's route: its pattern, or, for the OpenID endpoints, which share
// one, the endpoint's path; "unmatched" for a path under them that is none, never the path,
// which would give the metrics a series for every path a client makes up.
func routeOf(c echo.Context) string {
	route := c.Path()
	if route != provider.PathPrefix+"*" {
		return route
	}
	if path := c.Request().URL.Path; provider.Endpoint(path) {
		return path
	}
	return "unmatched"
}

var errCrossSite = mcert.CrossSiteRequest.New()

// sameOrigin refuses writes authenticated by the session cookie unless the browser says they
// come from a page of the public URL's origin. SameSite=Lax keeps the cookie off other sites'
// POSTs, but not off those of sibling subdomains (the same site) nor of old browsers. Only
// browsers hold the cookie, and every browser sends one of these headers on such a write, so a
// request with none is refused too. The phone, card and admin calls carry their credentials in
// the body or a header, not the cookie, and are left alone.
func (s *Server) sameOrigin(next echo.HandlerFunc) echo.HandlerFunc {
	var origin string
	if u, err := url.Parse(s.cfg.PublicURL); err == nil {
		origin = u.Scheme + "://" + u.Host
	}
	return func(c echo.Context) error {
		r := c.Request()
		if r.Method == http.MethodGet || r.Method == http.MethodOptions { // HEAD comes as GET (headAsGet)
			return next(c)
		}
		// A card login sets the session cookie rather than using it: checked with or without
		// one, so that another site cannot log the browser in as someone else (login CSRF).
		if c.Path() != cardLoginRoute {
			if !cookieAuthenticated(c.Path()) {
				return next(c)
			}
			if _, err := r.Cookie(sessionCookie); err != nil {
				return next(c)
			}
		}
		if !fromOrigin(r.Header, origin) {
			return errCrossSite
		}
		return next(c)
	}
}

const cardLoginRoute = "/api/v1/card/login"

// cookieAuthenticated reports whether route is one of the API's, other than those whose
// credentials are not the session cookie.
func cookieAuthenticated(route string) bool {
	switch {
	case !strings.HasPrefix(route, "/api/v1/"),
		strings.HasPrefix(route, "/api/v1/phone/"),
		strings.HasPrefix(route, "/api/v1/admin/"),
		route == "/api/v1/card/challenge",
		route == cardLoginRoute:
		return false
	}
	return true
}

// fromOrigin reports whether the request comes from a page of origin, as the browser says: by
// Origin, else Sec-Fetch-Site, else Referer. A request with none of the three is not from a
// browser page (browsers send Origin or Sec-Fetch-Site on every POST, PATCH and DELETE), so it
// cannot be a forged cross-site request: a program holding the session cookie, such as a
// client written from PROTOCOL.md alone, which says nothing of these headers, is let through.
func fromOrigin(h http.Header, origin string) bool {
	if h.Get("Origin") == "" && h.Get("Sec-Fetch-Site") == "" && h.Get("Referer") == "" {
		return true
	}
	if o := h.Get("Origin"); o != "" {
		return strings.EqualFold(o, origin)
	}
	if site := h.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	ref, err := url.Parse(h.Get("Referer"))
	return err == nil && ref.Host != "" && strings.EqualFold(ref.Scheme+"://"+ref.Host, origin)
}
