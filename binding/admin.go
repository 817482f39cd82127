package binding

import (
	"context"
	"time"

	"github.com/mcert/mcert/storage"
)

// Event types of the operator's admin actions.
const (
	EventAdminClientCreate = "admin_client_create"
	EventAdminKeysRotate   = "admin_keys_rotate"
	EventAdminBackup       = "admin_backup"
	EventAdminRefused      = "admin_refused" // a request with a wrong or missing admin token
)

// adminActor is who acts through the admin API.
const adminActor = "operator"

// AdminRefusedPerIP bounds the refused admin requests of one address that are written to the
// audit log; past it they are answered rate_limited and cost no write, so that a flood of
// guesses cannot grow the log without end. The operator, who holds the token, is never limited.
var AdminRefusedPerIP = Limit{N: 30, Window: time.Minute}

// RecordAdmin writes the operator's action to the audit log; clientID names the relying party
// it concerns, if any.
func (s *Service) RecordAdmin(ctx context.Context, action, clientID string) {
	s.record(ctx, storage.Event{Type: action, Actor: adminActor, ClientID: clientID}, nil)
}

// RefuseAdmin records a request refused for its admin token, with refusal's code, and returns
// refusal to answer with; once the address has spent AdminRefusedPerIP, it records nothing and
// returns a rate_limited error instead.
func (s *Service) RefuseAdmin(ctx context.Context, refusal error) error {
	if ip := clientIP(ctx); ip != "" {
		key, l, now := "admin refused ip "+limitedNetwork(ip), AdminRefusedPerIP, s.now()
		n, err := s.hits(ctx, key, l.Window, now)
		if err != nil {
			return err
		}
		if n >= l.N {
			return rateLimited(now, l.Window)
		}
		if err := s.limit(ctx, l, key); err != nil { // rate_limited too, when others from the address got there first
			return err
		}
	}
	s.record(ctx, storage.Event{Type: EventAdminRefused, Actor: adminActor}, refusal)
	return refusal
}
