package web

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/storage"
)

const sessionCookie = "mcert_session"

func (s *Server) cardChallenge(c echo.Context) error {
	ch, err := s.svc.CardChallenge(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"challenge": b64(ch.Challenge), "tbs": ch.TBS, "expires_at": rfc3339(ch.ExpiresAt)})
}

func (s *Server) cardLogin(c echo.Context) error {
	// A form on another site can POST text/plain or a form encoding, never JSON without the
	// browser asking this server first (CORS): so a card login cannot be forged from another
	// site to log the victim's browser into the attacker's session.
	if err := requireJSON(c); err != nil {
		return err
	}
	var req struct {
		Challenge   string `json:"challenge"`
		Certificate string `json:"certificate"`
		Signature   string `json:"signature"`
		PKCS7       string `json:"pkcs7"`
		CitizenID   string `json:"citizen_id"`
	}
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	p := binding.CardProof{CitizenID: req.CitizenID}
	var err error
	if p.Challenge, err = fromB64("challenge", req.Challenge); err != nil {
		return err
	}
	if req.PKCS7 != "" {
		var ok bool
		if p.PKCS7, ok = authn.DecodeSignature(req.PKCS7); !ok {
			return mcert.PKCS7NotBase64.New()
		}
	} else {
		if p.Certificate, err = fromB64("certificate", req.Certificate); err != nil {
			return err
		}
		if p.Signature, err = fromB64("signature", req.Signature); err != nil {
			return err
		}
	}
	login, err := s.svc.LoginWithCard(c.Request().Context(), p)
	if err != nil {
		return err
	}
	s.setSession(c, login.SessionToken, int(binding.SessionTTL/time.Second))
	var acct any // JSON null when the citizen has not registered yet
	if login.Account != nil {
		if acct, err = s.accountView(c.Request().Context(), *login.Account); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, map[string]any{
		"citizen": map[string]string{"name": login.Citizen.Name, "id_masked": authn.MaskCitizenID(login.Citizen.ID)},
		"account": acct, "session": map[string]any{"expires_at": rfc3339(login.SessionExpires), "expires_in": int(binding.SessionTTL.Seconds())},
	})
}

// getSession tells the page when its card session ends, so that it can offer to extend it.
func (s *Server) getSession(c echo.Context) error {
	sess, _, err := s.session(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.sessionView(sess))
}

func (s *Server) extendSession(c echo.Context) error {
	_, token, err := s.session(c)
	if err != nil {
		return err
	}
	sess, next, err := s.svc.ExtendSession(c.Request().Context(), token)
	if err != nil {
		return err
	}
	s.setSession(c, next, int(sess.ExpiresAt.Sub(s.svc.Now())/time.Second)+1) // the service's clock, which tests set
	return c.JSON(http.StatusOK, s.sessionView(sess))
}

// sessionView tells when the session ends, also as seconds from now: the page counts down from
// those, for the computer's clock may be wrong.
func (s *Server) sessionView(sess storage.Session) map[string]any {
	return map[string]any{
		"expires_at": rfc3339(sess.ExpiresAt), "expires_in": int(sess.ExpiresAt.Sub(s.svc.Now()).Seconds()),
		"extendable_until": rfc3339(sess.CreatedAt.Add(binding.SessionMaxAge)),
	}
}

func (s *Server) cardLogout(c echo.Context) error {
	if ck, err := c.Cookie(sessionCookie); err == nil {
		if err := s.svc.Logout(c.Request().Context(), ck.Value); err != nil {
			return err
		}
	}
	s.setSession(c, "", -1)
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) setSession(c echo.Context, token string, maxAge int) {
	c.SetCookie(&http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: strings.HasPrefix(s.cfg.PublicURL, "https://"),
	})
}

// session returns the request's card session and its cookie value.
func (s *Server) session(c echo.Context) (storage.Session, string, error) {
	var token string
	if ck, err := c.Cookie(sessionCookie); err == nil {
		token = ck.Value
	}
	sess, err := s.svc.Session(c.Request().Context(), token)
	return sess, token, err
}

type contactBody struct {
	Email *string `json:"email"`
	Phone *string `json:"phone"`
}

func (s *Server) createAccount(c echo.Context) error {
	return s.writeAccount(c, http.StatusCreated, s.svc.Register)
}

func (s *Server) updateAccount(c echo.Context) error {
	return s.writeAccount(c, http.StatusOK, s.svc.UpdateContact)
}

func (s *Server) writeAccount(c echo.Context, status int, write func(ctx context.Context, sess storage.Session, ct binding.Contact) (storage.Account, error)) error {
	return s.respondAccount(c, status, func(ctx context.Context, sess storage.Session) (storage.Account, error) {
		var req contactBody
		if err := decodeBody(c, &req); err != nil {
			return storage.Account{}, err
		}
		// The citizen's mails speak the language of the page they registered on.
		return write(ctx, sess, binding.Contact{Email: req.Email, Phone: req.Phone, Lang: s.language(c)})
	})
}

