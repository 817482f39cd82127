package binding

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/storage"
)

// A login's tokens are issued in two steps, so that a failure between them loses nothing and
// a code or an approved decoupled login gives tokens once, however many requests race for it:
// IssueToken stores the access token while the login is approved, which a failure after it
// leaves approved, to be tried again; CompleteLogin, once the whole token response is made,
// marks the login done. Of racing requests, each may store a token, one completes the login,
// and the others' tokens are deleted before they could be answered with.

// Lifetimes and intervals of the relying parties' side of a login.
const (
	AccessTokenTTL = time.Hour
	// CIBAInterval is how often a relying party may poll a decoupled login at first; each
	// slow_down makes it 5 seconds longer (CIBA Core 1.0, section 11).
	CIBAInterval = 5 * time.Second
)

// ErrInactiveToken: an access token that is unknown, revoked or expired, or whose relying
// party has been deleted or disabled, which makes its tokens worth nothing.
var ErrInactiveToken = errors.New("binding: the access token is not active")

var (
	errNoLoginRequest = mcert.LoginNotFound.New()
	errCodeUnusable   = mcert.InvalidGrant.New()
	errRedeemed       = mcert.LoginRedeemed.New()
)

// AuthRequest returns the redirect login of the authorization request id while it lives.
func (s *Service) AuthRequest(ctx context.Context, id string) (storage.Login, error) {
	l, err := storage.Get(ctx, s.Store, func(tx storage.ReadTx) (storage.Login, error) { return tx.Login(hashToken(id)) })
	if errors.Is(err, storage.ErrNotFound) || err == nil && (l.Kind != storage.LoginRedirect || !s.now().Before(l.ExpiresAt)) {
		return storage.Login{}, errNoLoginRequest
	}
	return l, err
}

// AttachCode gives the approved redirect login of the authorization request id its
// authorization code, which the store knows by hash; a new code replaces an earlier one.
func (s *Service) AttachCode(ctx context.Context, id, code string) error {
	_, err := s.updateLogin(ctx, hashToken(id), func(l *storage.Login) error {
		if l.Status != storage.LoginApproved {
			return errCodeUnusable
		}
		l.CodeHash = hashToken(code)
		return nil
	})
	return err
}

// LoginByCode returns the approved login an authorization code was issued for, while its
// tokens are still to be taken.
func (s *Service) LoginByCode(ctx context.Context, code string) (storage.Login, error) {
	l, err := storage.Get(ctx, s.Store, func(tx storage.ReadTx) (storage.Login, error) { return tx.LoginByCode(hashToken(code)) })
	if errors.Is(err, storage.ErrNotFound) || err == nil && (l.Status != storage.LoginApproved || !s.now().Before(l.ExpiresAt)) {
		return storage.Login{}, errCodeUnusable
	}
	return l, err
}

// IssueToken stores the access token tokenID for the approved login with the given hash, of
// client clientID, with the scopes granted.
func (s *Service) IssueToken(ctx context.Context, loginHash []byte, clientID, tokenID string, scopes []string) (storage.Token, error) {
	now := s.now()
	t := storage.Token{ID: tokenID, ClientID: clientID, Scopes: scopes, CreatedAt: now, ExpiresAt: now.Add(AccessTokenTTL)}
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		l, err := tx.Login(loginHash)
		if errors.Is(err, storage.ErrNotFound) {
			return errCodeUnusable
		}
		if err != nil {
			return err
		}
		if l.Status != storage.LoginApproved || l.ClientID != clientID || !now.Before(l.ExpiresAt) {
			return errRedeemed
		}
		t.AccountID, t.AuthTime = l.AccountID, *l.AuthTime
		return tx.CreateToken(t)
	})
	return t, err
}

// CompleteLogin marks the login with the given hash done, its tokens taken, once the token
// response holding tokenID is made; if another request completed it first, tokenID is
// deleted and the answer is that the login has been redeemed.
func (s *Service) CompleteLogin(ctx context.Context, loginHash []byte, tokenID string) error {
	var lost bool
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		l, err := tx.Login(loginHash)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if lost = err != nil || l.Status != storage.LoginApproved; lost {
			if err := tx.DeleteToken(tokenID); !errors.Is(err, storage.ErrNotFound) {
				return err
			}
			return nil
		}
		l.Status, l.CodeHash = storage.LoginDone, nil
		return tx.PutLogin(l)
	})
	if err == nil && lost {
		return errRedeemed
	}
	return err
}

