// Package push tells a citizen's phone, through its browser vendor's push service, that a login
// or signing request waits in its inbox (PROTOCOL.md section 10): Web Push delivery (RFC 8030)
// of an aes128gcm message (RFC 8291) with VAPID (RFC 8292). The notification only wakes the
// phone; it carries no token, and the phone reads its inbox for the request itself.
package push

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Subscription is a phone's push subscription as the browser's PushSubscription.toJSON() gives it.
type Subscription struct {
	Endpoint string `json:"endpoint"`
	Keys     Keys   `json:"keys"`
}

// Keys are the subscription's keys, base64url as the browser gives them: the phone's P-256
// ECDH public key and its 16-byte authentication secret.
type Keys struct {
	P256dh string `json:"p256dh"`
	Auth   string `json:"auth"`
}

// maxEndpoint bounds what a phone can make mcert store and send to; real push services'
// endpoints are a few hundred bytes.
const maxEndpoint = 1024

// Check refuses a subscription mcert cannot or must not send to. Its errors are meant for the
// phone app's developer, and never repeat the value: an endpoint is a capability URL.
func (s Subscription) Check() error {
	if err := checkEndpoint(s.Endpoint); err != nil {
		return err
	}
	p256dh, err := decodeKey(s.Keys.P256dh)
	if err != nil {
		return fmt.Errorf("keys.p256dh is not base64url: %w", err)
	}
	if len(p256dh) != 65 {
		return fmt.Errorf("keys.p256dh must be an uncompressed P-256 point of 65 bytes, not %d bytes", len(p256dh))
	}
	if _, err := ecdh.P256().NewPublicKey(p256dh); err != nil {
		return errors.New("keys.p256dh is not a point on the P-256 curve")
	}
	auth, err := decodeKey(s.Keys.Auth)
	if err != nil {
		return fmt.Errorf("keys.auth is not base64url: %w", err)
	}
	if len(auth) != 16 {
		return fmt.Errorf("keys.auth must be 16 bytes, not %d bytes", len(auth))
	}
	return nil
}

// checkEndpoint holds endpoints to the rule for redirect URIs: https, or http only for the
// machine itself (development against a local push service).
func checkEndpoint(raw string) error {
	if raw == "" {
		return errors.New("endpoint is missing")
	}
	if len(raw) > maxEndpoint {
		return fmt.Errorf("endpoint is %d bytes long, over the limit of %d", len(raw), maxEndpoint)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("endpoint is not an absolute URL")
	}
	if u.User != nil {
		return errors.New("endpoint must not carry a user name or password")
	}
	// url.Parse drops an empty fragment ("...#"), so look at the text.
	if strings.Contains(raw, "#") {
		return errors.New("endpoint must not have a fragment")
	}
	if u.Scheme != "https" && !(u.Scheme == "http" && loopbackHost(u.Hostname())) {
		return errors.New("endpoint must use https (http only for localhost or a loopback address)")
	}
	return nil
}

func loopbackHost(host string) bool {
	return strings.EqualFold(host, "localhost") || net.ParseIP(host).IsLoopback()
}

// decodeKey reads base64url with or without padding, strictly: browsers give it unpadded, and
// anything looser (line breaks, which Go's decoders skip; stray bits) could be read otherwise
// by the encrypting library.
func decodeKey(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("line breaks are not allowed")
	}
	enc := base64.RawURLEncoding
	if strings.HasSuffix(s, "=") {
		enc = base64.URLEncoding
	}
	// Go's error names the offending byte's offset, which says nothing of the value.
	return enc.Strict().DecodeString(s)
}

// Message is the notification's plaintext (PROTOCOL.md section 10); it carries no token.
type Message struct {
	Kind       string `json:"kind"` // "login" or "sign"
	ClientName string `json:"client_name"`
	ExpiresAt  string `json:"expires_at"` // RFC 3339, seconds, UTC
}

// NewKey makes a VAPID private key: a P-256 scalar of 32 bytes.
func NewKey() []byte {
	k, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		// Since Go 1.24 crypto/rand does not fail, and a P-256 key needs nothing else.
		panic("push: making a P-256 key: " + err.Error())
	}
	return k.Bytes()
}

// PublicKey is the VAPID public key for a private key from NewKey, as GET
// /api/v1/phone/push/key gives it: the uncompressed point, base64url without padding.
func PublicKey(private []byte) (string, error) {
	k, err := ecdh.P256().NewPrivateKey(private)
	if err != nil {
		return "", fmt.Errorf("push: the VAPID key is not a P-256 private key: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), nil
}