// respondAccount runs op with the request's card session and answers with the account it
// returns, as PROTOCOL.md's <account>.
func (s *Server) respondAccount(c echo.Context, status int, op func(context.Context, storage.Session) (storage.Account, error)) error {
	sess, _, err := s.session(c)
	if err != nil {
		return err
	}
	a, err := op(c.Request().Context(), sess)
	if err != nil {
		return err
	}
	view, err := s.accountView(c.Request().Context(), a)
	if err != nil {
		return err
	}
	return c.JSON(status, view)
}

func (s *Server) getAccount(c echo.Context) error {
	return s.respondAccount(c, http.StatusOK, s.svc.Account)
}

func (s *Server) createBinding(c echo.Context) error {
	sess, token, err := s.session(c)
	if err != nil {
		return err
	}
	b, err := s.svc.CreateBinding(c.Request().Context(), sess, token)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]string{
		"id": b.ID, "qr_text": b.QRText, "qr_png": "/api/v1/bindings/" + b.ID + "/qr.png", "expires_at": rfc3339(b.ExpiresAt),
	})
}

func (s *Server) getBinding(c echo.Context) error {
	sess, _, err := s.session(c)
	if err != nil {
		return err
	}
	st, err := s.svc.Binding(c.Request().Context(), sess, c.Param("id"))
	if err != nil {
		return err
	}
	out := map[string]any{"status": st.Status}
	if st.Reason != "" {
		out["reason"] = st.Reason
	}
	if st.Device != nil {
		out["device"] = s.deviceView(*st.Device)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) bindingQR(c echo.Context) error {
	sess, token, err := s.session(c)
	if err != nil {
		return err
	}
	png, err := s.svc.BindingQR(c.Request().Context(), sess, token, c.Param("id"))
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, "image/png", png)
}

// bindInvite shows the phone whose account a binding QR code joins, before it is used.
func (s *Server) bindInvite(c echo.Context) error {
	token, err := tokenBody(c)
	if err != nil {
		return err
	}
	inv, err := s.svc.BindingInvite(c.Request().Context(), token)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{
		"account": map[string]string{"name": inv.Name, "id_masked": inv.IDMasked}, "expires_at": rfc3339(inv.ExpiresAt),
	})
}

func (s *Server) bindBegin(c echo.Context) error {
	var req struct {
		Token      string `json:"token"`
		DeviceName string `json:"device_name"`
	}
	if err := decodeBody(c, &req); err != nil {
		return err
	}
	if err := requireField("token", req.Token != ""); err != nil {
		return err
	}
	creation, err := s.svc.BeginBind(c.Request().Context(), req.Token, req.DeviceName)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"publicKey": creation.Response})
}

func (s *Server) bindFinish(c echo.Context) error {
	token, credential, err := credentialBody(c)
	if err != nil {
		return err
	}
	d, deviceToken, err := s.svc.FinishBind(c.Request().Context(), token, credential)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"device": s.deviceView(d), "device_token": deviceToken})
}

// accountView is PROTOCOL.md's <account>.
func (s *Server) accountView(ctx context.Context, a storage.Account) (map[string]any, error) {
	devices, err := s.svc.Devices(ctx, a)
	if err != nil {
		return nil, err
	}
	views := make([]map[string]any, 0, len(devices))
	for _, d := range devices {
		views = append(views, s.deviceView(d))
	}
	return map[string]any{
		"id": a.ID, "name": a.Name, "id_masked": authn.MaskCitizenID(a.CitizenID), "email": a.Email, "email_verified": a.EmailVerified,
		"phone": a.Phone, "created_at": rfc3339(a.CreatedAt), "status": a.Status, "devices": views,
	}, nil
}

// deviceView is PROTOCOL.md's <device>.
func (s *Server) deviceView(d storage.Device) map[string]any {
	now := s.svc.Now()
	var lastUsed any
	if d.LastUsedAt != nil {
		lastUsed = rfc3339(*d.LastUsedAt)
	}
	var cloneWarning any
	if d.CloneWarningAt != nil {
		cloneWarning = rfc3339(*d.CloneWarningAt)
	}
	return map[string]any{
		"id": d.ID, "name": d.Name, "created_at": rfc3339(d.CreatedAt), "expires_at": rfc3339(d.ExpiresAt),
		"last_used_at": lastUsed, "status": binding.DeviceStatus(d, now),
		"expires_soon": binding.ExpiresSoon(d, now), "clone_warning_at": cloneWarning,
	}
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
