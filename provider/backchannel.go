package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/storage"
)

// The back-channel endpoints (token, revocation, introspection, userinfo) authenticate by what
// the request carries. mcert answers them itself where op answers in text/plain, or without
// the challenge RFC 6749 and RFC 6750 ask for; op keeps the code exchange.

// credentials are the client authentication of a back-channel request.
type credentials struct{ id, secret string }

// clientCredentials reads client_secret_basic or client_secret_post from a parsed body.
func clientCredentials(r *http.Request) (credentials, error) {
	f := r.PostForm
	if f.Has("client_assertion") || f.Has("client_assertion_type") {
		return credentials{}, oidc.ErrInvalidClient().WithDescription("private_key_jwt is not offered: authenticate with client_secret_basic or client_secret_post")
	}
	id, secret, ok, err := BasicCredentials(r)
	switch {
	case err != nil:
		return credentials{}, oidc.ErrInvalidClient().WithDescription("%s", err)
	case !ok:
		return credentials{f.Get("client_id"), f.Get("client_secret")}, nil
	case f.Has("client_secret"):
		return credentials{}, oidc.ErrInvalidRequest().WithDescription("the client authenticated twice, by Basic and client_secret: use one method (RFC 6749 section 2.3)")
	case f.Get("client_id") != "" && f.Get("client_id") != id:
		return credentials{}, oidc.ErrInvalidRequest().WithDescription("client_id is not the client of the Basic credentials")
	}
	return credentials{id, secret}, nil
}

// BasicCredentials are the client ID and secret of client_secret_basic, if the request has
// them (ok). They are form-encoded before they are joined (RFC 6749 section 2.3.1; x/oauth2
// escapes them with url.QueryEscape), which r.BasicAuth does not undo; err says they were not.
func BasicCredentials(r *http.Request) (id, secret string, ok bool, err error) {
	id, secret, ok = r.BasicAuth()
	if !ok {
		return "", "", false, nil
	}
	var idErr, secretErr error
	id, idErr = url.QueryUnescape(id)
	secret, secretErr = url.QueryUnescape(secret)
	if idErr != nil || secretErr != nil {
		return "", "", true, errors.New("the Basic credentials must be form-encoded (RFC 6749 section 2.3.1)")
	}
	return id, secret, true, nil
}

func errDisabledClient() *oidc.Error {
	return oidc.ErrInvalidClient().WithDescription("%s", mcert.ClientDisabled.Message)
}

// authenticate checks the client of a request (binding.AuthenticateClient), answering as OAuth
// does.
func (p *Provider) authenticate(ctx context.Context, cr credentials, public bool) (storage.Client, error) {
	c, err := p.svc.AuthenticateClient(ctx, cr.id, cr.secret, public)
	var me *mcert.Error
	switch {
	case err == nil:
		return c, nil
	case errors.As(err, &me) && me.Code == mcert.InvalidClient.Name:
		return c, oidc.ErrInvalidClient().WithDescription("%s", me.Message)
	}
	return c, oidc.ErrServerError().WithParent(err)
}

// backChannel reads a back-channel request, a POST with its parameters in the body (RFC 6749
// section 3.2), and says whether to go on. op reads r.Form, which has the query's too: r.Form
// becomes the body alone, so that op sees what mcert's checks saw.
func backChannel(w http.ResponseWriter, r *http.Request) bool {
	noStore(w)
	if !allow(w, r, http.MethodPost) {
		return false
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, mcert.InvalidRequest, "the body must be application/x-www-form-urlencoded")
		return false
	}
	r.Form = r.PostForm
	return true
}