// PollDecoupled answers a relying party's poll of its decoupled login id (CIBA Core 1.0,
// section 11): the login once approved, to issue its tokens from; otherwise an error with
// the code to answer (authorization_pending, slow_down, access_denied, expired_token or
// invalid_grant) and the login, whose Reason says why a refused one was refused. A poll sooner
// than the login's interval is slow_down, and makes the interval 5 seconds longer.
func (s *Service) PollDecoupled(ctx context.Context, clientID, id string) (storage.Login, error) {
	now := s.now()
	var l storage.Login
	var answer error
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		var err error
		l, err = tx.Login(hashToken(id))
		if errors.Is(err, storage.ErrNotFound) || err == nil && (id == "" || l.Kind != storage.LoginCIBA || l.ClientID != clientID) {
			answer = mcert.UnknownAuthReqID.New()
			return nil
		}
		if err != nil {
			return err
		}
		interval, polled := cmp.Or(l.PollInterval, CIBAInterval), false
		switch {
		case l.Status == storage.LoginDone:
			answer = mcert.TokensIssued.New()
		case l.Status == storage.LoginDenied:
			answer = mcert.CitizenDenied.New()
		case l.Status == storage.LoginRefused && l.Reason == mcert.AssuranceTooLow.Name:
			answer = mcert.UnmetAuthenticationRequirements.New()
		case l.Status == storage.LoginRefused:
			answer = mcert.AccessDenied.New()
		case l.Status == storage.LoginApproved:
			answer = nil
		case !now.Before(l.ExpiresAt):
			answer = mcert.ExpiredToken.New()
		case l.LastPolledAt != nil && now.Sub(*l.LastPolledAt) < interval:
			l.PollInterval, l.LastPolledAt, polled = interval+CIBAInterval, &now, true
			answer = mcert.PollSlower.Newf(int(l.PollInterval / time.Second))
		default:
			l.PollInterval, l.LastPolledAt, polled = interval, &now, true
			answer = mcert.AuthorizationPending.New()
		}
		if !polled {
			return nil // an answer that changes nothing
		}
		return tx.PutLogin(l)
	})
	if err != nil {
		return l, err
	}
	return l, answer
}

// TokenGrant is an active access token with what it grants: the account's claims, to the
// client.
type TokenGrant struct {
	Token   storage.Token
	Account storage.Account
	Client  storage.Client
}

// ActiveToken returns the access token id, while it is active (else ErrInactiveToken), with
// its account and client.
func (s *Service) ActiveToken(ctx context.Context, id string) (TokenGrant, error) {
	var g TokenGrant
	err := s.Store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		if g.Token, err = tx.Token(id); err != nil {
			return err
		}
		if !s.now().Before(g.Token.ExpiresAt) {
			return ErrInactiveToken
		}
		if g.Client, err = tx.Client(g.Token.ClientID); err == nil && g.Client.Disabled {
			return ErrInactiveToken
		} else if err != nil {
			return err
		}
		g.Account, err = tx.Account(g.Token.AccountID)
		return err
	})
	if errors.Is(err, storage.ErrNotFound) {
		return TokenGrant{}, ErrInactiveToken
	}
	return g, err
}

// Grant returns the account and client of a grant the provider knows by its subject, for the
// claims of an ID token.
func (s *Service) Grant(ctx context.Context, clientID, accountID string) (storage.Account, storage.Client, error) {
	var a storage.Account
	var c storage.Client
	err := s.Store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		if a, err = tx.Account(accountID); err != nil {
			return err
		}
		c, err = tx.Client(clientID)
		return err
	})
	return a, c, err
}

// RevokeToken deletes the access token id of client clientID (RFC 7009): revoking an unknown
// token is not an error, another client's token is refused.
func (s *Service) RevokeToken(ctx context.Context, id, clientID string) error {
	return s.Store.Update(ctx, func(tx storage.Tx) error {
		t, err := tx.Token(id)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return nil
		case err != nil:
			return err
		case t.ClientID != clientID:
			return mcert.TokenOfAnotherClient.New()
		}
		return tx.DeleteToken(id)
	})
}

// EndSession deletes the access tokens the client holds for the account: RP-initiated logout,
// mcert keeping no single-sign-on session of its own.
func (s *Service) EndSession(ctx context.Context, accountID, clientID string) error {
	return s.Store.Update(ctx, func(tx storage.Tx) error {
		_, err := tx.DeleteTokens(accountID, clientID)
		return err
	})
}
