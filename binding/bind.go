package binding

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/qr"
	"github.com/mcert/mcert/storage"
)

// NewBinding is a binding just created: the only moment its QR text, and so its token, exists
// outside the phone.
type NewBinding struct {
	ID        string
	QRText    string
	ExpiresAt time.Time
}

// CreateBinding starts binding a phone to the session's account. The QR image is encoded once
// here and kept sealed under the session cookie: the store never holds the token in a form it
// can read, yet any instance can serve the image to the session that asked for it.
func (s *Service) CreateBinding(ctx context.Context, sess storage.Session, sessionToken string) (NewBinding, error) {
	token, hash := newToken()
	text := qr.BindText(s.PublicURL, token)
	png, err := qr.PNG(text)
	if err != nil {
		return NewBinding{}, err
	}
	now := s.now()
	b := storage.Binding{
		ID: newID(), TokenHash: hash, Status: storage.BindingPending, CreatedAt: now, ExpiresAt: now.Add(BindingTTL),
	}
	b.SealedQR = seal(qrKey(sessionToken, b.ID), png)
	err = s.Store.Update(ctx, func(tx storage.Tx) error {
		a, err := activeAccount(tx, sess)
		if err != nil {
			return err
		}
		if err := s.checkDeviceLimit(tx, a); err != nil {
			return err
		}
		b.AccountID = a.ID
		return tx.CreateBinding(b)
	})
	if err != nil {
		return NewBinding{}, err
	}
	return NewBinding{ID: b.ID, QRText: text, ExpiresAt: b.ExpiresAt}, nil
}

// BindingState is a binding as the desktop page sees it.
type BindingState struct {
	Status string // pending, scanned, bound, refused or expired
	Reason string // for refused: the error code that says why
	Device *storage.Device
}

// Binding returns the state of one of the session's bindings.
func (s *Service) Binding(ctx context.Context, sess storage.Session, id string) (BindingState, error) {
	return storage.Get(ctx, s.Store, func(tx storage.ReadTx) (BindingState, error) {
		b, err := ownBinding(tx, sess, id)
		if err != nil {
			return BindingState{}, err
		}
		st := BindingState{Status: bindingStatus(b, s.now()), Reason: b.Reason}
		if b.Status == storage.BindingBound {
			d, err := tx.Device(b.DeviceID)
			if err != nil {
				return BindingState{}, err
			}
			st.Device = &d
		}
		return st, nil
	})
}

// BindingQR returns the QR image of one of the session's bindings while it waits to be scanned.
func (s *Service) BindingQR(ctx context.Context, sess storage.Session, sessionToken, id string) ([]byte, error) {
	b, err := storage.Get(ctx, s.Store, func(tx storage.ReadTx) (storage.Binding, error) { return ownBinding(tx, sess, id) })
	if err != nil {
		return nil, err
	}
	if err := usable(b, s.now(), storage.BindingPending); err != nil {
		return nil, err
	}
	png, ok := open(qrKey(sessionToken, b.ID), b.SealedQR)
	if !ok {
		return nil, mcert.QROtherSession.New()
	}
	return png, nil
}

func ownBinding(tx storage.ReadTx, sess storage.Session, id string) (storage.Binding, error) {
	a, err := accountOf(tx, sess)
	if err != nil {
		return storage.Binding{}, err
	}
	b, err := tx.Binding(id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && b.AccountID != a.ID) {
		return storage.Binding{}, mcert.BindingNotFound.New()
	}
	return b, err
}

// checkNewDevice checks that the account may take one more device, and returns the name it is
// listed under: the one asked for, numbered when another of the account's phones has it, so
// that the citizen can tell two 「Android 手機」 apart.
func (s *Service) checkNewDevice(tx storage.ReadTx, a storage.Account, name string) (string, error) {
	if err := s.checkDeviceLimit(tx, a); err != nil {
		return "", err
	}
	devices, err := tx.Devices(a.ID)
	if err != nil {
		return "", err
	}
	taken := func(n string) bool {
		return slices.ContainsFunc(devices, func(d storage.Device) bool { return d.Name == n })
	}
	unique := name
	for i := 2; taken(unique); i++ {
		unique = fmt.Sprintf("%s %d", name, i)
	}
	return unique, nil
}

// checkDeviceLimit refuses a new device when the account has as many usable ones as allowed.
func (s *Service) checkDeviceLimit(tx storage.ReadTx, a storage.Account) error {
	devices, err := s.usableDevices(tx, a)
	if err != nil {
		return err
	}
	limit := s.DeviceLimit
	if limit <= 0 {
		limit = 5
	}
	if len(devices) >= limit {
		return mcert.DeviceLimit.Newf(limit)
	}
	return nil
}

func activeAccount(tx storage.ReadTx, sess storage.Session) (storage.Account, error) {
	a, err := accountOf(tx, sess)
	if err == nil && a.Status != storage.AccountActive {
		err = mcert.SuspendedBeforeBinding.New()
	}
	return a, err
}

