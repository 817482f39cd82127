package push_test

import (
	"crypto/ecdh"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	webpush "github.com/SherClockHolmes/webpush-go"

	"github.com/mcert/mcert/push"
)

// sent keeps the library's request instead of sending it: the endpoint is the fuzzer's, and
// the point is only whether the library can make the request at all.
type sent struct{ req *http.Request }

func (s *sent) Do(r *http.Request) (*http.Response, error) {
	s.req = r
	return &http.Response{StatusCode: http.StatusCreated, Body: http.NoBody}, nil
}

// FuzzSubscriptionCheck holds Check to its promise: what it accepts, the sender can encrypt
// and send. Run it with
//
//	go test ./push -run '^$' -fuzz FuzzSubscriptionCheck -fuzztime 30s
func FuzzSubscriptionCheck(f *testing.F) {
	good := goodSubscription(f)
	f.Add(good.Endpoint, good.Keys.P256dh, good.Keys.Auth)
	f.Add("http://localhost:8080/push/x", good.Keys.P256dh+"=", good.Keys.Auth+"==")
	f.Add("http://[::1]/push/x", good.Keys.P256dh, good.Keys.Auth)
	f.Add("https://u@push.example/x#f", good.Keys.P256dh[1:], good.Keys.Auth+"A")
	f.Add("ftp://push.example/x", "BAAA", "\n")
	f.Add("https:opaque", strings.ReplaceAll(good.Keys.P256dh, "-", "+"), "")
	key := push.NewKey()
	public, err := push.PublicKey(key)
	if err != nil {
		f.Fatal(err)
	}
	private := base64.RawURLEncoding.EncodeToString(key)
	f.Fuzz(func(t *testing.T, endpoint, p256dh, auth string) {
		sub := push.Subscription{Endpoint: endpoint, Keys: push.Keys{P256dh: p256dh, Auth: auth}}
		if sub.Check() != nil {
			return
		}
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(p256dh, "="))
		if err != nil {
			t.Fatalf("Check accepted a p256dh that is not base64url: %v", err)
		}
		if _, err := ecdh.P256().NewPublicKey(raw); err != nil {
			t.Fatalf("Check accepted a p256dh that is no P-256 key: %v", err)
		}
		if raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(auth, "=")); err != nil || len(raw) != 16 {
			t.Fatalf("Check accepted an auth of %d bytes (%v)", len(raw), err)
		}
		var c sent
		_, err = webpush.SendNotification([]byte(`{"kind":"login"}`), &webpush.Subscription{
			Endpoint: endpoint, Keys: webpush.Keys{P256dh: p256dh, Auth: auth},
		}, &webpush.Options{
			HTTPClient: &c, Subscriber: "ops@mcert.example", TTL: 60, Urgency: webpush.UrgencyHigh,
			VAPIDPublicKey: public, VAPIDPrivateKey: private,
		})
		if err != nil {
			t.Fatalf("Check accepted a subscription the library cannot send to: %v", err)
		}
		if c.req.URL.Scheme != "https" && c.req.URL.Scheme != "http" {
			t.Fatalf("Check accepted an endpoint of scheme %q", c.req.URL.Scheme)
		}
	})
}
