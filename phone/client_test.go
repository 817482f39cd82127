package phone

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/mcert/mcert/qr"
)

const (
	bindToken  = "AAECAwQFBgcICQoLDA0ODw"
	loginToken = "EBESExQVFhcYGRobHB0eHw"
)

// standIn is just enough of the mcert server's phone endpoints, written from PROTOCOL.md, to
// drive the client: one account, one binding token, one login token.
type standIn struct {
	rp      *webauthn.WebAuthn
	expires time.Time

	mu       sync.Mutex // held by every request
	user     testUser
	bindSess *webauthn.SessionData
	bindDone bool
	loginSes *webauthn.SessionData
	status   string // of the login request: pending, approved or denied
}

func newStandIn(t *testing.T) (*standIn, *Client, string) {
	t.Helper()
	s := &standIn{rp: newRP(t), expires: time.Date(2027, 5, 1, 0, 0, 0, 0, time.UTC), user: testUser{id: []byte("account")}, status: "pending"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/phone/bind/begin", s.bindBegin)
	mux.HandleFunc("POST /api/v1/phone/bind/finish", s.bindFinish)
	mux.HandleFunc("GET /api/v1/phone/inbox", s.inbox)
	mux.HandleFunc("POST /api/v1/phone/login/begin", s.loginBegin)
	mux.HandleFunc("POST /api/v1/phone/login/finish", s.loginFinish)
	mux.HandleFunc("POST /api/v1/phone/login/deny", s.loginDeny)
	mux.HandleFunc("/proxy/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>bad gateway</html>", http.StatusBadGateway)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	// WebAuthn needs a domain for the RP ID, so the phone is told localhost and every
	// connection goes to the test server whatever the name resolves to.
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
		},
	}}
	t.Cleanup(hc.CloseIdleConnections)
	return s, &Client{HTTP: hc, Phone: newPhone(t)}, testOrigin
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func refuse(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]string{"error": code, "message": message})
}

type tokenBody struct {
	Token      string          `json:"token"`
	DeviceName string          `json:"device_name"`
	Credential json.RawMessage `json:"credential"`
}

func readToken(w http.ResponseWriter, r *http.Request, want string) (tokenBody, bool) {
	var b tokenBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		refuse(w, http.StatusBadRequest, "invalid_body", err.Error())
		return b, false
	}
	if b.Token != want {
		refuse(w, http.StatusNotFound, "unknown_token", "the QR code is unknown; show a new one")
		return b, false
	}
	return b, true
}

