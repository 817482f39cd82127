package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/storage"
)

// qrCacheSize bounds the login QR images kept in memory: about 1 KB each, and far more than the
// logins whose pages are open at once on one instance.
const qrCacheSize = 1024

// loginRoutes mounts the phone's side of relying-party logins (PROTOCOL.md 4a, 4b) and the
// login page's state (section 6).
func (s *Server) loginRoutes(api *echo.Group) {
	api.POST("/phone/login/begin", s.loginBegin)
	api.POST("/phone/login/finish", s.loginFinish)
	api.POST("/phone/login/deny", s.loginDeny)
	api.GET("/phone/inbox", s.inbox)
	api.GET("/logins/:id", s.getLogin)
	api.POST("/logins/:id/qr", s.refreshLoginQR)
	api.POST("/logins/:id/cancel", s.cancelLogin)
	api.GET("/logins/:id/qr.png", s.loginQR(newQRCache(qrCacheSize)))
}

func (s *Server) loginBegin(c echo.Context) error {
	token, err := tokenBody(c)
	if err != nil {
		return err
	}
	p, err := s.svc.BeginLogin(c.Request().Context(), token)
	if err != nil {
		return err
	}
	out := map[string]any{"publicKey": p.Options.Response, "client_name": p.ClientName, "code": p.Code, "requested_at": rfc3339(p.RequestedAt)}
	if p.BindingMessage != "" {
		out["binding_message"] = p.BindingMessage
	}
	if p.Browser != "" {
		out["browser"] = p.Browser
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) loginFinish(c echo.Context) error {
	token, credential, err := credentialBody(c)
	if err != nil {
		return err
	}
	if err := s.svc.FinishLogin(c.Request().Context(), token, credential); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "approved"})
}

func (s *Server) loginDeny(c echo.Context) error {
	token, err := tokenBody(c)
	if err != nil {
		return err
	}
	if err := s.svc.DenyLogin(c.Request().Context(), token); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "denied"})
}

func (s *Server) inbox(c echo.Context) error {
	// A missing or malformed header is answered as an unknown token is, by the service.
	d, items, err := s.svc.Inbox(c.Request().Context(), bearerToken(c.Request()))
	if err != nil {
		return err
	}
	views := make([]map[string]any, 0, len(items))
	for _, it := range items {
		v := map[string]any{"token": it.Token, "client_name": it.ClientName, "expires_at": rfc3339(it.ExpiresAt)}
		if it.Kind == storage.LoginSign {
			names := make([]map[string]string, len(it.Documents))
			for i, d := range it.Documents {
				names[i] = map[string]string{"name": d.Name}
			}
			v["kind"], v["text"], v["documents"] = "sign", it.BindingMessage, names
		} else {
			v["kind"], v["binding_message"], v["code"] = "login", it.BindingMessage, it.Code
		}
		views = append(views, v)
	}
	// The device, with expires_soon, lets the app remind the citizen to bind again in time.
	return c.JSON(http.StatusOK, map[string]any{"requests": views, "device": s.deviceView(d)})
}

// bearerToken is the token of an Authorization: Bearer header (RFC 6750; the scheme is
// case-insensitive), or "" without one.
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// browserSecret is the secret of the browser that made the request (binding.Browser), or "".
func (s *Server) browserSecret(c echo.Context) string {
	if ck, err := c.Cookie(binding.BrowserCookie(s.cfg.PublicURL)); err == nil {
		return ck.Value
	}
	return ""
}

// loginContinue lets only the browser that started the login back to the website with the
// code (PROTOCOL.md section 6); to any other the login does not exist.
func (s *Server) loginContinue(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, err := s.svc.RedirectLogin(c.Request().Context(), c.QueryParam("id"), s.browserSecret(c)); err != nil {
			return err
		}
		return next(c)
	}
}

// loginPageFor serves the login page to the browser that started the login only.
func (s *Server) loginPageFor(c echo.Context) error {
	if _, err := s.svc.RedirectLogin(c.Request().Context(), c.Param("id"), s.browserSecret(c)); err != nil {
		return err
	}
	return s.render(c, loginPage, pageData{})
}

func (s *Server) getLogin(c echo.Context) error {
	p, err := s.svc.LoginPage(c.Request().Context(), c.Param("id"), s.browserSecret(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.loginView(c, p))
}

// cancelLogin is the citizen cancelling on the login page: the website gets access_denied.
func (s *Server) cancelLogin(c echo.Context) error {
	p, err := s.svc.CancelLogin(c.Request().Context(), c.Param("id"), s.browserSecret(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.loginView(c, p))
}

func (s *Server) refreshLoginQR(c echo.Context) error {
	p, err := s.svc.RefreshLoginQR(c.Request().Context(), c.Param("id"), s.browserSecret(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.loginView(c, p))
}

// loginView is PROTOCOL.md's login page state; "continue" appears once the phone has answered:
// approved, it brings the code to the website; denied, the website's access_denied error.
func (s *Server) loginView(c echo.Context, p binding.LoginPage) map[string]string {
	id := c.Param("id")
	out := map[string]string{
		"status": p.Status, "qr_text": p.QRText, "qr_png": "/api/v1/logins/" + id + "/qr.png",
		"code": p.Code, "client_name": p.ClientName, "expires_at": rfc3339(p.ExpiresAt),
	}
	if p.Reason != "" {
		out["reason"] = p.Reason
	}
	if (p.Status == "approved" || p.Status == "denied" || p.Status == "refused") && s.cfg.ContinueURL != nil {
		out["continue"] = s.cfg.ContinueURL(c.Request().Context(), id)
	}
	return out
}

var errLoginQRExpired = mcert.LoginQRExpired.New()

// loginQR serves the image of the login page's current QR code. It is drawn from the state in
// the store, so any instance can serve it; the cache only saves drawing it again.
func (s *Server) loginQR(cache *qrCache) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := s.svc.LoginPage(c.Request().Context(), c.Param("id"), s.browserSecret(c))
		if err != nil {
			return err
		}
		if p.Status == "expired" {
			return errLoginQRExpired
		}
		png, err := cache.png(p.QRText)
		if err != nil {
			return err
		}
		return c.Blob(http.StatusOK, "image/png", png)
	}
}
