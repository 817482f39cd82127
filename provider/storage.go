package provider

import (
	"context"
	"crypto/sha256"
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

func (s *opStorage) Health(ctx context.Context) error { return s.p.store.Ping(ctx) }

// CreateAuthRequest records the login behind an authorization request op has validated
// (client, redirect URI, scopes). PKCE is S256 or nothing, and required of public clients.
func (s *opStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, err := s.p.store.GetClient(ctx, req.ClientID)
	switch {
	case err != nil:
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client_id")
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
	switch err := s.p.svc.StartRedirectLogin(ctx, id, c, raw, browser); {
	case mcert.ErrorKind(err) == mcert.TooMany:
		return nil, &oidc.Error{ErrorType: "temporarily_unavailable", Description: "too many login requests from this network; try again in a minute"}
	case err != nil:
		return nil, err
	}
	return s.AuthRequestByID(ctx, id)
}

func (s *opStorage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	l, err := s.p.store.GetLogin(ctx, binding.LoginTokenHash(id))
	if err != nil || l.Kind != storage.LoginRedirect || !s.now().Before(l.ExpiresAt) {
		return nil, oidc.ErrInvalidRequest().WithDescription("unknown or expired login request; start again")
	}
	return s.p.authRequest(id, l)
}

// SaveAuthCode attaches the code op made to the approved login.
func (s *opStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	_, err := s.p.store.UpdateLogin(ctx, binding.LoginTokenHash(id), func(l storage.Login) (storage.Login, error) {
		if l.Status != storage.LoginApproved {
			return l, errors.New("the login is not approved")
		}
		l.CodeHash = codeHash(code)
		return l, nil
	})
	return err
}

// hashIDPrefix marks an authorization request id that is the hash of the real one.
const hashIDPrefix = "sha256:"

func codeHash(code string) []byte {
	h := sha256.Sum256([]byte(code))
	return h[:]
}

func (s *opStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	l, err := s.p.store.GetLoginByCode(ctx, codeHash(code))
	if err != nil || l.Status != storage.LoginApproved || !s.now().Before(l.ExpiresAt) {
		return nil, oidc.ErrInvalidGrant().WithDescription("the code is unknown, used or expired")
	}
	// The login's id is not stored, only its hash, which stands in for the id from here on:
	// op needs it only to call DeleteAuthRequest after issuing the tokens.
	return s.p.authRequest(hashIDPrefix+base64.RawURLEncoding.EncodeToString(l.Hash), l)
}

// DeleteAuthRequest marks the login done once its tokens are issued, so the code works once.
func (s *opStorage) DeleteAuthRequest(ctx context.Context, id string) error {
	hash := binding.LoginTokenHash(id)
	if h, ok := strings.CutPrefix(id, hashIDPrefix); ok {
		hash, _ = base64.RawURLEncoding.DecodeString(h)
	}
	_, err := s.p.store.UpdateLogin(ctx, hash, func(l storage.Login) (storage.Login, error) {
		l.Status, l.CodeHash = storage.LoginDone, nil
		return l, nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

// accountOf is the account a token request is for.
func (s *opStorage) accountOf(req op.TokenRequest) (string, string, error) {
	if a, ok := req.(*authRequest); ok {
		return a.login.ClientID, a.login.AccountID, nil
	}
	return "", "", errors.New("unexpected token request")
}

func (s *opStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	clientID, accountID, err := s.accountOf(req)
	if err != nil {
		return "", time.Time{}, err
	}
	now := s.now()
	t := storage.Token{
		ID: newID(), ClientID: clientID, AccountID: accountID, Scopes: req.GetScopes(),
		CreatedAt: now, ExpiresAt: now.Add(accessTokenTTL),
	}
	if a, ok := req.(*authRequest); ok {
		t.AuthTime = a.GetAuthTime()
	}
	if err := s.p.store.CreateToken(ctx, t); err != nil {
		return "", time.Time{}, err
	}
	// op computes expires_in from this against the wall clock.
	return t.ID, time.Now().Add(accessTokenTTL), nil
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
	_, err = s.p.store.DeleteTokens(ctx, accountID, clientID)
	return err
}

func (s *opStorage) RevokeToken(ctx context.Context, tokenID, _, clientID string) *oidc.Error {
	t, err := s.p.store.GetToken(ctx, tokenID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil // RFC 7009: revoking an unknown token is not an error
	}
	if err != nil {
		return oidc.ErrServerError()
	}
	if t.ClientID != clientID {
		return oidc.ErrInvalidGrant().WithDescription("the token was issued to another client")
	}
	if err := s.p.store.DeleteToken(ctx, tokenID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return oidc.ErrServerError()
	}
	return nil
}

func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.p.store.GetClient(ctx, id)
	switch {
	case err != nil:
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client_id")
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
	return s.p.fillUserinfo(ctx, info, clientID, accountID, scopes)
}

func (s *opStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, _, _ string) error {
	t, err := s.p.store.GetToken(ctx, tokenID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return errInactiveToken
	case err != nil:
		return err
	case !s.now().Before(t.ExpiresAt):
		return errInactiveToken
	}
	if err := s.p.activeClient(ctx, t.ClientID); err != nil {
		return err
	}
	return s.p.fillUserinfo(ctx, info, t.ClientID, t.AccountID, t.Scopes)
}

func (s *opStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, _, clientID string) error {
	t, err := s.p.store.GetToken(ctx, tokenID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return errInactiveToken
	case err != nil:
		return err
	case !s.now().Before(t.ExpiresAt) || t.ClientID != clientID:
		return errInactiveToken
	}
	if err := s.p.activeClient(ctx, t.ClientID); err != nil {
		return err
	}
	var info oidc.UserInfo
	if err := s.p.fillUserinfo(ctx, &info, t.ClientID, t.AccountID, t.Scopes); err != nil {
		return err
	}
	resp.SetUserInfo(&info)
	resp.Active, resp.ClientID, resp.Scope = true, t.ClientID, t.Scopes
	resp.Expiration = oidc.FromTime(t.ExpiresAt)
	return nil
}

// activeClient is nil when the client a token was issued to is registered and enabled, else
// errInactiveToken: the tokens of a deleted or disabled relying party are worth nothing.
func (p *Provider) activeClient(ctx context.Context, id string) error {
	c, err := p.store.GetClient(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound) || err == nil && c.Disabled:
		return errInactiveToken
	case err != nil:
		return err
	}
	return nil
}

// fillUserinfo sets the claims the scopes grant: the pairwise sub always, name with profile,
// email, phone_number, and citizen_id only for a relying party registered for it.
func (p *Provider) fillUserinfo(ctx context.Context, info *oidc.UserInfo, clientID, accountID string, scopes []string) error {
	a, err := p.store.GetAccount(ctx, accountID)
	if err != nil {
		return err
	}
	info.Subject = p.subs.of(clientID, accountID)
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.Name = a.Name
	}
	if slices.Contains(scopes, oidc.ScopeEmail) {
		// mcert checks the address's form, not that the citizen reads it.
		info.Email, info.EmailVerified = a.Email, false
	}
	if slices.Contains(scopes, oidc.ScopePhone) {
		info.PhoneNumber, info.PhoneNumberVerified = taiwanE164(a.Phone), false
	}
	if slices.Contains(scopes, scopeCitizenID) {
		c, err := p.store.GetClient(ctx, clientID)
		if err != nil {
			return err
		}
		if c.CitizenID {
			info.AppendClaims(claimCitizenID, a.CitizenID)
		}
	}
	return nil
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
