package bolt

import (
	"time"

	"github.com/mcert/mcert/storage"
)

// The records below are the stored format, kept apart from the storage types so that a change
// to those cannot change the data file unnoticed. Times are UTC in RFC 3339 with nanoseconds,
// which is how encoding/json writes a time.Time.

// formatVersion is written into every JSON record as "v"; change the records only together
// with it. Accounts, devices and logins are written in the binary form, format 2 (binary.go),
// and read in either.
const formatVersion = 1

type record interface{ version() int }

type format struct {
	V int `json:"v"`
}

func (f format) version() int { return f.V }

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	return new(t.UTC())
}

type challengeRecord struct {
	format
	Hash      []byte     `json:"hash"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	UsedAt    *time.Time `json:"used_at"`
}

func toChallenge(c storage.Challenge) challengeRecord {
	return challengeRecord{
		format:    format{formatVersion},
		Hash:      c.Hash,
		CreatedAt: c.CreatedAt.UTC(),
		ExpiresAt: c.ExpiresAt.UTC(),
		UsedAt:    utc(c.UsedAt),
	}
}

func fromChallenge(r challengeRecord) storage.Challenge {
	return storage.Challenge{Hash: r.Hash, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, UsedAt: r.UsedAt}
}

type sessionRecord struct {
	format
	Hash      []byte    `json:"hash"`
	CitizenID string    `json:"citizen_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func toSession(s storage.Session) sessionRecord {
	return sessionRecord{
		format:    format{formatVersion},
		Hash:      s.Hash,
		CitizenID: s.CitizenID,
		Name:      s.Name,
		CreatedAt: s.CreatedAt.UTC(),
		ExpiresAt: s.ExpiresAt.UTC(),
	}
}

func fromSession(r sessionRecord) storage.Session {
	return storage.Session{Hash: r.Hash, CitizenID: r.CitizenID, Name: r.Name, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt}
}

