package phone

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// CreateOptions change how the phone answers a registration.
type CreateOptions struct {
	// NoUserVerification leaves the UV flag clear, as a phone without a screen lock would.
	NoUserVerification bool
	// Attestation is "none" (the default) or "packed": self attestation signed with the new
	// credential's own key, or, with AttestationKey, full attestation signed by that key and
	// carrying AttestationChain (DER, the attestation certificate first) as x5c.
	Attestation      string
	AttestationKey   *ecdsa.PrivateKey
	AttestationChain [][]byte
	// AAGUID is the authenticator model the credential says it is: all zero by default.
	AAGUID [16]byte
	// BackupEligible sets the BE and BS flags, as a synced passkey has them.
	BackupEligible bool
}

// GetOptions change how the phone answers a login.
type GetOptions struct {
	NoUserVerification bool
	// SignCount, when set, is the counter value to sign instead of the next one; tests use it
	// to make the counter go backwards as a cloned authenticator's would.
	SignCount *uint32
	// CredentialID picks the credential when the phone holds several for the relying party.
	CredentialID []byte
	// Signer signs the assertion; nil means ECDSASigner. A load test's phones sign with a
	// Presigned.
	Signer Signer
}

// credentialIDLen is what platform authenticators use: long enough to be unguessable.
const credentialIDLen = 32

// Create answers navigator.credentials.create() from a page at origin: it makes a new P-256
// credential and returns the RegistrationResponseJSON a browser would send. The credential is
// kept in the phone; Save writes it to the key file.
func (p *Phone) Create(origin string, opts protocol.PublicKeyCredentialCreationOptions, o CreateOptions) ([]byte, error) {
	_, response, err := p.create(origin, opts, o)
	return response, err
}

