package main

// The in-process ceiling of bench run: go-webauthn's ceremonies alone, on this machine.

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"net/url"
	"runtime"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/mcert/mcert/phone"
)

// ceilingUser is a webauthn.User with the credentials given.
type ceilingUser struct {
	id    []byte
	creds []webauthn.Credential
}

func (u ceilingUser) WebAuthnID() []byte                         { return u.id }
func (u ceilingUser) WebAuthnName() string                       { return "A12****789" }
func (u ceilingUser) WebAuthnDisplayName() string                { return "王小明" }
func (u ceilingUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// ceilingOp is one ceremony of the ceiling: begun, answered by the phone, then verified.
type ceilingOp struct {
	user     ceilingUser
	phone    benchPhone // login, ciba: the signer
	session  *webauthn.SessionData
	options  any // the request or creation options
	response []byte
}

// benchCeiling measures the ceremonies of scenario with go-webauthn alone: begin, then parse and
// validate the phone's answer, on GOMAXPROCS workers, in rounds until d of timed work. The
// phones' signing (or making a credential) happens between, untimed. It returns ceremonies per
// second. The logins are discoverable, as a QR login's are; CIBA's are for a known account;
// bindings ask for a resident key with user verification and no attestation, as the server does.
func benchCeiling(ctx context.Context, scenario string, st *benchState, origin string, d time.Duration) (float64, error) {
	u, err := url.Parse(origin)
	if err != nil {
		return 0, err
	}
	wa, err := webauthn.New(&webauthn.Config{RPID: u.Hostname(), RPDisplayName: "mcert", RPOrigins: []string{origin}})
	if err != nil {
		return 0, err
	}
	users := make([]ceilingUser, min(st.N, 64))
	phones := make([]benchPhone, len(users))
	for i := range users {
		if phones[i], err = st.phone(i); err != nil {
			return 0, err
		}
		_, dev, err := phones[i].records(time.Now())
		if err != nil {
			return 0, err
		}
		users[i] = ceilingUser{id: phones[i].webAuthnID, creds: []webauthn.Credential{{
			ID: dev.CredentialID, PublicKey: dev.PublicKey, AttestationType: dev.AttestationType,
			Transport: []protocol.AuthenticatorTransport{protocol.Internal}, Flags: webauthn.CredentialFlags{UserPresent: true, UserVerified: true},
			Authenticator: webauthn.Authenticator{AAGUID: dev.AAGUID},
		}}}
	}
	uv := webauthn.WithUserVerification(protocol.VerificationRequired)
	resident := true
	registration := []webauthn.RegistrationOption{
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			AuthenticatorAttachment: protocol.Platform, RequireResidentKey: &resident,
			ResidentKey: protocol.ResidentKeyRequirementRequired, UserVerification: protocol.VerificationRequired,
		}),
		webauthn.WithCredentialParameters([]protocol.CredentialParameter{
			{Type: protocol.PublicKeyCredentialType, Algorithm: -7},
			{Type: protocol.PublicKeyCredentialType, Algorithm: -257},
			{Type: protocol.PublicKeyCredentialType, Algorithm: -8},
		}),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
	}

	begin := func(op *ceilingOp) error {
		var err error
		switch scenario {
		case "bind":
			var c *protocol.CredentialCreation
			c, op.session, err = wa.BeginRegistration(op.user, registration...)
			if err == nil {
				op.options = c.Response
			}
		case "login":
			var a *protocol.CredentialAssertion
			a, op.session, err = wa.BeginDiscoverableLogin(uv)
			if err == nil {
				op.options = a.Response
			}
		default:
			var a *protocol.CredentialAssertion
			a, op.session, err = wa.BeginLogin(op.user, uv)
			if err == nil {
				op.options = a.Response
			}
		}
		return err
	}
	answer := func(op *ceilingOp) error {
		var err error
		if scenario == "bind" {
			op.response, err = new(phone.Phone).Create(origin, op.options.(protocol.PublicKeyCredentialCreationOptions), phone.CreateOptions{})
		} else {
			op.response, err = benchAssertion(op.phone, origin, op.options.(protocol.PublicKeyCredentialRequestOptions).Challenge, 1,
				func(digest []byte) ([]byte, error) { return ecdsa.SignASN1(rand.Reader, op.phone.key, digest) })
		}
		return err
	}
	verify := func(op *ceilingOp) error {
		if scenario == "bind" {
			parsed, err := protocol.ParseCredentialCreationResponseBytes(op.response)
			if err == nil {
				_, err = wa.CreateCredential(op.user, *op.session, parsed)
			}
			return err
		}
		parsed, err := protocol.ParseCredentialRequestResponseBytes(op.response)
		if err != nil {
			return err
		}
		if scenario == "login" {
			_, err = wa.ValidateDiscoverableLogin(func(_, _ []byte) (webauthn.User, error) { return op.user, nil }, *op.session, parsed)
		} else {
			_, err = wa.ValidateLogin(op.user, *op.session, parsed)
		}
		return err
	}

	workers := runtime.GOMAXPROCS(0)
	const perWorker = 64
	var timed time.Duration
	ops := 0
	for timed < d {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		round := make([][]ceilingOp, workers)
		for w := range round {
			round[w] = make([]ceilingOp, perWorker)
			for i := range round[w] {
				k := (w*perWorker + i + ops) % len(users)
				round[w][i] = ceilingOp{user: users[k], phone: phones[k]}
				if scenario == "bind" {
					round[w][i].user = ceilingUser{id: []byte(rand.Text() + rand.Text())}
				}
			}
		}
		step := func(fn func(*ceilingOp) error) error {
			return parallel(workers, func(w int) error {
				for i := range round[w] {
					if err := fn(&round[w][i]); err != nil {
						return err
					}
				}
				return nil
			})
		}
		start := time.Now()
		if err := step(begin); err != nil {
			return 0, err
		}
		timed += time.Since(start)
		if err := step(answer); err != nil {
			return 0, err
		}
		start = time.Now()
		if err := step(verify); err != nil {
			return 0, err
		}
		timed += time.Since(start)
		ops += workers * perWorker
	}
	return float64(ops) / timed.Seconds(), nil
}
