package binding

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/pki"
	"github.com/mcert/mcert/signing"
	"github.com/mcert/mcert/storage"
)

// Signing with the mobile certificate (PROTOCOL.md section 9): a relying party registered for
// it asks a citizen to sign document digests; the citizen's phone approves with a WebAuthn
// assertion whose challenge commits to the whole request; only then does mcert sign each
// digest with that phone's key. A signing request is a login of kind sign, so that it waits in
// the inbox, counts toward the citizen's waiting requests, is denied and expires as a login
// does.

// Limits of a signing request.
const (
	SignTTL         = 5 * time.Minute
	SignInterval    = 5 * time.Second
	MaxDocuments    = 20
	maxSignText     = 256
	maxDocumentName = 128
)

// Signature formats.
const (
	FormatCMS = "cms" // a detached CMS SignedData per document
	FormatRaw = "raw" // a DER ECDSA signature over the digest itself
)

// SignRequest is what a relying party asks to sign; CitizenID "" asks by QR code instead.
type SignRequest struct {
	CitizenID string
	Text      string
	Format    string
	Documents []signing.Document
}

// SignStarted is a signing request made: its id, for the relying party to poll, and for one
// by QR code the token its page shows.
type SignStarted struct {
	ID        string
	ExpiresAt time.Time
	Interval  time.Duration
	QRToken   string // "" for a request that names its citizen
}

// SignState is what a relying party's poll of a signing request learns.
type SignState struct {
	Status      string // pending, approved, denied or expired
	Documents   []signing.Document
	Format      string
	Signatures  [][]byte // once approved: one per document, in their order
	Certificate []byte
	Evidence    []byte
}

// signPayload is what a signing request keeps in its login's Request.
type signPayload struct {
	Request     signing.Request `json:"request"`
	Challenge   []byte          `json:"challenge,omitempty"`
	Signatures  [][]byte        `json:"signatures,omitempty"`
	Certificate []byte          `json:"certificate,omitempty"`
	Evidence    []byte          `json:"evidence,omitempty"`
}

func readSignPayload(l storage.Login) (*signPayload, error) {
	var p signPayload
	if err := json.Unmarshal(l.Request, &p); err != nil {
		return nil, fmt.Errorf("signing request %x: %w", l.Hash, err)
	}
	return &p, nil
}

// checkSignRequest applies the rules of PROTOCOL.md section 9 to what the relying party sent.
func checkSignRequest(r SignRequest) error {
	bad := mcert.InvalidSignRequest.Newf
	switch {
	case r.Text == "":
		return bad("text is required")
	case utf8.RuneCountInString(r.Text) > maxSignText:
		return bad(fmt.Sprintf("text is longer than %d characters", maxSignText))
	case !printable(r.Text):
		return bad("text has a control or format character")
	case r.Format != FormatCMS && r.Format != FormatRaw:
		return bad(`format must be "cms" or "raw"`)
	case len(r.Documents) == 0:
		return bad("documents must list 1 to 20 documents")
	case len(r.Documents) > MaxDocuments:
		return bad(fmt.Sprintf("documents lists %d documents, more than %d", len(r.Documents), MaxDocuments))
	}
	names := map[string]bool{}
	for i, d := range r.Documents {
		switch {
		case d.Name == "" || utf8.RuneCountInString(d.Name) > maxDocumentName:
			return bad(fmt.Sprintf("document %d: the name must be 1 to %d characters", i+1, maxDocumentName))
		case !printable(d.Name):
			return bad(fmt.Sprintf("document %d: the name has a control or format character", i+1))
		case names[d.Name]:
			return bad(fmt.Sprintf("document %d: another document has the name %q", i+1, d.Name))
		case len(d.Digest) != 32:
			return bad(fmt.Sprintf("document %d: the digest is %d bytes, not the 32 of SHA-256", i+1, len(d.Digest)))
		}
		names[d.Name] = true
	}
	return nil
}

// printable: valid UTF-8 without Unicode Cc or Cf characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.In(r, unicode.Cc, unicode.Cf) {
			return false
		}
	}
	return true
}

// StartSign records the client's signing request. One that names its citizen waits in the
// citizen's inbox, and is refused, as a CIBA request is, for a citizen unknown or without a
// usable phone, and when MaxPending requests wait already.
func (s *Service) StartSign(ctx context.Context, client storage.Client, r SignRequest) (SignStarted, error) {
	if !client.Sign {
		return SignStarted{}, mcert.ClientNotForSigning.New()
	}
	if err := checkSignRequest(r); err != nil {
		return SignStarted{}, err
	}
	if err := s.limit(ctx, s.limits().CIBAPerClient, "sign client "+client.ID); err != nil {
		return SignStarted{}, err
	}
	now := s.now()
	id, hash := newToken()
	payload, err := json.Marshal(signPayload{Request: signing.Request{
		ID: id, ClientID: client.ID, Text: r.Text, Format: r.Format, Documents: r.Documents,
	}})
	if err != nil {
		return SignStarted{}, err
	}
	started := SignStarted{ID: id, ExpiresAt: now.Add(SignTTL), Interval: SignInterval}
	l := storage.Login{
		Hash: hash, Kind: storage.LoginSign, ClientID: client.ID, ClientName: client.Name, Status: storage.LoginPending,
		CreatedAt: now, ExpiresAt: started.ExpiresAt, TokenExpiresAt: started.ExpiresAt,
		BindingMessage: r.Text, Request: payload, PollInterval: SignInterval,
	}
	if r.CitizenID == "" {
		var tokenHash []byte
		started.QRToken, tokenHash = newToken()
		l.TokenHashes = [][]byte{tokenHash}
	}
	var phones []storage.Device
	err = s.Store.Update(ctx, func(tx storage.Tx) error {
		if r.CitizenID == "" {
			return tx.CreateLogin(l)
		}
		a, devices, err := s.waitingFor(tx, r.CitizenID, now, mcert.UnknownSigner)
		if err != nil {
			return err
		}
		l.AccountID, phones = a.ID, devices
		return tx.CreateLogin(l)
	})
	if err != nil {
		return SignStarted{}, err
	}
	s.announce(l, phones)
	return started, nil
}

