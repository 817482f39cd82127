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
	// ErrUnavailable is wrapped by a backend's errors that say the store cannot answer for now
	// (its database is unreachable, shutting down, starting, out of connections, or too
	// contended to serialize a transaction) rather than that a request or the program is wrong:
	// the request may succeed if tried again later, so the web layer answers 503, not 500.
	ErrUnavailable = errors.New("storage: unavailable")
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
	// EmailVerified: Email was proven by a link mailed to it (a TicketVerifyEmail). The caller
	// resets it when it changes Email.
	EmailVerified bool
	// Lang is the language of the citizen's notices: LangZhTW or LangEn; "" means LangZhTW.
	Lang string
}

// The languages of a citizen's notices (Account.Lang, Mail.Lang).
const (
	LangZhTW = "zh-TW"
	LangEn   = "en"
)

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
	// DeviceSuspended: a login met a clone warning (CloneWarningAt), so a copy of the key may
	// exist; the device approves nothing more, and the citizen revokes it and binds again.
	DeviceSuspended = "suspended"
)

// What the attestation of a device's credential showed at binding (Device.Attestation).
const (
	AttestationNone      = "none"      // no attestation (fmt none), or a record from before it was asked for ("")
	AttestationSelf      = "self"      // signed by the credential's own key: says nothing of the authenticator
	AttestationUntrusted = "untrusted" // a certificate chain mcert does not trust or could not check
	AttestationTrusted   = "trusted"   // a chain to a configured root or to the FIDO metadata entry of its AAGUID
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
	// Attestation: what checking the credential's attestation showed at binding, one of the
	// Attestation constants; "" (a device bound before it was recorded) means none.
	Attestation string
	// Push is the phone's Web Push subscription (PROTOCOL.md section 10); zero: none.
	Push PushSubscription
}

// PushSubscription is where and how to reach a phone's browser with a notification: the push
// service's endpoint and the browser's keys, base64url as the browser gave them.
type PushSubscription struct {
	Endpoint, P256dh, Auth string
}

// Client is a registered relying party.
type Client struct {
	ID                     string
	SecretHash             []byte // SHA-256 of the client secret; nil for a public client
	Name                   string // shown to the citizen on the login page and the phone
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	CitizenID              bool // may receive the citizen_id claim
	CIBA                   bool // may start decoupled (push) logins
	Sign                   bool // may ask citizens to sign (PROTOCOL.md section 9)
	// CIBAPing is the client's notification endpoint for CIBA ping mode; "" for poll mode.
	CIBAPing   string
	IDTokenAlg string // id_token_signed_response_alg: "RS256", "ES256", or "" for RS256
	// Disabled: the operator has stopped the relying party, which is refused everywhere and
	// whose access tokens are inactive, until it is enabled again.
	Disabled  bool
	CreatedAt time.Time
}

// Login kinds.
const (
	LoginRedirect = "redirect" // OpenID Connect code flow, approved by scanning the page's QR code
	LoginCIBA     = "ciba"     // decoupled: started by the relying party's back end, approved from the phone's inbox
	// LoginSign is a signing request: decoupled like LoginCIBA when it names the citizen
	// (AccountID set at creation), else approved by scanning the website's QR code. Request
	// holds what to sign and, once approved, the signatures.
	LoginSign = "sign"
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
	// PollInterval: a decoupled login's interval its relying party must poll at, which each
	// slow_down answer makes longer (CIBA Core 1.0, section 11).
	PollInterval time.Duration
	// RequiredACR: the least authentication context class the relying party demanded
	// (acr_values), or "" for none; a device that cannot meet it may not approve the login.
	RequiredACR string
	// ACR and AMR: the class and methods of the approval, from the approving device as it was
	// then, which the ID token states.
	ACR string
	AMR []string
}

