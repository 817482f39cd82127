// Package pushtest is a local stand-in for a browser vendor's push service, for tests: it hands
// out subscriptions as a browser would, and takes messages as a real push service does (RFC
// 8030), refusing what a real one refuses, and decrypts them as the phone would (RFC 8291).
package pushtest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/hkdf"

	"github.com/mcert/mcert/push"
)

// maxBody is RFC 8030's floor for what a push service takes (section 7.2), which the big push
// services also hold as their ceiling.
const maxBody = 4096

// Service is a push service on 127.0.0.1: POST /push/<id> delivers a message.
type Service struct {
	t      testing.TB
	srv    *httptest.Server
	origin string // what a VAPID JWT's aud must be
	out    chan Received
	done   chan struct{} // closed at the test's end, to let held requests go

	mu   sync.Mutex
	subs map[string]*subscriber // by path
}

type subscriber struct {
	key      *ecdh.PrivateKey
	auth     []byte
	answers  []int         // statuses to answer instead of delivering, first first
	held     chan struct{} // non-nil while held; closed by Release
	attempts int
}

// Received is one delivered message, decrypted with the subscription's keys.
type Received struct {
	Endpoint  string
	Plaintext []byte
	TTL       int // the TTL header, in seconds: a message without one is refused
	Urgency   string
	// The VAPID JWT's claims, after verifying its ES256 signature with VAPIDKey.
	Audience, Subject string
	Expiry            time.Time
	VAPIDKey          string // the k= of the Authorization header
	At                time.Time
}

// New starts a Service, closed at the test's end.
func New(t testing.TB) *Service {
	s := &Service{
		t:    t,
		out:  make(chan Received, 1024),
		done: make(chan struct{}),
		subs: map[string]*subscriber{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.origin = s.srv.URL
	t.Cleanup(func() {
		close(s.done) // Close waits for the requests in flight, held ones too
		s.srv.Close()
	})
	return s
}

// Subscribe makes a new subscription as a browser would: a fresh P-256 key pair and 16-byte
// auth secret, kept by the Service, and an endpoint on the Service.
func (s *Service) Subscribe() push.Subscription {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	path := "/push/" + rand.Text()
	s.mu.Lock()
	s.subs[path] = &subscriber{key: key, auth: auth}
	s.mu.Unlock()
	return push.Subscription{
		Endpoint: s.srv.URL + path,
		Keys: push.Keys{
			P256dh: base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes()),
			Auth:   base64.RawURLEncoding.EncodeToString(auth),
		},
	}
}

// Messages are the messages accepted, in order.
func (s *Service) Messages() <-chan Received { return s.out }

// Answer makes the next n POSTs to sub's endpoint get status instead of being delivered.
// Answers queue up: Answer(sub, 500, 2) then Answer(sub, 429, 1) answers 500, 500, 429.
func (s *Service) Answer(sub push.Subscription, status, n int) {
	s.t.Helper()
	s.with(sub, func(r *subscriber) {
		for range n {
			r.answers = append(r.answers, status)
		}
	})
}

// Hold blocks the POSTs to sub's endpoint until Release(sub) or the test's end.
func (s *Service) Hold(sub push.Subscription) {
	s.t.Helper()
	s.with(sub, func(r *subscriber) {
		if r.held == nil {
			r.held = make(chan struct{})
		}
	})
}

// Release lets the POSTs that Hold blocked go on.
func (s *Service) Release(sub push.Subscription) {
	s.t.Helper()
	s.with(sub, func(r *subscriber) {
		if r.held != nil {
			close(r.held)
			r.held = nil
		}
	})
}

// Attempts is the number of POSTs seen for sub's endpoint, whatever they were answered.
func (s *Service) Attempts(sub push.Subscription) int {
	s.t.Helper()
	var n int
	s.with(sub, func(r *subscriber) { n = r.attempts })
	return n
}

func (s *Service) with(sub push.Subscription, f func(*subscriber)) {
	s.t.Helper()
	u, err := url.Parse(sub.Endpoint)
	if err != nil {
		s.t.Fatalf("pushtest: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.subs[u.Path]
	if r == nil {
		s.t.Fatalf("pushtest: a subscription this Service did not make")
	}
	f(r)
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "only POST", http.StatusMethodNotAllowed)
		return
	}
	s.mu.Lock()
	sub := s.subs[r.URL.Path]
	var held chan struct{}
	status := 0
	if sub != nil {
		sub.attempts++
		held = sub.held
		if len(sub.answers) > 0 {
			status, sub.answers = sub.answers[0], sub.answers[1:]
		}
	}
	s.mu.Unlock()
	if sub == nil {
		http.Error(w, "no such subscription", http.StatusNotFound)
		return
	}
	if held != nil {
		select {
		case <-held:
		case <-s.done:
		case <-r.Context().Done():
			return
		}
	}
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	m, err := s.accept(r, sub)
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, errTooLarge) {
			code = http.StatusRequestEntityTooLarge
		}
		http.Error(w, err.Error(), code)
		return
	}
	select {
	case s.out <- m:
	case <-s.done:
	case <-r.Context().Done():
		return
	}
	w.Header().Set("Location", s.srv.URL+"/message/"+rand.Text())
	w.WriteHeader(http.StatusCreated)
}

