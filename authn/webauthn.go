package authn

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/storage"
)

// ceremonyTimeout is what the phone is told it has; the binding's own expiry is what the server
// enforces.
const ceremonyTimeoutMS = 120_000

// WebAuthn runs the server side of the phone's WebAuthn ceremonies for one relying-party
// identity: the public URL's host is the RP ID and the public URL's origin the only origin.
type WebAuthn struct {
	wa *webauthn.WebAuthn
	// Trust decides which attestation chains make a device's attestation "trusted".
	Trust AttestationTrust
}

// NewWebAuthn configures the ceremonies for the server reachable at publicURL.
func NewWebAuthn(publicURL string) (*WebAuthn, error) {
	u, err := url.Parse(publicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, fmt.Errorf("public URL %q must be an absolute http(s) URL such as https://mcert.example.tw", publicURL)
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          u.Hostname(),
		RPDisplayName: "mcert",
		RPOrigins:     []string{u.Scheme + "://" + u.Host},
	})
	if err != nil {
		return nil, fmt.Errorf("configure WebAuthn for %s: %w", publicURL, err)
	}
	return &WebAuthn{wa: wa}, nil
}

// user adapts an account to go-webauthn. The user name the phone shows in its passkey list is
// the masked ID: the full national ID never leaves the server.
type user struct {
	account storage.Account
	devices []storage.Device
}

func (u user) WebAuthnID() []byte          { return u.account.WebAuthnID }
func (u user) WebAuthnName() string        { return MaskCitizenID(u.account.CitizenID) }
func (u user) WebAuthnDisplayName() string { return u.account.Name }
func (u user) WebAuthnCredentials() []webauthn.Credential {
	creds := make([]webauthn.Credential, 0, len(u.devices))
	for _, d := range u.devices {
		creds = append(creds, credentialOf(d))
	}
	return creds
}

func credentialOf(d storage.Device) webauthn.Credential {
	transports := make([]protocol.AuthenticatorTransport, 0, len(d.Transports))
	for _, t := range d.Transports {
		transports = append(transports, protocol.AuthenticatorTransport(t))
	}
	return webauthn.Credential{
		ID: d.CredentialID, PublicKey: d.PublicKey, AttestationType: d.AttestationType, AttestationFormat: d.AttestationFmt,
		Transport: transports,
		Flags: webauthn.CredentialFlags{
			UserPresent: true, UserVerified: true, BackupEligible: d.BackupEligible, BackupState: d.BackupState,
		},
		Authenticator: webauthn.Authenticator{AAGUID: d.AAGUID, SignCount: d.SignCount},
	}
}

// BeginRegistration starts binding a phone to the account. It returns the options for the phone
// and the ceremony state, opaque to the caller, to hand back to FinishRegistration. Credentials
// of the account's existing devices are excluded so a phone is not bound twice.
func (w *WebAuthn) BeginRegistration(account storage.Account, existing []storage.Device) (*protocol.CredentialCreation, []byte, error) {
	exclude := make([]protocol.CredentialDescriptor, 0, len(existing))
	for _, d := range existing {
		exclude = append(exclude, protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: d.CredentialID})
	}
	requireResidentKey := true
	creation, session, err := w.wa.BeginRegistration(user{account: account},
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			AuthenticatorAttachment: protocol.Platform,
			RequireResidentKey:      &requireResidentKey,
			ResidentKey:             protocol.ResidentKeyRequirementRequired,
			UserVerification:        protocol.VerificationRequired,
		}),
		webauthn.WithCredentialParameters([]protocol.CredentialParameter{
			{Type: protocol.PublicKeyCredentialType, Algorithm: -7},   // ES256, what phones use
			{Type: protocol.PublicKeyCredentialType, Algorithm: -257}, // RS256
			{Type: protocol.PublicKeyCredentialType, Algorithm: -8},   // EdDSA
		}),
		// Direct: the phone's attestation, when it makes one, says what its key is (honest
		// assurance: hwk only for a key known to stay in hardware). Phones may still send none.
		webauthn.WithConveyancePreference(protocol.PreferDirectAttestation),
		webauthn.WithExclusions(exclude),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("begin registration: %w", err)
	}
	creation.Response.Timeout = ceremonyTimeoutMS
	state, err := saveSession(session)
	return creation, state, err
}

// saveSession keeps the ceremony state for the finish step. The transaction record carries the
// expiry, measured on the server's clock; go-webauthn's own would be measured on the wall clock
// and disagree with it.
func saveSession(session *webauthn.SessionData) ([]byte, error) {
	session.Expires = time.Time{}
	state, err := json.Marshal(session)
	if err != nil {
		return nil, fmt.Errorf("save ceremony state: %w", err)
	}
	return state, nil
}

func loadSession(state []byte) (webauthn.SessionData, error) {
	var session webauthn.SessionData
	if err := json.Unmarshal(state, &session); err != nil {
		return session, fmt.Errorf("load ceremony state: %w", err)
	}
	return session, nil
}