// Waiting reports whether the login is a decoupled one waiting for a phone: what a phone's
// inbox lists (ListWaitingLogins).
func (l Login) Waiting() bool {
	return (l.Kind == LoginCIBA || l.Kind == LoginSign && l.AccountID != "") && (l.Status == LoginPending || l.Status == LoginScanned)
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

// Certificate is the signing certificate of a bound phone (PROTOCOL.md section 9), with the
// key mcert holds for it and signs with only when that phone has just approved. A device may
// have several over its life: a new one replaces one revoked while the device stayed usable.
type Certificate struct {
	Serial     []byte // the certificate's serial number, big-endian
	DeviceID   string
	AccountID  string
	DER        []byte
	PrivateKey []byte // PKCS#8 DER; sealed at rest, as the signing keys are
	CreatedAt  time.Time
	NotAfter   time.Time
	RevokedAt  *time.Time
	Reason     int // RFC 5280's CRLReason, when revoked
}

// Ticket kinds.
const (
	TicketVerifyEmail = "verify-email" // the link that proves an email address: Email is set
	TicketNotMe       = "not-me"       // the "this was not me" link of a phone-bound notice: DeviceID is set
)

// Ticket is a single-use secret mailed to a citizen: the link that verifies an email address,
// or the "this was not me" link of a phone-bound notice. Only the token's hash is stored, as
// the key. GarbageCollect deletes a ticket once it has expired (GCPolicy.ExpiredBefore), used
// or not.
type Ticket struct {
	Hash      []byte // SHA-256 of the token
	Kind      string // TicketVerifyEmail or TicketNotMe
	AccountID string
	Email     string // the address a verification link proves
	DeviceID  string // the phone a "not me" link is about
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time // set when the link was followed; kept until GC, so a second use is told apart
}

// Mail is a message in the outbox, queued in the transaction of what it tells of and sent once
// that transaction has committed: a mail is queued exactly when what it says happened. A
// mail is pending until SentAt or FailedAt is set; a sender takes the due ones (DueMails),
// holds each for a while by setting LeaseUntil, and then records the outcome. GarbageCollect
// deletes mails, sent or not, after the audit log's retention (GCPolicy.EventsBefore).
type Mail struct {
	ID string // random
	// Key, when not "", is unique: a notice that exists at most once, such as
	// "expiring-30/<device id>", is queued by creating its mail, which ErrAlreadyExists then
	// tells was queued before.
	Key       string
	AccountID string
	To        string
	Lang      string
	Notice    string // what the mail says: its template's name
	Params    []byte // JSON: the template's values
	CreatedAt time.Time
	NextAt    time.Time // not tried before then
	// LeaseUntil: the instance that took the mail to send it holds it until then; another may
	// take it after, if it is still pending.
	LeaseUntil time.Time
	Attempts   int
	SentAt     *time.Time
	FailedAt   *time.Time // given up for good
	LastError  string
}

// Pending reports whether the mail is neither sent nor given up: what DueMails looks among.
func (m Mail) Pending() bool { return m.SentAt == nil && m.FailedAt == nil }

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
	// Detail is what the event concerns beyond its type: for a signature, the SHA-256 of the
	// approval's evidence, which ties the relying party's copy to the log.
	Detail string
}

// Store is everything mcert keeps. A use case reads, checks and writes in one transaction, so
// that a rule it checks (a device limit, an account's status, a code's single use) holds when
// it writes: Update runs fn in a read-write transaction and commits what fn wrote when fn
// returns nil; an error aborts the transaction and is returned as fn returned it. View runs fn
// in a read-only transaction, a consistent snapshot.
//
// fn may run more than once (bbolt's group committer runs a write again alone when a write
// beside it failed; PostgreSQL retries a transaction that lost a serialization conflict): it
// must do no I/O of its own and leave nothing behind but what it wrote through tx, and what it
// computed on its last run is what was committed. Records read through a transaction are the
// caller's to keep. View's fn may run more than once too, and must not wait for another
// transaction (bbolt cannot commit a write that grows the file while a View is open).
// Implementations are safe for concurrent use.
type Store interface {
	Update(ctx context.Context, fn func(tx Tx) error) error
	View(ctx context.Context, fn func(tx ReadTx) error) error

	// GarbageCollect deletes what the policy says is over, in transactions of at most
	// p.Batch deletions each, so that it never holds up the store's writers for long; with
	// several instances on one store, one collects at a time and the others return at once.
	GarbageCollect(ctx context.Context, p GCPolicy) (GCResult, error)

	// Dump calls fn with every record but the rate-limit windows (which end within minutes),
	// all from one snapshot, kind by kind in the order of Kinds, events oldest first: for
	// copying a store into another (mcert store copy). fn may do I/O, but not in this store; an
	// error from it ends the dump and is returned.
	Dump(ctx context.Context, fn func(Record) error) error

	// Hit counts one request under key, as Tx.Hit does, in a transaction of its own: what a
	// rate limit does before anything else. Concurrent hits of one key never fail or wait for
	// a retry: increments commute, so a backend need not serialize them as it does Update's
	// transactions (on PostgreSQL, one statement; a limit's key shared by every request, such
	// as a carrier's NAT address, would otherwise make them all conflict).
	Hit(ctx context.Context, key string, window time.Duration, now time.Time) (int, error)

	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
	Close() error
}

