// Package signing holds what a signature with the mobile certificate (PROTOCOL.md section 9)
// proves beyond the signature itself: the signing request the citizen saw, the WebAuthn
// challenge that commits to it, and the evidence of the phone's approval that a relying party
// keeps as proof that the citizen alone had the signing key used.
package signing

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// Document is one document of a signing request, known to mcert by its digest only.
type Document struct {
	Name   string `json:"name"`
	Digest []byte `json:"digest"` // SHA-256, 32 bytes
}

// Request is a signing request as the phone showed it to the citizen.
type Request struct {
	ID        string     `json:"id"`
	ClientID  string     `json:"client_id"`
	Text      string     `json:"text"`
	Format    string     `json:"format"` // "cms" or "raw"
	Documents []Document `json:"documents"`
}

// randomLen is the challenge's random part, after the commitment: a challenge is unique even
// when a relying party asks for the same signature twice, so no approval can be replayed.
const randomLen = 16

// Commitment is SHA-256 over the request's id, text, and each document's name and digest, in
// that order, each preceded by its length as a 4-byte big-endian integer, so that no two
// requests share one: what the phone's WebAuthn challenge commits to.
func Commitment(r Request) [32]byte {
	h := sha256.New()
	field := func(b []byte) {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
		h.Write(b)
	}
	field([]byte(r.ID))
	field([]byte(r.Text))
	for _, d := range r.Documents {
		field([]byte(d.Name))
		field(d.Digest)
	}
	return [32]byte(h.Sum(nil))
}

// NewChallenge is the WebAuthn challenge of a signing request's begin: the commitment followed
// by 16 random bytes (48 bytes). It refuses a request that ParseEvidence would refuse in the
// evidence of its approval.
func NewChallenge(r Request) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	c := Commitment(r)
	challenge := append(c[:], make([]byte, randomLen)...)
	if _, err := io.ReadFull(rand.Reader, challenge[len(c):]); err != nil {
		return nil, fmt.Errorf("the challenge's random bytes: %w", err)
	}
	return challenge, nil
}

// check refuses what no signing request holds (PROTOCOL.md section 9). The limits on the text
// and the names are the server's to enforce when it accepts the request; what is checked here
// is what Verify relies on.
func (r Request) check() error {
	switch {
	case r.ID == "":
		return errors.New("the signing request has no id")
	case r.ClientID == "":
		return errors.New("the signing request names no client")
	case r.Text == "":
		return errors.New("the signing request has no text")
	case r.Format != "cms" && r.Format != "raw":
		return fmt.Errorf("the signing request's format is %q, not \"cms\" or \"raw\"", r.Format)
	case len(r.Documents) == 0:
		return errors.New("the signing request has no documents")
	}
	for i, d := range r.Documents {
		if d.Name == "" {
			return fmt.Errorf("document %d of the signing request has no name", i+1)
		}
		if len(d.Digest) != sha256.Size {
			return fmt.Errorf("document %d (%q) of the signing request has a digest of %d bytes, not SHA-256's %d", i+1, d.Name, len(d.Digest), sha256.Size)
		}
	}
	return nil
}

// EvidenceVersion is the version of the evidence's format that this package writes and reads.
const EvidenceVersion = 1

// Evidence is the proof of the phone's approval of a signing request, which mcert hands the
// relying party with the signatures: everything needed to check the approval again without
// mcert, as Verify does.
type Evidence struct {
	V          int             `json:"v"` // EvidenceVersion
	Request    Request         `json:"request"`
	Challenge  []byte          `json:"challenge"`
	Credential json.RawMessage `json:"credential"` // the phone's AuthenticationResponseJSON, as it sent it
	DeviceID   string          `json:"device_id"`
	PublicKey  []byte          `json:"public_key"` // the device's COSE public key
	RPID       string          `json:"rp_id"`
	Origin     string          `json:"origin"`
	// Certificate is the DER of the signing certificate used, the device's.
	Certificate []byte    `json:"certificate"`
	SignedAt    time.Time `json:"signed_at"`
}

// Marshal is the evidence as JSON, the form ParseEvidence reads.
func (e Evidence) Marshal() ([]byte, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	return b, nil
}

