package binding

import (
	"context"
	"errors"
	"net/netip"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/storage"
)

type clientIPKey struct{}

// WithClientIP tells the service the client's address, for rate limits and the audit log.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

func clientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}

// maskIP keeps an address's network and drops the host: enough to see where a wave of
// refusals comes from, not enough to track a person.
func maskIP(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	bits := 24
	if a.Unmap().Is6() {
		bits = 48
	}
	p, _ := a.Unmap().Prefix(bits)
	return p.String()
}

// Event types of the audit log.
const (
	EventCardLogin     = "card_login"
	EventAccountCreate = "account_create"
	EventAccountUpdate = "account_update"
	EventBind          = "bind"
	EventDeviceRename  = "device_rename"
	EventDeviceRevoke  = "device_revoke"
	EventSuspend       = "account_suspend"
	EventReinstate     = "account_reinstate"
	EventLogin         = "login"
	EventSign          = "sign" // a signing request approved and signed
	EventCloneWarning  = "clone_warning"
	// EventDeviceSuspend: a clone warning suspended the device (Reason clone_warning).
	EventDeviceSuspend = "device_suspend"
	EventEmailVerified = "email_verified"
)

// record appends an event to the audit log in a transaction of its own: for a refusal, which
// changes nothing else. A failure to record is logged, not returned: the request it describes
// has been refused already.
func (s *Service) record(ctx context.Context, e storage.Event, outcomeErr error) {
	e = s.auditEvent(ctx, e, outcomeErr)
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		_, err := tx.AppendEvent(e)
		return err
	})
	if err != nil && s.Log != nil {
		s.Log.Error("audit log: event not recorded", "type", e.Type, "err", err)
	}
}

// event appends the event of a successful action to the audit log in the action's own
// transaction: the action and its record are written together or not at all.
func (s *Service) event(ctx context.Context, tx storage.Tx, e storage.Event) error {
	_, err := tx.AppendEvent(s.auditEvent(ctx, e, nil))
	return err
}

// auditEvent completes e for the log: its time, the client's masked address, and the outcome.
// With outcomeErr nil the outcome is e's (default "ok"); otherwise the event is a refusal with
// the error's code.
func (s *Service) auditEvent(ctx context.Context, e storage.Event, outcomeErr error) storage.Event {
	e.Time, e.IP = s.now(), maskIP(clientIP(ctx))
	if e.Outcome == "" {
		e.Outcome = "ok"
	}
	if outcomeErr != nil {
		e.Outcome, e.Reason = "refused", "internal"
		var me *mcert.Error
		if errors.As(outcomeErr, &me) {
			e.Reason = me.Code
		}
	}
	return e
}

// actor is how a citizen appears in the log: masked.
func actor(citizenID string) string { return authn.MaskCitizenID(citizenID) }

// ActorMailLink is the actor of what a link mailed to the citizen did: whoever holds the mail.
const ActorMailLink = "email link"
