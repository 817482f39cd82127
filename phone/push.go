package phone

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/mcert/mcert/push"
)

// PushKey is the VAPID public key of the server at base, which a browser subscribes with.
func (c *Client) PushKey(ctx context.Context, base string) (string, error) {
	var out push.KeyResponse
	err := c.call(ctx, strings.TrimRight(base, "/"), "/api/v1/phone/push/key", "", nil, &out)
	return out.PublicKey, err
}

// SubscribePush gives the server at base the subscription its notifications for this phone
// go to, in place of any it had, with the device token of the phone's newest binding there.
func (c *Client) SubscribePush(ctx context.Context, base string, sub push.Subscription) error {
	base, token, err := c.deviceToken(base)
	if err != nil {
		return err
	}
	var out push.SubscribeResponse
	return c.call(ctx, base, "/api/v1/phone/push", token, push.SubscribeRequest{Subscription: sub}, &out)
}

// UnsubscribePush turns the phone's notifications from the server at base off.
func (c *Client) UnsubscribePush(ctx context.Context, base string) error {
	base, token, err := c.deviceToken(base)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodDelete, base, "/api/v1/phone/push", token, nil, nil)
}

// deviceToken is the device token of the phone's newest binding at base.
func (c *Client) deviceToken(base string) (string, string, error) {
	base = strings.TrimRight(base, "/")
	cred, ok := c.Phone.boundTo(base)
	if !ok {
		return base, "", fmt.Errorf("this phone is not bound to %s; bind it with a QR code from that server first", base)
	}
	return base, cred.DeviceToken, nil
}