func (p *Phone) create(origin string, opts protocol.PublicKeyCredentialCreationOptions, o CreateOptions) (*Credential, []byte, error) {
	if o.Attestation != "" && o.Attestation != "none" && o.Attestation != "packed" {
		return nil, nil, fmt.Errorf("attestation %q is not one the phone makes; use \"none\" or \"packed\"", o.Attestation)
	}
	rpID, err := rpIDFor(origin, opts.RelyingParty.ID)
	if err != nil {
		return nil, nil, err
	}
	if len(opts.Challenge) == 0 {
		return nil, nil, errors.New("the server's creation options carry no challenge")
	}
	if !offersES256(opts.Parameters) {
		return nil, nil, errors.New("the server does not offer ES256 (COSE algorithm -7), the only algorithm the phone signs with; add it to pubKeyCredParams")
	}
	userHandle, err := userHandleOf(opts.User.ID)
	if err != nil {
		return nil, nil, err
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	for _, excluded := range opts.CredentialExcludeList {
		if slices.ContainsFunc(p.creds, func(c *Credential) bool { return bytes.Equal(c.ID, excluded.CredentialID) }) {
			return nil, nil, errors.New("this phone is already bound to the account; remove the old device before binding it again")
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate a credential key: %w", err)
	}
	c := &Credential{ID: make([]byte, credentialIDLen), RPID: rpID, UserHandle: userHandle, UserName: opts.User.Name, BackupEligible: o.BackupEligible, key: key}
	_, _ = rand.Read(c.ID) // crypto/rand.Read never fails

	coseKey, err := COSEKey(&key.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	authData := authenticatorData(rpID, protocol.FlagAttestedCredentialData|userFlags(o.NoUserVerification)|backupFlags(o.BackupEligible), 0)
	authData = append(authData, o.AAGUID[:]...)
	authData = binary.BigEndian.AppendUint16(authData, credentialIDLen)
	authData = append(authData, c.ID...)
	authData = append(authData, coseKey...)

	clientDataJSON, err := clientData(protocol.CreateCeremony, opts.Challenge, origin)
	if err != nil {
		return nil, nil, err
	}
	att := attestationObject{Format: "none", Statement: map[string]any{}, AuthData: authData}
	if o.Attestation == "packed" {
		attestationKey := key
		if o.AttestationKey != nil {
			attestationKey = o.AttestationKey
		}
		sig, err := sign(ECDSASigner{}, attestationKey, authData, clientDataJSON)
		if err != nil {
			return nil, nil, err
		}
		att.Format = "packed"
		att.Statement = map[string]any{"alg": int64(webauthncose.AlgES256), "sig": sig}
		if o.AttestationKey != nil {
			x5c := make([]any, 0, len(o.AttestationChain))
			for _, der := range o.AttestationChain {
				x5c = append(x5c, der)
			}
			att.Statement["x5c"] = x5c
		}
	}
	attObject, err := webauthncbor.Marshal(att)
	if err != nil {
		return nil, nil, fmt.Errorf("encode the attestation object: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("encode the credential key: %w", err)
	}
	response, err := marshalCredential(c.ID, protocol.AuthenticatorAttestationResponse{
		AuthenticatorResponse: protocol.AuthenticatorResponse{ClientDataJSON: clientDataJSON},
		Transports:            []string{string(protocol.Internal)},
		AuthenticatorData:     authData,
		PublicKey:             spki,
		PublicKeyAlgorithm:    int64(webauthncose.AlgES256),
		AttestationObject:     attObject,
	})
	if err != nil {
		return nil, nil, err
	}
	p.creds = append(p.creds, c)
	return c, response, nil
}

// Get answers navigator.credentials.get() from a page at origin and returns the
// AuthenticationResponseJSON a browser would send. It signs with a credential from the
// options' allow list or, when the list is empty (a discoverable login), with the phone's newest
// credential for the relying party; o.CredentialID narrows the choice. Every Get advances the
// credential's counter by one.
func (p *Phone) Get(origin string, opts protocol.PublicKeyCredentialRequestOptions, o GetOptions) ([]byte, error) {
	rpID, err := rpIDFor(origin, opts.RelyingPartyID)
	if err != nil {
		return nil, err
	}
	if len(opts.Challenge) == 0 {
		return nil, errors.New("the server's request options carry no challenge")
	}
	clientDataJSON, err := clientData(protocol.AssertCeremony, opts.Challenge, origin)
	if err != nil {
		return nil, err
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	c, err := p.pick(rpID, opts.AllowedCredentials, o.CredentialID)
	if err != nil {
		return nil, err
	}
	if o.SignCount != nil {
		c.SignCount = *o.SignCount
	} else {
		c.SignCount++
	}
	authData := authenticatorData(rpID, userFlags(o.NoUserVerification)|backupFlags(c.BackupEligible), c.SignCount)
	signer := o.Signer
	if signer == nil {
		signer = ECDSASigner{}
	}
	sig, err := sign(signer, c.key, authData, clientDataJSON)
	if err != nil {
		return nil, err
	}
	return marshalCredential(c.ID, protocol.AuthenticatorAssertionResponse{
		AuthenticatorResponse: protocol.AuthenticatorResponse{ClientDataJSON: clientDataJSON},
		AuthenticatorData:     authData,
		Signature:             sig,
		UserHandle:            c.UserHandle,
	})
}

// pick chooses the credential to sign with, newest first: a phone bound again to the same
// account should answer with the credential the server knows now. The caller holds p.mu.
func (p *Phone) pick(rpID string, allowed []protocol.CredentialDescriptor, want []byte) (*Credential, error) {
	for _, c := range slices.Backward(p.creds) {
		if c.RPID != rpID || (want != nil && !bytes.Equal(c.ID, want)) {
			continue
		}
		if len(allowed) > 0 && !slices.ContainsFunc(allowed, func(d protocol.CredentialDescriptor) bool {
			return bytes.Equal(d.CredentialID, c.ID)
		}) {
			continue
		}
		return c, nil
	}
	return nil, fmt.Errorf("this phone holds no credential for %s that the server asks for; bind the phone to your account first", rpID)
}

// rpIDFor does what a browser does before a page may use credentials: the RP ID must be the
// origin's host or a domain above it, so that one site cannot use another's credentials. An
// empty RP ID means the origin's host.
func rpIDFor(origin, rpID string) (string, error) {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || origin != u.Scheme+"://"+u.Host {
		return "", fmt.Errorf("origin %q is not scheme://host[:port]; give the server's public URL", origin)
	}
	host := strings.ToLower(u.Hostname())
	if rpID == "" {
		return host, nil
	}
	if want := strings.ToLower(rpID); host != want && !strings.HasSuffix(host, "."+want) {
		return "", fmt.Errorf("the server's RP ID %q does not cover the page's origin %s; the server's public URL must be on the RP ID's domain", rpID, origin)
	}
	return rpID, nil
}

// offersES256 says whether the phone's algorithm is acceptable; an empty list means the
// WebAuthn defaults, ES256 and RS256.
func offersES256(params []protocol.CredentialParameter) bool {
	return len(params) == 0 || slices.ContainsFunc(params, func(cp protocol.CredentialParameter) bool {
		return cp.Type == protocol.PublicKeyCredentialType && cp.Algorithm == webauthncose.AlgES256
	})
}

// userHandleOf reads options.user.id: base64url text after the JSON trip from the server (the
// form go-webauthn sends), or bytes when the options were built in the same process.
func userHandleOf(id any) ([]byte, error) {
	var handle []byte
	switch v := id.(type) {
	case string:
		handle, _ = base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
	case protocol.URLEncodedBase64:
		handle = v
	case []byte:
		handle = v
	}
	if len(handle) == 0 || len(handle) > 64 {
		return nil, errors.New("the server's creation options carry no valid user.id (1 to 64 bytes, base64url)")
	}
	return handle, nil
}

func userFlags(noUserVerification bool) protocol.AuthenticatorFlags {
	if noUserVerification {
		return protocol.FlagUserPresent
	}
	return protocol.FlagUserPresent | protocol.FlagUserVerified
}

// backupFlags are the BE and BS flags of a synced passkey, which is backed up as soon as made.
func backupFlags(eligible bool) protocol.AuthenticatorFlags {
	if eligible {
		return protocol.FlagBackupEligible | protocol.FlagBackupState
	}
	return 0
}

// authenticatorData is the fixed start of WebAuthn's authenticator data: rpIdHash, flags and
// the big-endian signature counter.
func authenticatorData(rpID string, flags protocol.AuthenticatorFlags, signCount uint32) []byte {
	hash := sha256.Sum256([]byte(rpID))
	data := append(hash[:], byte(flags))
	return binary.BigEndian.AppendUint32(data, signCount)
}

// clientData is the clientDataJSON a browser writes, in its member order and with crossOrigin
// present; the library's own type leaves a false crossOrigin out.
func clientData(ceremony protocol.CeremonyType, challenge []byte, origin string) ([]byte, error) {
	data, err := json.Marshal(struct {
		Type        protocol.CeremonyType `json:"type"`
		Challenge   string                `json:"challenge"`
		Origin      string                `json:"origin"`
		CrossOrigin bool                  `json:"crossOrigin"`
	}{ceremony, base64.RawURLEncoding.EncodeToString(challenge), origin, false})
	if err != nil {
		return nil, fmt.Errorf("encode clientDataJSON: %w", err)
	}
	return data, nil
}

// sign is the WebAuthn signature by signer with key: ECDSA with SHA-256, ASN.1 DER, over
// authData and the hash of clientDataJSON.
func sign(signer Signer, key *ecdsa.PrivateKey, authData, clientDataJSON []byte) ([]byte, error) {
	clientDataHash := sha256.Sum256(clientDataJSON)
	digest := sha256.Sum256(append(slices.Clip(authData), clientDataHash[:]...))
	sig, err := signer.Sign(key, digest[:])
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return sig, nil
}

// COSEKey is a P-256 public key as a credential's COSE_Key (ES256): how the attested credential
// data of a registration carries it, and how a relying party stores it.
func COSEKey(pub *ecdsa.PublicKey) ([]byte, error) {
	point, err := pub.Bytes() // 0x04 | X | Y
	if err != nil {
		return nil, fmt.Errorf("encode the credential key: %w", err)
	}
	key, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{
			KeyType:   int64(webauthncose.EllipticKey),
			Algorithm: int64(webauthncose.AlgES256),
		},
		Curve:  int64(webauthncose.P256),
		XCoord: point[1:33],
		YCoord: point[33:],
	})
	if err != nil {
		return nil, fmt.Errorf("encode the credential key: %w", err)
	}
	return key, nil
}

// attestationObject is the CBOR attestation object; the library only decodes one.
type attestationObject struct {
	Format    string         `cbor:"fmt"`
	Statement map[string]any `cbor:"attStmt"`
	AuthData  []byte         `cbor:"authData"`
}

// credentialJSON is the PublicKeyCredential JSON of both ceremonies. Browsers always send
// clientExtensionResults, empty when no extension ran; the library's type leaves an empty one
// out, so this field, shallower, takes its place.
type credentialJSON struct {
	protocol.PublicKeyCredential
	Response               any      `json:"response"`
	ClientExtensionResults struct{} `json:"clientExtensionResults"`
}

func marshalCredential(id []byte, response any) ([]byte, error) {
	data, err := json.Marshal(credentialJSON{
		PublicKeyCredential: protocol.PublicKeyCredential{
			Credential: protocol.Credential{
				ID:   base64.RawURLEncoding.EncodeToString(id),
				Type: string(protocol.PublicKeyCredentialType),
			},
			RawID:                   id,
			AuthenticatorAttachment: string(protocol.Platform),
		},
		Response: response,
	})
	if err != nil {
		return nil, fmt.Errorf("encode the credential response: %w", err)
	}
	return data, nil
}
