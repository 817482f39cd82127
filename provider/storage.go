package provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcert/mcert"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/storage"
)

// opStorage is op's view of mcert's store.
type opStorage struct{ p *Provider }

var _ op.Storage = (*opStorage)(nil)

func (s *opStorage) now() time.Time { return s.p.svc.Now().UTC() }

func (s *opStorage) Health(ctx context.Context) error { return s.p.svc.Ping(ctx) }

// CreateAuthRequest records the login behind an authorization request op has validated
// (client, redirect URI, scopes). PKCE is S256 or nothing, and required of public clients.
func (s *opStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, err := s.p.svc.Client(ctx, req.ClientID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client_id")
	case err != nil:
		return nil, err
	case c.Disabled: // since op's validation of the request, which refused it if it was then
		return nil, errDisabledClient()
	}
	switch {
	case req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case req.CodeChallenge == "" && c.SecretHash == nil:
		return nil, oidc.ErrInvalidRequest().WithDescription("a public client must use PKCE (code_challenge with S256)")
	}
	raw, err := json.Marshal(request{
		Scopes: req.Scopes, Nonce: req.Nonce, RedirectURI: req.RedirectURI, State: req.State,
		ResponseType: string(req.ResponseType), ResponseMode: string(req.ResponseMode),
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: string(req.CodeChallengeMethod),
	})
	if err != nil {
		return nil, err
	}
	browser, ok := ctx.Value(browserKey{}).(binding.Browser)
	if !ok {
		return nil, errors.New("provider: an authorization request without its browser")
	}
	id := newID()
	switch err := s.p.svc.StartRedirectLogin(ctx, id, c, raw, binding.RequiredACR(req.ACRValues), browser); {
	case mcert.ErrorKind(err) == mcert.TooMany:
		return nil, &oidc.Error{ErrorType: "temporarily_unavailable", Description: "too many login requests from this network; try again in a minute"}
	case err != nil:
		return nil, err
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *opStorage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	l, err := s.p.svc.AuthRequest(ctx, id)
	if mcert.ErrorKind(err) == mcert.NotFound {
		return nil, oidc.ErrInvalidRequest().WithDescription("unknown or expired login request; start again")
	}
	if err != nil {
		return nil, err
	}
	return s.p.authRequest(id, l)
}

// SaveAuthCode attaches the code op made to the approved login.
func (s *opStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	return s.p.svc.AttachCode(ctx, id, code)
}

func (s *opStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	l, err := s.p.svc.LoginByCode(ctx, code)
	if mcert.ErrorKind(err) == mcert.Invalid {
		return nil, oidc.ErrInvalidGrant().WithDescription("the code is unknown, used or expired")
	}
	if err != nil {
		return nil, err
	}
	return s.p.redemption(l)
}

// A redemption is one request for a login's tokens: the exchange of its code, or a CIBA poll
// that found it approved. Its authorization request's id, which op hands back to
// DeleteAuthRequest once the token response is made, names the login by its hash (the login's
// own id is not stored) and the access token it issues, made up now: the two steps of
// binding.IssueToken and binding.CompleteLogin.
const redemptionPrefix = "redeem:"

func (p *Provider) redemption(l storage.Login) (*authRequest, error) {
	return p.authRequest(redemptionPrefix+base64.RawURLEncoding.EncodeToString(l.Hash)+"."+newID(), l)
}

// redeemed reads a redemption's id: the login's hash and the access token's ID.
func redeemed(id string) (loginHash []byte, tokenID string, ok bool) {
	rest, ok := strings.CutPrefix(id, redemptionPrefix)
	h, tokenID, cut := strings.Cut(rest, ".")
	hash, err := base64.RawURLEncoding.DecodeString(h)
	return hash, tokenID, ok && cut && err == nil
}

// DeleteAuthRequest completes the redemption once its tokens are made: the login is done, and
// of redemptions racing for it every other one fails here, its token deleted unanswered.
func (s *opStorage) DeleteAuthRequest(ctx context.Context, id string) error {
	hash, tokenID, ok := redeemed(id)
	if !ok {
		return errors.New("provider: tokens for an authorization request that is no redemption")
	}
	return oauthErr(s.p.svc.CompleteLogin(ctx, hash, tokenID))
}

// oauthErr is err as op answers it: binding's invalid_grant as op's.
func oauthErr(err error) error {
	var me *mcert.Error
	if errors.As(err, &me) && me.Code == mcert.InvalidGrant.Name {
		return oidc.ErrInvalidGrant().WithDescription("%s", me.Message)
	}
	return err
}

func (s *opStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	a, ok := req.(*authRequest)
	hash, tokenID, redemption := redeemed(a.GetID())
	if !ok || !redemption {
		return "", time.Time{}, errors.New("provider: an access token for a request that is no redemption")
	}
	if _, err := s.p.svc.IssueToken(ctx, hash, a.login.ClientID, tokenID, req.GetScopes()); err != nil {
		return "", time.Time{}, oauthErr(err)
	}
	// op computes expires_in from this against the wall clock.
	return tokenID, time.Now().Add(binding.AccessTokenTTL), nil
}

var errNoRefresh = oidc.ErrUnsupportedGrantType().WithDescription("refresh tokens are not offered: every login is approved on the phone")

func (s *opStorage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errNoRefresh
}

func (s *opStorage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *opStorage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

// TerminateSession is RP-initiated logout: mcert keeps no single-sign-on session (every login
// is approved on the phone), so what ends is the relying party's access tokens.
func (s *opStorage) TerminateSession(ctx context.Context, sub, clientID string) error {
	accountID, err := s.p.subs.account(clientID, sub)
	if err != nil {
		return nil // a hint for another client or a stale subject: nothing of ours to end
	}
	return s.p.svc.EndSession(ctx, accountID, clientID)
}

func (s *opStorage) RevokeToken(ctx context.Context, tokenID, _, clientID string) *oidc.Error {
	err := s.p.svc.RevokeToken(ctx, tokenID, clientID)
	var oe *oidc.Error
	switch {
	case err == nil:
		return nil
	case errors.As(oauthErr(err), &oe):
		return oe
	}
	s.p.logger.Error("revoke a token", "err", err)
	return oidc.ErrServerError()
}

func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.p.svc.Client(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client_id")
	case err != nil:
		return nil, err
	case c.Disabled:
		return nil, errDisabledClient()
	}
	u, _ := url.Parse(s.p.issuer)
	return client{Client: c, devMode: u != nil && u.Scheme == "http"}, nil
}

func (s *opStorage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	_, err := s.p.authenticate(ctx, credentials{id, secret}, false)
	return err
}

func (s *opStorage) SetUserinfoFromScopes(ctx context.Context, info *oidc.UserInfo, sub, clientID string, scopes []string) error {
	accountID, err := s.p.subs.account(clientID, sub)
	if err != nil {
		return err
	}
	a, c, err := s.p.svc.Grant(ctx, clientID, accountID)
	if err != nil {
		return err
	}
	s.p.fillUserinfo(info, a, c, scopes)
	return nil
}

func (s *opStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	g, err := s.p.svc.ActiveToken(ctx, tokenID)
	if err != nil {
		return err
	}
	s.p.fillUserinfo(info, g.Account, g.Client, g.Token.Scopes)
	return nil
}

func (s *opStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, _, clientID string) error {
	g, err := s.p.svc.ActiveToken(ctx, tokenID)
	if err != nil {
		return err
	}
	if g.Token.ClientID != clientID {
		return binding.ErrInactiveToken
	}
	var info oidc.UserInfo
	s.p.fillUserinfo(&info, g.Account, g.Client, g.Token.Scopes)
	resp.SetUserInfo(&info)
	resp.Active, resp.ClientID, resp.Scope = true, g.Token.ClientID, g.Token.Scopes
	resp.Expiration = oidc.FromTime(g.Token.ExpiresAt)
	return nil
}

// fillUserinfo sets the claims the scopes grant: the pairwise sub always, name with profile,
// email, phone_number, and citizen_id only for a relying party registered for it.
func (p *Provider) fillUserinfo(info *oidc.UserInfo, a storage.Account, c storage.Client, scopes []string) {
	info.Subject = p.subs.of(c.ID, a.ID)
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.Name = a.Name
	}
	if slices.Contains(scopes, oidc.ScopeEmail) {
		// mcert checks the address's form, not that the citizen reads it.
		info.Email, info.EmailVerified = a.Email, oidc.Bool(a.EmailVerified)
	}
	if slices.Contains(scopes, oidc.ScopePhone) {
		info.PhoneNumber, info.PhoneNumberVerified = taiwanE164(a.Phone), false
	}
	if slices.Contains(scopes, scopeCitizenID) && c.CitizenID {
		info.AppendClaims(claimCitizenID, a.CitizenID)
	}
}

// taiwanE164 writes 0912345678 as +886912345678, the form OIDC's phone_number asks for.
func taiwanE164(phone string) string {
	if len(phone) == 10 && phone[0] == '0' {
		return "+886" + phone[1:]
	}
	return phone
}

func (s *opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile client authentication is not offered")
}

func (s *opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("the JWT profile grant is not offered")
}
