package binding

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/qr"
	"github.com/mcert/mcert/signing"
	"github.com/mcert/mcert/storage"
)

// Lifetimes of relying-party logins.
const (
	// LoginTokenTTL is how long one QR code or inbox request can be answered (PROTOCOL.md: 2 minutes).
	LoginTokenTTL = 2 * time.Minute
	// RedirectLoginTTL is how long the login page may keep refreshing its QR code.
	RedirectLoginTTL = 10 * time.Minute
	// CIBA request lifetimes: requested_expiry is honoured within these bounds.
	CIBADefaultExpiry = 2 * time.Minute
	CIBAMaxExpiry     = 10 * time.Minute
)

// LoginTokenHash is how the provider finds a login by its public id.
func LoginTokenHash(id string) []byte { return hashToken(id) }

// derivedToken is a phone token computed from a secret the server keeps only as a hash (a
// device token) or keeps apart from the login (the QR key): the server can show it again when
// asked, and stores only its hash.
func derivedToken(secret []byte, purpose string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(purpose))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// keyLoginQR makes the login pages' QR tokens. It is a server secret, not the login id, so that
// knowing the id (the page's URL) gives no token to scan.
const keyLoginQR keyName = "login-qr-key"

func (s *Service) qrToken(ctx context.Context, loginHash []byte, serial int) (string, error) {
	key, err := s.key(ctx, keyLoginQR)
	if err != nil {
		return "", err
	}
	return derivedToken(key, fmt.Sprintf("mcert login qr %d %x", serial, loginHash)), nil
}

func inboxToken(deviceToken string, login storage.Login) string {
	return derivedToken([]byte(deviceToken), "mcert inbox "+base64.RawURLEncoding.EncodeToString(login.Hash))
}

func matchCode() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(10000))
	return fmt.Sprintf("%04d", n.Int64())
}

// StartRedirectLogin records the login behind an authorization request whose id the provider
// made, for the browser that made the request; the login page at /login/<id> shows its QR code
// to that browser only. requiredACR is the class the relying party demands (RequiredACR), or "".
func (s *Service) StartRedirectLogin(ctx context.Context, id string, client storage.Client, request []byte, requiredACR string, browser Browser) error {
	if err := s.limitIP(ctx, s.limits().LoginPerIP, "redirect login"); err != nil {
		return err
	}
	if browser.Secret == "" {
		return errors.New("binding: a redirect login needs the browser's secret")
	}
	now := s.now()
	hash := hashToken(id)
	token, err := s.qrToken(ctx, hash, 1)
	if err != nil {
		return err
	}
	l := storage.Login{
		Hash: hash, Kind: storage.LoginRedirect, ClientID: client.ID, ClientName: client.Name,
		Status: storage.LoginPending, CreatedAt: now, ExpiresAt: now.Add(RedirectLoginTTL),
		TokenExpiresAt: now.Add(LoginTokenTTL), TokenSerial: 1, TokenHashes: [][]byte{hashToken(token)},
		Code: matchCode(), Request: request, BrowserHash: hashToken(browser.Secret), Browser: browserName(browser.UserAgent),
		RequiredACR: requiredACR,
	}
	return s.Store.Update(ctx, func(tx storage.Tx) error { return tx.CreateLogin(l) })
}

// LoginPage is the login page's view of a redirect login (PROTOCOL.md section 6).
type LoginPage struct {
	Status     string // pending, scanned, approved, denied, refused or expired
	Reason     string // for refused (and a cancelled denied): the error code that says why
	QRText     string
	Code       string
	ClientName string
	ExpiresAt  time.Time
}

// LoginPage returns the state of the redirect login with the given id to the browser that
// started it.
func (s *Service) LoginPage(ctx context.Context, id, browserSecret string) (LoginPage, error) {
	l, err := s.RedirectLogin(ctx, id, browserSecret)
	if err != nil {
		return LoginPage{}, err
	}
	return s.loginPage(ctx, l)
}

func (s *Service) loginPage(ctx context.Context, l storage.Login) (LoginPage, error) {
	token, err := s.qrToken(ctx, l.Hash, l.TokenSerial)
	if err != nil {
		return LoginPage{}, err
	}
	return LoginPage{
		Status: loginStatus(l, s.now()), Reason: l.Reason, QRText: qr.LoginText(s.PublicURL, token),
		Code: l.Code, ClientName: l.ClientName, ExpiresAt: l.TokenExpiresAt,
	}, nil
}

