// Package web is mcert's HTTP face: the JSON API of PROTOCOL.md, the server-rendered pages and
// their embedded assets, on Echo. It translates between HTTP and the binding service and holds
// no state of its own.
package web

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/mailer"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/storage"
)

// Config is what the web layer needs besides the service.
type Config struct {
	Service      *binding.Service
	PublicURL    string
	CardAgentURL string // where the pages reach the card agent
	Logger       *slog.Logger
	// ContinueURL is where the login page sends the browser once the phone has approved login
	// loginID; nil leaves "continue" out of the page's state.
	ContinueURL func(ctx context.Context, loginID string) string
	// Provider serves the OpenID Provider endpoints (/oidc/ and discovery); nil: none.
	Provider http.Handler
	// AdminTokenHash is the SHA-256 of the admin API's bearer token.
	AdminTokenHash []byte
	// DemoClientID turns on the development-mode demo relying party at /demo; empty: off.
	DemoClientID string
	// Backup writes a consistent copy of the data file while the server serves, for the admin
	// API's backup; nil: the store has none, and the route answers 404.
	Backup func(w io.Writer) (int64, error)
	// RotateKeys makes new ID-token signing keys and returns their IDs by algorithm, for the
	// admin API; it
	// comes with Provider.
	RotateKeys func(ctx context.Context) (map[string]string, error)
	// TrustedProxies are the networks of the reverse proxies in front of the server: only for
	// a peer in one of them is the client's address taken from X-Forwarded-For.
	TrustedProxies []netip.Prefix
	// Revocation is the card revocation check, whose health /healthz reports and whose
	// metrics /metrics serves; nil: none.
	Revocation Revocation
	// Operator is who runs the service, for the pages' footer and the personal-data notice.
	Operator Operator
	// Mailbox lists the mails development mode sent to the log, for /dev/mailbox; nil: no
	// such page.
	Mailbox func() []mailer.Mail
}

// Operator is who runs the service, as every page tells the citizen: by law a service that
// collects an email address and a mobile number says who collects them and why.
type Operator struct {
	Name            string // e.g. 內政部; empty: the footer names no operator
	SupportPhone    string // 客服專線, e.g. 0800-080-117
	PrivacyURL      string // 隱私權政策
	PersonalDataURL string // 個人資料蒐集告知
}

// Revocation is what the web layer sees of the card revocation check (revocation.Checker).
type Revocation interface {
	Health() (ok bool, problems []string)
	Collectors() []prometheus.Collector
}

// maxBody bounds every request body: the largest legitimate one, a WebAuthn registration with
// packed attestation, is a few kilobytes.
const maxBody = "64K"

// Server serves the API and the pages, and, to the operator's network, the admin API.
type Server struct {
	cfg     Config
	svc     *binding.Service
	echo    *echo.Echo
	admin   *echo.Echo
	metrics *metrics
	// public and operator serve echo and admin, HEAD included (headAsGet).
	public, operator http.Handler
}

// New builds the server's routes: the public ones (ServeHTTP) and the operator's (Admin).
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var collectors []prometheus.Collector
	if cfg.Revocation != nil {
		collectors = cfg.Revocation.Collectors()
	}
	if cfg.Service != nil && cfg.Service.Push != nil {
		collectors = append(collectors, cfg.Service.Push.Collector())
	}
	s := &Server{cfg: cfg, svc: cfg.Service, metrics: newMetrics(collectors...)}
	s.echo, s.admin = s.newEcho(), s.newEcho()
	s.public, s.operator = headAsGet(s.echo), headAsGet(s.admin)
	metrics := echo.WrapHandler(s.metrics.handler())

	// Only the operator's listener serves the metrics to anyone who reaches it: its network is
	// the operator's. It serves none of the pages nor the public API.
	s.admin.GET("/healthz", s.healthz)
	s.admin.GET("/metrics", metrics)
	if cfg.Provider != nil {
		s.adminRoutes(s.admin.Group("/api/v1/admin", s.requireAdmin))
	}

	e := s.echo
	e.GET("/healthz", s.healthz)
	e.GET("/metrics", metrics, s.requireAdmin)
	api := e.Group("/api/v1")
	api.GET("/card/challenge", s.cardChallenge)
	api.POST("/card/login", s.cardLogin)
	api.POST("/card/logout", s.cardLogout)
	api.GET("/card/session", s.getSession)
	api.POST("/card/session", s.extendSession)
	api.POST("/account", s.createAccount)
	api.PATCH("/account", s.updateAccount)
	api.GET("/account", s.getAccount)
	api.POST("/bindings", s.createBinding)
	api.GET("/bindings/:id", s.getBinding)
	api.GET("/bindings/:id/qr.png", s.bindingQR)
	api.POST("/phone/bind/info", s.bindInvite)
	api.POST("/phone/bind/begin", s.bindBegin)
	api.POST("/phone/bind/finish", s.bindFinish)
	s.loginRoutes(api)
	s.signRoutes(api)
	s.pushRoutes(api)
	s.mailRoutes(api)
	s.deviceRoutes(api)
	s.oidcRoutes(api)
	s.demoRoutes()
	s.pageRoutes()
	s.pkiRoutes()
	return s
}

// newEcho is an Echo with the middleware every route of either listener goes through.
func (s *Server) newEcho() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = clientIPFrom(s.cfg.TrustedProxies)
	e.Use(requestID(), s.observe, middleware.Recover(), middleware.BodyLimit(maxBody), s.securityHeaders, withClientIP, s.sameOrigin)
	return e
}

// ServeHTTP makes the server an http.Handler: the public listener's.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.public.ServeHTTP(w, r) }

