package push_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/mcert/mcert/push"
)

var b64 = base64.RawURLEncoding.EncodeToString

// goodSubscription is a subscription as a browser gives it, on a public push service.
func goodSubscription(t testing.TB) push.Subscription {
	t.Helper()
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return push.Subscription{
		Endpoint: "https://fcm.googleapis.com/fcm/send/dGhpcyBpcyBhIGNhcGFiaWxpdHk",
		Keys:     push.Keys{P256dh: b64(k.PublicKey().Bytes()), Auth: b64(make([]byte, 16))},
	}
}

func TestCheck(t *testing.T) {
	good := goodSubscription(t)
	point, _ := base64.RawURLEncoding.DecodeString(good.Keys.P256dh)
	compressed := append([]byte{2 + point[64]&1}, point[1:33]...)
	offCurve := append([]byte{4}, make([]byte, 64)...)
	tests := []struct {
		name    string
		change  func(*push.Subscription)
		wantErr string // "" for none
	}{
		{"good", func(*push.Subscription) {}, ""},
		{"padded keys", func(s *push.Subscription) {
			s.Keys.P256dh = base64.URLEncoding.EncodeToString(point)
			s.Keys.Auth = base64.URLEncoding.EncodeToString(make([]byte, 16))
		}, ""},
		{"http on localhost", func(s *push.Subscription) { s.Endpoint = "http://localhost:8080/push/x" }, ""},
		{"http on 127.0.0.2", func(s *push.Subscription) { s.Endpoint = "http://127.0.0.2/push/x" }, ""},
		{"http on ::1", func(s *push.Subscription) { s.Endpoint = "http://[::1]:8080/push/x" }, ""},
		{"https on an IP", func(s *push.Subscription) { s.Endpoint = "https://10.1.2.3/push" }, ""}, // the dialer's to refuse
		{"endpoint missing", func(s *push.Subscription) { s.Endpoint = "" }, "endpoint is missing"},
		{"http on a public host", func(s *push.Subscription) { s.Endpoint = "http://push.example.com/x" }, "must use https"},
		{"http on a name that starts with localhost", func(s *push.Subscription) { s.Endpoint = "http://localhost.example.com/x" }, "must use https"},
		{"ftp", func(s *push.Subscription) { s.Endpoint = "ftp://push.example.com/x" }, "must use https"},
		{"relative", func(s *push.Subscription) { s.Endpoint = "/push/x" }, "not an absolute URL"},
		{"no host", func(s *push.Subscription) { s.Endpoint = "https:push" }, "not an absolute URL"},
		{"not a URL", func(s *push.Subscription) { s.Endpoint = "https://push example/x" }, "not an absolute URL"},
		{"too long", func(s *push.Subscription) { s.Endpoint = "https://push.example.com/" + strings.Repeat("a", 1000) }, "over the limit of 1024"},
		{"userinfo", func(s *push.Subscription) { s.Endpoint = "https://mcert:secret@push.example.com/x" }, "user name or password"},
		{"fragment", func(s *push.Subscription) { s.Endpoint = "https://push.example.com/x#here" }, "fragment"},
		{"empty fragment", func(s *push.Subscription) { s.Endpoint = "https://push.example.com/x#" }, "fragment"},
		{"p256dh too short", func(s *push.Subscription) { s.Keys.P256dh = b64(point[:64]) }, "65 bytes, not 64"},
		{"p256dh too long", func(s *push.Subscription) { s.Keys.P256dh = b64(append(point, 0)) }, "65 bytes, not 66"},
		{"p256dh off the curve", func(s *push.Subscription) { s.Keys.P256dh = b64(offCurve) }, "not a point on the P-256 curve"},
		{"p256dh compressed", func(s *push.Subscription) { s.Keys.P256dh = b64(compressed) }, "65 bytes, not 33"},
		{"p256dh not base64", func(s *push.Subscription) { s.Keys.P256dh = "not base64!" }, "not base64url"},
		{"p256dh standard base64", func(s *push.Subscription) {
			s.Keys.P256dh = base64.StdEncoding.EncodeToString(append([]byte{4, 0xfb, 0xff}, point[3:]...)) // "BPv/..."
		}, "not base64url"},
		{"p256dh with a line break", func(s *push.Subscription) { s.Keys.P256dh = s.Keys.P256dh[:40] + "\n" + s.Keys.P256dh[40:] }, "line breaks"},
		{"p256dh missing", func(s *push.Subscription) { s.Keys.P256dh = "" }, "65 bytes, not 0"},
		{"auth 15 bytes", func(s *push.Subscription) { s.Keys.Auth = b64(make([]byte, 15)) }, "16 bytes, not 15"},
		{"auth 17 bytes", func(s *push.Subscription) { s.Keys.Auth = b64(make([]byte, 17)) }, "16 bytes, not 17"},
		{"auth wrongly padded", func(s *push.Subscription) { s.Keys.Auth = b64(make([]byte, 16)) + "=" }, "not base64url"},
		{"auth with stray bits", func(s *push.Subscription) { s.Keys.Auth = "AAAAAAAAAAAAAAAAAAAAAB" }, "not base64url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := good
			tc.change(&s)
			err := s.Check()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Check() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Check() = %v, want an error saying %q", err, tc.wantErr)
			}
			for _, v := range []string{s.Endpoint, s.Keys.P256dh, s.Keys.Auth} {
				if len(v) > 8 && strings.Contains(err.Error(), v) {
					t.Errorf("Check() = %v: it repeats the value", err)
				}
			}
		})
	}
}