// RefreshLoginQR replaces an expired or unused QR code of the login page with a new one.
func (s *Service) RefreshLoginQR(ctx context.Context, id, browserSecret string) (LoginPage, error) {
	l, err := s.RedirectLogin(ctx, id, browserSecret)
	if err != nil {
		return LoginPage{}, err
	}
	now := s.now()
	// Each serial's token is known before the write, which may run more than once.
	next, err := s.qrToken(ctx, l.Hash, l.TokenSerial+1)
	if err != nil {
		return LoginPage{}, err
	}
	serial := l.TokenSerial
	l, err = s.updateLogin(ctx, l.Hash, func(l *storage.Login) error {
		switch {
		case !now.Before(l.ExpiresAt):
			return errLoginExpired
		case l.Status != storage.LoginPending && l.Status != storage.LoginScanned:
			return errLoginUsed
		case l.TokenSerial != serial:
			return errLoginRefreshed
		}
		l.TokenSerial++
		l.TokenHashes = [][]byte{hashToken(next)}
		l.Status, l.WebAuthnSession, l.TokenExpiresAt = storage.LoginPending, nil, now.Add(LoginTokenTTL)
		return nil
	})
	if err != nil {
		return LoginPage{}, err
	}
	return s.loginPage(ctx, l)
}

var errLoginNotFound = mcert.LoginNotFound.New()

// RedirectLogin returns the redirect login with the given id, if browserSecret is the secret
// of the browser that started it; to any other browser it does not exist.
func (s *Service) RedirectLogin(ctx context.Context, id, browserSecret string) (storage.Login, error) {
	l, err := storage.Get(ctx, s.Store, func(tx storage.ReadTx) (storage.Login, error) { return tx.Login(hashToken(id)) })
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (l.Kind != storage.LoginRedirect || !sameBrowser(l.BrowserHash, browserSecret))) {
		return storage.Login{}, errLoginNotFound
	}
	return l, err
}

// updateLogin changes the login with the given hash in one transaction, with change; it
// returns the login as changed.
func (s *Service) updateLogin(ctx context.Context, hash []byte, change func(*storage.Login) error) (storage.Login, error) {
	var l storage.Login
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		var err error
		if l, err = tx.Login(hash); err != nil {
			return err
		}
		if err := change(&l); err != nil {
			return err
		}
		return tx.PutLogin(l)
	})
	return l, err
}

var (
	errLoginExpired = mcert.LoginExpired.New()
	errLoginUsed    = mcert.LoginUsed.New()
	// errLoginRefreshed: two refreshes raced; the other one's QR code is the current one.
	errLoginRefreshed = mcert.LoginRefreshed.New()
)

// loginStatus is the protocol's status of a login at the given time.
func loginStatus(l storage.Login, now time.Time) string {
	switch l.Status {
	case storage.LoginApproved, storage.LoginDone:
		return storage.LoginApproved
	case storage.LoginDenied, storage.LoginRefused:
		return l.Status
	}
	if !now.Before(l.TokenExpiresAt) || !now.Before(l.ExpiresAt) {
		return "expired"
	}
	return l.Status
}

// usableLogin says why a login cannot take the phone's next step, which needs status want.
func usableLogin(l storage.Login, now time.Time, want string) error {
	switch st := loginStatus(l, now); {
	case st == want:
		return nil
	case st == "expired":
		return errLoginExpired
	case st == storage.LoginPending:
		return mcert.LoginNotStarted.New()
	default:
		return errLoginUsed
	}
}