// ReadTx reads records. Every lookup that finds nothing returns ErrNotFound; lists are empty,
// not nil-with-error, when nothing matches.
type ReadTx interface {
	// Challenge is a used card-login challenge (unused ones are not stored).
	Challenge(hash []byte) (Challenge, error)
	Session(hash []byte) (Session, error)

	Account(id string) (Account, error)
	AccountByCitizen(citizenID string) (Account, error)

	Binding(id string) (Binding, error)
	BindingByToken(tokenHash []byte) (Binding, error)

	Device(id string) (Device, error)
	DeviceByCredential(credentialID []byte) (Device, error)
	// DeviceByToken finds a device by the hash of its inbox token.
	DeviceByToken(tokenHash []byte) (Device, error)
	// Devices are the account's devices, oldest first.
	Devices(accountID string) ([]Device, error)
	// ExpiringDevices are up to limit (clamped to 1..1000) devices of every account whose
	// (ExpiresAt, ID) comes after (from, afterID) and whose ExpiresAt is before to, in the order
	// of ExpiresAt, then ID: a job pages through the devices expiring in a period by passing the
	// last one's ExpiresAt and ID as the next page's from and afterID (afterID "" for the first
	// page, which then starts with the devices expiring at from). Revoked devices are listed
	// too. An index scan, however many devices the store holds.
	ExpiringDevices(from time.Time, afterID string, to time.Time, limit int) ([]Device, error)

	Client(id string) (Client, error)
	// Clients are every client, oldest first.
	Clients() ([]Client, error)

	Login(hash []byte) (Login, error)
	LoginByToken(tokenHash []byte) (Login, error)
	LoginByCode(codeHash []byte) (Login, error)
	// WaitingLogins are the account's logins that are Waiting (expired ones too, until
	// collected), oldest first: a phone's inbox. Other logins are not listed, so an inbox stays
	// small however many logins the account has made.
	WaitingLogins(accountID string) ([]Login, error)

	Token(id string) (Token, error)

	// Secret is the named server secret's value.
	Secret(name string) ([]byte, error)
	// SigningKeys are every signing key, oldest first.
	SigningKeys() ([]SigningKey, error)

	Certificate(serial []byte) (Certificate, error)
	// DeviceCertificates are the device's certificates, oldest first.
	DeviceCertificates(deviceID string) ([]Certificate, error)
	// RevokedCertificates are every revoked certificate, in the order of revocation: what a
	// CRL lists, once the expired ones are left out.
	RevokedCertificates() ([]Certificate, error)

	Ticket(hash []byte) (Ticket, error)

	Mail(id string) (Mail, error)
	// MailByKey finds a mail by its Key; "" finds none.
	MailByKey(key string) (Mail, error)
	// DueMails are up to limit (clamped to 1..1000) pending mails (Mail.Pending) whose NextAt
	// and LeaseUntil are at or before now, oldest NextAt first, then by ID. An index scan of
	// the pending mails, however many sent ones the store holds.
	DueMails(now time.Time, limit int) ([]Mail, error)
	// Mails are the account's mails, sent or not, oldest first (by CreatedAt).
	Mails(accountID string) ([]Mail, error)

	// Events are up to limit (clamped to 1..1000) events, newest first, after the cursor
	// before ("" for the newest; else an event's ID, which is opaque: only the store orders
	// them); of one account, or of all when accountID is "". A before that is no event ID is
	// ErrBadCursor.
	Events(accountID, before string, limit int) ([]Event, error)

	// Hits is the count Hit has reached in key's window at now, without counting: a check
	// that costs no write, for limits that count only refused requests.
	Hits(key string, window time.Duration, now time.Time) (int, error)
}