// FinishRegistration verifies the phone's RegistrationResponseJSON against the state saved by
// BeginRegistration and returns the new device's credential fields. A response without the
// user-verification flag is refused: the binding must be guarded by the phone's biometric.
func (w *WebAuthn) FinishRegistration(account storage.Account, state, response []byte) (storage.Device, error) {
	session, err := loadSession(state)
	if err != nil {
		return storage.Device{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return storage.Device{}, ceremonyError(mcert.BadCredential, err)
	}
	if !parsed.Response.AttestationObject.AuthData.Flags.HasUserVerified() {
		return storage.Device{}, mcert.UserNotVerified.New()
	}
	cred, err := w.wa.CreateCredential(user{account: account}, session, parsed)
	if err != nil {
		return storage.Device{}, ceremonyError(mcert.RegistrationRefused, err)
	}
	transports := make([]string, 0, len(cred.Transport))
	for _, t := range cred.Transport {
		transports = append(transports, string(t))
	}
	return storage.Device{
		CredentialID:    cred.ID,
		PublicKey:       cred.PublicKey,
		AttestationType: cred.AttestationType,
		AttestationFmt:  cred.AttestationFormat,
		AAGUID:          cred.Authenticator.AAGUID,
		SignCount:       cred.Authenticator.SignCount,
		Transports:      transports,
		BackupEligible:  cred.Flags.BackupEligible,
		BackupState:     cred.Flags.BackupState,
		Attestation:     w.Trust.classify(parsed.Response.AttestationObject, cred.Authenticator.AAGUID),
	}, nil
}

// ceremonyError turns go-webauthn's error into a client error of code that says what failed;
// its details name the check (challenge, origin, signature...) and hold no secret.
func ceremonyError(code *mcert.Code, err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.Details != "" {
		return code.Newf(pe.Details)
	}
	return code.Newf(err)
}

// BeginLogin starts an assertion with user verification required. Without an account (a QR
// login: nobody knows yet who will scan) the phone may answer with any of its passkeys for this
// server; with one (a decoupled login for a known citizen) only with that account's devices.
//
// A challenge given (a signing request's, which commits to what is signed) replaces the random
// one; nil leaves it random.
func (w *WebAuthn) BeginLogin(account *storage.Account, devices []storage.Device, challenge []byte) (*protocol.CredentialAssertion, []byte, error) {
	opts := []webauthn.LoginOption{webauthn.WithUserVerification(protocol.VerificationRequired)}
	if challenge != nil {
		opts = append(opts, webauthn.WithChallenge(challenge))
	}
	var (
		assertion *protocol.CredentialAssertion
		session   *webauthn.SessionData
		err       error
	)
	if account == nil {
		assertion, session, err = w.wa.BeginDiscoverableLogin(opts...)
	} else {
		assertion, session, err = w.wa.BeginLogin(user{account: *account, devices: devices}, opts...)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("begin login: %w", err)
	}
	assertion.Response.Timeout = ceremonyTimeoutMS
	state, err := saveSession(session)
	return assertion, state, err
}

// Assertion is a verified login: which device signed, and what its authenticator now reports.
type Assertion struct {
	DeviceID     string
	SignCount    uint32
	BackupState  bool
	CloneWarning bool // the counter did not move forward: a copy of the key may exist
}

// Signer is what a login's finish needs of the credential that signed: the state BeginLogin
// saved for the ceremony, the device holding the credential, its account, and the devices the
// ceremony allowed.
type Signer struct {
	State   []byte
	Account storage.Account
	Device  storage.Device
	Devices []storage.Device
}

// DeviceLookup finds the signer of a credential ID. The ceremony's state comes with it, so that
// the caller reads the login and the device in one go.
type DeviceLookup func(credentialID []byte) (Signer, error)

// FinishLogin verifies the phone's AuthenticationResponseJSON against the state saved by
// BeginLogin. An assertion without the user-verification flag is refused. A counter that went
// backwards is reported in CloneWarning, not refused here: the caller records and refuses it.
func (w *WebAuthn) FinishLogin(response []byte, lookup DeviceLookup) (Assertion, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return Assertion{}, ceremonyError(mcert.BadLoginResponse, err)
	}
	signer, err := lookup(parsed.RawID)
	if err != nil {
		return Assertion{}, err
	}
	session, err := loadSession(signer.State)
	if err != nil {
		return Assertion{}, err
	}
	if !parsed.Response.AuthenticatorData.Flags.HasUserVerified() {
		return Assertion{}, mcert.LoginNotVerified.New()
	}
	device := signer.Device
	u := user{account: signer.Account, devices: signer.Devices}
	var cred *webauthn.Credential
	if len(session.UserID) > 0 {
		cred, err = w.wa.ValidateLogin(u, session, parsed)
	} else {
		cred, err = w.wa.ValidateDiscoverableLogin(func(_, _ []byte) (webauthn.User, error) { return u, nil }, session, parsed)
	}
	if err != nil {
		return Assertion{}, ceremonyError(mcert.LoginRefused, err)
	}
	return Assertion{
		DeviceID: device.ID, SignCount: cred.Authenticator.SignCount, BackupState: cred.Flags.BackupState,
		CloneWarning: cred.Authenticator.CloneWarning,
	}, nil
}