// StartDecoupledLogin records a relying party's push login for the citizen with the given
// national ID and returns its auth_req_id. Every answer about the citizen is the same whether
// they are unknown or have no usable phone, so the endpoint does not tell who is enrolled.
// requiredACR is the class the relying party demands (RequiredACR), or "": a phone that cannot
// meet it is refused at its finish, not here, which would tell the relying party about it.
// request makes what the provider keeps with the login from its auth_req_id, which a ping
// client's notification names; nil keeps nothing.
func (s *Service) StartDecoupledLogin(ctx context.Context, client storage.Client, citizenID, bindingMessage string, expiry time.Duration, request func(authReqID string) []byte, requiredACR string) (string, time.Time, error) {
	if err := s.limit(ctx, s.limits().CIBAPerClient, "ciba client "+client.ID); err != nil {
		return "", time.Time{}, err
	}
	if err := authn.ValidateCitizenID(citizenID); err != nil {
		return "", time.Time{}, err
	}
	if expiry <= 0 {
		expiry = CIBADefaultExpiry
	}
	expiry = min(expiry, CIBAMaxExpiry)
	now := s.now()
	id, hash := newToken()
	var raw []byte
	if request != nil {
		raw = request(id)
	}
	l := storage.Login{
		Hash: hash, Kind: storage.LoginCIBA, ClientID: client.ID, ClientName: client.Name, Status: storage.LoginPending,
		CreatedAt: now, ExpiresAt: now.Add(expiry), TokenExpiresAt: now.Add(expiry), Code: matchCode(),
		BindingMessage: bindingMessage, Request: raw, PollInterval: CIBAInterval, RequiredACR: requiredACR,
	}
	var phones []storage.Device
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		a, devices, err := s.waitingFor(tx, citizenID, now, mcert.UnknownUserID)
		if err != nil {
			return err
		}
		l.AccountID, phones = a.ID, devices
		return tx.CreateLogin(l)
	})
	if err != nil {
		return "", time.Time{}, err
	}
	s.announce(l, phones)
	return id, l.ExpiresAt, nil
}

// waitingFor is the account of the citizen a decoupled request names, which may take one more,
// and its usable phones, which are told of the request:
// one unknown, or without a usable phone, is noUser, the same answer for both so that the
// endpoint does not tell who is enrolled. It is counted in the transaction that adds the
// request, so that requests racing for the last place cannot all take it.
func (s *Service) waitingFor(tx storage.ReadTx, citizenID string, now time.Time, noUser *mcert.Code) (storage.Account, []storage.Device, error) {
	a, err := tx.AccountByCitizen(citizenID)
	if errors.Is(err, storage.ErrNotFound) {
		return a, nil, noUser.New()
	}
	if err != nil {
		return a, nil, err
	}
	devices, err := s.usableDevices(tx, a)
	if err != nil {
		return a, nil, err
	}
	if len(devices) == 0 {
		return a, nil, noUser.New()
	}
	return a, devices, checkPending(tx, a, now)
}

// MaxPending is how many decoupled requests may wait for one citizen at once, from all relying
// parties together (PROTOCOL.md 4b): a client cannot bury a phone under prompts until the
// citizen approves one to make them stop.
const MaxPending = 3

// checkPending refuses a further request for a citizen who has MaxPending waiting already.
func checkPending(tx storage.ReadTx, a storage.Account, now time.Time) error {
	waiting, err := tx.WaitingLogins(a.ID)
	if err != nil {
		return err
	}
	n := 0
	for _, l := range waiting {
		if usableLogin(l, now, storage.LoginPending) == nil || usableLogin(l, now, storage.LoginScanned) == nil {
			n++
		}
	}
	if n >= MaxPending {
		return mcert.TooManyPending.Newf(MaxPending)
	}
	return nil
}