type accountRecord struct {
	format
	ID         string    `json:"id"`
	CitizenID  string    `json:"citizen_id"`
	Name       string    `json:"name"`
	Email      string    `json:"email"`
	Phone      string    `json:"phone"`
	WebAuthnID []byte    `json:"webauthn_id"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// Records written before these read as unverified, in the default language.
	EmailVerified bool   `json:"email_verified,omitempty"`
	Lang          string `json:"lang,omitempty"`
}

func toAccount(a storage.Account) accountRecord {
	return accountRecord{
		format:        format{formatVersion},
		ID:            a.ID,
		CitizenID:     a.CitizenID,
		Name:          a.Name,
		Email:         a.Email,
		Phone:         a.Phone,
		WebAuthnID:    a.WebAuthnID,
		Status:        a.Status,
		CreatedAt:     a.CreatedAt.UTC(),
		UpdatedAt:     a.UpdatedAt.UTC(),
		EmailVerified: a.EmailVerified,
		Lang:          a.Lang,
	}
}

func fromAccount(r accountRecord) storage.Account {
	return storage.Account{
		ID:            r.ID,
		CitizenID:     r.CitizenID,
		Name:          r.Name,
		Email:         r.Email,
		Phone:         r.Phone,
		WebAuthnID:    r.WebAuthnID,
		Status:        r.Status,
		CreatedAt:     r.CreatedAt,
		UpdatedAt:     r.UpdatedAt,
		EmailVerified: r.EmailVerified,
		Lang:          r.Lang,
	}
}

type bindingRecord struct {
	format
	ID              string    `json:"id"`
	TokenHash       []byte    `json:"token_hash"`
	AccountID       string    `json:"account_id"`
	Status          string    `json:"status"`
	CreatedAt       time.Time `json:"created_at"`
	ExpiresAt       time.Time `json:"expires_at"`
	SealedQR        []byte    `json:"sealed_qr"`
	DeviceName      string    `json:"device_name"`
	WebAuthnSession []byte    `json:"webauthn_session"`
	DeviceID        string    `json:"device_id"`
	Reason          string    `json:"reason,omitempty"`
}

func toBinding(b storage.Binding) bindingRecord {
	return bindingRecord{
		format:          format{formatVersion},
		ID:              b.ID,
		TokenHash:       b.TokenHash,
		AccountID:       b.AccountID,
		Status:          b.Status,
		CreatedAt:       b.CreatedAt.UTC(),
		ExpiresAt:       b.ExpiresAt.UTC(),
		SealedQR:        b.SealedQR,
		DeviceName:      b.DeviceName,
		WebAuthnSession: b.WebAuthnSession,
		DeviceID:        b.DeviceID,
		Reason:          b.Reason,
	}
}

func fromBinding(r bindingRecord) storage.Binding {
	return storage.Binding{
		ID:              r.ID,
		TokenHash:       r.TokenHash,
		AccountID:       r.AccountID,
		Status:          r.Status,
		CreatedAt:       r.CreatedAt,
		ExpiresAt:       r.ExpiresAt,
		SealedQR:        r.SealedQR,
		DeviceName:      r.DeviceName,
		WebAuthnSession: r.WebAuthnSession,
		DeviceID:        r.DeviceID,
		Reason:          r.Reason,
	}
}

type deviceRecord struct {
	format
	ID              string     `json:"id"`
	AccountID       string     `json:"account_id"`
	Name            string     `json:"name"`
	CredentialID    []byte     `json:"credential_id"`
	PublicKey       []byte     `json:"public_key"`
	AttestationType string     `json:"attestation_type"`
	AttestationFmt  string     `json:"attestation_fmt"`
	AAGUID          []byte     `json:"aaguid"`
	SignCount       uint32     `json:"sign_count"`
	Transports      []string   `json:"transports"`
	BackupEligible  bool       `json:"backup_eligible"`
	BackupState     bool       `json:"backup_state"`
	TokenHash       []byte     `json:"token_hash"`
	Status          string     `json:"status"`
	CreatedAt       time.Time  `json:"created_at"`
	ExpiresAt       time.Time  `json:"expires_at"`
	LastUsedAt      *time.Time `json:"last_used_at"`
	RevokedAt       *time.Time `json:"revoked_at"`
	CloneWarningAt  *time.Time `json:"clone_warning_at"`
	Attestation     string     `json:"attestation,omitempty"` // records written before it read as ""
	PushEndpoint    string     `json:"push_endpoint,omitempty"`
	PushP256dh      string     `json:"push_p256dh,omitempty"`
	PushAuth        string     `json:"push_auth,omitempty"`
}

func toDevice(d storage.Device) deviceRecord {
	return deviceRecord{
		format:          format{formatVersion},
		ID:              d.ID,
		AccountID:       d.AccountID,
		Name:            d.Name,
		CredentialID:    d.CredentialID,
		PublicKey:       d.PublicKey,
		AttestationType: d.AttestationType,
		AttestationFmt:  d.AttestationFmt,
		AAGUID:          d.AAGUID,
		SignCount:       d.SignCount,
		Transports:      d.Transports,
		BackupEligible:  d.BackupEligible,
		BackupState:     d.BackupState,
		TokenHash:       d.TokenHash,
		Status:          d.Status,
		CreatedAt:       d.CreatedAt.UTC(),
		ExpiresAt:       d.ExpiresAt.UTC(),
		LastUsedAt:      utc(d.LastUsedAt),
		RevokedAt:       utc(d.RevokedAt),
		CloneWarningAt:  utc(d.CloneWarningAt),
		Attestation:     d.Attestation,
		PushEndpoint:    d.Push.Endpoint,
		PushP256dh:      d.Push.P256dh,
		PushAuth:        d.Push.Auth,
	}
}

func fromDevice(r deviceRecord) storage.Device {
	return storage.Device{
		ID:              r.ID,
		AccountID:       r.AccountID,
		Name:            r.Name,
		CredentialID:    r.CredentialID,
		PublicKey:       r.PublicKey,
		AttestationType: r.AttestationType,
		AttestationFmt:  r.AttestationFmt,
		AAGUID:          r.AAGUID,
		SignCount:       r.SignCount,
		Transports:      r.Transports,
		BackupEligible:  r.BackupEligible,
		BackupState:     r.BackupState,
		TokenHash:       r.TokenHash,
		Status:          r.Status,
		CreatedAt:       r.CreatedAt,
		ExpiresAt:       r.ExpiresAt,
		LastUsedAt:      r.LastUsedAt,
		RevokedAt:       r.RevokedAt,
		CloneWarningAt:  r.CloneWarningAt,
		Attestation:     r.Attestation,
		Push:            storage.PushSubscription{Endpoint: r.PushEndpoint, P256dh: r.PushP256dh, Auth: r.PushAuth},
	}
}

type clientRecord struct {
	format
	ID                     string    `json:"id"`
	SecretHash             []byte    `json:"secret_hash"`
	Name                   string    `json:"name"`
	RedirectURIs           []string  `json:"redirect_uris"`
	PostLogoutRedirectURIs []string  `json:"post_logout_redirect_uris"`
	CitizenID              bool      `json:"citizen_id"`
	CIBA                   bool      `json:"ciba"`
	Sign                   bool      `json:"sign,omitempty"`
	CIBAPing               string    `json:"ciba_ping,omitempty"`
	IDTokenAlg             string    `json:"id_token_alg,omitempty"` // records written before it read as ""
	Disabled               bool      `json:"disabled,omitempty"`     // records written before it read as enabled
	CreatedAt              time.Time `json:"created_at"`
}

func toClient(c storage.Client) clientRecord {
	return clientRecord{
		format:                 format{formatVersion},
		ID:                     c.ID,
		SecretHash:             c.SecretHash,
		Name:                   c.Name,
		RedirectURIs:           c.RedirectURIs,
		PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		CitizenID:              c.CitizenID,
		CIBA:                   c.CIBA,
		Sign:                   c.Sign,
		CIBAPing:               c.CIBAPing,
		IDTokenAlg:             c.IDTokenAlg,
		Disabled:               c.Disabled,
		CreatedAt:              c.CreatedAt.UTC(),
	}
}

func fromClient(r clientRecord) storage.Client {
	return storage.Client{
		ID:                     r.ID,
		SecretHash:             r.SecretHash,
		Name:                   r.Name,
		RedirectURIs:           r.RedirectURIs,
		PostLogoutRedirectURIs: r.PostLogoutRedirectURIs,
		CitizenID:              r.CitizenID,
		CIBA:                   r.CIBA,
		Sign:                   r.Sign,
		CIBAPing:               r.CIBAPing,
		IDTokenAlg:             r.IDTokenAlg,
		Disabled:               r.Disabled,
		CreatedAt:              r.CreatedAt,
	}
}

type loginRecord struct {
	format
	Hash            []byte     `json:"hash"`
	Kind            string     `json:"kind"`
	ClientID        string     `json:"client_id"`
	ClientName      string     `json:"client_name"`
	Status          string     `json:"status"`
	CreatedAt       time.Time  `json:"created_at"`
	ExpiresAt       time.Time  `json:"expires_at"`
	TokenExpiresAt  time.Time  `json:"token_expires_at"`
	TokenSerial     int        `json:"token_serial"`
	TokenHashes     [][]byte   `json:"token_hashes"`
	Code            string     `json:"code"`
	BindingMessage  string     `json:"binding_message"`
	Request         []byte     `json:"request"`
	CodeHash        []byte     `json:"code_hash"`
	WebAuthnSession []byte     `json:"webauthn_session"`
	LastPolledAt    *time.Time `json:"last_polled_at"`
	AccountID       string     `json:"account_id"`
	DeviceID        string     `json:"device_id"`
	AuthTime        *time.Time `json:"auth_time"`
	BrowserHash     []byte     `json:"browser_hash,omitempty"`
	Browser         string     `json:"browser,omitempty"`
	Reason          string     `json:"reason,omitempty"`
	PollSeconds     int        `json:"poll_seconds,omitempty"`
	RequiredACR     string     `json:"required_acr,omitempty"` // records written before these read as ""
	ACR             string     `json:"acr,omitempty"`
	AMR             []string   `json:"amr,omitempty"`
}

func toLogin(l storage.Login) loginRecord {
	return loginRecord{
		format:          format{formatVersion},
		Hash:            l.Hash,
		Kind:            l.Kind,
		ClientID:        l.ClientID,
		ClientName:      l.ClientName,
		Status:          l.Status,
		CreatedAt:       l.CreatedAt.UTC(),
		ExpiresAt:       l.ExpiresAt.UTC(),
		TokenExpiresAt:  l.TokenExpiresAt.UTC(),
		TokenSerial:     l.TokenSerial,
		TokenHashes:     l.TokenHashes,
		Code:            l.Code,
		BindingMessage:  l.BindingMessage,
		Request:         l.Request,
		CodeHash:        l.CodeHash,
		WebAuthnSession: l.WebAuthnSession,
		LastPolledAt:    utc(l.LastPolledAt),
		AccountID:       l.AccountID,
		DeviceID:        l.DeviceID,
		AuthTime:        utc(l.AuthTime),
		BrowserHash:     l.BrowserHash,
		Browser:         l.Browser,
		Reason:          l.Reason,
		PollSeconds:     int(l.PollInterval / time.Second),
		RequiredACR:     l.RequiredACR,
		ACR:             l.ACR,
		AMR:             l.AMR,
	}
}

func fromLogin(r loginRecord) storage.Login {
	return storage.Login{
		Hash:            r.Hash,
		Kind:            r.Kind,
		ClientID:        r.ClientID,
		ClientName:      r.ClientName,
		Status:          r.Status,
		CreatedAt:       r.CreatedAt,
		ExpiresAt:       r.ExpiresAt,
		TokenExpiresAt:  r.TokenExpiresAt,
		TokenSerial:     r.TokenSerial,
		TokenHashes:     r.TokenHashes,
		Code:            r.Code,
		BindingMessage:  r.BindingMessage,
		Request:         r.Request,
		CodeHash:        r.CodeHash,
		WebAuthnSession: r.WebAuthnSession,
		LastPolledAt:    r.LastPolledAt,
		AccountID:       r.AccountID,
		DeviceID:        r.DeviceID,
		AuthTime:        r.AuthTime,
		BrowserHash:     r.BrowserHash,
		Browser:         r.Browser,
		Reason:          r.Reason,
		PollInterval:    time.Duration(r.PollSeconds) * time.Second,
		RequiredACR:     r.RequiredACR,
		ACR:             r.ACR,
		AMR:             r.AMR,
	}
}

type tokenRecord struct {
	format
	ID        string    `json:"id"`
	ClientID  string    `json:"client_id"`
	AccountID string    `json:"account_id"`
	Scopes    []string  `json:"scopes"`
	AuthTime  time.Time `json:"auth_time"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func toToken(t storage.Token) tokenRecord {
	return tokenRecord{
		format:    format{formatVersion},
		ID:        t.ID,
		ClientID:  t.ClientID,
		AccountID: t.AccountID,
		Scopes:    t.Scopes,
		AuthTime:  t.AuthTime.UTC(),
		CreatedAt: t.CreatedAt.UTC(),
		ExpiresAt: t.ExpiresAt.UTC(),
	}
}

func fromToken(r tokenRecord) storage.Token {
	return storage.Token{
		ID:        r.ID,
		ClientID:  r.ClientID,
		AccountID: r.AccountID,
		Scopes:    r.Scopes,
		AuthTime:  r.AuthTime,
		CreatedAt: r.CreatedAt,
		ExpiresAt: r.ExpiresAt,
	}
}

type secretRecord struct {
	format
	Name  string `json:"name"`
	Value []byte `json:"value"`
}

func toSecret(s secret) secretRecord {
	return secretRecord{format: format{formatVersion}, Name: s.Name, Value: s.Value}
}

func fromSecret(r secretRecord) secret {
	return secret{Name: r.Name, Value: r.Value}
}

// signingKeyRecord holds the private key as given, as secretRecord holds a secret: the provider
// seals both (package seal) before it stores them.
type signingKeyRecord struct {
	format
	ID         string     `json:"id"`
	Algorithm  string     `json:"algorithm"`
	PrivateKey []byte     `json:"private_key"`
	CreatedAt  time.Time  `json:"created_at"`
	RetireAt   *time.Time `json:"retire_at"`
}

func toSigningKey(k storage.SigningKey) signingKeyRecord {
	return signingKeyRecord{
		format:     format{formatVersion},
		ID:         k.ID,
		Algorithm:  k.Algorithm,
		PrivateKey: k.PrivateKey,
		CreatedAt:  k.CreatedAt.UTC(),
		RetireAt:   utc(k.RetireAt),
	}
}

func fromSigningKey(r signingKeyRecord) storage.SigningKey {
	return storage.SigningKey{
		ID:         r.ID,
		Algorithm:  r.Algorithm,
		PrivateKey: r.PrivateKey,
		CreatedAt:  r.CreatedAt,
		RetireAt:   r.RetireAt,
	}
}

// certificateRecord holds the private key as given, as signingKeyRecord does: package seal
// seals it before it is stored.
type certificateRecord struct {
	format
	Serial     []byte     `json:"serial"`
	DeviceID   string     `json:"device_id"`
	AccountID  string     `json:"account_id"`
	DER        []byte     `json:"der"`
	PrivateKey []byte     `json:"private_key"`
	CreatedAt  time.Time  `json:"created_at"`
	NotAfter   time.Time  `json:"not_after"`
	RevokedAt  *time.Time `json:"revoked_at"`
	Reason     int        `json:"reason"`
}

func toCertificate(c storage.Certificate) certificateRecord {
	return certificateRecord{
		format: format{formatVersion}, Serial: c.Serial, DeviceID: c.DeviceID, AccountID: c.AccountID,
		DER: c.DER, PrivateKey: c.PrivateKey, CreatedAt: c.CreatedAt.UTC(), NotAfter: c.NotAfter.UTC(),
		RevokedAt: utc(c.RevokedAt), Reason: c.Reason,
	}
}

func fromCertificate(r certificateRecord) storage.Certificate {
	return storage.Certificate{
		Serial: r.Serial, DeviceID: r.DeviceID, AccountID: r.AccountID, DER: r.DER, PrivateKey: r.PrivateKey,
		CreatedAt: r.CreatedAt, NotAfter: r.NotAfter, RevokedAt: r.RevokedAt, Reason: r.Reason,
	}
}

type ticketRecord struct {
	format
	Hash      []byte     `json:"hash"`
	Kind      string     `json:"kind"`
	AccountID string     `json:"account_id"`
	Email     string     `json:"email,omitempty"`
	DeviceID  string     `json:"device_id,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	UsedAt    *time.Time `json:"used_at"`
}

func toTicket(t storage.Ticket) ticketRecord {
	return ticketRecord{
		format: format{formatVersion}, Hash: t.Hash, Kind: t.Kind, AccountID: t.AccountID, Email: t.Email, DeviceID: t.DeviceID,
		CreatedAt: t.CreatedAt.UTC(), ExpiresAt: t.ExpiresAt.UTC(), UsedAt: utc(t.UsedAt),
	}
}

func fromTicket(r ticketRecord) storage.Ticket {
	return storage.Ticket{
		Hash: r.Hash, Kind: r.Kind, AccountID: r.AccountID, Email: r.Email, DeviceID: r.DeviceID,
		CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, UsedAt: r.UsedAt,
	}
}

// mailRecord holds Params as the bytes given, which JSON writes in base64: the template's
// values are the caller's JSON, kept exactly, not reencoded.
type mailRecord struct {
	format
	ID         string     `json:"id"`
	Key        string     `json:"key,omitempty"`
	AccountID  string     `json:"account_id"`
	To         string     `json:"to"`
	Lang       string     `json:"lang,omitempty"`
	Notice     string     `json:"notice"`
	Params     []byte     `json:"params"`
	CreatedAt  time.Time  `json:"created_at"`
	NextAt     time.Time  `json:"next_at"`
	LeaseUntil time.Time  `json:"lease_until"`
	Attempts   int        `json:"attempts,omitempty"`
	SentAt     *time.Time `json:"sent_at"`
	FailedAt   *time.Time `json:"failed_at"`
	LastError  string     `json:"last_error,omitempty"`
}

func toMail(m storage.Mail) mailRecord {
	return mailRecord{
		format: format{formatVersion}, ID: m.ID, Key: m.Key, AccountID: m.AccountID, To: m.To, Lang: m.Lang,
		Notice: m.Notice, Params: m.Params, CreatedAt: m.CreatedAt.UTC(), NextAt: m.NextAt.UTC(),
		LeaseUntil: m.LeaseUntil.UTC(), Attempts: m.Attempts, SentAt: utc(m.SentAt), FailedAt: utc(m.FailedAt),
		LastError: m.LastError,
	}
}

func fromMail(r mailRecord) storage.Mail {
	return storage.Mail{
		ID: r.ID, Key: r.Key, AccountID: r.AccountID, To: r.To, Lang: r.Lang, Notice: r.Notice, Params: r.Params,
		CreatedAt: r.CreatedAt, NextAt: r.NextAt, LeaseUntil: r.LeaseUntil, Attempts: r.Attempts,
		SentAt: r.SentAt, FailedAt: r.FailedAt, LastError: r.LastError,
	}
}

type eventRecord struct {
	format
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	AccountID string    `json:"account_id"`
	Type      string    `json:"type"`
	Outcome   string    `json:"outcome"`
	Reason    string    `json:"reason"`
	ClientID  string    `json:"client_id"`
	DeviceID  string    `json:"device_id"`
	Actor     string    `json:"actor"`
	IP        string    `json:"ip"`
	Detail    string    `json:"detail,omitempty"`
}

func toEvent(e storage.Event) eventRecord {
	return eventRecord{
		format:    format{formatVersion},
		ID:        e.ID,
		Time:      e.Time.UTC(),
		AccountID: e.AccountID,
		Type:      e.Type,
		Outcome:   e.Outcome,
		Reason:    e.Reason,
		ClientID:  e.ClientID,
		DeviceID:  e.DeviceID,
		Actor:     e.Actor,
		IP:        e.IP,
		Detail:    e.Detail,
	}
}

func fromEvent(r eventRecord) storage.Event {
	return storage.Event{
		ID:        r.ID,
		Time:      r.Time,
		AccountID: r.AccountID,
		Type:      r.Type,
		Outcome:   r.Outcome,
		Reason:    r.Reason,
		ClientID:  r.ClientID,
		DeviceID:  r.DeviceID,
		Actor:     r.Actor,
		IP:        r.IP,
		Detail:    r.Detail,
	}
}