// ParseEvidence reads what Marshal wrote. It is strict, as a verifier's input should be: an
// unknown field, another version, a missing field or a field of the wrong length is refused
// rather than read as something the evidence does not say.
func ParseEvidence(b []byte) (Evidence, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var e Evidence
	if err := dec.Decode(&e); err != nil {
		return Evidence{}, fmt.Errorf("the evidence is not mcert's JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Evidence{}, errors.New("the evidence is not mcert's JSON: data after its object")
	}
	if err := e.check(); err != nil {
		return Evidence{}, err
	}
	return e, nil
}

func (e Evidence) check() error {
	if e.V != EvidenceVersion {
		return fmt.Errorf("the evidence is of version %d; this program reads version %d", e.V, EvidenceVersion)
	}
	if err := e.Request.check(); err != nil {
		return fmt.Errorf("the evidence: %w", err)
	}
	switch {
	case len(e.Challenge) < sha256.Size+randomLen:
		return fmt.Errorf("the evidence's challenge has %d bytes, fewer than the %d of a commitment and its random bytes", len(e.Challenge), sha256.Size+randomLen)
	case len(bytes.TrimSpace(e.Credential)) == 0 || bytes.TrimSpace(e.Credential)[0] != '{':
		return errors.New("the evidence's credential is not a JSON object (the phone's AuthenticationResponseJSON)")
	case e.DeviceID == "":
		return errors.New("the evidence names no device")
	case len(e.PublicKey) == 0:
		return errors.New("the evidence has no device public key")
	case e.RPID == "":
		return errors.New("the evidence has no RP ID")
	case e.Origin == "":
		return errors.New("the evidence has no origin")
	case e.SignedAt.IsZero():
		return errors.New("the evidence has no signing time")
	}
	if _, err := x509.ParseCertificate(e.Certificate); err != nil {
		return fmt.Errorf("the evidence's certificate: %w", err)
	}
	return nil
}

// Verify checks that the evidence shows what it claims: that the phone of the device, with its
// user verified, approved this very request through mcert. The challenge must begin with the
// request's commitment; the credential must be a WebAuthn assertion of this challenge from this
// origin, for this RP ID, with the user-present and user-verified flags, signed by the device's
// key. When digest is non-nil, the request must list a document of that SHA-256 digest, and
// when cert is non-nil, the evidence must be about that certificate. Each error says what does
// not match.
//
// Verify does not tell whether the device was the citizen's at the time, nor whether the
// certificate was good then: the certificate names the citizen, and its OCSP responder says.
func (e Evidence) Verify(digest []byte, cert *x509.Certificate) error {
	if err := e.check(); err != nil {
		return err
	}
	if c := Commitment(e.Request); !bytes.HasPrefix(e.Challenge, c[:]) {
		return errors.New("the challenge does not commit to the request: the request's id, text or documents are not those the phone approved")
	}
	if digest != nil && !slices.ContainsFunc(e.Request.Documents, func(d Document) bool { return bytes.Equal(d.Digest, digest) }) {
		return fmt.Errorf("the approved request lists no document of SHA-256 %x", digest)
	}
	if cert != nil && !bytes.Equal(cert.Raw, e.Certificate) {
		return fmt.Errorf("the evidence is for another certificate than the signer's (serial number %x)", cert.SerialNumber)
	}

	a, err := protocol.ParseCredentialRequestResponseBytes(e.Credential)
	if err != nil {
		return fmt.Errorf("the credential is not a WebAuthn assertion: %s", libraryError(err))
	}
	client := a.Response.CollectedClientData
	switch {
	case client.Type != protocol.AssertCeremony:
		return fmt.Errorf("the assertion's clientDataJSON is of type %q, not %q", client.Type, protocol.AssertCeremony)
	case client.Challenge != base64.RawURLEncoding.EncodeToString(e.Challenge):
		return fmt.Errorf("the assertion is of challenge %q, not the evidence's %q", client.Challenge, base64.RawURLEncoding.EncodeToString(e.Challenge))
	case client.Origin != e.Origin:
		return fmt.Errorf("the assertion comes from origin %q, not %q", client.Origin, e.Origin)
	// mcert's own page asks the phone: an approval from inside another site's frame is not it.
	case client.CrossOrigin:
		return fmt.Errorf("the assertion was made in a cross-origin frame (top origin %q)", client.TopOrigin)
	}
	auth := a.Response.AuthenticatorData
	switch rpIDHash := sha256.Sum256([]byte(e.RPID)); {
	case !bytes.Equal(auth.RPIDHash, rpIDHash[:]):
		return fmt.Errorf("the assertion is for another relying party than RP ID %q (rpIdHash %x, not %x)", e.RPID, auth.RPIDHash, rpIDHash)
	case !auth.Flags.UserPresent():
		return errors.New("the assertion does not have the user-present flag")
	case !auth.Flags.UserVerified():
		return errors.New("the assertion does not have the user-verified flag: the phone did not verify its user")
	}

	key, err := webauthncose.ParsePublicKey(e.PublicKey)
	if err != nil {
		return fmt.Errorf("the device's public key is not a COSE key: %s", libraryError(err))
	}
	clientDataHash := sha256.Sum256(a.Raw.AssertionResponse.ClientDataJSON)
	signed := slices.Concat(a.Raw.AssertionResponse.AuthenticatorData, clientDataHash[:])
	if ok, err := webauthncose.VerifySignature(key, signed, a.Response.Signature); err != nil {
		return fmt.Errorf("the assertion's signature: %s", libraryError(err))
	} else if !ok {
		return fmt.Errorf("the assertion's signature does not verify with the public key of device %s", e.DeviceID)
	}
	return nil
}

// libraryError is a go-webauthn error with its details: its Error is only the summary.
func libraryError(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) && pe.DevInfo != "" {
		return fmt.Sprintf("%s (%s)", pe.Details, pe.DevInfo)
	}
	return err.Error()
}