// Tx reads and writes records in one transaction. Create fails with ErrAlreadyExists when the
// record's key or one of its unique indexes is taken; Put replaces a record that exists
// (ErrNotFound otherwise) and keeps its indexes in step, and may not change the fields that
// identify it (an ID, a hash, an account's CitizenID, a device's AccountID and CredentialID);
// Delete of a record that does not exist is ErrNotFound.
//
// Those three errors are found before anything is written, so fn may handle them and go on:
// the transaction holds what fn wrote besides. Any other failed write aborts the transaction,
// even if fn ignores it and returns nil.
type Tx interface {
	ReadTx

	CreateChallenge(c Challenge) error

	CreateSession(s Session) error
	DeleteSession(hash []byte) error

	// CreateAccount fails with ErrAlreadyExists when the ID or the CitizenID is taken.
	CreateAccount(a Account) error
	PutAccount(a Account) error

	CreateBinding(b Binding) error
	PutBinding(b Binding) error

	// CreateDevice fails with ErrAlreadyExists when the ID, the CredentialID or the TokenHash
	// is taken.
	CreateDevice(d Device) error
	PutDevice(d Device) error

	CreateClient(c Client) error
	PutClient(c Client) error
	// DeleteClient removes the client and every token issued to it.
	DeleteClient(id string) error

	// CreateLogin fails with ErrAlreadyExists when the Hash, a TokenHash or the CodeHash is
	// taken; PutLogin when a TokenHash or CodeHash new to the login is.
	CreateLogin(l Login) error
	PutLogin(l Login) error
	DeleteLogin(hash []byte) error

	CreateToken(t Token) error
	DeleteToken(id string) error
	// DeleteTokens removes every token of the account issued to the client; it returns how many.
	DeleteTokens(accountID, clientID string) (int, error)

	// PutSecret stores the named secret's value, replacing any.
	PutSecret(name string, value []byte) error

	CreateSigningKey(k SigningKey) error
	PutSigningKey(k SigningKey) error

	// CreateCertificate fails with ErrAlreadyExists when the Serial is taken. PutCertificate
	// may not change its Serial, DeviceID or AccountID.
	CreateCertificate(c Certificate) error
	PutCertificate(c Certificate) error

	// CreateTicket fails with ErrAlreadyExists when the Hash is taken. PutTicket may change
	// only its times: it may not change its Hash, Kind, AccountID, Email or DeviceID, which
	// say what following the link proves.
	CreateTicket(t Ticket) error
	PutTicket(t Ticket) error

	// CreateMail fails with ErrAlreadyExists when the ID or a Key other than "" is taken.
	// PutMail may not change its ID, Key or AccountID.
	CreateMail(m Mail) error
	PutMail(m Mail) error

	// AppendEvent adds an event to the audit log and returns it with its ID (an ID passed in
	// is replaced). Events are never changed; GarbageCollect deletes them after their
	// retention.
	AppendEvent(e Event) (Event, error)

	// Hit counts one request against the rate-limit window that key is in at now (windows are
	// window long, aligned to the Unix epoch) and returns the count including this hit.
	// Windows that have ended are removed by GarbageCollect.
	Hit(key string, window time.Duration, now time.Time) (int, error)
}

// Get reads one value in a read-only transaction: the common case of a use case that only
// looks something up.
func Get[T any](ctx context.Context, s Store, get func(ReadTx) (T, error)) (T, error) {
	var v T
	err := s.View(ctx, func(tx ReadTx) error {
		var err error
		v, err = get(tx)
		return err
	})
	return v, err
}

// Secret returns the named server secret, creating it with create the first time: every
// instance sharing the store gets the same value.
func Secret(ctx context.Context, s Store, name string, create func() []byte) ([]byte, error) {
	if v, err := Get(ctx, s, func(tx ReadTx) ([]byte, error) { return tx.Secret(name) }); !errors.Is(err, ErrNotFound) {
		return v, err
	}
	fresh := create()
	var v []byte
	err := s.Update(ctx, func(tx Tx) error {
		var err error
		// Another instance may have made it meanwhile: its value is the one.
		if v, err = tx.Secret(name); !errors.Is(err, ErrNotFound) {
			return err
		}
		v = fresh
		return tx.PutSecret(name, fresh)
	})
	return v, err
}

// GCPolicy says what GarbageCollect deletes.
type GCPolicy struct {
	// ExpiredBefore: challenges, sessions, bindings, logins, tokens and tickets whose
	// ExpiresAt is before it, signing keys whose RetireAt is, and rate-limit windows that
	// ended before it. Callers pass a time somewhat in the past so that a late replay is still
	// answered "used" or "expired" rather than "unknown".
	ExpiredBefore time.Time
	// EventsBefore: audit events whose Time is before it (the retention period), and mails,
	// sent or not, whose CreatedAt is: the outbox is kept as long as the log of what it told
	// of. The zero time keeps every event and every mail.
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
	Tickets     int
	Mails       int
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
	r.Tickets += o.Tickets
	r.Mails += o.Mails
}

// Total is how many records were deleted.
func (r GCResult) Total() int {
	return r.Challenges + r.Sessions + r.Bindings + r.Logins + r.Tokens + r.SigningKeys + r.RateLimits + r.Events + r.Tickets + r.Mails
}
