package binding

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/push"
	"github.com/mcert/mcert/storage"
)

// Phone notifications (PROTOCOL.md section 10): a phone's browser subscribes to Web Push with
// its device token, one subscription per device; a decoupled login or a signing request that
// names its citizen is announced to each of the citizen's usable subscribed phones once the
// transaction that made it has committed. The notice carries no token, only what the request
// is and until when: the phone reads its inbox for the rest.

const keyVAPID = keyName("vapid-key")

// VAPIDKey is the server's VAPID private key (RFC 8292), made on first use and the same on
// every instance: phones' subscriptions are bound to its public half, so it must never change.
func (s *Service) VAPIDKey(ctx context.Context) ([]byte, error) {
	return s.keyWith(ctx, keyVAPID, push.NewKey)
}

// PushKey is the VAPID public key a phone subscribes with.
func (s *Service) PushKey(ctx context.Context) (string, error) {
	k, err := s.VAPIDKey(ctx)
	if err != nil {
		return "", err
	}
	return push.PublicKey(k)
}

// SubscribePush keeps sub as the phone's subscription, in place of any it had. Sending the
// subscription it has already, as the inbox page does each time it opens, writes nothing.
func (s *Service) SubscribePush(ctx context.Context, deviceToken string, sub push.Subscription) error {
	d, _, err := s.deviceByToken(ctx, deviceToken)
	if err != nil {
		return err
	}
	if err := sub.Check(); err != nil {
		return mcert.InvalidPushSubscription.Newf(err)
	}
	kept := storage.PushSubscription{Endpoint: sub.Endpoint, P256dh: sub.Keys.P256dh, Auth: sub.Keys.Auth}
	if d.Push == kept {
		return nil
	}
	if err := s.limit(ctx, s.limits().PushPerDevice, "push device "+d.ID); err != nil {
		return err
	}
	return s.changeDevice(ctx, deviceToken, func(d *storage.Device) { d.Push = kept })
}

// UnsubscribePush forgets the phone's subscription, if it has one.
func (s *Service) UnsubscribePush(ctx context.Context, deviceToken string) error {
	d, _, err := s.deviceByToken(ctx, deviceToken)
	if err != nil || d.Push == (storage.PushSubscription{}) {
		return err
	}
	return s.changeDevice(ctx, deviceToken, func(d *storage.Device) { d.Push = storage.PushSubscription{} })
}

// changeDevice changes the usable device of deviceToken, checked again in the transaction.
func (s *Service) changeDevice(ctx context.Context, deviceToken string, change func(*storage.Device)) error {
	return s.Store.Update(ctx, func(tx storage.Tx) error {
		d, _, err := s.deviceOfToken(tx, deviceToken)
		if err != nil {
			return err
		}
		change(&d)
		return tx.PutDevice(d)
	})
}

// announce tells each subscribed phone among devices of the request l, which has committed.
func (s *Service) announce(l storage.Login, devices []storage.Device) {
	if s.Push == nil {
		return
	}
	kind := "login"
	if l.Kind == storage.LoginSign {
		kind = "sign"
	}
	m := push.Message{Kind: kind, ClientName: l.ClientName, ExpiresAt: l.ExpiresAt.UTC().Format(time.RFC3339)}
	for _, d := range devices {
		if d.Push.Endpoint == "" {
			continue
		}
		id, kept := d.ID, d.Push
		sub := push.Subscription{Endpoint: kept.Endpoint, Keys: push.Keys{P256dh: kept.P256dh, Auth: kept.Auth}}
		s.Push.Send(sub, m, l.ExpiresAt, func() { s.dropPush(id, kept) })
	}
}

// dropPush forgets a subscription the push service said is gone, unless the phone has made
// another meanwhile.
func (s *Service) dropPush(deviceID string, gone storage.PushSubscription) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := s.Store.Update(ctx, func(tx storage.Tx) error {
		d, err := tx.Device(deviceID)
		if err != nil || d.Push != gone {
			return err
		}
		d.Push = storage.PushSubscription{}
		return tx.PutDevice(d)
	})
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		log.Warn("push: could not drop a subscription that is gone", "device_id", deviceID, "err", err)
		return
	}
	log.Info("push: dropped a subscription the push service no longer has", "device_id", deviceID)
}
