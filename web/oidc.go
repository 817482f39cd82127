package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/provider"
)

// oidcRoutes mounts the OpenID Provider and the admin API that registers relying parties.
func (s *Server) oidcRoutes(api *echo.Group) {
	if s.cfg.Provider == nil {
		return
	}
	h := providerHandler(s.cfg.Provider)
	s.echo.Any(provider.PathPrefix+"*", h)
	s.echo.GET(provider.ContinuePath, h, s.loginContinue)
	s.echo.Any(provider.DiscoveryPath, h) // the provider answers CORS preflights and wrong methods
	s.adminRoutes(api.Group("/admin", s.requireAdmin))
}

// providerHandler serves a request with the provider, and hands the error code of its answer
// to the log and the metrics (errorCodeKey), as the error handler does for the API: the
// provider writes its own OAuth errors, as a JSON body or, to a relying party's redirect URI,
// in the Location's query or fragment.
func providerHandler(p http.Handler) echo.HandlerFunc {
	return func(c echo.Context) error {
		res := c.Response()
		sniff := &errorSniffer{ResponseWriter: res.Writer}
		res.Writer = sniff
		p.ServeHTTP(res, c.Request())
		res.Writer = sniff.ResponseWriter
		if code := sniff.code(res.Header()); code != "" {
			c.Set(errorCodeKey, code)
		}
		return nil
	}
}

// maxErrorSniff is what errorSniffer keeps of an error body: OAuth's are a hundred bytes or so.
const maxErrorSniff = 1024

// errorSniffer keeps the start of an error answer's body, to read its error code from.
type errorSniffer struct {
	http.ResponseWriter
	status int
	body   []byte
}

func (w *errorSniffer) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *errorSniffer) Write(p []byte) (int, error) {
	if w.status >= 400 && len(w.body) < maxErrorSniff {
		w.body = append(w.body, p[:min(len(p), maxErrorSniff-len(w.body))]...)
	}
	return w.ResponseWriter.Write(p)
}

func (w *errorSniffer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// code is the OAuth error code of the answer, or "". It is kept only when it is a short token,
// as OAuth's codes are: a log line or a metric label is no place for what a client may steer.
func (w *errorSniffer) code(h http.Header) string {
	var code string
	switch {
	case w.status >= 400:
		var body struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(w.body, &body) == nil {
			code = body.Error
		}
	case w.status >= 300 && w.status < 400:
		if u, err := url.Parse(h.Get("Location")); err == nil {
			code = u.Query().Get("error")
			if fragment, err := url.ParseQuery(u.Fragment); code == "" && err == nil {
				code = fragment.Get("error")
			}
		}
	}
	if !isShortToken(code) {
		return ""
	}
	return code
}

// adminRoutes are the admin API's, on either listener.
func (s *Server) adminRoutes(admin *echo.Group) {
	admin.POST("/clients", s.adminCreateClient)
	admin.GET("/clients", s.adminListClients)
	admin.PATCH("/clients/:id", s.adminEditClient)
	admin.DELETE("/clients/:id", s.adminDeleteClient)
	admin.POST("/clients/:id/secret", s.adminRotateClientSecret)
	admin.POST("/keys/rotate", s.adminRotateKeys)
	admin.GET("/events", s.adminEvents)
	s.backupRoutes(admin)
}

func (s *Server) adminRotateKeys(c echo.Context) error {
	ctx := c.Request().Context()
	kids, err := s.cfg.RotateKeys(ctx)
	if err != nil {
		return err
	}
	// kid stays what it meant when there was one algorithm: the key that signs by default.
	return c.JSON(http.StatusOK, map[string]any{"kid": kids["RS256"], "kids": kids})
}

var errAdminToken = mcert.AdminTokenRequired.New()

// requireAdmin lets through requests bearing the operator's admin token. The others are
// refused and written to the audit log, as far as the service's limit lets them.
func (s *Server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token := bearerToken(c.Request()) // RFC 6750: the scheme's case does not matter
		h := sha256.Sum256([]byte(token))
		if token == "" || s.cfg.AdminTokenHash == nil || subtle.ConstantTimeCompare(h[:], s.cfg.AdminTokenHash) != 1 {
			return s.svc.RefuseAdmin(c.Request().Context(), errAdminToken)
		}
		return next(c)
	}
}