func bindingStatus(b storage.Binding, now time.Time) string {
	if b.Status != storage.BindingBound && b.Status != storage.BindingRefused && !now.Before(b.ExpiresAt) {
		return "expired"
	}
	return b.Status
}

// usable says why a binding cannot take the next step, which needs it in status want.
func usable(b storage.Binding, now time.Time, want string) error {
	switch st := bindingStatus(b, now); {
	case st == want:
		return nil
	case st == "expired":
		return mcert.BindingExpired.New()
	case st == storage.BindingPending:
		return mcert.BindingNotStarted.New()
	default:
		return mcert.BindingUsed.New()
	}
}

// bindingByToken finds the binding a phone's token belongs to, in status want, and its
// account; a token that finds none (unknown, used or expired) is counted against the address's
// allowance of refusals.
func (s *Service) bindingByToken(ctx context.Context, token, want string) (storage.Binding, storage.Account, error) {
	var b storage.Binding
	var a storage.Account
	err := s.Store.View(ctx, func(tx storage.ReadTx) error {
		var err error
		if b, err = tokenBinding(tx, token, s.now(), want); err != nil {
			return err
		}
		a, err = tx.Account(b.AccountID)
		return err
	})
	return b, a, s.refusePhone(ctx, err)
}

// tokenBinding is the binding of a phone's token, in status want.
func tokenBinding(tx storage.ReadTx, token string, now time.Time, want string) (storage.Binding, error) {
	b, err := tx.BindingByToken(hashToken(token))
	if errors.Is(err, storage.ErrNotFound) {
		return b, mcert.UnknownBindingQR.New()
	}
	if err == nil {
		err = usable(b, now, want)
	}
	return b, err
}

const defaultDeviceName = "Phone"

func cleanDeviceName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return defaultDeviceName, nil
	}
	if !mcert.PlainText(name, 64) {
		return "", mcert.InvalidDeviceName.New()
	}
	return name, nil
}

// BindingInvite is what the phone shows when it opens a binding QR code, before the citizen
// fills anything in: whose account the phone would join, and until when the code works.
type BindingInvite struct {
	Name, IDMasked string // the account holder's, both masked
	ExpiresAt      time.Time
}

// BindingInvite looks at a binding by its QR token without using it: a token that is unknown,
// used or expired is refused (and counted as a refused phone request) before the citizen types
// a device name.
func (s *Service) BindingInvite(ctx context.Context, token string) (BindingInvite, error) {
	b, a, err := s.bindingByToken(ctx, token, storage.BindingPending)
	if err != nil {
		return BindingInvite{}, err
	}
	return BindingInvite{Name: maskName(a.Name), IDMasked: authn.MaskCitizenID(a.CitizenID), ExpiresAt: b.ExpiresAt}, nil
}

// maskName shows a name as Taiwan's services do to someone who may not be its holder: the first
// and last characters, the others hidden (王小明 as 王*明, 林華 as 林*).
func maskName(name string) string {
	r := []rune(name)
	switch len(r) {
	case 0, 1:
		return name
	case 2:
		return string(r[0]) + "*"
	}
	return string(r[0]) + strings.Repeat("*", len(r)-2) + string(r[len(r)-1])
}

// BeginBind is the phone's first step: it claims the QR token and gets the WebAuthn options.
func (s *Service) BeginBind(ctx context.Context, token, deviceName string) (*protocol.CredentialCreation, error) {
	name, err := cleanDeviceName(deviceName)
	if err != nil {
		return nil, err
	}
	b, a, err := s.bindingByToken(ctx, token, storage.BindingPending)
	if err != nil {
		return nil, err
	}
	if a.Status != storage.AccountActive {
		return nil, s.failBinding(ctx, b, mcert.SuspendedNoBinding.New())
	}
	devices, err := s.Devices(ctx, a)
	if err != nil {
		return nil, err
	}
	creation, state, err := s.WebAuthn.BeginRegistration(a, devices)
	if err != nil {
		return nil, err
	}
	now := s.now()
	err = s.Store.Update(ctx, func(tx storage.Tx) error {
		b, err := tx.Binding(b.ID)
		if err != nil {
			return err
		}
		if err := usable(b, now, storage.BindingPending); err != nil {
			return err
		}
		b.Status, b.DeviceName, b.WebAuthnSession = storage.BindingScanned, name, state
		return tx.PutBinding(b)
	})
	if err != nil {
		return nil, err
	}
	return creation, nil
}

