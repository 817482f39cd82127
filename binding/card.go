package binding

import (
	"context"
	"errors"
	"time"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/storage"
)

// CardChallenge issues a one-time challenge for the card to sign.
func (s *Service) CardChallenge(ctx context.Context) ([]byte, time.Time, error) {
	raw, _ := newSecret(32)
	now := s.now()
	c := storage.Challenge{Hash: hashBytes(raw), CreatedAt: now, ExpiresAt: now.Add(ChallengeTTL)}
	if err := s.Store.CreateChallenge(ctx, c); err != nil {
		return nil, time.Time{}, err
	}
	return raw, c.ExpiresAt, nil
}

// CardLogin is the result of a card login: who signed, their account if they have one, and the
// session cookie value that the client keeps and the store knows only by hash.
type CardLogin struct {
	Citizen        authn.Citizen
	Account        *storage.Account
	SessionToken   string
	SessionExpires time.Time
}

// LoginWithCard checks the card's certificate and its signature over a challenge from
// CardChallenge, uses up the challenge, and opens a desktop session.
func (s *Service) LoginWithCard(ctx context.Context, challenge, certDER, signature []byte) (CardLogin, error) {
	out, err := s.loginWithCard(ctx, challenge, certDER, signature)
	e := storage.Event{Type: EventCardLogin, Actor: actor(out.Citizen.ID)}
	if out.Account != nil {
		e.AccountID = out.Account.ID
	}
	if mcert.ErrorKind(err) != mcert.TooMany { // a flood of refusals is counted, not logged one by one
		s.record(ctx, e, err)
	}
	return out, err
}

func (s *Service) loginWithCard(ctx context.Context, challenge, certDER, signature []byte) (CardLogin, error) {
	limits := s.limits()
	if err := s.limitIP(ctx, limits.CardLoginPerIP, "card login"); err != nil {
		return CardLogin{}, err
	}
	now := s.now()
	citizen, err := s.Cards.Verify(certDER, challenge, signature, now)
	if err != nil {
		return CardLogin{}, err
	}
	if err := s.limit(ctx, limits.CardLoginPerCitizen, "card login citizen "+citizen.ID); err != nil {
		return CardLogin{Citizen: citizen}, err
	}
	_, err = s.Store.UpdateChallenge(ctx, hashBytes(challenge), func(c storage.Challenge) (storage.Challenge, error) {
		switch {
		case c.UsedAt != nil:
			return c, mcert.Errorf(mcert.Conflict, "challenge_used", "this challenge has already been used; ask for a new one")
		case !now.Before(c.ExpiresAt):
			return c, mcert.Errorf(mcert.Expired, "challenge_expired", "the challenge has expired; ask for a new one and sign within %v", ChallengeTTL)
		}
		c.UsedAt = &now
		return c, nil
	})
	if errors.Is(err, storage.ErrNotFound) {
		return CardLogin{Citizen: citizen}, mcert.Errorf(mcert.NotFound, "challenge_not_found", "unknown challenge; ask for one at /api/v1/card/challenge")
	}
	if err != nil {
		return CardLogin{Citizen: citizen}, err
	}
	token, hash := newToken()
	sess := storage.Session{Hash: hash, CitizenID: citizen.ID, Name: citizen.Name, CreatedAt: now, ExpiresAt: now.Add(SessionTTL)}
	if err := s.Store.CreateSession(ctx, sess); err != nil {
		return CardLogin{Citizen: citizen}, err
	}
	out := CardLogin{Citizen: citizen, SessionToken: token, SessionExpires: sess.ExpiresAt}
	switch acct, err := s.Store.GetAccountByCitizen(ctx, citizen.ID); {
	case err == nil:
		out.Account = &acct
	case !errors.Is(err, storage.ErrNotFound):
		return CardLogin{Citizen: citizen}, err
	}
	return out, nil
}

// Session returns the live desktop session for a cookie value.
func (s *Service) Session(ctx context.Context, token string) (storage.Session, error) {
	if token == "" {
		return storage.Session{}, mcert.Errorf(mcert.Unauthorized, "no_session", "log in with your citizen card first")
	}
	sess, err := s.Store.GetSession(ctx, hashToken(token))
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Session{}, mcert.Errorf(mcert.Unauthorized, "no_session", "your session is unknown or has ended; log in with your citizen card again")
	}
	if err != nil {
		return storage.Session{}, err
	}
	if !s.now().Before(sess.ExpiresAt) {
		return storage.Session{}, mcert.Errorf(mcert.Unauthorized, "session_expired", "your session has expired after %v; log in with your citizen card again", SessionTTL)
	}
	return sess, nil
}

// Logout ends a session; ending an unknown one is not an error.
func (s *Service) Logout(ctx context.Context, token string) error {
	err := s.Store.DeleteSession(ctx, hashToken(token))
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}