// Admin is the handler of the operator's listener: the admin API, /metrics without the admin
// token, and /healthz.
func (s *Server) Admin() http.Handler { return s.operator }

type headKey struct{}

// headAsGet answers HEAD as GET (RFC 9110 section 9.3.2), on every GET route at once: Echo
// routes HEAD only where a route registers it, and answers 405 elsewhere. The handlers see a
// GET; the body they write is dropped by net/http, which still holds the HEAD request.
func headAsGet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			r = r.WithContext(context.WithValue(r.Context(), headKey{}, true))
			r.Method = http.MethodGet
		}
		next.ServeHTTP(w, r)
	})
}

// isHead reports whether the request came as HEAD (see headAsGet).
func isHead(r *http.Request) bool { return r.Context().Value(headKey{}) != nil }

func (s *Server) healthz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.svc.Ping(ctx); err != nil {
		s.cfg.Logger.Error("health check: store does not answer", "err", err)
		e := mcert.StoreUnavailable.New()
		e.RetryAfter = storeRetryAfter
		return e
	}
	// Stale revocation data refuses card logins (card_status_unknown) but nothing else: the
	// instance stays in service, and says what is wrong.
	if s.cfg.Revocation != nil {
		if ok, problems := s.cfg.Revocation.Health(); !ok {
			s.cfg.Logger.Warn("health check: card revocation data is stale", "problems", problems)
			return c.JSON(http.StatusOK, map[string]any{"status": "degraded", "revocation": "stale", "problems": problems})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// withClientIP hands the client's address to the service, for rate limits and the audit log.
func withClientIP(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		c.SetRequest(r.WithContext(binding.WithClientIP(r.Context(), c.RealIP())))
		return next(c)
	}
}

// securityHeaders keeps the pages out of frames and their scripts to our own files.
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	csp := "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	https := strings.HasPrefix(s.cfg.PublicURL, "https://")
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY") // for browsers that predate frame-ancestors
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if https {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if strings.HasPrefix(c.Request().URL.Path, "/api/") {
			h.Set("Cache-Control", "no-store")
		}
		return next(c)
	}
}

// statusOf maps the catalog's kinds to PROTOCOL.md's statuses.
var statusOf = map[mcert.Kind]int{
	mcert.Invalid:      http.StatusBadRequest,
	mcert.Unauthorized: http.StatusUnauthorized,
	mcert.Forbidden:    http.StatusForbidden,
	mcert.NotFound:     http.StatusNotFound,
	mcert.Conflict:     http.StatusConflict,
	mcert.Expired:      http.StatusGone,
	mcert.TooMany:      http.StatusTooManyRequests,
	mcert.Internal:     http.StatusInternalServerError,
	mcert.BadMethod:    http.StatusMethodNotAllowed,
	mcert.TooLarge:     http.StatusRequestEntityTooLarge,
	mcert.BadMediaType: http.StatusUnsupportedMediaType,
	mcert.Unavailable:  http.StatusServiceUnavailable,
}

// echoError is the catalog's error for one of Echo's own (unknown route, wrong method, body
// too large, not JSON), or nil.
func echoError(he *echo.HTTPError) *mcert.Error {
	switch he.Code {
	case http.StatusNotFound:
		return mcert.NoSuchRoute.New()
	case http.StatusMethodNotAllowed:
		return mcert.MethodNotAllowed.New()
	case http.StatusRequestEntityTooLarge:
		return mcert.BodyTooLarge.Newf(maxBody)
	case http.StatusUnsupportedMediaType:
		return mcert.UnsupportedMediaType.New()
	}
	return nil
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// storeRetryAfter is what a client is told to wait when the store does not answer: long enough
// for a database to fail over, short enough for a citizen at the page.
const storeRetryAfter = 5 * time.Second

// handleError writes every error as PROTOCOL.md's JSON body. Internal errors are logged in full
// and shown only as "internal error".
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	internal := mcert.InternalError
	status, body := http.StatusInternalServerError, errorBody{internal.Name, internal.Message}
	var me *mcert.Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &me):
	case errors.As(err, &he):
		me = echoError(he)
	case errors.Is(err, storage.ErrUnavailable):
		// Logged, for the operator to see why; the client learns only to try again.
		s.cfg.Logger.Error("store unavailable", "method", c.Request().Method, "path", c.Path(), "request_id", c.Get(requestIDKey), "err", err)
		me = mcert.StoreUnavailable.New()
		me.RetryAfter = storeRetryAfter
	}
	switch {
	case me != nil && me.Kind != mcert.Internal:
		status, body = statusOf[me.Kind], errorBody{me.Code, me.Message}
		if me.RetryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(me.RetryAfter.Seconds()))))
		}
	default:
		s.cfg.Logger.Error("internal error", "method", c.Request().Method, "path", c.Path(), "request_id", c.Get(requestIDKey), "err", err)
	}
	c.Set(errorCodeKey, body.Error) // the metrics' ceremony outcome
	if code := mcert.Lookup(body.Error); code != nil && s.ErrorPage(c.Response(), c.Request(), status, code) {
		return // a browser navigating (to a page that does not exist, say) reads a page
	}
	if he != nil && status == he.Code && strings.HasPrefix(c.Request().URL.Path, provider.PathPrefix) {
		// Echo's own refusals (a body too large) on the OpenID endpoints, whose clients read
		// OAuth error bodies (RFC 6749 section 5.2).
		_ = c.JSON(status, map[string]string{"error": mcert.InvalidRequest.Name, "error_description": body.Message})
		return
	}
	_ = c.JSON(status, body)
}
