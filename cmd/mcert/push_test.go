package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/push"
	"github.com/mcert/mcert/push/pushtest"
	"github.com/mcert/mcert/storage"
)

// phoneDevice is the one device of the citizen A123456789, as stored.
func (s *server) phoneDevice(t *testing.T) storage.Device {
	t.Helper()
	ctx := context.Background()
	devices, err := storage.Get(ctx, s.store, func(tx storage.ReadTx) ([]storage.Device, error) {
		a, err := tx.AccountByCitizen("A123456789")
		if err != nil {
			return nil, err
		}
		return tx.Devices(a.ID)
	})
	if err != nil || len(devices) != 1 {
		t.Fatalf("devices: %v, %v", devices, err)
	}
	return devices[0]
}

// settled waits until every notification in flight has been delivered or given up.
func (s *server) settled(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.service.Push.Wait(ctx); err != nil {
		t.Fatalf("notifications still in flight: %v", err)
	}
}

// nextMessage is the next message the push service decrypted.
func nextMessage(t *testing.T, ps *pushtest.Service) pushtest.Received {
	t.Helper()
	select {
	case m := <-ps.Messages():
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no notification reached the push service")
		return pushtest.Received{}
	}
}

// TestPushNotifications: a phone subscribed through the API is told of a CIBA request and of a
// signing request by an RFC 8291 message through a local push service, which decrypts it with
// the subscription's keys and checks its VAPID signature, as a browser vendor's would. The
// message names the request and carries no token; the phone finds and approves the request in
// its inbox. A subscription the push service says is gone is dropped; one turned off gets
// nothing.
func TestPushNotifications(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	ctx := context.Background()
	ps := pushtest.New(t)

	var key push.KeyResponse
	if err := json.Unmarshal(get(t, s.PublicURL+"/api/v1/phone/push/key", "application/json"), &key); err != nil {
		t.Fatal(err)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(key.PublicKey); err != nil || len(raw) != 65 || raw[0] != 4 {
		t.Fatalf("VAPID key %q: not an uncompressed P-256 point (%v)", key.PublicKey, err)
	}
	sub := ps.Subscribe()
	if err := ph.SubscribePush(ctx, s.PublicURL, sub); err != nil {
		t.Fatal(err)
	}
	if got := s.phoneDevice(t).Push; got.Endpoint != sub.Endpoint || got.P256dh != sub.Keys.P256dh || got.Auth != sub.Keys.Auth {
		t.Fatalf("stored subscription: %+v", got)
	}

	ciba := cibaClient{t: t, rp: s.relyingParty(t, "健保署", provider.ClientSpec{CIBA: true})}
	asked := time.Now()
	id := ciba.start("A123456789", "轉帳 NT$1,000 確認")
	m := nextMessage(t, ps)
	t.Logf("the CIBA request reached the push service %v after bc-authorize was sent", m.At.Sub(asked).Round(time.Millisecond))
	var msg push.Message
	if err := json.Unmarshal(m.Plaintext, &msg); err != nil {
		t.Fatalf("plaintext %q: %v", m.Plaintext, err)
	}
	expires, err := time.Parse(time.RFC3339, msg.ExpiresAt)
	if err != nil || msg.Kind != "login" || msg.ClientName != "健保署" || expires.Sub(s.clock.Now()) > 120*time.Second || expires.Sub(s.clock.Now()) < 110*time.Second {
		t.Fatalf("message %+v (%v), want the login of 健保署 expiring in 120 s", msg, err)
	}
	if strings.Contains(string(m.Plaintext), "轉帳") || strings.Contains(string(m.Plaintext), id) {
		t.Fatalf("the message carries more than PROTOCOL.md lets it: %s", m.Plaintext)
	}
	if m.TTL < 110 || m.TTL > 120 || m.Urgency != "high" {
		t.Fatalf("TTL %d, Urgency %q: want the request's 120 s and high", m.TTL, m.Urgency)
	}
	origin, _ := url.Parse(sub.Endpoint)
	if m.Audience != origin.Scheme+"://"+origin.Host || m.Subject != "mailto:mcert@localhost" || m.VAPIDKey != key.PublicKey {
		t.Fatalf("VAPID: aud %q sub %q key %q", m.Audience, m.Subject, m.VAPIDKey)
	}

	// The notification opens the inbox, where the request is approved.
	inbox, err := ph.Inbox(ctx, s.PublicURL)
	if err != nil || len(inbox) != 1 {
		t.Fatalf("inbox: %+v, %v", inbox, err)
	}
	if _, err := ph.Approve(ctx, s.PublicURL, inbox[0].Token, phone.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	if code, tokens := ciba.poll(id); code != "" || tokens["id_token"] == nil {
		t.Fatalf("after the approval: %s %v", code, tokens)
	}

	// A signing request for the citizen is announced as one.
	sp := s.signingParty(t)
	sp.call("POST", "/api/v1/sign/requests", map[string]any{
		"login_hint": "A123456789", "text": "簽署契約", "format": "cms", "documents": []document{documentOf("契約.pdf", []byte("契約"))},
	}).want(t, 201)
	if err := json.Unmarshal(nextMessage(t, ps).Plaintext, &msg); err != nil || msg.Kind != "sign" || msg.ClientName != "地政事務所" {
		t.Fatalf("signing request's message: %+v, %v", msg, err)
	}

	// Sending the same subscription again, as the inbox page does when it opens, changes nothing.
	if err := ph.SubscribePush(ctx, s.PublicURL, sub); err != nil {
		t.Fatal(err)
	}
	// The push service forgets the subscription: the next request's 410 drops it, and the one
	// after is not sent at all.
	ps.Answer(sub, http.StatusGone, 1)
	ciba.start("A123456789", "")
	s.settled(t)
	if got := s.phoneDevice(t).Push; got != (storage.PushSubscription{}) {
		t.Fatalf("after a 410 the device still has %+v", got)
	}
	attempts := ps.Attempts(sub)
	ciba.start("A123456789", "")
	s.settled(t)
	if ps.Attempts(sub) != attempts {
		t.Fatalf("a dropped subscription was sent to again")
	}

	// Turned off by the phone: nothing more is sent.
	sub = ps.Subscribe()
	if err := ph.SubscribePush(ctx, s.PublicURL, sub); err != nil {
		t.Fatal(err)
	}
	if err := ph.UnsubscribePush(ctx, s.PublicURL); err != nil {
		t.Fatal(err)
	}
	if got := s.phoneDevice(t).Push; got != (storage.PushSubscription{}) {
		t.Fatalf("after DELETE the device still has %+v", got)
	}
}

// TestPushNeverDelaysTheRelyingParty: a push service that does not answer, or answers 500,
// makes no relying party's request wait or fail; the notification is retried and arrives
// once the service answers.
func TestPushNeverDelaysTheRelyingParty(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	ps := pushtest.New(t)
	sub := ps.Subscribe()
	if err := ph.SubscribePush(context.Background(), s.PublicURL, sub); err != nil {
		t.Fatal(err)
	}
	ciba := cibaClient{t: t, rp: s.relyingParty(t, "健保署", provider.ClientSpec{CIBA: true})}
	ps.Hold(sub)
	ciba.start("A123456789", "")
	for deadline := time.Now().Add(10 * time.Second); ps.Attempts(sub) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the notification was not sent")
		}
	}
	// The first notification hangs at the push service: the next request is answered anyway.
	ciba.start("A123456789", "")
	ps.Release(sub)
	ps.Answer(sub, http.StatusInternalServerError, 2)
	ciba.start("A123456789", "")
	for range 3 {
		nextMessage(t, ps)
	}
	s.settled(t)
	if got := s.phoneDevice(t).Push; got.Endpoint != sub.Endpoint {
		t.Fatalf("a subscription whose service failed for a while was dropped: %+v", got)
	}
}