var errTooLarge = errors.New("the message is over 4096 bytes")

// accept checks a message as a push service does, and decrypts it as the phone does.
func (s *Service) accept(r *http.Request, sub *subscriber) (Received, error) {
	m := Received{Endpoint: s.srv.URL + r.URL.Path, Urgency: r.Header.Get("Urgency"), At: time.Now()}
	var err error
	if m.TTL, err = strconv.Atoi(r.Header.Get("TTL")); err != nil || m.TTL < 0 {
		return m, errors.New("TTL header missing or not a number of seconds")
	}
	if !strings.EqualFold(r.Header.Get("Content-Encoding"), "aes128gcm") {
		return m, errors.New("Content-Encoding must be aes128gcm")
	}
	if err := s.vapid(r.Header.Get("Authorization"), &m); err != nil {
		return m, fmt.Errorf("VAPID: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return m, err
	}
	if len(body) > maxBody {
		return m, errTooLarge
	}
	if m.Plaintext, err = decrypt(body, sub.key, sub.auth); err != nil {
		return m, fmt.Errorf("decrypting: %w", err)
	}
	return m, nil
}

// vapid verifies an Authorization header "vapid t=<JWT>, k=<public key>" (RFC 8292 section 3).
func (s *Service) vapid(header string, m *Received) error {
	scheme, params, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "vapid") {
		return errors.New(`Authorization must be "vapid t=..., k=..."`)
	}
	var token string
	for p := range strings.SplitSeq(params, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch name {
		case "t":
			token = value
		case "k":
			m.VAPIDKey = value
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(m.VAPIDKey)
	if err != nil {
		return fmt.Errorf("k is not base64url: %w", err)
	}
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return fmt.Errorf("k: %w", err)
	}
	var claims jwt.RegisteredClaims
	_, err = jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(s.origin), jwt.WithExpirationRequired())
	if err != nil {
		return err
	}
	if len(claims.Audience) != 1 {
		return errors.New("aud must be the push service's origin alone")
	}
	if claims.ExpiresAt.After(time.Now().Add(24 * time.Hour)) {
		return errors.New("exp is more than 24 hours ahead")
	}
	if !strings.HasPrefix(claims.Subject, "mailto:") && !strings.HasPrefix(claims.Subject, "https:") {
		return errors.New("sub must be a mailto: or https: URL")
	}
	m.Audience, m.Subject, m.Expiry = claims.Audience[0], claims.Subject, claims.ExpiresAt.Time
	return nil
}

// decrypt opens an aes128gcm message of one record (RFC 8188) with the keys of RFC 8291.
func decrypt(body []byte, key *ecdh.PrivateKey, auth []byte) ([]byte, error) {
	// header: salt (16) | record size (4) | key id length (1) | key id: the sender's public key
	if len(body) < 21 {
		return nil, errors.New("shorter than the aes128gcm header")
	}
	salt, rs, idLen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if idLen != 65 || len(body) < 21+idLen {
		return nil, errors.New("the key id is not an uncompressed P-256 key")
	}
	senderPublic, ciphertext := body[21:21+idLen], body[21+idLen:]
	if rs < 18 || uint32(len(ciphertext)) > rs {
		return nil, errors.New("not a single record of the record size")
	}
	sender, err := ecdh.P256().NewPublicKey(senderPublic)
	if err != nil {
		return nil, fmt.Errorf("the sender's key: %w", err)
	}
	secret, err := key.ECDH(sender)
	if err != nil {
		return nil, err
	}
	// RFC 8291 section 3.4: IKM from the ECDH secret and the auth secret, then RFC 8188's key
	// and nonce from the IKM and the salt.
	info := append(append([]byte("WebPush: info\x00"), key.PublicKey().Bytes()...), senderPublic...)
	ikm, err := hkdfBytes(secret, auth, info, 32)
	if err != nil {
		return nil, err
	}
	cek, err := hkdfBytes(ikm, salt, []byte("Content-Encoding: aes128gcm\x00"), 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdfBytes(ikm, salt, []byte("Content-Encoding: nonce\x00"), 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	padded, err := gcm.Open(nil, nonce, ciphertext, nil) // the first record's nonce is the base
	if err != nil {
		return nil, err
	}
	// The record's plaintext is followed by its delimiter, 2 for the last record, and zeros.
	unpadded := bytes.TrimRight(padded, "\x00")
	if len(unpadded) == 0 || unpadded[len(unpadded)-1] != 2 {
		return nil, errors.New("not the last record, or no padding delimiter")
	}
	return unpadded[:len(unpadded)-1], nil
}

func hkdfBytes(secret, salt, info []byte, n int) ([]byte, error) {
	out := make([]byte, n)
	_, err := io.ReadFull(hkdf.New(sha256.New, secret, salt, info), out)
	return out, err
}
