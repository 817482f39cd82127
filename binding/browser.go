package binding

import (
	"context"
	"crypto/hmac"
	"strings"
	"unicode/utf8"

	"github.com/mssola/useragent"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/storage"
)

// A redirect login belongs to the browser that opened the authorization endpoint: that answer
// sets a cookie holding a random secret (the browser secret), the login keeps its hash, and
// the login page, its API and the way back to the website answer a browser without it as if
// the login did not exist. Otherwise the login id would be the login's only secret, and an
// attacker could start a login, send the genuine page to a victim, and follow it back to the
// website once the victim approved.

// BrowserCookie is the name of the browser secret's cookie: __Host- prefixed over https, so
// that no sibling subdomain can set or read it.
func BrowserCookie(publicURL string) string {
	if strings.HasPrefix(publicURL, "https://") {
		return "__Host-mcert_browser"
	}
	return "mcert_browser"
}

// BrowserSecret returns the browser secret a cookie already holds, or a new one: one browser
// keeps one secret, so logins begun in two of its tabs both stay reachable.
func BrowserSecret(cookie string) (secret string, isNew bool) {
	if len(cookie) == 43 && validB64URL(cookie) {
		return cookie, false
	}
	_, secret = newSecret(32)
	return secret, true
}

func validB64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Browser is the browser that starts a redirect login: its secret, and its User-Agent for the
// phone to name it.
type Browser struct {
	Secret    string
	UserAgent string
}

// browserName is how the phone names the browser of a login, such as "Chrome on Windows": the
// citizen approves only a login their own browser asked for.
func browserName(userAgent string) string {
	ua := useragent.New(userAgent)
	name, _ := ua.Browser()
	os := ua.OSInfo().Name
	var out string
	switch {
	case name != "" && os != "":
		out = name + " on " + os
	default:
		out = name
	}
	out = strings.Map(func(r rune) rune {
		if !mcert.PlainRune(r) {
			return -1
		}
		return r
	}, out)
	if utf8.RuneCountInString(out) > 64 {
		out = string([]rune(out)[:64])
	}
	return out
}

// sameBrowser reports whether secret is the browser secret whose hash the login keeps.
func sameBrowser(hash []byte, secret string) bool {
	return len(hash) > 0 && secret != "" && hmac.Equal(hash, hashToken(secret))
}

type keyName string

// Secrets are the names of the service's secrets in the store.
var Secrets = []string{string(keyChallenge), string(keyLoginQR), string(keyVAPID)}

// key returns a server secret from the store, made on first use and the same on every
// instance. It is cached: a secret never changes once made.
func (s *Service) key(ctx context.Context, name keyName) ([]byte, error) {
	return s.keyWith(ctx, name, func() []byte { b, _ := newSecret(32); return b })
}

// keyWith is key, for a secret that create makes.
func (s *Service) keyWith(ctx context.Context, name keyName, create func() []byte) ([]byte, error) {
	if k, ok := s.keys.Load(name); ok {
		return k.([]byte), nil
	}
	k, err := storage.Secret(ctx, s.Store, string(name), create)
	if err != nil {
		return nil, err
	}
	s.keys.Store(name, k)
	return k, nil
}
