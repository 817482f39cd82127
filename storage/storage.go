// Package storage defines what mcert keeps and the narrow interface every backend implements.
// It holds value types only: no backend, no protocol. Each backend lives in its own package
// (storage/bolt now, storage/postgres later) and passes storage/conformance.
//
// One-time secrets (challenges, session cookies, QR tokens, device tokens) are never stored:
// records are keyed by the SHA-256 of the secret, so a copy of the store cannot be replayed.
package storage

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrNotFound is returned when no record has the given key.
	ErrNotFound = errors.New("storage: not found")
	// ErrAlreadyExists is returned when a create would overwrite a record or a unique index.
	ErrAlreadyExists = errors.New("storage: already exists")
	// ErrBadCursor is returned by ListEvents when before is not an event ID.
	ErrBadCursor = errors.New("storage: bad cursor")
)

// Challenge is a one-time card-login challenge, keyed by the hash of its random bytes.
type Challenge struct {
	Hash      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time // set once a login has used it; kept until GC so a replay is told apart from an unknown value
}

// Session is a desktop session opened by a card login, keyed by the hash of its cookie value.
type Session struct {
	Hash      []byte
	CitizenID string // the full national ID from the card
	Name      string // the name on the card
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Account statuses.
const (
	AccountActive    = "active"
	AccountSuspended = "suspended"
)

// Account is a registered citizen. CitizenID is unique.
type Account struct {
	ID         string
	CitizenID  string
	Name       string
	Email      string
	Phone      string
	WebAuthnID []byte // the random WebAuthn user handle; never the national ID
	Status     string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Binding statuses as stored; "expired" is derived from ExpiresAt, never stored.
const (
	BindingPending = "pending" // QR shown, not yet scanned
	BindingScanned = "scanned" // the phone called begin; WebAuthnSession is set
	BindingBound   = "bound"   // the phone finished; DeviceID is set
	BindingRefused = "refused" // the phone was refused for good; Reason says why
)

// Binding is one "bind a phone" transaction, found by its id (desktop side) or by the hash of
// its QR token (phone side). TokenHash is unique.
type Binding struct {
	ID              string
	TokenHash       []byte
	AccountID       string
	Status          string
	CreatedAt       time.Time
	ExpiresAt       time.Time
	SealedQR        []byte // the QR image, encrypted under the creating session's cookie
	DeviceName      string
	WebAuthnSession []byte // opaque ceremony state saved by begin, read by finish
	DeviceID        string
	Reason          string // why a refused binding was refused: an error code
}

// Device statuses as stored; "expired" is derived from ExpiresAt, never stored.
const (
	DeviceActive  = "active"
	DeviceRevoked = "revoked"
)

// Device is a phone's WebAuthn credential bound to an account. ID and CredentialID are unique.
type Device struct {
	ID              string
	AccountID       string
	Name            string
	CredentialID    []byte
	PublicKey       []byte // COSE key
	AttestationType string
	AttestationFmt  string
	AAGUID          []byte
	SignCount       uint32
	Transports      []string
	BackupEligible  bool
	BackupState     bool
	TokenHash       []byte // hash of the device token the phone uses for its inbox
	Status          string
	CreatedAt       time.Time
	ExpiresAt       time.Time
	LastUsedAt      *time.Time
	RevokedAt       *time.Time
	CloneWarningAt  *time.Time // the last login refused because the signature counter did not advance
}

// Client is a registered relying party.
type Client struct {
	ID                     string
	SecretHash             []byte // SHA-256 of the client secret; nil for a public client
	Name                   string // shown to the citizen on the login page and the phone
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	CitizenID              bool   // may receive the citizen_id claim
	CIBA                   bool   // may start decoupled (push) logins
	IDTokenAlg             string // id_token_signed_response_alg: "RS256", "ES256", or "" for RS256
	// Disabled: the operator has stopped the relying party, which is refused everywhere and
	// whose access tokens are inactive, until it is enabled again.
	Disabled  bool
	CreatedAt time.Time
}

// Login kinds.
const (
	LoginRedirect = "redirect" // OpenID Connect code flow, approved by scanning the page's QR code
	LoginCIBA     = "ciba"     // decoupled: started by the relying party's back end, approved from the phone's inbox
)

// Login statuses as stored; "expired" is derived, never stored.
const (
	LoginPending  = "pending"  // waiting for a phone
	LoginScanned  = "scanned"  // a phone called begin; WebAuthnSession is set
	LoginApproved = "approved" // a phone approved; AccountID, DeviceID and AuthTime are set
	LoginDenied   = "denied"   // the phone said no, or the browser cancelled (Reason login_cancelled)
	LoginRefused  = "refused"  // the phone was refused for good (a revoked phone, say); Reason says why
	LoginDone     = "done"     // the relying party has taken its tokens
)

// Login is one relying-party login transaction, keyed by the hash of its public id (the
// authorization request id of the login page, or a CIBA auth_req_id). TokenHashes (the tokens
// phones present) and CodeHash (the authorization code) are unique indexes.
type Login struct {
	Hash            []byte
	Kind            string
	ClientID        string
	ClientName      string
	Status          string
	CreatedAt       time.Time
	ExpiresAt       time.Time // the whole transaction; after this it is expired and may be collected
	TokenExpiresAt  time.Time // the current phone token (a redirect login's QR code is refreshed)
	TokenSerial     int       // which QR token of a redirect login is current
	TokenHashes     [][]byte
	Code            string // the four digits the page and the phone both show
	BindingMessage  string
	Request         []byte // opaque: the relying party's request (scopes, nonce, PKCE...), for the provider
	CodeHash        []byte
	WebAuthnSession []byte
	LastPolledAt    *time.Time
	AccountID       string // set at creation for CIBA, at approval for redirect logins
	DeviceID        string
	AuthTime        *time.Time
	BrowserHash     []byte // a redirect login: hash of the secret cookie of the browser that started it
	Browser         string // a redirect login: that browser as the phone shows it, e.g. "Chrome on Windows"
	Reason          string // why a refused login was refused, or a denied one cancelled: an error code
}

// Waiting reports whether the login is a decoupled one waiting for a phone: what a phone's
// inbox lists (ListWaitingLogins).
func (l Login) Waiting() bool {
	return l.Kind == LoginCIBA && (l.Status == LoginPending || l.Status == LoginScanned)
}

// Token is an issued access token, found by its ID (the bearer value only carries the ID,
// encrypted).
type Token struct {
	ID        string
	ClientID  string
	AccountID string
	Scopes    []string
	AuthTime  time.Time
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SigningKey is a key the provider signs ID tokens with. The newest unretired key signs; all
// unretired keys are published, so relying parties keep verifying across a rotation.
type SigningKey struct {
	ID         string
	Algorithm  string // "ES256" or "RS256"
	PrivateKey []byte // PKCS#8 DER
	CreatedAt  time.Time
	RetireAt   *time.Time // set when a newer key takes over; dropped from the key set after it
}

// Event is one entry of the append-only audit log of security events. Identifiers in it are
// masked before they are stored (a national ID as A12****789, an IP address to its network),
// so the log can be shown to citizens and operators as it is.
type Event struct {
	ID        string // assigned by AppendEvent: increasing in the order events were appended
	Time      time.Time
	AccountID string // the citizen's account, when known: "" for e.g. a refused card login
	Type      string // e.g. "card_login", "bind", "revoke", "login"
	Outcome   string // "ok", "refused", "denied", ...
	Reason    string // the error code of a refusal
	ClientID  string
	DeviceID  string
	Actor     string // masked national ID of the card, or "operator"
	IP        string // masked
}

// Store is everything mcert keeps. Implementations are safe for concurrent use, and every
// Update* runs its function and the write in one atomic transaction: the function sees the
// record as stored and returns it as it must be stored, or an error that aborts the write and
// is returned unchanged. The function may run more than once and must not have side effects.
type Store interface {
	CreateChallenge(ctx context.Context, c Challenge) error
	// UpdateChallenge may not change Hash.
	UpdateChallenge(ctx context.Context, hash []byte, update func(Challenge) (Challenge, error)) (Challenge, error)

	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, hash []byte) (Session, error)
	DeleteSession(ctx context.Context, hash []byte) error

	// CreateAccount fails with ErrAlreadyExists when the ID or the CitizenID is taken.
	CreateAccount(ctx context.Context, a Account) error
	GetAccount(ctx context.Context, id string) (Account, error)
	GetAccountByCitizen(ctx context.Context, citizenID string) (Account, error)
	// UpdateAccount may not change ID or CitizenID.
	UpdateAccount(ctx context.Context, id string, update func(Account) (Account, error)) (Account, error)

	CreateBinding(ctx context.Context, b Binding) error
	GetBinding(ctx context.Context, id string) (Binding, error)
	GetBindingByToken(ctx context.Context, tokenHash []byte) (Binding, error)
	// UpdateBinding may not change ID or TokenHash.
	UpdateBinding(ctx context.Context, id string, update func(Binding) (Binding, error)) (Binding, error)
	// BindDevice atomically updates the binding and creates the device: both are written or
	// neither. It fails with ErrAlreadyExists when the device ID or credential ID is taken.
	BindDevice(ctx context.Context, bindingID string, d Device, update func(Binding) (Binding, error)) (Binding, error)

	GetDevice(ctx context.Context, id string) (Device, error)
	GetDeviceByCredential(ctx context.Context, credentialID []byte) (Device, error)
	// ListDevices returns the account's devices, oldest first.
	ListDevices(ctx context.Context, accountID string) ([]Device, error)
	// UpdateDevice may not change ID, AccountID or CredentialID.
	UpdateDevice(ctx context.Context, id string, update func(Device) (Device, error)) (Device, error)

	// GetDeviceByToken finds a device by the hash of its inbox token.
	GetDeviceByToken(ctx context.Context, tokenHash []byte) (Device, error)

	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	// ListClients returns every client, oldest first.
	ListClients(ctx context.Context) ([]Client, error)
	// UpdateClient may not change ID.
	UpdateClient(ctx context.Context, id string, update func(Client) (Client, error)) (Client, error)
	// DeleteClient removes the client and every token issued to it, in one transaction.
	DeleteClient(ctx context.Context, id string) error

	// CreateLogin fails with ErrAlreadyExists when the Hash, a TokenHash or the CodeHash is taken.
	CreateLogin(ctx context.Context, l Login) error
	GetLogin(ctx context.Context, hash []byte) (Login, error)
	GetLoginByToken(ctx context.Context, tokenHash []byte) (Login, error)
	GetLoginByCode(ctx context.Context, codeHash []byte) (Login, error)
	// ListWaitingLogins returns the account's logins that are Waiting (expired ones too, until
	// collected), oldest first: a phone's inbox. Other logins are not listed, so an inbox stays small however many
	// logins the account has made.
	ListWaitingLogins(ctx context.Context, accountID string) ([]Login, error)
	// UpdateLogin may not change Hash; it keeps the token, code and waiting indexes in step
	// (ErrAlreadyExists when a new TokenHash or CodeHash is taken).
	UpdateLogin(ctx context.Context, hash []byte, update func(Login) (Login, error)) (Login, error)
	// ApproveLogin atomically updates a login and the device that approved it, and appends e
	// to the audit log (as AppendEvent): all three are written or none, so an approval is never
	// without its event, and costs one commit.
	ApproveLogin(ctx context.Context, hash []byte, deviceID string, updateLogin func(Login) (Login, error), updateDevice func(Device) (Device, error), e Event) (Login, Device, error)
	DeleteLogin(ctx context.Context, hash []byte) error

	CreateToken(ctx context.Context, t Token) error
	GetToken(ctx context.Context, id string) (Token, error)
	DeleteToken(ctx context.Context, id string) error
	// DeleteTokens removes every token of the account issued to the client; it returns how many.
	DeleteTokens(ctx context.Context, accountID, clientID string) (int, error)

	// Secret returns the named server secret, creating it with create() the first time; every
	// instance sharing the store gets the same value.
	Secret(ctx context.Context, name string, create func() []byte) ([]byte, error)
	// UpdateSecret stores what update makes of the named secret's value (ErrNotFound when there
	// is none): a new encoding of the same secret, such as its value sealed.
	UpdateSecret(ctx context.Context, name string, update func([]byte) ([]byte, error)) ([]byte, error)

	CreateSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys returns every signing key, oldest first.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// UpdateSigningKey may not change ID.
	UpdateSigningKey(ctx context.Context, id string, update func(SigningKey) (SigningKey, error)) (SigningKey, error)

	// AppendEvent adds an event to the audit log and returns it with its ID (an ID passed in is
	// replaced). Events are never changed or deleted by the store.
	AppendEvent(ctx context.Context, e Event) (Event, error)
	// ListEvents returns up to limit (clamped to 1..1000) events, newest first, older than the event with ID
	// before ("" for the newest); of one account, or of all when accountID is "".
	ListEvents(ctx context.Context, accountID, before string, limit int) ([]Event, error)

	// Hit counts one request against the rate-limit window that key is in at now (windows are
	// window long, aligned to the Unix epoch) and returns the count including this hit. Windows
	// that have ended are removed by GarbageCollect.
	Hit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)
	// Hits returns the count Hit has reached in that window, without counting: a check that
	// costs no write, for limits that count only refused requests.
	Hits(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)

	// GarbageCollect deletes what the policy says is over, in transactions of at most
	// p.Batch deletions each, so that it never holds up the store's writers for long.
	GarbageCollect(ctx context.Context, p GCPolicy) (GCResult, error)

	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
	Close() error
}

// GCPolicy says what GarbageCollect deletes.
type GCPolicy struct {
	// ExpiredBefore: challenges, sessions, bindings, logins and tokens whose ExpiresAt is
	// before it, signing keys whose RetireAt is, and rate-limit windows that ended before it.
	// Callers pass a time somewhat in the past so that a late replay is still answered "used"
	// or "expired" rather than "unknown".
	ExpiredBefore time.Time
	// EventsBefore: audit events whose Time is before it (the retention period); the zero
	// time keeps every event.
	EventsBefore time.Time
	// Batch is the most records one transaction deletes; 0 means DefaultGCBatch.
	Batch int
}

// DefaultGCBatch bounds one garbage-collection transaction: a few milliseconds of work.
const DefaultGCBatch = 1000

// GCResult counts what GarbageCollect deleted.
type GCResult struct {
	Challenges  int
	Sessions    int
	Bindings    int
	Logins      int
	Tokens      int
	SigningKeys int
	RateLimits  int
	Events      int
}

// Add adds o's counts to r's.
func (r *GCResult) Add(o GCResult) {
	r.Challenges += o.Challenges
	r.Sessions += o.Sessions
	r.Bindings += o.Bindings
	r.Logins += o.Logins
	r.Tokens += o.Tokens
	r.SigningKeys += o.SigningKeys
	r.RateLimits += o.RateLimits
	r.Events += o.Events
}

// Total is how many records were deleted.
func (r GCResult) Total() int {
	return r.Challenges + r.Sessions + r.Bindings + r.Logins + r.Tokens + r.SigningKeys + r.RateLimits + r.Events
}