// SignStatus is the client's poll of its signing request id. A request of another client is
// unknown; a poll sooner than the interval is refused, and changes nothing.
func (s *Service) SignStatus(ctx context.Context, clientID, id string) (SignState, error) {
	now := s.now()
	var st SignState
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		l, err := tx.Login(hashToken(id))
		if errors.Is(err, storage.ErrNotFound) || err == nil && (id == "" || l.Kind != storage.LoginSign || l.ClientID != clientID) {
			return mcert.SignRequestNotFound.New()
		}
		if err != nil {
			return err
		}
		p, err := readSignPayload(l)
		if err != nil {
			return err
		}
		st = SignState{Documents: p.Request.Documents, Format: p.Request.Format}
		switch status := loginStatus(l, now); status {
		case storage.LoginApproved:
			st.Status, st.Signatures, st.Certificate, st.Evidence = "approved", p.Signatures, p.Certificate, p.Evidence
			return nil
		case storage.LoginDenied, storage.LoginRefused:
			st.Status = "denied"
			return nil
		case "expired":
			st.Status = "expired"
			return nil
		}
		st.Status = "pending"
		if l.LastPolledAt != nil && now.Sub(*l.LastPolledAt) < l.PollInterval {
			e := mcert.SignPollSlower.Newf(int(l.PollInterval / time.Second))
			e.RetryAfter = l.PollInterval - now.Sub(*l.LastPolledAt)
			return e
		}
		l.LastPolledAt = &now
		return tx.PutLogin(l)
	})
	return st, err
}

// BeginSign is the phone's first step of a signing request, as BeginLogin is of a login: the
// prompt has the text and the documents to show.
func (s *Service) BeginSign(ctx context.Context, token string) (LoginPrompt, error) {
	return s.beginApproval(ctx, token, forSign)
}

// FinishSign verifies the phone's approval of a signing request and signs each document with
// that phone's key: the assertion must answer this request's challenge, with user
// verification, from a usable phone of the citizen it names (for one by QR code, of any
// citizen, who is then the signer), whose certificate is current.
func (s *Service) FinishSign(ctx context.Context, token string, credential []byte) error {
	return s.finishApproval(ctx, token, credential, forSign)
}

// sign makes the signatures of the signing request l, which the device d has just approved
// with credential, and returns what records them in l, inside the transaction that approves
// it (there the certificate must still be unrevoked), and the detail of its audit event: the
// evidence's SHA-256, which ties the evidence the relying party keeps to the log.
func (s *Service) sign(ctx context.Context, l storage.Login, d storage.Device, credential []byte, now time.Time) (func(storage.Tx, *storage.Login) error, string, error) {
	p, err := readSignPayload(l)
	if err != nil {
		return nil, "", err
	}
	cert, err := s.DeviceCertificate(ctx, d.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, "", mcert.NoSigningCertificate.New()
	}
	if err != nil {
		return nil, "", err
	}
	key, err := x509.ParsePKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return nil, "", fmt.Errorf("the signing key of certificate %x: %w", cert.Serial, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, "", fmt.Errorf("the signing key of certificate %x signs nothing", cert.Serial)
	}
	ca, err := s.CA(ctx)
	if err != nil {
		return nil, "", err
	}
	p.Signatures = make([][]byte, len(p.Request.Documents))
	for i, doc := range p.Request.Documents {
		if p.Request.Format == FormatCMS {
			p.Signatures[i], err = pki.SignCMS(rand.Reader, doc.Digest, signer, cert.DER, ca.ChainDER(), now)
		} else {
			p.Signatures[i], err = pki.SignRaw(rand.Reader, doc.Digest, signer)
		}
		if err != nil {
			return nil, "", fmt.Errorf("sign document %d: %w", i+1, err)
		}
	}
	u, err := url.Parse(s.PublicURL)
	if err != nil {
		return nil, "", err
	}
	p.Certificate = cert.DER
	if p.Evidence, err = (signing.Evidence{
		V: 1, Request: p.Request, Challenge: p.Challenge, Credential: json.RawMessage(credential), DeviceID: d.ID,
		PublicKey: d.PublicKey, RPID: u.Hostname(), Origin: u.Scheme + "://" + u.Host, Certificate: cert.DER, SignedAt: now,
	}).Marshal(); err != nil {
		return nil, "", err
	}
	payload, err := json.Marshal(p)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(p.Evidence)
	return func(tx storage.Tx, l *storage.Login) error {
		c, err := tx.Certificate(cert.Serial)
		if err != nil {
			return err
		}
		if c.RevokedAt != nil {
			return mcert.NoSigningCertificate.New()
		}
		l.Request = payload
		return nil
	}, fmt.Sprintf("evidence sha256:%x", sum), nil
}