// usableDevices returns the devices that may approve a login now: none for a suspended account.
func (s *Service) usableDevices(tx storage.ReadTx, a storage.Account) ([]storage.Device, error) {
	if a.Status != storage.AccountActive {
		return nil, nil
	}
	devices, err := tx.Devices(a.ID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	return slices.DeleteFunc(devices, func(d storage.Device) bool { return deviceUnusable(d, now) != nil }), nil
}

// deviceUnusable says why a device may not approve a login.
func deviceUnusable(d storage.Device, now time.Time) error {
	switch DeviceStatus(d, now) {
	case "revoked":
		return mcert.DeviceRevoked.New()
	case "expired":
		return mcert.DeviceExpired.New()
	case "suspended":
		return mcert.DeviceSuspended.New()
	}
	return nil
}

// maxInbox bounds an inbox: more than MaxPending requests never wait for one citizen, but the
// bound holds even should a store hold more.
const maxInbox = 2 * MaxPending

// InboxItem is a decoupled login waiting for the phone.
type InboxItem struct {
	Token          string
	Kind           string             // storage.LoginCIBA or storage.LoginSign
	Documents      []signing.Document // a signing request's
	ClientName     string
	BindingMessage string
	Code           string
	ExpiresAt      time.Time
}

// Inbox returns the device whose inbox token this is, and lists the decoupled logins waiting
// for it. Each
// request's token is derived from the device token, so only this phone can show it, and the
// store learns its hash the first time the phone sees it.
func (s *Service) Inbox(ctx context.Context, deviceToken string) (storage.Device, []InboxItem, error) {
	d, a, err := s.deviceByToken(ctx, deviceToken)
	if err != nil {
		return d, nil, err
	}
	items, err := s.inbox(ctx, deviceToken, a)
	return d, items, err
}

func (s *Service) inbox(ctx context.Context, deviceToken string, a storage.Account) ([]InboxItem, error) {
	logins, err := storage.Get(ctx, s.Store, func(tx storage.ReadTx) ([]storage.Login, error) { return tx.WaitingLogins(a.ID) })
	if err != nil {
		return nil, err
	}
	now := s.now()
	items := []InboxItem{}
	type unseen struct{ hash, tokenHash []byte }
	var fresh []unseen // requests this phone has not been shown yet
	for _, l := range logins {
		if !l.Waiting() || usableLogin(l, now, storage.LoginPending) != nil {
			continue
		}
		if len(items) == maxInbox {
			break
		}
		token := inboxToken(deviceToken, l)
		if th := hashToken(token); !hasHash(l.TokenHashes, th) {
			fresh = append(fresh, unseen{l.Hash, th})
		}
		item := InboxItem{Token: token, Kind: l.Kind, ClientName: l.ClientName, BindingMessage: l.BindingMessage, Code: l.Code, ExpiresAt: l.ExpiresAt}
		if l.Kind == storage.LoginSign {
			sign, err := readSignPayload(l)
			if err != nil {
				return nil, err
			}
			item.Documents = sign.Request.Documents
		}
		items = append(items, item)
	}
	if len(fresh) == 0 {
		return items, nil
	}
	err = s.Store.Update(ctx, func(tx storage.Tx) error {
		for _, f := range fresh {
			l, err := tx.Login(f.hash)
			if errors.Is(err, storage.ErrNotFound) {
				continue // collected meanwhile: its token finds nothing, as it should
			}
			if err != nil {
				return err
			}
			if !hasHash(l.TokenHashes, f.tokenHash) {
				l.TokenHashes = append(l.TokenHashes, f.tokenHash)
				if err := tx.PutLogin(l); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return items, err
}

func hasHash(hashes [][]byte, h []byte) bool {
	return slices.ContainsFunc(hashes, func(x []byte) bool { return hmac.Equal(x, h) })
}

// deviceByToken authenticates a phone by its device token: the device must be usable and its
// account active.
func (s *Service) deviceByToken(ctx context.Context, deviceToken string) (storage.Device, storage.Account, error) {
	var d storage.Device
	var a storage.Account
	err := s.Store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		d, a, err = s.deviceOfToken(tx, deviceToken)
		return err
	})
	return d, a, err
}

// deviceOfToken is the usable device of deviceToken, and its active account.
func (s *Service) deviceOfToken(tx storage.ReadTx, deviceToken string) (storage.Device, storage.Account, error) {
	var a storage.Account
	d, err := tx.DeviceByToken(hashToken(deviceToken))
	if errors.Is(err, storage.ErrNotFound) || deviceToken == "" {
		return d, a, mcert.BadDeviceToken.New()
	}
	if err != nil {
		return d, a, err
	}
	if err := deviceUnusable(d, s.now()); err != nil {
		return d, a, err
	}
	if a, err = tx.Account(d.AccountID); err == nil && a.Status != storage.AccountActive {
		err = errSuspended
	}
	return d, a, err
}

var errSuspended = mcert.AccountSuspended.New()

// LoginPrompt is what the phone shows before the user approves: the website, the code, and
// when and (for a QR login) from which browser the request was made, so that the citizen
// approves only a login they started on their own screen just now.
type LoginPrompt struct {
	Options        *protocol.CredentialAssertion
	ClientName     string
	Code           string
	BindingMessage string
	Browser        string
	RequestedAt    time.Time
	// Documents are what a signing request asks to sign; BindingMessage is then its text.
	Documents []signing.Document
}

// loginByToken finds the login of a phone's token, in status want; a token that finds none
// (unknown, used or expired) is counted against the address's allowance of refusals.
func (s *Service) loginByToken(ctx context.Context, token, want string, of forKind) (storage.Login, error) {
	l, err := storage.Get(ctx, s.Store, func(tx storage.ReadTx) (storage.Login, error) { return tokenLogin(tx, token, s.now(), want, of) })
	return l, s.refusePhone(ctx, err)
}

// forKind is which logins a phone's call takes: the login calls refuse a signing request's
// token as unknown, and the signing calls a login's (PROTOCOL.md section 9); a denial takes
// either.
type forKind int

const (
	forLogin forKind = iota
	forSign
	forEither
)

func (k forKind) takes(kind string) bool {
	switch k {
	case forLogin:
		return kind != storage.LoginSign
	case forSign:
		return kind == storage.LoginSign
	}
	return true
}

// tokenLogin is the login of a phone's token, in status want ("": any), of the kinds of.
func tokenLogin(tx storage.ReadTx, token string, now time.Time, want string, of forKind) (storage.Login, error) {
	l, err := tx.LoginByToken(hashToken(token))
	if errors.Is(err, storage.ErrNotFound) || err == nil && !of.takes(l.Kind) {
		return storage.Login{}, mcert.UnknownLoginQR.New()
	}
	if err == nil && want != "" {
		err = usableLogin(l, now, want)
	}
	return l, err
}

// BeginLogin is the phone's first step of a login: it claims the token and gets the WebAuthn
// options with the relying party's name and the match code to show.
func (s *Service) BeginLogin(ctx context.Context, token string) (LoginPrompt, error) {
	return s.beginApproval(ctx, token, forLogin)
}

// beginApproval claims the token of a login or a signing request and makes the WebAuthn
// options: for one that names its citizen, only that citizen's usable phones may answer; a
// signing request's challenge commits to what is to be signed.
func (s *Service) beginApproval(ctx context.Context, token string, of forKind) (LoginPrompt, error) {
	now := s.now()
	var prompt LoginPrompt
	var byToken bool // the refusal is the token's: unknown, used or expired
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		l, err := tokenLogin(tx, token, now, storage.LoginPending, of)
		if byToken = err != nil; byToken {
			return err
		}
		var account *storage.Account
		var devices []storage.Device
		if l.AccountID != "" {
			a, err := tx.Account(l.AccountID)
			if err != nil {
				return err
			}
			if devices, err = s.usableDevices(tx, a); err != nil {
				return err
			}
			if len(devices) == 0 {
				return mcert.NoUsableDevice.New()
			}
			account = &a
		}
		var sign *signPayload
		var challenge []byte
		if l.Kind == storage.LoginSign {
			if sign, err = readSignPayload(l); err != nil {
				return err
			}
			if challenge, err = signing.NewChallenge(sign.Request); err != nil {
				return err
			}
			sign.Challenge = challenge
			if l.Request, err = json.Marshal(sign); err != nil {
				return err
			}
		}
		// Making the options is a little CPU and no I/O, so it may run in the transaction.
		options, state, err := s.WebAuthn.BeginLogin(account, devices, challenge)
		if err != nil {
			return err
		}
		l.Status, l.WebAuthnSession = storage.LoginScanned, state
		prompt = LoginPrompt{
			Options: options, ClientName: l.ClientName, Code: l.Code, BindingMessage: l.BindingMessage,
			Browser: l.Browser, RequestedAt: l.CreatedAt,
		}
		if sign != nil {
			prompt.Documents = sign.Request.Documents
		}
		return tx.PutLogin(l)
	})
	if byToken {
		return LoginPrompt{}, s.refusePhone(ctx, err)
	}
	if err != nil {
		return LoginPrompt{}, err
	}
	return prompt, nil
}

// FinishLogin verifies the phone's assertion and approves the login. The device must be
// usable, its account active (and, for a decoupled login, the account asked for), and its
// signature counter must move forward: a counter that does not is recorded on the device as a
// clone warning and the login refused.
//
// A refused finish counts against the login: after maxFailures of them it is denied for good,
// so a login cannot be hammered, and only the first is written to the audit log.
func (s *Service) FinishLogin(ctx context.Context, token string, credential []byte) error {
	return s.finishApproval(ctx, token, credential, forLogin)
}

// finishApproval is FinishLogin for a login or a signing request, and what it does with a
// refusal.
func (s *Service) finishApproval(ctx context.Context, token string, credential []byte, of forKind) error {
	l, signer, err := s.finishLogin(ctx, token, credential, of)
	switch {
	case err == nil:
		s.decided(l)
		return nil // an approval writes its own event
	case mcert.ErrorKind(err) == mcert.Internal:
		return err
	case l.Hash != nil:
		return s.failLogin(ctx, l, signer, err)
	}
	// Refused before the login was read: a bad token is the token's refusal, and an answer
	// that is not one counts against the login of a good token.
	l, terr := s.loginByToken(ctx, token, storage.LoginScanned, of)
	if terr != nil {
		return terr
	}
	return s.failLogin(ctx, l, signer, err)
}

// failLogin deals with a refused finish (cause) of the login, which signer signed if known, in
// one transaction: a clone warning is recorded on the device; a refusal that trying again
// cannot mend ends the login at once, and the desktop page says why instead of waiting on a
// dead QR code; others are counted, and the login ends at maxFailures. Only the first refusal
// of a login is written to the audit log.
func (s *Service) failLogin(ctx context.Context, l storage.Login, signer storage.Device, cause error) error {
	now := s.now()
	e := storage.Event{Type: eventOf(l), ClientID: l.ClientID, AccountID: cmp.Or(l.AccountID, signer.AccountID), DeviceID: signer.ID}
	var why error
	var ended bool // the login was refused for good
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		why = cause
		if errors.Is(cause, errClone) {
			suspended, err := markClone(tx, signer.ID, now)
			if err != nil {
				return err
			}
			if _, err := tx.AppendEvent(s.auditEvent(ctx, storage.Event{Type: EventCloneWarning, AccountID: e.AccountID, DeviceID: signer.ID, ClientID: l.ClientID}, cause)); err != nil {
				return err
			}
			if suspended {
				if _, err := tx.AppendEvent(s.auditEvent(ctx, storage.Event{Type: EventDeviceSuspend, AccountID: e.AccountID, DeviceID: signer.ID, Reason: errClone.Code}, nil)); err != nil {
					return err
				}
			}
		}
		var first bool
		ended = false
		if terminal(cause) {
			refused, err := refuseLogin(tx, l.Hash, cause, now)
			if err != nil {
				return err
			}
			first, ended = refused, refused
		} else {
			n, err := countFailure(tx, l.Hash, now)
			if err != nil {
				return err
			}
			first = n == 1
			if n >= maxFailures {
				why = errTooManyFailures
				if ended, err = refuseLogin(tx, l.Hash, why, now); err != nil {
					return err
				}
			}
		}
		if !first {
			return nil
		}
		_, err := tx.AppendEvent(s.auditEvent(ctx, e, cause))
		return err
	})
	if err != nil {
		return err
	}
	if ended {
		s.decided(l)
	}
	return why
}