type clientBody struct {
	Name                   string   `json:"name"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	Public                 bool     `json:"public"`
	CitizenID              bool     `json:"citizen_id"`
	CIBA                   bool     `json:"ciba"`
	Sign                   bool     `json:"sign"`
	IDTokenAlg             string   `json:"id_token_signed_response_alg"`
	DeliveryMode           string   `json:"backchannel_token_delivery_mode"`
	NotificationEndpoint   string   `json:"backchannel_client_notification_endpoint"`
}

func (s *Server) clients() provider.Clients { return provider.Clients{Service: s.svc} }

// clientFields are the fields of a registration; any other is refused, so that a relying
// party's operator learns at once that a setting they meant (a misspelt one, or one of a later
// version) was not registered.
var clientFields = []string{"name", "redirect_uris", "post_logout_redirect_uris", "public", "citizen_id", "ciba", "sign", "id_token_signed_response_alg", "backchannel_token_delivery_mode", "backchannel_client_notification_endpoint"}

func (s *Server) adminCreateClient(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := decodeJSON(body, &fields); err != nil {
		return err
	}
	var unknown []string
	for name := range fields {
		if !slices.Contains(clientFields, name) {
			unknown = append(unknown, strconv.Quote(name))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return mcert.InvalidClientMetadata.Newf("unknown fields " + strings.Join(unknown, ", ") + ": a registration has " + strings.Join(clientFields, ", "))
	}
	var req clientBody
	if err := decodeJSON(body, &req); err != nil {
		return err
	}
	switch {
	case req.DeliveryMode != "" && req.DeliveryMode != "poll" && req.DeliveryMode != "ping":
		return mcert.InvalidClientMetadata.Newf(`backchannel_token_delivery_mode must be "poll" or "ping"`)
	case (req.DeliveryMode == "ping") != (req.NotificationEndpoint != ""):
		return mcert.InvalidClientMetadata.Newf(`ping mode ("backchannel_token_delivery_mode": "ping") and backchannel_client_notification_endpoint go together`)
	}
	out, err := s.clients().Create(c.Request().Context(), provider.ClientSpec{
		Name: req.Name, RedirectURIs: req.RedirectURIs, PostLogoutRedirectURIs: req.PostLogoutRedirectURIs,
		Public: req.Public, CitizenID: req.CitizenID, CIBA: req.CIBA, Sign: req.Sign, CIBAPing: req.NotificationEndpoint, IDTokenAlg: req.IDTokenAlg,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

func (s *Server) adminListClients(c echo.Context) error {
	clients, err := s.clients().List(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"clients": clients})
}

// adminEditClient changes the fields the body gives; an unknown field is refused, with every
// other problem of the edit.
func (s *Server) adminEditClient(c echo.Context) error {
	var fields map[string]json.RawMessage
	if err := decodeBody(c, &fields); err != nil {
		return err
	}
	info, err := s.clients().Edit(c.Request().Context(), c.Param("id"), provider.ClientChangeFrom(fields))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, info)
}

func (s *Server) adminDeleteClient(c echo.Context) error {
	info, err := s.clients().Delete(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, info)
}

func (s *Server) adminRotateClientSecret(c echo.Context) error {
	out, err := s.clients().RotateSecret(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// adminEvents is the operators' view of the audit log: all accounts, or ?account=<id>.
func (s *Server) adminEvents(c echo.Context) error {
	before, limit := pageParams(c)
	events, err := s.svc.ListEvents(c.Request().Context(), c.QueryParam("account"), before, limit)
	if err != nil {
		return err
	}
	return s.eventsPage(c, events, limit)
}
