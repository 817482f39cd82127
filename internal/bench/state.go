// Package bench is mcert's load tool, behind the commands mcert bench seed and mcert bench
// run: citizens with bound software phones seeded into a store, then a server process on that
// store driven over loopback by concurrent phones, beside the in-process ceiling of the same
// ceremonies (go-webauthn alone) and the HTTP floor, in one run. docs/performance.md says how
// it measures and what it found.
package bench

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/storage"
)

const (
	keysVersion = 1
	// idSpace is how many national IDs citizenID makes: 26 letters, 1 or 2, 10⁷. Seeded
	// citizens count up from 0, the bind scenario's fresh citizens down from the top.
	idSpace = 26 * 2 * 10_000_000
	// MaxN is the most citizens Seed seeds.
	MaxN        = 10_000_000
	redirectURI = "http://localhost:9000/callback"
)

// state is the bench's key file: the seed every phone derives from, the relying party the
// logins are for, and what runs must not repeat (signature counters, fresh citizens).
type state struct {
	Version      int       `json:"version"`
	Seed         []byte    `json:"seed"`
	N            int       `json:"n"`
	CreatedAt    time.Time `json:"created_at"`
	ClientID     string    `json:"client_id"`
	ClientSecret string    `json:"client_secret"`
	RedirectURI  string    `json:"redirect_uri"`
	// NextCounter is above every signature counter a run has sent; the next run counts from it.
	NextCounter uint32 `json:"next_counter"`
	// NextBinder is the first citizen the bind scenario has not registered yet.
	NextBinder int `json:"next_binder"`
}

// KeysPath is where the key file is: keys, or <dataDir>/bench-keys.json.
func KeysPath(dataDir, keys string) string {
	if keys != "" {
		return keys
	}
	return filepath.Join(dataDir, "bench-keys.json")
}

func loadState(path string) (*state, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no bench key file at %s: run mcert bench seed first", path)
	}
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil || st.Version != keysVersion || len(st.Seed) == 0 || st.N < 1 {
		return nil, fmt.Errorf("%s is not a bench key file of version %d (%v); seed again", path, keysVersion, err)
	}
	return &st, nil
}

// save writes the key file, readable by its owner only: it holds every phone's key.
func (st *state) save(path string) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// seededPhone is seeded citizen i with their one bound phone.
type seededPhone struct {
	index        int
	citizenID    string
	accountID    string
	deviceID     string
	webAuthnID   []byte // the account's user handle, 64 bytes
	credentialID []byte
	deviceToken  string // the inbox secret, which the server knows by hash
	key          *ecdsa.PrivateKey
}

// derive is the seed's HMAC of purpose and i: every secret and ID of the bench.
func (st *state) derive(purpose string, i int) []byte {
	m := hmac.New(sha256.New, st.Seed)
	m.Write([]byte("mcert bench " + purpose + " " + strconv.Itoa(i)))
	return m.Sum(nil)
}

func (st *state) phone(i int) (seededPhone, error) {
	p := seededPhone{
		index: i, citizenID: citizenID(i),
		accountID:    base64url(st.derive("account", i)[:16]),
		deviceID:     base64url(st.derive("device", i)[:16]),
		webAuthnID:   append(st.derive("user handle a", i), st.derive("user handle b", i)...),
		credentialID: st.derive("credential", i),
		deviceToken:  base64url(st.derive("device token", i)),
	}
	// A P-256 scalar from 32 random bytes is out of range once in 2³², so a second try is enough.
	for try := 0; p.key == nil; try++ {
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), st.derive("key "+strconv.Itoa(try), i))
		if err != nil && try > 3 {
			return p, fmt.Errorf("derive the key of phone %d: %w", i, err)
		}
		p.key = k
	}
	return p, nil
}

// authenticator is the software phone holding this citizen's credential for rpID.
func (p seededPhone) authenticator(rpID string) (*phone.Phone, error) {
	ph := new(phone.Phone)
	return ph, ph.Add(phone.Credential{ID: p.credentialID, RPID: rpID, UserHandle: p.webAuthnID}, p.key)
}

// records are the account and device the server would have made of this citizen's card login,
// registration and binding, with the same encodings: what binding.Service's Register and
// FinishBind write of them, for a phone that answers as the phone package does (no
// attestation, user verified, not backed up). Seed leaves out what those also write beside
// them: the audit events, the mails queued, the binding, and the device's signing certificate,
// which only signing requests read.
func (p seededPhone) records(now time.Time) (storage.Account, storage.Device, error) {
	a := storage.Account{
		ID: p.accountID, CitizenID: p.citizenID, Name: "王小明", Email: fmt.Sprintf("bench%d@example.tw", p.index),
		Phone: fmt.Sprintf("09%08d", p.index%100_000_000), WebAuthnID: p.webAuthnID, Status: storage.AccountActive,
		CreatedAt: now, UpdatedAt: now,
	}
	cose, err := phone.COSEKey(&p.key.PublicKey)
	if err != nil {
		return a, storage.Device{}, err
	}
	tokenHash := sha256.Sum256([]byte(p.deviceToken))
	d := storage.Device{
		ID: p.deviceID, AccountID: p.accountID, Name: "Bench phone", CredentialID: p.credentialID, PublicKey: cose,
		AttestationType: "none", AttestationFmt: "none", AAGUID: make([]byte, 16), Attestation: storage.AttestationNone,
		Transports: []string{string(protocol.Internal)}, TokenHash: tokenHash[:], Status: storage.DeviceActive,
		CreatedAt: now, ExpiresAt: now.AddDate(0, 0, binding.DeviceDays),
	}
	return a, d, nil
}

// citizenID is the i-th of idSpace well-formed national IDs.
func citizenID(i int) string {
	prefix := fmt.Sprintf("%c%d%07d", 'A'+i/20_000_000, 1+i/10_000_000%2, i%10_000_000)
	for check := '0'; ; check++ {
		if authn.ValidateCitizenID(prefix+string(check)) == nil {
			return prefix + string(check)
		}
	}
}

func base64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