// eventOf is the audit event type of what is done to l: a signing request's, or a login's.
func eventOf(l storage.Login) string {
	if l.Kind == storage.LoginSign {
		return EventSign
	}
	return EventLogin
}

// decided tells Decided of a decoupled login answered for good.
func (s *Service) decided(l storage.Login) {
	if s.Decided != nil && l.Kind == storage.LoginCIBA {
		s.Decided(l)
	}
}

// markClone records a clone warning on the device and suspends it: a copy of its key may
// exist, so it approves nothing more until the citizen revokes it and binds the phone again.
// It reports whether it suspended the device now (not revoked or suspended already).
func markClone(tx storage.Tx, deviceID string, now time.Time) (bool, error) {
	d, err := tx.Device(deviceID)
	if err != nil {
		return false, err
	}
	d.CloneWarningAt = &now
	suspend := d.Status == storage.DeviceActive
	if suspend {
		d.Status = storage.DeviceSuspended
	}
	return suspend, tx.PutDevice(d)
}

// terminal reports whether a refusal of the phone's finish ends the login or binding: the
// phone, its account or its credential cannot succeed by trying again. A failed biometric or a
// malformed answer may be tried again.
func terminal(err error) bool {
	var me *mcert.Error
	if !errors.As(err, &me) {
		return false
	}
	for _, c := range []*mcert.Code{mcert.DeviceRevoked, mcert.DeviceExpired, mcert.AccountSuspended, mcert.UnknownDevice,
		mcert.CloneWarning, mcert.NoUsableDevice, mcert.CredentialExists, mcert.DeviceLimit, mcert.AssuranceTooLow,
		mcert.DeviceSuspended, mcert.DeviceNotAccepted} {
		if me.Code == c.Name {
			return true
		}
	}
	return false
}

