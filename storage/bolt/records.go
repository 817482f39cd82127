package bolt

import (
	"time"

	"github.com/mcert/mcert/storage"
)

// The records below are the stored format, kept apart from the storage types so that a change
// to those cannot change the data file unnoticed. Times are UTC in RFC 3339 with nanoseconds,
// which is how encoding/json writes a time.Time.

// formatVersion is written into every record as "v"; change the records only together with it.
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
}

func toAccount(a storage.Account) accountRecord {
	return accountRecord{
		format:     format{formatVersion},
		ID:         a.ID,
		CitizenID:  a.CitizenID,
		Name:       a.Name,
		Email:      a.Email,
		Phone:      a.Phone,
		WebAuthnID: a.WebAuthnID,
		Status:     a.Status,
		CreatedAt:  a.CreatedAt.UTC(),
		UpdatedAt:  a.UpdatedAt.UTC(),
	}
}

func fromAccount(r accountRecord) storage.Account {
	return storage.Account{
		ID:         r.ID,
		CitizenID:  r.CitizenID,
		Name:       r.Name,
		Email:      r.Email,
		Phone:      r.Phone,
		WebAuthnID: r.WebAuthnID,
		Status:     r.Status,
		CreatedAt:  r.CreatedAt,
		UpdatedAt:  r.UpdatedAt,
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
	}
}
