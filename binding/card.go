package binding

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
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

// CardChallenge is a one-time challenge for the card to sign: its bytes, which the raw form
// signs, and the text the PKCS#7 form signs (PROTOCOL.md section 1).
type CardChallenge struct {
	Challenge []byte
	TBS       string
	ExpiresAt time.Time
}

// CardChallenge issues a one-time challenge for the card to sign.
func (s *Service) CardChallenge(ctx context.Context) (CardChallenge, error) {
	key, err := s.key(ctx, keyChallenge)
	if err != nil {
		return CardChallenge{}, err
	}
	// Whole seconds: the expiry is carried in the challenge as a Unix time.
	expires := s.now().Add(ChallengeTTL).Truncate(time.Second)
	random, _ := newSecret(challengeRandom)
	c := binary.BigEndian.AppendUint32(make([]byte, 0, challengeSize), uint32(expires.Unix()))
	c = append(c, random...)
	c = append(c, challengeTag(key, c)...)
	return CardChallenge{Challenge: c, TBS: s.cardLoginTBS(c), ExpiresAt: expires}, nil
}

// cardLoginTBS is the text a card signs in the PKCS#7 form: it names this server's origin.
func (s *Service) cardLoginTBS(challenge []byte) string {
	origin := s.PublicURL
	if u, err := url.Parse(s.PublicURL); err == nil {
		origin = u.Scheme + "://" + u.Host
	}
	return authn.CardLoginTBS(origin, base64.RawURLEncoding.EncodeToString(challenge))
}

// CardProof is what a card login sends: the challenge, the card's signature in the raw form
// (Certificate and Signature) or the PKCS#7 form, and the national ID the citizen typed, if any.
type CardProof struct {
	Challenge              []byte
	Certificate, Signature []byte
	PKCS7                  []byte
	CitizenID              string
}

// CitizenResolver maps a card that carries only part of its holder's national ID (MOICA's
// last four digits) to the whole ID: a deployment with access to MOICA's lookup service plugs
// one in. Without one, the ID the citizen types is checked against what the card shows.
type CitizenResolver interface {
	ResolveCitizen(ctx context.Context, card *x509.Certificate) (citizenID string, err error)
}

var errChallengeNotFound = mcert.ChallengeNotFound.New()

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
		return expires, mcert.ChallengeExpired.Newf(ChallengeTTL)
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
func (s *Service) LoginWithCard(ctx context.Context, p CardProof) (CardLogin, error) {
	now := s.now()
	expires, err := s.checkChallenge(ctx, p.Challenge, now)
	if err != nil {
		return CardLogin{}, err
	}
	out, err := s.loginWithCard(ctx, p, expires, now)
	if err == nil || mcert.ErrorKind(err) == mcert.TooMany {
		return out, err // a refusal by the citizen's own limit is counted there, not logged one by one
	}
	counted, err := s.refusal(ctx, s.limits().CardLoginPerIP, "card login", err)
	if counted && out.Citizen.ID != "" {
		s.record(ctx, cardEvent(out.Citizen, nil), err)
	}
	return out, err
}

func cardEvent(citizen authn.Citizen, account *storage.Account) storage.Event {
	e := storage.Event{Type: EventCardLogin, Actor: actor(citizen.ID)}
	if account != nil {
		e.AccountID = account.ID
	}
	return e
}

// loginWithCard verifies the card, then uses up the challenge, opens the session and records
// the login in one transaction: a challenge is used by one login only, however many race.
func (s *Service) loginWithCard(ctx context.Context, p CardProof, expires time.Time, now time.Time) (CardLogin, error) {
	citizen, err := s.verifyCard(ctx, p, now)
	if err != nil {
		return CardLogin{Citizen: citizen}, err
	}
	if err := s.limit(ctx, s.limits().CardLoginPerCitizen, "card login citizen "+citizen.ID); err != nil {
		return CardLogin{Citizen: citizen}, err
	}
	token, hash := newToken()
	sess := storage.Session{Hash: hash, CitizenID: citizen.ID, Name: citizen.Name, CreatedAt: now, ExpiresAt: now.Add(SessionTTL)}
	out := CardLogin{Citizen: citizen, SessionToken: token, SessionExpires: sess.ExpiresAt}
	err = s.Store.Update(ctx, func(tx storage.Tx) error {
		out.Account = nil
		err := tx.CreateChallenge(storage.Challenge{Hash: hashBytes(p.Challenge), CreatedAt: now, ExpiresAt: expires, UsedAt: &now})
		if errors.Is(err, storage.ErrAlreadyExists) {
			return mcert.ChallengeUsed.New()
		}
		if err != nil {
			return err
		}
		if err := tx.CreateSession(sess); err != nil {
			return err
		}
		switch a, err := tx.AccountByCitizen(citizen.ID); {
		case err == nil:
			out.Account = &a
		case !errors.Is(err, storage.ErrNotFound):
			return err
		}
		return s.event(ctx, tx, cardEvent(citizen, out.Account))
	})
	if err != nil {
		return CardLogin{Citizen: citizen}, err
	}
	return out, nil
}

