package binding

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"time"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/storage"
)

// A card challenge is stateless: 32 bytes holding its expiry, 12 random bytes and a MAC of both
// under a server secret, so that asking for one costs the store nothing, and anonymous clients
// asking for millions cannot fill it. Its single use is recorded when a card login uses it:
// the store keeps the used challenges, not the issued ones.
const (
	challengeSize   = 32
	challengeRandom = 12
	challengeMAC    = challengeSize - 4 - challengeRandom
	keyChallenge    = keyName("card-challenge-key")
)

func challengeTag(key, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("mcert card challenge\x00"))
	m.Write(body)
	return m.Sum(nil)[:challengeMAC]
}

// CardChallenge issues a one-time challenge for the card to sign.
func (s *Service) CardChallenge(ctx context.Context) ([]byte, time.Time, error) {
	key, err := s.key(ctx, keyChallenge)
	if err != nil {
		return nil, time.Time{}, err
	}
	// Whole seconds: the expiry is carried in the challenge as a Unix time.
	expires := s.now().Add(ChallengeTTL).Truncate(time.Second)
	random, _ := newSecret(challengeRandom)
	c := binary.BigEndian.AppendUint32(make([]byte, 0, challengeSize), uint32(expires.Unix()))
	c = append(c, random...)
	return append(c, challengeTag(key, c)...), expires, nil
}

var errChallengeNotFound = mcert.Errorf(mcert.NotFound, "challenge_not_found", "unknown challenge; ask for one at /api/v1/card/challenge")

// checkChallenge says whether c is a challenge CardChallenge made that has not expired; it
// reads nothing but the key, so a flood of made-up challenges costs no I/O.
func (s *Service) checkChallenge(ctx context.Context, c []byte, now time.Time) (time.Time, error) {
	key, err := s.key(ctx, keyChallenge)
	if err != nil {
		return time.Time{}, err
	}
	if len(c) != challengeSize || !hmac.Equal(c[challengeSize-challengeMAC:], challengeTag(key, c[:challengeSize-challengeMAC])) {
		return time.Time{}, errChallengeNotFound
	}
	expires := time.Unix(int64(binary.BigEndian.Uint32(c)), 0).UTC()
	if !now.Before(expires) {
		return expires, mcert.Errorf(mcert.Expired, "challenge_expired", "the challenge has expired; ask for a new one and sign within %v", ChallengeTTL)
	}
	return expires, nil
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
//
// A made-up or expired challenge is refused before anything is verified or written. A login
// the card checks refuse is counted against the address's allowance of refusals and, within
// it, recorded in the audit log when the card named its citizen; past the allowance it is
// answered 429 and writes nothing. A good card is never refused for its address's refusals,
// only by its own citizen's limit.
func (s *Service) LoginWithCard(ctx context.Context, challenge, certDER, signature []byte) (CardLogin, error) {
	now := s.now()
	expires, err := s.checkChallenge(ctx, challenge, now)
	if err != nil {
		return CardLogin{}, err
	}
	out, err := s.loginWithCard(ctx, challenge, expires, certDER, signature, now)
	if err == nil {
		s.record(ctx, s.cardEvent(out), nil)
		return out, nil
	}
	if mcert.ErrorKind(err) == mcert.TooMany {
		return out, err // the citizen's own limit: counted there, not logged one by one
	}
	counted, err := s.refusal(ctx, s.limits().CardLoginPerIP, "card login", err)
	if counted && out.Citizen.ID != "" {
		s.record(ctx, s.cardEvent(out), err)
	}
	return out, err
}

func (s *Service) cardEvent(out CardLogin) storage.Event {
	e := storage.Event{Type: EventCardLogin, Actor: actor(out.Citizen.ID)}
	if out.Account != nil {
		e.AccountID = out.Account.ID
	}
	return e
}

func (s *Service) loginWithCard(ctx context.Context, challenge []byte, expires time.Time, certDER, signature []byte, now time.Time) (CardLogin, error) {
	citizen, err := s.Cards.Verify(certDER, challenge, signature, now)
	if err != nil {
		return CardLogin{Citizen: citizen}, err
	}
	if err := s.limit(ctx, s.limits().CardLoginPerCitizen, "card login citizen "+citizen.ID); err != nil {
		return CardLogin{Citizen: citizen}, err
	}
	err = s.Store.CreateChallenge(ctx, storage.Challenge{Hash: hashBytes(challenge), CreatedAt: now, ExpiresAt: expires, UsedAt: &now})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return CardLogin{Citizen: citizen}, mcert.Errorf(mcert.Conflict, "challenge_used", "this challenge has already been used; ask for a new one")
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