// TestPushBadSubscriptions: a subscription mcert cannot send to is refused when the phone
// gives it, with invalid_request, and changes nothing stored.
func TestPushBadSubscriptions(t *testing.T) {
	s := startServer(t)
	ph, _ := boundCitizen(t, s)
	ctx := context.Background()
	ps := pushtest.New(t)
	good := ps.Subscribe()
	if err := ph.SubscribePush(ctx, s.PublicURL, good); err != nil {
		t.Fatal(err)
	}
	before := s.phoneDevice(t)
	with := func(change func(*push.Subscription)) push.Subscription {
		sub := ps.Subscribe()
		change(&sub)
		return sub
	}
	b64 := base64.RawURLEncoding.EncodeToString
	offCurve := append([]byte{4}, make([]byte, 64)...)
	offCurve[64] = 1
	for _, tc := range []struct {
		name string
		sub  push.Subscription
	}{
		{"no endpoint", with(func(s *push.Subscription) { s.Endpoint = "" })},
		{"plain http to the internet", with(func(s *push.Subscription) { s.Endpoint = "http://push.example.com/send/abc" })},
		{"not http", with(func(s *push.Subscription) { s.Endpoint = "ftp://push.example.com/abc" })},
		{"relative endpoint", with(func(s *push.Subscription) { s.Endpoint = "/push/abc" })},
		{"huge endpoint", with(func(s *push.Subscription) { s.Endpoint = "https://push.example.com/" + strings.Repeat("a", 4096) })},
		{"no keys", with(func(s *push.Subscription) { s.Keys = push.Keys{} })},
		{"p256dh of 64 bytes", with(func(s *push.Subscription) { s.Keys.P256dh = b64(offCurve[:64]) })},
		{"p256dh not on the curve", with(func(s *push.Subscription) { s.Keys.P256dh = b64(offCurve) })},
		{"p256dh not base64url", with(func(s *push.Subscription) { s.Keys.P256dh = "not base64!" })},
		{"auth of 15 bytes", with(func(s *push.Subscription) { s.Keys.Auth = b64(make([]byte, 15)) })},
		{"auth of 17 bytes", with(func(s *push.Subscription) { s.Keys.Auth = b64(make([]byte, 17)) })},
	} {
		err := ph.SubscribePush(ctx, s.PublicURL, tc.sub)
		if !isAPIError(err, 400, "invalid_request") {
			t.Errorf("%s: %v, want 400 invalid_request", tc.name, err)
		}
	}
	for _, tc := range []struct {
		name, auth, body string
		status           int
		code             string
	}{
		{"no device token", "", `{"subscription": {}}`, 401, "bad_device_token"},
		{"unknown device token", "Bearer nope", `{"subscription": {}}`, 401, "bad_device_token"},
		{"not JSON", "", `subscription`, 400, "malformed_body"},
		{"huge body", "", `{"subscription": {"endpoint": "` + strings.Repeat("a", 70<<10) + `"}}`, 413, "body_too_large"},
	} {
		req, _ := http.NewRequest("POST", s.PublicURL+"/api/v1/phone/push", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		res, body, err := roundTrip(http.DefaultClient, req)
		if err != nil {
			t.Fatal(err)
		}
		if code := (reply{Status: res.StatusCode, Body: body}).errorCode(t); res.StatusCode != tc.status || code != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, res.StatusCode, code, tc.status, tc.code)
		}
	}
	if after := s.phoneDevice(t); after.Push != before.Push {
		t.Fatalf("refused subscriptions changed the device's: %+v, was %+v", after.Push, before.Push)
	}
}