// verifyCard checks the card's signature in whichever form it came, and decides whose card it
// is (PROTOCOL.md section 1b).
func (s *Service) verifyCard(ctx context.Context, p CardProof, now time.Time) (authn.Citizen, error) {
	var citizen authn.Citizen
	var err error
	if p.PKCS7 != nil {
		citizen, err = s.Cards.VerifyPKCS7(ctx, p.PKCS7, []byte(s.cardLoginTBS(p.Challenge)), now)
	} else {
		citizen, err = s.Cards.Verify(ctx, p.Certificate, p.Challenge, p.Signature, now)
	}
	if err != nil {
		return citizen, err
	}
	return s.citizenOf(ctx, citizen, p.CitizenID)
}

var errCitizenMismatch = mcert.CitizenIDMismatch.New()

// citizenOf is the citizen a verified card logs in: the whole ID the card carries, or, for a
// card with only the last four digits, the ID the citizen typed, once the resolver or the
// card's last four digits and holder name confirm it.
func (s *Service) citizenOf(ctx context.Context, c authn.Citizen, typed string) (authn.Citizen, error) {
	if typed != "" {
		if err := authn.ValidateCitizenID(typed); err != nil {
			return c, err
		}
	}
	if c.ID != "" {
		if typed != "" && typed != c.ID {
			return c, errCitizenMismatch
		}
		return c, nil
	}
	if typed == "" {
		return c, mcert.CitizenIDRequired.New()
	}
	if s.Resolver != nil {
		id, err := s.Resolver.ResolveCitizen(ctx, c.Certificate)
		if err != nil {
			return c, fmt.Errorf("resolve the card's citizen: %w", err)
		}
		if id != typed {
			return c, errCitizenMismatch
		}
	} else {
		if !strings.HasSuffix(typed, c.LastFour) {
			return c, errCitizenMismatch
		}
		// A card may not claim an ID that another person's card has already proved: the
		// account keeps the holder name its cards have shown.
		switch a, err := storage.Get(ctx, s.Store, func(tx storage.ReadTx) (storage.Account, error) { return tx.AccountByCitizen(typed) }); {
		case err == nil && a.Name != c.Name:
			return c, mcert.CitizenIDOfAnotherHolder.New()
		case err != nil && !errors.Is(err, storage.ErrNotFound):
			return c, err
		}
	}
	c.ID = typed
	return c, nil
}

// Session returns the live desktop session for a cookie value.
func (s *Service) Session(ctx context.Context, token string) (storage.Session, error) {
	if token == "" {
		return storage.Session{}, mcert.NoSession.New()
	}
	sess, err := storage.Get(ctx, s.Store, func(tx storage.ReadTx) (storage.Session, error) { return tx.Session(hashToken(token)) })
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Session{}, mcert.SessionUnknown.New()
	}
	if err != nil {
		return storage.Session{}, err
	}
	if !s.now().Before(sess.ExpiresAt) {
		return storage.Session{}, mcert.SessionExpired.Newf(SessionTTL)
	}
	return sess, nil
}

// SessionMaxAge bounds how long a desktop session may be extended from its card login.
const SessionMaxAge = 2 * time.Hour

// ExtendSession gives the session another SessionTTL, within SessionMaxAge of its card login:
// the page offers it before the session ends, so a citizen who reads slowly is not logged out
// mid-form (WCAG 2.2.1). The session gets a new cookie value, and the old one stops working.
func (s *Service) ExtendSession(ctx context.Context, token string) (storage.Session, string, error) {
	sess, err := s.Session(ctx, token)
	if err != nil {
		return storage.Session{}, "", err
	}
	now := s.now()
	limit := sess.CreatedAt.Add(SessionMaxAge)
	if !now.Add(time.Minute).Before(limit) {
		return storage.Session{}, "", mcert.SessionAtLimit.New()
	}
	next, hash := newToken()
	renewed := sess
	renewed.Hash, renewed.ExpiresAt = hash, now.Add(SessionTTL)
	if renewed.ExpiresAt.After(limit) {
		renewed.ExpiresAt = limit
	}
	// The old cookie ends as the new one starts; of two extensions racing, one wins.
	err = s.Store.Update(ctx, func(tx storage.Tx) error {
		if err := tx.DeleteSession(sess.Hash); errors.Is(err, storage.ErrNotFound) {
			return mcert.SessionUnknown.New()
		} else if err != nil {
			return err
		}
		return tx.CreateSession(renewed)
	})
	if err != nil {
		return storage.Session{}, "", err
	}
	return renewed, next, nil
}

// Logout ends a session; ending an unknown one is not an error.
func (s *Service) Logout(ctx context.Context, token string) error {
	return s.Store.Update(ctx, func(tx storage.Tx) error {
		if err := tx.DeleteSession(hashToken(token)); !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		return nil
	})
}