// writeError writes err as its RFC's error body with its status; anything but a client's
// error is logged and shown as server_error.
func (p *Provider) writeError(w http.ResponseWriter, err error) {
	var oe *oidc.Error
	if !errors.As(err, &oe) || oe.ErrorType == oidc.ServerError {
		p.logger.Error("OpenID provider", "err", err)
		oauthError(w, http.StatusInternalServerError, mcert.ServerError, "internal error; try again later")
		return
	}
	status := http.StatusBadRequest
	if oe.ErrorType == oidc.InvalidClient {
		// RFC 6749 section 5.2: 401 with the challenge of the scheme the client used, or,
		// having used none that way, could use.
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Basic realm="mcert"`)
	}
	oauthError(w, status, codeOf(oe), oe.Description)
}

// token is the token endpoint: CIBA's grant here, the code exchange to op, after mcert has
// authenticated the client (for RFC 6749's errors and the client's ID token algorithm) and
// made one check op leaves out: a code issued with a PKCE challenge is redeemed only with its
// verifier, whatever the client's authentication.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if !backChannel(w, r) {
		return
	}
	cr, err := clientCredentials(r)
	if err != nil {
		p.writeError(w, err)
		return
	}
	if r.PostForm.Get("grant_type") == cibaGrantType {
		p.cibaToken(w, r, cr)
		return
	}
	c, err := p.authenticate(r.Context(), cr, true)
	if err != nil {
		p.writeError(w, err)
		return
	}
	if r.PostForm.Get("grant_type") == string(oidc.GrantTypeCode) && r.PostForm.Get("code_verifier") == "" {
		l, err := p.svc.LoginByCode(r.Context(), r.PostForm.Get("code"))
		var req request
		if err == nil && json.Unmarshal(l.Request, &req) == nil && req.CodeChallenge != "" {
			oauthError(w, http.StatusBadRequest, mcert.InvalidGrant, "code_verifier is required: the authorization request used PKCE")
			return
		}
	}
	p.op.ServeHTTP(w, r.WithContext(withIDTokenAlg(r.Context(), c.IDTokenAlg)))
}

// accessToken is the stored token's ID and the subject in an access token op issued, which
// seals "<token ID>:<subject>" with the provider's key.
func (p *Provider) accessToken(token string) (id, sub string, ok bool) {
	plain, err := p.op.Crypto().Decrypt(token)
	if err != nil {
		return "", "", false
	}
	return strings.Cut(plain, ":")
}

// userinfo is OpenID Connect's UserInfo endpoint, with the errors of RFC 6750 section 3.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	if !allow(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	token, err := op.ParseUserinfoRequest(r, p.op.Decoder())
	switch {
	case err != nil:
		bearerError(w, http.StatusBadRequest, mcert.InvalidRequest, "the request's parameters could not be read")
		return
	case token == "":
		// A request with no token gets the bare challenge (RFC 6750 section 3.1).
		w.Header().Set("WWW-Authenticate", `Bearer realm="mcert"`)
		oauthError(w, http.StatusUnauthorized, mcert.InvalidRequest, "send the access token as Authorization: Bearer <token>")
		return
	}
	info := new(oidc.UserInfo)
	id, sub, ok := p.accessToken(token)
	if ok {
		err = p.op.Storage().SetUserinfoFromToken(r.Context(), info, id, sub, r.Header.Get("Origin"))
	}
	switch {
	case !ok || errors.Is(err, binding.ErrInactiveToken):
		bearerError(w, http.StatusUnauthorized, mcert.InvalidToken, "the access token is unknown, revoked or expired")
	case err != nil:
		p.writeError(w, err)
	default:
		writeJSON(w, http.StatusOK, info)
	}
}

// bearerError is an error of a request with a bearer token: the challenge says it (RFC 6750
// section 3), and the body too, as every mcert error has one. The description is ASCII with
// no quotes, as the challenge's quoted string needs.
func bearerError(w http.ResponseWriter, status int, code *mcert.Code, description string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="mcert", error="`+code.Name+`", error_description="`+description+`"`)
	oauthError(w, status, code, description)
}

// revoke is token revocation (RFC 7009). mcert issues access tokens only, so a token_type_hint
// changes nothing (section 2.1 has the server look beyond it), and a token that is not one is
// no error (section 2.2).
func (p *Provider) revoke(w http.ResponseWriter, r *http.Request) {
	if !backChannel(w, r) {
		return
	}
	cr, err := clientCredentials(r)
	var c storage.Client
	if err == nil {
		c, err = p.authenticate(r.Context(), cr, true)
	}
	if err != nil {
		p.writeError(w, err)
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		oauthError(w, http.StatusBadRequest, mcert.InvalidRequest, "token is missing")
		return
	}
	if id, _, ok := p.accessToken(token); ok {
		if oe := p.op.Storage().RevokeToken(r.Context(), id, "", c.ID); oe != nil {
			p.writeError(w, oe)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// introspect is token introspection (RFC 7662), for confidential clients and their own tokens:
// any other token is inactive.
func (p *Provider) introspect(w http.ResponseWriter, r *http.Request) {
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
	token := r.PostForm.Get("token")
	if token == "" {
		oauthError(w, http.StatusBadRequest, mcert.InvalidRequest, "token is missing")
		return
	}
	resp := new(oidc.IntrospectionResponse)
	if id, sub, ok := p.accessToken(token); ok {
		switch err := p.op.Storage().SetIntrospectionFromToken(r.Context(), resp, id, sub, c.ID); {
		case errors.Is(err, binding.ErrInactiveToken):
			resp = new(oidc.IntrospectionResponse)
		case err != nil:
			p.writeError(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, resp)
}