func (s *standIn) bindBegin(w http.ResponseWriter, r *http.Request) {
	b, ok := readToken(w, r, bindToken)
	if !ok {
		return
	}
	if s.bindSess != nil || b.DeviceName == "" {
		refuse(w, http.StatusConflict, "binding_used", "the QR code was already used; show a new one")
		return
	}
	creation, session, err := s.rp.BeginRegistration(&s.user, serverSelection())
	if err != nil {
		refuse(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	s.bindSess = session
	writeJSON(w, http.StatusOK, creation)
}

func (s *standIn) bindFinish(w http.ResponseWriter, r *http.Request) {
	b, ok := readToken(w, r, bindToken)
	if !ok {
		return
	}
	if s.bindSess == nil || s.bindDone {
		refuse(w, http.StatusConflict, "binding_used", "the QR code was already used; show a new one")
		return
	}
	s.bindDone = true
	parsed, err := protocol.ParseCredentialCreationResponseBytes(b.Credential)
	if err != nil {
		refuse(w, http.StatusBadRequest, "bad_credential", err.Error())
		return
	}
	cred, err := s.rp.CreateCredential(&s.user, *s.bindSess, parsed)
	if err != nil {
		refuse(w, http.StatusBadRequest, "registration_refused", "the phone did not verify the user")
		return
	}
	s.user.creds = append(s.user.creds, *cred)
	writeJSON(w, http.StatusCreated, map[string]any{
		"device": map[string]any{
			"id": "dev-1", "name": "Test phone", "created_at": "2026-05-01T00:00:00Z",
			"expires_at": s.expires, "last_used_at": nil, "status": "active",
		},
		"device_token": "device-secret",
	})
}

func (s *standIn) inbox(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer device-secret" {
		refuse(w, http.StatusUnauthorized, "bad_device_token", "the device token is unknown; bind the phone again")
		return
	}
	requests := []map[string]any{}
	if s.status == "pending" {
		requests = append(requests, map[string]any{
			"token": loginToken, "client_name": "Demo RP", "binding_message": "W4SP", "expires_at": s.expires,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": requests})
}

func (s *standIn) loginBegin(w http.ResponseWriter, r *http.Request) {
	if _, ok := readToken(w, r, loginToken); !ok {
		return
	}
	assertion, session, err := s.rp.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		refuse(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	s.loginSes = session
	writeJSON(w, http.StatusOK, map[string]any{"publicKey": assertion.Response, "client_name": "Demo RP", "code": "1234"})
}

func (s *standIn) loginFinish(w http.ResponseWriter, r *http.Request) {
	b, ok := readToken(w, r, loginToken)
	if !ok {
		return
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(b.Credential)
	if err != nil || s.loginSes == nil || s.status != "pending" {
		refuse(w, http.StatusConflict, "login_used", "the login is over")
		return
	}
	user := func([]byte, []byte) (webauthn.User, error) { return &s.user, nil }
	if _, _, err := s.rp.ValidatePasskeyLogin(user, *s.loginSes, parsed); err != nil {
		refuse(w, http.StatusBadRequest, "login_refused", err.Error())
		return
	}
	s.status = "approved"
	writeJSON(w, http.StatusOK, map[string]string{"status": s.status})
}

func (s *standIn) loginDeny(w http.ResponseWriter, r *http.Request) {
	if _, ok := readToken(w, r, loginToken); !ok {
		return
	}
	s.status = "denied"
	writeJSON(w, http.StatusOK, map[string]string{"status": s.status})
}

func wantAPIError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != status || apiErr.Code != code {
		t.Fatalf("got %v, want an APIError %d %s", err, status, code)
	}
	if want := "server refused: " + apiErr.Message + " (" + code + ", HTTP "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("the error reads %q, want it to start %q", err, want)
	}
}

func TestBind(t *testing.T) {
	s, c, base := newStandIn(t)
	ctx := context.Background()
	got, err := c.Bind(ctx, qr.BindText(base, bindToken)+"\n", "Test phone", CreateOptions{})
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	want := BindResult{DeviceID: "dev-1", DeviceName: "Test phone", ExpiresAt: s.expires, DeviceToken: "device-secret"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	reopened, err := Open(c.Phone.path)
	if err != nil {
		t.Fatal(err)
	}
	creds := reopened.Credentials()
	if len(creds) != 1 || creds[0].Server != base || creds[0].DeviceID != "dev-1" || creds[0].DeviceToken != "device-secret" ||
		string(creds[0].ID) != string(s.user.creds[0].ID) {
		t.Fatalf("the key file holds %+v", creds)
	}

	_, err = c.Bind(ctx, qr.BindText(base, bindToken), "Test phone", CreateOptions{})
	wantAPIError(t, err, http.StatusConflict, "binding_used")
	if n := len(c.Phone.Credentials()); n != 1 {
		t.Errorf("the phone holds %d credentials after a refused bind, want 1", n)
	}
}

func TestBindRefused(t *testing.T) {
	tests := []struct {
		name   string
		text   string
		o      CreateOptions
		status int
		code   string
	}{
		{"no user verification", qr.BindText(testOrigin, bindToken), CreateOptions{NoUserVerification: true},
			http.StatusBadRequest, "registration_refused"},
		{"unknown token", qr.BindText(testOrigin, loginToken), CreateOptions{}, http.StatusNotFound, "unknown_token"},
		{"not an mcert server", qr.BindText(testOrigin+"/proxy", bindToken), CreateOptions{}, http.StatusBadGateway, "no_error_body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, c, _ := newStandIn(t)
			_, err := c.Bind(context.Background(), tc.text, "Test phone", tc.o)
			wantAPIError(t, err, tc.status, tc.code)
			if n := len(c.Phone.Credentials()); n != 0 {
				t.Errorf("the phone kept %d credentials the server refused", n)
			}
		})
	}
}

func TestBindRefusesOtherQRCodes(t *testing.T) {
	_, c, base := newStandIn(t)
	tests := []struct {
		name string
		text string
		want string
	}{
		{"login code", qr.LoginText(base, loginToken), "for login, not bind"},
		{"not mcert", "https://example.com/", "invalid_qr"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Bind(context.Background(), tc.text, "Test phone", CreateOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestLoginByQRCode(t *testing.T) {
	s, c, base := newStandIn(t)
	ctx := context.Background()
	if _, err := c.Bind(ctx, qr.BindText(base, bindToken), "Test phone", CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, qr.BindText(base, bindToken), GetOptions{}); err == nil {
		t.Fatal("Login took a binding QR code")
	}
	got, err := c.Login(ctx, qr.LoginText(base, loginToken), GetOptions{})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if want := (LoginResult{ClientName: "Demo RP", Code: "1234", Status: "approved"}); got != want || s.status != "approved" {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	reopened, err := Open(c.Phone.path)
	if err != nil {
		t.Fatal(err)
	}
	if n := reopened.Credentials()[0].SignCount; n != 1 {
		t.Errorf("the key file has counter %d after one login, want 1", n)
	}
}

func TestInboxApproveDeny(t *testing.T) {
	tests := []struct {
		name   string
		answer func(ctx context.Context, c *Client, base string) error
		want   string
	}{
		{"approve", func(ctx context.Context, c *Client, base string) error {
			_, err := c.Approve(ctx, base+"/", loginToken, GetOptions{})
			return err
		}, "approved"},
		{"deny", func(ctx context.Context, c *Client, base string) error {
			return c.Deny(ctx, base, loginToken)
		}, "denied"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, c, base := newStandIn(t)
			ctx := context.Background()
			if _, err := c.Inbox(ctx, base); err == nil {
				t.Fatal("an unbound phone read an inbox")
			}
			if _, err := c.Bind(ctx, qr.BindText(base, bindToken), "Test phone", CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			requests, err := c.Inbox(ctx, base)
			if err != nil {
				t.Fatalf("Inbox: %v", err)
			}
			want := InboxRequest{Token: loginToken, ClientName: "Demo RP", BindingMessage: "W4SP", ExpiresAt: s.expires}
			if len(requests) != 1 || !reflect.DeepEqual(requests[0], want) {
				t.Fatalf("got %+v, want %+v", requests, want)
			}
			if err := tc.answer(ctx, c, base); err != nil {
				t.Fatal(err)
			}
			if s.status != tc.want {
				t.Fatalf("the request is %s, want %s", s.status, tc.want)
			}
			if requests, err := c.Inbox(ctx, base); err != nil || len(requests) != 0 {
				t.Fatalf("after answering, the inbox holds %+v (%v)", requests, err)
			}
		})
	}
}

func TestInboxWithUnknownToken(t *testing.T) {
	_, c, base := newStandIn(t)
	ctx := context.Background()
	if _, err := c.Bind(ctx, qr.BindText(base, bindToken), "Test phone", CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Phone.bound(c.Phone.creds[0], base, "dev-1", "revoked-secret")
	_, err := c.Inbox(ctx, base)
	wantAPIError(t, err, http.StatusUnauthorized, "bad_device_token")
}
