// Package binding holds mcert's transactions and their state machines: the card login that
// opens a desktop session, the account it registers, and binding a phone by QR code. It knows
// the store and the ceremonies, not HTTP.
package binding

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"sync"
	"time"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/mailer"
	"github.com/mcert/mcert/push"
	"github.com/mcert/mcert/storage"
)

// Lifetimes from PROTOCOL.md.
const (
	ChallengeTTL = 2 * time.Minute
	SessionTTL   = 15 * time.Minute
	BindingTTL   = 5 * time.Minute
	DeviceDays   = 365

	// gcGrace keeps expired one-time records a while, so that a late replay is answered
	// "used" or "expired" instead of "unknown".
	gcGrace = time.Hour

	// DefaultAuditRetention is how long the audit log keeps an event: a year and a device's
	// lifetime past it, so that a citizen can look back over the whole life of a phone.
	DefaultAuditRetention = 400 * 24 * time.Hour
)

// Service runs the transactions. Instances hold no state of their own: everything is in Store,
// so any number of them can serve the same store.
type Service struct {
	Store     storage.Store
	Cards     *authn.CardVerifier
	WebAuthn  *authn.WebAuthn
	PublicURL string
	Now       func() time.Time
	Log       *slog.Logger

	// Decided, when set, is told of each decoupled login approved, denied or refused for good,
	// once its transaction has committed: the provider's CIBA ping. It must return at once.
	Decided func(storage.Login)
	// Push, when set, sends the phones' notifications (PROTOCOL.md section 10).
	Push *push.Sender
	// Mailer sends the outbox's mails (DeliverMail); nil: they wait in the store.
	Mailer mailer.Transport
	// Operator is who runs the service, as every mail names them.
	Operator mailer.Operator

	// DeviceLimit is how many usable devices an account may have (0: 5).
	DeviceLimit int
	// CertificateCitizenID: the phones' signing certificates hold the whole national ID,
	// where they hold the masked one by default.
	CertificateCitizenID bool
	// DevicePolicy is which phones' keys a binding accepts (the zero policy: all).
	DevicePolicy DevicePolicy
	// Limits are the rate limits (zero fields: the defaults).
	Limits Limits
	// AuditRetention is how long audit events are kept (0: DefaultAuditRetention).
	AuditRetention time.Duration
	// Resolver maps a MOICA card to its holder's whole national ID; nil: the typed ID is
	// checked against the card instead (PROTOCOL.md section 1b).
	Resolver CitizenResolver

	keys sync.Map // keyName → []byte: server secrets from the store, which never change
	wake mailWake
}

func (s *Service) now() time.Time { return s.Now().UTC() }

// GarbageCollect removes one-time records that expired more than an hour ago, and audit
// events older than the retention period.
func (s *Service) GarbageCollect(ctx context.Context) (storage.GCResult, error) {
	now := s.now()
	retention := s.AuditRetention
	if retention <= 0 {
		retention = DefaultAuditRetention
	}
	return s.Store.GarbageCollect(ctx, storage.GCPolicy{ExpiredBefore: now.Add(-gcGrace), EventsBefore: now.Add(-retention)})
}

// Ping reports whether the store answers.
func (s *Service) Ping(ctx context.Context) error { return s.Store.Ping(ctx) }

// newSecret returns n random bytes and their base64url form.
func newSecret(n int) ([]byte, string) {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return b, base64.RawURLEncoding.EncodeToString(b)
}

// newToken returns a fresh 256-bit secret for a client to hold, and the hash the store keeps.
func newToken() (token string, hash []byte) {
	_, token = newSecret(32)
	return token, hashToken(token)
}

// newID returns a random public identifier: unguessable, but not a secret.
func newID() string {
	_, id := newSecret(16)
	return id
}

// hashToken is how a token is found in the store. Any string hashes, so a malformed token is
// simply unknown.
func hashToken(token string) []byte { return hashBytes([]byte(token)) }

func hashBytes(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}
