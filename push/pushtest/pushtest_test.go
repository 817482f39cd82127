package pushtest_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mcert/mcert/push"
	"github.com/mcert/mcert/push/pushtest"
)

// client sends the library's request after change has had its way with it.
type client func(*http.Request)

func (change client) Do(r *http.Request) (*http.Response, error) {
	change(r)
	return http.DefaultClient.Do(r)
}

func TestService(t *testing.T) {
	key := push.NewKey()
	public, err := push.PublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	svc := pushtest.New(t)
	other := svc.Subscribe()
	tests := []struct {
		name   string
		change func(r *http.Request, sub push.Subscription)
		to     func(push.Subscription) push.Subscription // what the sender believes the subscription is
		want   int
		why    string // what the refusal says
	}{
		{name: "good", want: http.StatusCreated},
		{name: "no TTL", change: func(r *http.Request, _ push.Subscription) { r.Header.Del("TTL") }, want: http.StatusBadRequest, why: "TTL"},
		{name: "a TTL that is not seconds", change: func(r *http.Request, _ push.Subscription) { r.Header.Set("TTL", "soon") }, want: http.StatusBadRequest, why: "TTL"},
		{name: "the old aesgcm encoding", change: func(r *http.Request, _ push.Subscription) { r.Header.Set("Content-Encoding", "aesgcm") }, want: http.StatusBadRequest, why: "Content-Encoding"},
		{name: "no VAPID", change: func(r *http.Request, _ push.Subscription) { r.Header.Del("Authorization") }, want: http.StatusBadRequest, why: "Authorization"},
		{name: "VAPID signed by another key", change: func(r *http.Request, _ push.Subscription) {
			otherKey, _ := push.PublicKey(push.NewKey())
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), public, otherKey, 1))
		}, want: http.StatusBadRequest, why: "signature"},
		{name: "VAPID for another origin", change: func(r *http.Request, sub push.Subscription) {
			r.Header.Set("Authorization", vapid(t, key, "https://push.example.com", "mailto:ops@mcert.example", time.Now().Add(time.Hour)))
		}, want: http.StatusBadRequest, why: "audience"},
		{name: "VAPID expired", change: func(r *http.Request, sub push.Subscription) {
			r.Header.Set("Authorization", vapid(t, key, origin(sub), "mailto:ops@mcert.example", time.Now().Add(-time.Minute)))
		}, want: http.StatusBadRequest, why: "expired"},
		{name: "VAPID for more than a day", change: func(r *http.Request, sub push.Subscription) {
			r.Header.Set("Authorization", vapid(t, key, origin(sub), "mailto:ops@mcert.example", time.Now().Add(25*time.Hour)))
		}, want: http.StatusBadRequest, why: "24 hours"},
		{name: "VAPID without a contact", change: func(r *http.Request, sub push.Subscription) {
			r.Header.Set("Authorization", vapid(t, key, origin(sub), "ops", time.Now().Add(time.Hour)))
		}, want: http.StatusBadRequest, why: "sub must be"},
		{name: "a corrupted body", change: func(r *http.Request, _ push.Subscription) {
			body, _ := io.ReadAll(r.Body)
			body[len(body)-1] ^= 1
			r.Body = io.NopCloser(bytes.NewReader(body))
		}, want: http.StatusBadRequest, why: "decrypting"},
		{name: "too large", change: func(r *http.Request, _ push.Subscription) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(append(body, 0)))
			r.ContentLength++
		}, want: http.StatusRequestEntityTooLarge, why: "over 4096 bytes"},
		{name: "encrypted for another subscription", to: func(sub push.Subscription) push.Subscription {
			return push.Subscription{Endpoint: sub.Endpoint, Keys: other.Keys}
		}, want: http.StatusBadRequest, why: "decrypting"},
		{name: "an unknown endpoint", to: func(sub push.Subscription) push.Subscription {
			sub.Endpoint += "x"
			return sub
		}, want: http.StatusNotFound, why: "no such subscription"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub := svc.Subscribe()
			to := sub
			if tc.to != nil {
				to = tc.to(sub)
			}
			change := func(*http.Request) {}
			if tc.change != nil {
				change = func(r *http.Request) { tc.change(r, sub) }
			}
			res, err := webpush.SendNotification([]byte(`{"kind":"login"}`), &webpush.Subscription{
				Endpoint: to.Endpoint,
				Keys:     webpush.Keys{P256dh: to.Keys.P256dh, Auth: to.Keys.Auth},
			}, &webpush.Options{
				HTTPClient: client(change), Subscriber: "ops@mcert.example", TTL: 60, Urgency: webpush.UrgencyHigh,
				VAPIDPublicKey: public, VAPIDPrivateKey: base64.RawURLEncoding.EncodeToString(key),
			})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.want {
				t.Fatalf("answered %d %s, want %d", res.StatusCode, body, tc.want)
			}
			if !strings.Contains(string(body), tc.why) {
				t.Errorf("answered %d %s, want it to say %q", res.StatusCode, body, tc.why)
			}
			if n := svc.Attempts(sub); tc.want != http.StatusNotFound && n != 1 {
				t.Errorf("Attempts() = %d, want 1", n)
			}
			if tc.want != http.StatusCreated {
				select {
				case m := <-svc.Messages():
					t.Errorf("delivered %s", m.Plaintext)
				default:
				}
				return
			}
			if res.Header.Get("Location") == "" {
				t.Error("201 without a Location")
			}
			m := <-svc.Messages()
			if string(m.Plaintext) != `{"kind":"login"}` || m.TTL != 60 || m.Urgency != "high" ||
				m.Audience != origin(sub) || m.Subject != "mailto:ops@mcert.example" || m.VAPIDKey != public {
				t.Errorf("received %+v", m)
			}
		})
	}
}

func TestAnswerAndHold(t *testing.T) {
	svc := pushtest.New(t)
	sub := svc.Subscribe()
	svc.Answer(sub, http.StatusInternalServerError, 2)
	svc.Answer(sub, http.StatusGone, 1)
	for _, want := range []int{500, 500, 410} {
		if got := post(t, sub); got != want {
			t.Errorf("answered %d, want %d", got, want)
		}
	}
	svc.Hold(sub)
	answered := make(chan int)
	go func() { answered <- post(t, sub) }()
	select {
	case got := <-answered:
		t.Fatalf("answered %d while held", got)
	case <-time.After(200 * time.Millisecond):
	}
	svc.Release(sub)
	if got := <-answered; got != http.StatusBadRequest { // post sends no real message
		t.Errorf("answered %d after the release, want 400", got)
	}
	if n := svc.Attempts(sub); n != 4 {
		t.Errorf("Attempts() = %d, want 4", n)
	}
}

func post(t *testing.T, sub push.Subscription) int {
	res, err := http.Post(sub.Endpoint, "application/octet-stream", strings.NewReader("not encrypted"))
	if err != nil {
		t.Error(err)
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

func origin(sub push.Subscription) string {
	i := strings.Index(sub.Endpoint, "/push/")
	return sub.Endpoint[:i]
}

// vapid is an Authorization header with the given claims, signed with key.
func vapid(t *testing.T, key []byte, aud, sub string, exp time.Time) string {
	t.Helper()
	raw, err := push.PublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), key)
	if err != nil {
		t.Fatal(err)
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"aud": aud, "sub": sub, "exp": exp.Unix()}).SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return "vapid t=" + token + ", k=" + raw
}