// maxFailures is how many refused finishes a login or a binding takes before it is refused for
// good: enough for a citizen whose biometric failed twice.
const maxFailures = 3

// countFailure counts a refused finish of the login or binding with the given hash in the
// rate-limit counters, which leaves the record as it was, and returns the count. The window is
// an hour, longer than any login or binding lives; one that spans two windows may take up to
// twice maxFailures.
func countFailure(tx storage.Tx, hash []byte, now time.Time) (int, error) {
	return tx.Hit(fmt.Sprintf("finish failures %x", hash), time.Hour, now)
}

var errTooManyFailures = mcert.TooManyFailures.New()

// refuseLogin ends a login for good with the reason of why, unless it has been answered or has
// expired meanwhile; it reports whether it did.
func refuseLogin(tx storage.Tx, hash []byte, why error, now time.Time) (bool, error) {
	l, err := tx.Login(hash)
	if err != nil {
		return false, err
	}
	if st := loginStatus(l, now); st != storage.LoginPending && st != storage.LoginScanned {
		return false, nil
	}
	l.Status, l.Reason, l.WebAuthnSession = storage.LoginRefused, errorCode(why), nil
	return true, tx.PutLogin(l)
}

// errorCode is err's code, for a record to keep.
func errorCode(err error) string {
	var me *mcert.Error
	if errors.As(err, &me) {
		return me.Code
	}
	return "internal"
}

