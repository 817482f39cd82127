package provider

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/storage"
)

// backchannelAuthorize is CIBA's backchannel authentication endpoint (CIBA Core 1.0, section
// 7): a relying party's back end asks for a login by the citizen's national ID.
func (p *Provider) backchannelAuthorize(w http.ResponseWriter, r *http.Request) {
	if !backChannel(w, r) {
		return
	}
	cr, err := clientCredentials(r)
	var c storage.Client
	if err == nil {
		c, err = p.authenticate(r.Context(), cr, false)
	}
	if err != nil {
		p.writeError(w, err)
		return
	}
	f := r.PostForm
	if !c.CIBA {
		oauthError(w, http.StatusBadRequest, mcert.UnauthorizedClient, "this client is not registered for decoupled (CIBA) logins")
		return
	}
	scopes := strings.Fields(f.Get("scope"))
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		oauthError(w, http.StatusBadRequest, mcert.InvalidScope, "scope must include openid")
		return
	}
	scopes, _ = op.ValidateAuthReqScopes(client{Client: c}, scopes)
	hints := 0
	for _, name := range []string{"login_hint", "login_hint_token", "id_token_hint"} {
		if f.Get(name) != "" {
			hints++
		}
	}
	hint := f.Get("login_hint")
	switch {
	case hints > 1:
		oauthError(w, http.StatusBadRequest, mcert.InvalidRequest, "give exactly one of login_hint, login_hint_token and id_token_hint (CIBA Core section 7.1)")
		return
	case hint == "":
		oauthError(w, http.StatusBadRequest, mcert.InvalidRequest, "login_hint must be the citizen's national ID; login_hint_token and id_token_hint are not supported")
		return
	}
	msg := f.Get("binding_message")
	if !mcert.PlainText(msg, 64) {
		oauthError(w, http.StatusBadRequest, mcert.InvalidBindingMessage, "binding_message must be at most 64 characters, with no control, format or bidi characters (Unicode Cc, Cf)")
		return
	}
	if f.Get("user_code") != "" {
		oauthError(w, http.StatusBadRequest, mcert.InvalidRequest, "user_code is not supported")
		return
	}
	var expiry time.Duration
	if v := f.Get("requested_expiry"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			oauthError(w, http.StatusBadRequest, mcert.InvalidRequest, "requested_expiry must be a positive number of seconds")
			return
		}
		expiry = time.Duration(n) * time.Second
	}
	token := f.Get("client_notification_token")
	switch {
	case c.CIBAPing != "" && token == "":
		oauthError(w, http.StatusBadRequest, mcert.InvalidRequest, "client_notification_token is required of a client in ping mode (CIBA Core section 7.1)")
		return
	case len(token) > 1024:
		oauthError(w, http.StatusBadRequest, mcert.InvalidRequest, "client_notification_token is longer than 1024 characters")
		return
	case c.CIBAPing == "":
		token = "" // poll mode: nothing to notify
	}
	request := func(id string) []byte {
		req := request{Scopes: scopes}
		if token != "" {
			req.AuthReqID, req.NotificationToken = id, token
		}
		raw, _ := json.Marshal(req)
		return raw
	}
	id, expiresAt, err := p.svc.StartDecoupledLogin(r.Context(), c, hint, msg, expiry, request, binding.RequiredACR(strings.Fields(f.Get("acr_values"))))
	switch {
	case err == nil:
	case mcert.ErrorKind(err) == mcert.Invalid:
		oauthError(w, http.StatusBadRequest, mcert.InvalidRequest, errMessage(err))
		return
	case mcert.ErrorKind(err) == mcert.TooMany:
		var me *mcert.Error
		errors.As(err, &me)
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(me.RetryAfter.Seconds()))))
		oauthError(w, http.StatusTooManyRequests, mcert.SlowDown, "too many decoupled login requests from this client; retry later")
		return
	case mcert.ErrorKind(err) == mcert.NotFound:
		oauthError(w, http.StatusBadRequest, mcert.UnknownUserID, errMessage(err))
		return
	case mcert.ErrorKind(err) == mcert.Forbidden: // the citizen has as many requests waiting as allowed
		oauthError(w, http.StatusForbidden, mcert.AccessDenied, errMessage(err))
		return
	default:
		p.logger.Error("backchannel authentication", "err", err)
		oauthError(w, http.StatusInternalServerError, mcert.ServerError, "internal error; try again later")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"auth_req_id": id,
		"expires_in":  int(math.Round(expiresAt.Sub(p.svc.Now()).Seconds())),
		"interval":    int(binding.CIBAInterval.Seconds()),
	})
}

func errMessage(err error) string {
	var me *mcert.Error
	if errors.As(err, &me) {
		return me.Message
	}
	return "internal error"
}

// cibaToken answers a CIBA poll (CIBA Core 1.0, section 11).
func (p *Provider) cibaToken(w http.ResponseWriter, r *http.Request, cr credentials) {
	c, err := p.authenticate(r.Context(), cr, false)
	if err != nil {
		p.writeError(w, err)
		return
	}
	if !c.CIBA {
		oauthError(w, http.StatusBadRequest, mcert.UnauthorizedClient, "this client is not registered for decoupled (CIBA) logins")
		return
	}
	l, err := p.svc.PollDecoupled(r.Context(), c.ID, r.PostForm.Get("auth_req_id"))
	var me *mcert.Error
	switch {
	case err == nil:
		p.issueCIBATokens(w, r.Context(), c, l)
	case errors.As(err, &me) && me.Code == mcert.AccessDenied.Name:
		oauthError(w, http.StatusBadRequest, mcert.AccessDenied, refusedDescription(l))
	case errors.As(err, &me) && mcert.Lookup(me.Code) != nil:
		// CIBA Core section 11 answers every error of a poll, slow_down too, with 400.
		oauthError(w, http.StatusBadRequest, mcert.Lookup(me.Code), me.Message)
	default:
		p.writeError(w, err)
	}
}

// issueCIBATokens answers the poll that found the login approved with its tokens, made as a
// code's are: op issues them through CreateAccessToken and completes the login through
// DeleteAuthRequest, so a failure before the answer leaves the login approved for the next poll.
func (p *Provider) issueCIBATokens(w http.ResponseWriter, ctx context.Context, c storage.Client, l storage.Login) {
	req, err := p.redemption(l)
	if err == nil {
		var resp *oidc.AccessTokenResponse
		ctx = withIDTokenAlg(op.ContextWithIssuer(ctx, p.issuer), c.IDTokenAlg)
		resp, err = op.CreateTokenResponse(ctx, req, client{Client: c}, p.op, true, "", "")
		if err == nil {
			writeJSON(w, http.StatusOK, resp)
			return
		}
	}
	var oe *oidc.Error
	if errors.As(err, &oe) && oe.ErrorType != oidc.ServerError {
		oauthError(w, http.StatusBadRequest, codeOf(oe), oe.Description)
		return
	}
	p.logger.Error("issue CIBA tokens", "err", err)
	oauthError(w, http.StatusInternalServerError, mcert.ServerError, "internal error; try again later")
}
