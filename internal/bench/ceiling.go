package bench

// The in-process ceiling of a run: go-webauthn's ceremonies alone, on this machine.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
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
	phone    *phone.Phone // login, ciba: the signer; bind: a phone of its own
	session  *webauthn.SessionData
	options  any // the request or creation options
	response []byte
}

// ceiling is what the ceremonies cost in process: how many a second the workers did, and the
// process's CPU time per ceremony while they did.
type ceiling struct {
	opsPerSec float64
	cpuPerOp  time.Duration
	// signCPUPerOp is the CPU of the signatures the protocol has the server make for one
	// operation beside WebAuthn's, which go-webauthn alone leaves out: a CIBA login's ID token
	// (RS256 or ES256, as the relying party registered), a binding's phone certificate (its P-256 key and the CA's ECDSA signature). A QR
	// login's timed requests make none.
	signCPUPerOp time.Duration
}

// measureCeiling measures the ceremonies of scenario with go-webauthn alone: begin, then parse
// and validate the phone's answer, on GOMAXPROCS workers, in rounds until d of timed work. The
// phones' signing (or making a credential) happens between, untimed; the CPU time counted is
// this process's (getrusage) during the timed steps only. The logins are discoverable, as a QR
// login's are; CIBA's are for a known account; bindings ask for a resident key with user
// verification and no attestation, as the server does.
func measureCeiling(ctx context.Context, scenario string, st *state, origin string, d time.Duration, idTokenAlg string) (ceiling, error) {
	u, err := url.Parse(origin)
	if err != nil {
		return ceiling{}, err
	}
	wa, err := webauthn.New(&webauthn.Config{RPID: u.Hostname(), RPDisplayName: "mcert", RPOrigins: []string{origin}})
	if err != nil {
		return ceiling{}, err
	}
	users := make([]ceilingUser, min(st.N, 64))
	phones := make([]*phone.Phone, len(users))
	for i := range users {
		p, err := st.phone(i)
		if err != nil {
			return ceiling{}, err
		}
		if phones[i], err = p.authenticator(u.Hostname()); err != nil {
			return ceiling{}, err
		}
		_, dev, err := p.records(time.Now())
		if err != nil {
			return ceiling{}, err
		}
		users[i] = ceilingUser{id: p.webAuthnID, creds: []webauthn.Credential{{
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
			op.response, err = op.phone.Create(origin, op.options.(protocol.PublicKeyCredentialCreationOptions), phone.CreateOptions{})
		} else {
			op.response, err = op.phone.Get(origin, op.options.(protocol.PublicKeyCredentialRequestOptions), phone.GetOptions{})
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
	var timed, cpu time.Duration
	ops := 0
	for timed < d {
		if err := ctx.Err(); err != nil {
			return ceiling{}, err
		}
		round := make([][]ceilingOp, workers)
		for w := range round {
			round[w] = make([]ceilingOp, perWorker)
			for i := range round[w] {
				k := (w*perWorker + i + ops) % len(users)
				round[w][i] = ceilingOp{user: users[k], phone: phones[k]}
				if scenario == "bind" {
					round[w][i] = ceilingOp{user: ceilingUser{id: []byte(rand.Text() + rand.Text())}, phone: new(phone.Phone)}
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
		timedStep := func(fn func(*ceilingOp) error) error {
			start, cpu0 := time.Now(), selfCPU()
			err := step(fn)
			timed, cpu = timed+time.Since(start), cpu+selfCPU()-cpu0
			return err
		}
		if err := timedStep(begin); err != nil {
			return ceiling{}, err
		}
		if err := step(answer); err != nil {
			return ceiling{}, err
		}
		if err := timedStep(verify); err != nil {
			return ceiling{}, err
		}
		ops += workers * perWorker
	}
	sign, err := signatureCPU(scenario, idTokenAlg, workers, d/4)
	if err != nil {
		return ceiling{}, err
	}
	return ceiling{opsPerSec: float64(ops) / timed.Seconds(), cpuPerOp: cpu / time.Duration(ops), signCPUPerOp: sign}, nil
}

// signatureCPU measures, on workers for about d, the CPU of the signatures one operation of
// scenario needs of the server besides WebAuthn's (see ceiling.signCPUPerOp).
func signatureCPU(scenario, idTokenAlg string, workers int, d time.Duration) (time.Duration, error) {
	var sign func() error
	digest := sha256.Sum256([]byte("the ID token's header and claims"))
	switch {
	case scenario == "ciba" && idTokenAlg == "ES256":
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return 0, err
		}
		sign = func() error {
			_, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
			return err
		}
	case scenario == "ciba":
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return 0, err
		}
		sign = func() error {
			_, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
			return err
		}
	case scenario == "bind":
		ca, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return 0, err
		}
		sign = func() error {
			if _, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
				return err
			}
			_, err := ecdsa.SignASN1(rand.Reader, ca, digest[:])
			return err
		}
	default:
		return 0, nil
	}
	const batch = 16
	ops := 0
	var cpu time.Duration
	for start := time.Now(); time.Since(start) < d; ops += workers * batch {
		cpu0 := selfCPU()
		err := parallel(workers, func(int) error {
			for range batch {
				if err := sign(); err != nil {
					return err
				}
			}
			return nil
		})
		cpu += selfCPU() - cpu0
		if err != nil {
			return 0, err
		}
	}
	return cpu / time.Duration(ops), nil
}