// finishLogin does FinishLogin's work; it returns the login of the token and the device that
// signed, once known, both read in one snapshot. The assertion is verified outside any write
// transaction, then the approval is written in one with the
// checks that must hold when it is: the login still waits for this finish, the device is still
// usable and its account active, and the signature counter moved past the stored one, so that
// two logins racing with one counter value cannot both pass.
func (s *Service) finishLogin(ctx context.Context, token string, credential []byte, of forKind) (storage.Login, storage.Device, error) {
	var l storage.Login
	var approver storage.Device
	assertion, err := s.WebAuthn.FinishLogin(credential, func(credID []byte) (authn.Signer, error) {
		var signer authn.Signer
		err := s.Store.View(ctx, func(tx storage.ReadTx) error {
			var err error
			if l, err = tokenLogin(tx, token, s.now(), storage.LoginScanned, of); err != nil {
				l = storage.Login{}
				return err
			}
			signer.State = l.WebAuthnSession
			signer.Account, approver, signer.Devices, err = s.approvingDevice(tx, l, credID)
			signer.Device = approver
			return err
		})
		return signer, err
	})
	if err != nil {
		return l, approver, err
	}
	if assertion.CloneWarning {
		return l, approver, errClone
	}
	now := s.now()
	// A signing request's signatures are made now that the phone's approval checked out, and
	// kept only if the transaction below finds everything still as it was.
	var signed func(storage.Tx, *storage.Login) error
	event := storage.Event{Type: eventOf(l)}
	if l.Kind == storage.LoginSign {
		if signed, event.Detail, err = s.sign(ctx, l, approver, credential, now); err != nil {
			return l, approver, err
		}
	}
	err = s.Store.Update(ctx, func(tx storage.Tx) error {
		l, err := tx.Login(l.Hash)
		if err != nil {
			return err
		}
		if err := usableLogin(l, now, storage.LoginScanned); err != nil {
			return err
		}
		d, err := tx.Device(assertion.DeviceID)
		if err != nil {
			return err
		}
		if err := deviceUnusable(d, now); err != nil {
			return err
		}
		if a, err := tx.Account(d.AccountID); err != nil {
			return err
		} else if a.Status != storage.AccountActive {
			return errSuspended
		}
		if (assertion.SignCount != 0 || d.SignCount != 0) && assertion.SignCount <= d.SignCount {
			return errClone
		}
		if !meetsACR(d, l.RequiredACR) {
			return mcert.AssuranceTooLow.Newf(l.RequiredACR)
		}
		d.SignCount, d.BackupState, d.LastUsedAt = assertion.SignCount, assertion.BackupState, &now
		if err := tx.PutDevice(d); err != nil {
			return err
		}
		l.Status, l.AccountID, l.DeviceID, l.AuthTime = storage.LoginApproved, d.AccountID, d.ID, &now
		// What the device is now is what the ID token says, whenever it is issued.
		l.ACR, l.AMR, l.WebAuthnSession = DeviceACR(d), DeviceAMR(d), nil
		if signed != nil {
			if err := signed(tx, &l); err != nil {
				return err
			}
		}
		if err := tx.PutLogin(l); err != nil {
			return err
		}
		event.ClientID, event.AccountID, event.DeviceID = l.ClientID, d.AccountID, d.ID
		return s.event(ctx, tx, event)
	})
	return l, approver, err
}