// FinishBind verifies the phone's new credential and stores the device. The device token is
// returned once, for the phone to read its inbox with.
//
// The credential is verified outside the transaction (it is the slow part), then the rules
// are checked again inside it, where they hold when the device is written: the binding is
// still waiting for this finish, the account is still active (a binding begun before a
// suspension does not finish after it), and the account is still below its device limit (two
// phones finishing at once cannot both take the last place).
func (s *Service) FinishBind(ctx context.Context, token string, credential []byte) (storage.Device, string, error) {
	b, a, err := s.bindingByToken(ctx, token, storage.BindingScanned)
	if err != nil {
		return storage.Device{}, "", err
	}
	if a.Status != storage.AccountActive {
		return storage.Device{}, "", s.failBinding(ctx, b, mcert.SuspendedNoBinding.New())
	}
	d, err := s.WebAuthn.FinishRegistration(a, b.WebAuthnSession, credential)
	if err == nil {
		err = s.DevicePolicy.check(d) // what the credential is, which no transaction changes
	}
	if err != nil {
		return storage.Device{}, "", s.failBinding(ctx, b, err)
	}
	now := s.now()
	deviceToken, deviceTokenHash := newToken()
	d.ID, d.AccountID, d.TokenHash = newID(), a.ID, deviceTokenHash
	d.Status, d.CreatedAt, d.ExpiresAt = storage.DeviceActive, now, now.AddDate(0, 0, DeviceDays)
	ca, err := s.CA(ctx)
	if err != nil {
		return storage.Device{}, "", err
	}
	cert, err := s.newCertificate(ca, a, d, now)
	if err != nil {
		return storage.Device{}, "", err
	}
	err = s.Store.Update(ctx, func(tx storage.Tx) error {
		b, err := tx.Binding(b.ID)
		if err != nil {
			return err
		}
		if err := usable(b, now, storage.BindingScanned); err != nil {
			return err
		}
		a, err := tx.Account(b.AccountID)
		if err != nil {
			return err
		}
		if a.Status != storage.AccountActive {
			return refusal{mcert.SuspendedNoBinding.New()}
		}
		if d.Name, err = s.checkNewDevice(tx, a, b.DeviceName); err != nil {
			return refusal{err}
		}
		if err := tx.CreateDevice(d); errors.Is(err, storage.ErrAlreadyExists) {
			return refusal{mcert.CredentialExists.New()}
		} else if err != nil {
			return err
		}
		if err := s.storeCertificate(tx, a, d, cert); err != nil {
			return err
		}
		b.Status, b.DeviceID, b.WebAuthnSession, b.SealedQR = storage.BindingBound, d.ID, nil, nil
		if err := tx.PutBinding(b); err != nil {
			return err
		}
		if err := s.queueBound(ctx, tx, a, d, now); err != nil {
			return err
		}
		return s.event(ctx, tx, storage.Event{Type: EventBind, AccountID: a.ID, DeviceID: d.ID})
	})
	s.kickMail()
	var r refusal
	if errors.As(err, &r) {
		return storage.Device{}, "", s.failBinding(ctx, b, r.err)
	}
	if err != nil {
		return storage.Device{}, "", err
	}
	return d, deviceToken, nil
}

// refusal carries out of a transaction a refusal that the caller deals with after it: one
// that changes the record it concerns (a binding ended, a failure counted) in a transaction of
// its own, as the refused one wrote nothing.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

// failBinding deals with a refused begin or finish (cause) of the binding, in one transaction:
// a refusal that trying again cannot mend ends the binding at once; others are counted, and
// the binding ends at maxFailures. An ended binding is refused, with the reason, which the
// desktop page shows. Only the first refusal of a binding is written to the audit log.
func (s *Service) failBinding(ctx context.Context, b storage.Binding, cause error) error {
	if mcert.ErrorKind(cause) == mcert.Internal {
		return cause
	}
	now := s.now()
	var why error
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		n, err := countFailure(tx, b.TokenHash, now)
		if err != nil {
			return err
		}
		if n == 1 {
			if _, err := tx.AppendEvent(s.auditEvent(ctx, storage.Event{Type: EventBind, AccountID: b.AccountID}, cause)); err != nil {
				return err
			}
		}
		switch why = cause; {
		case terminal(cause):
		case n >= maxFailures:
			why = errTooManyFailures
		default:
			return nil
		}
		b, err := tx.Binding(b.ID)
		if err != nil {
			return err
		}
		if st := bindingStatus(b, now); st != storage.BindingPending && st != storage.BindingScanned {
			return nil
		}
		b.Status, b.Reason, b.WebAuthnSession, b.SealedQR = storage.BindingRefused, errorCode(why), nil, nil
		return tx.PutBinding(b)
	})
	if err != nil {
		return err
	}
	return why
}

// qrKey derives the key sealing a binding's QR image from the session cookie, which the store
// knows only by hash.
func qrKey(sessionToken, bindingID string) []byte {
	m := hmac.New(sha256.New, []byte(sessionToken))
	m.Write([]byte("mcert binding qr\x00" + bindingID))
	return m.Sum(nil)
}

func seal(key, plain []byte) []byte {
	aead := gcm(key)
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, nil)
}

func open(key, sealed []byte) ([]byte, bool) {
	aead := gcm(key)
	if len(sealed) < aead.NonceSize() {
		return nil, false
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	return plain, err == nil
}

func gcm(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // a 32-byte HMAC-SHA256 output is always a valid AES-256 key
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err) // only fails for a non-128-bit block cipher
	}
	return aead
}