var errClone = mcert.CloneWarning.New()

// approvingDevice finds the device that signed and checks that it may approve this login.
func (s *Service) approvingDevice(tx storage.ReadTx, l storage.Login, credID []byte) (storage.Account, storage.Device, []storage.Device, error) {
	d, err := tx.DeviceByCredential(credID)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && l.AccountID != "" && d.AccountID != l.AccountID) {
		return storage.Account{}, d, nil, mcert.UnknownDevice.New()
	}
	if err != nil {
		return storage.Account{}, d, nil, err
	}
	if err := deviceUnusable(d, s.now()); err != nil {
		return storage.Account{}, d, nil, err
	}
	a, err := tx.Account(d.AccountID)
	if err != nil {
		return a, d, nil, err
	}
	if a.Status != storage.AccountActive {
		return a, d, nil, errSuspended
	}
	if l.AccountID == "" {
		// A QR login's ceremony has no allow-list, so go-webauthn needs only the credential
		// that signed: no scan of the account's devices on the busiest path.
		return a, d, []storage.Device{d}, nil
	}
	// A decoupled login's ceremony allowed the account's usable phones, and go-webauthn checks
	// that the account owns every one of them.
	devices, err := tx.Devices(a.ID)
	return a, d, devices, err
}

// errLoginCancelled is the reason of a login the citizen cancelled on the login page.
var errLoginCancelled = mcert.LoginCancelled.New()

// CancelLogin is the citizen cancelling on the login page, in the browser that started the
// login: the website then gets access_denied, as if the phone had said no.
func (s *Service) CancelLogin(ctx context.Context, id, browserSecret string) (LoginPage, error) {
	l, err := s.RedirectLogin(ctx, id, browserSecret)
	if err != nil {
		return LoginPage{}, err
	}
	now := s.now()
	l, err = s.updateLogin(ctx, l.Hash, func(l *storage.Login) error {
		if st := loginStatus(*l, now); st != storage.LoginPending && st != storage.LoginScanned {
			return usableLogin(*l, now, storage.LoginPending)
		}
		l.Status, l.Reason, l.WebAuthnSession = storage.LoginDenied, errLoginCancelled.Code, nil
		return nil
	})
	if err != nil {
		return LoginPage{}, err
	}
	return s.loginPage(ctx, l)
}

// DenyLogin is the phone saying no.
func (s *Service) DenyLogin(ctx context.Context, token string) error {
	l, err := s.loginByToken(ctx, token, "", forEither)
	if err != nil {
		return err
	}
	now := s.now()
	err = s.Store.Update(ctx, func(tx storage.Tx) error {
		l, err := tx.Login(l.Hash)
		if err != nil {
			return err
		}
		if st := loginStatus(l, now); st != storage.LoginPending && st != storage.LoginScanned {
			return usableLogin(l, now, storage.LoginPending)
		}
		l.Status, l.WebAuthnSession = storage.LoginDenied, nil
		if err := tx.PutLogin(l); err != nil {
			return err
		}
		return s.event(ctx, tx, storage.Event{Type: eventOf(l), Outcome: "denied", ClientID: l.ClientID, AccountID: l.AccountID})
	})
	if err == nil {
		s.decided(l)
	}
	return err
}
