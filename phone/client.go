package phone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/mcert/mcert/qr"
)

// maxAnswer bounds what the client reads of an answer; the largest, the creation options, is a
// few kilobytes.
const maxAnswer = 1 << 20

// Client runs the phone's side of PROTOCOL.md against an mcert server. It saves the phone's key
// file after every ceremony that changes it: the device token is shown only once, and a counter
// that falls behind the server's makes the next login look like a cloned phone.
type Client struct {
	HTTP  *http.Client // nil means http.DefaultClient
	Phone *Phone
}

// APIError is a refusal from the server, with PROTOCOL.md's error body.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("server refused: %s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// BindResult is the device the server made of the phone's new credential.
type BindResult struct {
	DeviceID    string
	DeviceName  string
	ExpiresAt   time.Time
	DeviceToken string
}

// LoginResult is an approved login.
type LoginResult struct {
	ClientName  string    // the relying party the user logged in to
	Code        string    // the four digits the desktop page shows too
	Browser     string    // the browser that asked, for a QR login, such as "Chrome on Windows"
	RequestedAt time.Time // when the relying party asked
	Status      string    // "approved"
}

// InboxRequest is a relying party's pending decoupled login or signing request, waiting for
// the phone's answer.
type InboxRequest struct {
	Kind           string    `json:"kind"` // "login" or "sign"
	Token          string    `json:"token"`
	ClientName     string    `json:"client_name"`
	BindingMessage string    `json:"binding_message"`
	Code           string    `json:"code"` // the four digits the relying party may show too
	ExpiresAt      time.Time `json:"expires_at"`
	// A signing request's text and the names of its documents.
	Text      string `json:"text"`
	Documents []struct {
		Name string `json:"name"`
	} `json:"documents"`
}

// SignResult is an approved signing request: what the phone showed before the citizen
// approved it.
type SignResult struct {
	ClientName string
	Text       string
	Documents  []SignDocument
	Status     string // "approved"
}

// SignDocument is a document of a signing request, its digest as the server sent it.
type SignDocument struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// Bind binds the phone to the account whose binding QR code reads qrText: it makes a new
// credential for the server and records the device the server makes of it.
func (c *Client) Bind(ctx context.Context, qrText, deviceName string, o CreateOptions) (BindResult, error) {
	link, err := parseLink(qrText, qr.KindBind)
	if err != nil {
		return BindResult{}, err
	}
	var begin protocol.CredentialCreation
	err = c.call(ctx, link.Base, "/api/v1/phone/bind/begin", "",
		map[string]string{"token": link.Token, "device_name": deviceName}, &begin)
	if err != nil {
		return BindResult{}, err
	}
	cred, response, err := c.Phone.create(link.Origin, begin.Response, o)
	if err != nil {
		return BindResult{}, err
	}
	var finish struct {
		Device struct {
			ID        string    `json:"id"`
			Name      string    `json:"name"`
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"device"`
		DeviceToken string `json:"device_token"`
	}
	err = c.call(ctx, link.Base, "/api/v1/phone/bind/finish", "", credentialBody(link.Token, response), &finish)
	if err == nil && (finish.Device.ID == "" || finish.DeviceToken == "") {
		err = errors.New("the server's answer to bind/finish has no device or no device_token; is the QR code from an mcert server?")
	}
	if err != nil {
		c.Phone.forget(cred)
		return BindResult{}, err
	}
	c.Phone.bound(cred, link.Base, finish.Device.ID, finish.DeviceToken)
	if err := c.Phone.Save(); err != nil {
		return BindResult{}, fmt.Errorf("the phone is bound but its key file was not saved, so the binding is lost: %w", err)
	}
	return BindResult{
		DeviceID:    finish.Device.ID,
		DeviceName:  finish.Device.Name,
		ExpiresAt:   finish.Device.ExpiresAt,
		DeviceToken: finish.DeviceToken,
	}, nil
}

// Login approves the relying-party login whose QR code reads qrText.
func (c *Client) Login(ctx context.Context, qrText string, o GetOptions) (LoginResult, error) {
	link, err := parseLink(qrText, qr.KindLogin)
	if err != nil {
		return LoginResult{}, err
	}
	return c.approve(ctx, link.Base, link.Origin, link.Token, o)
}

// Inbox lists the decoupled logins waiting for the phone at the server whose public base URL is
// base, read with the device token of the phone's newest binding there.
func (c *Client) Inbox(ctx context.Context, base string) ([]InboxRequest, error) {
	base, token, err := c.deviceToken(base)
	if err != nil {
		return nil, err
	}
	var inbox struct {
		Requests []InboxRequest `json:"requests"`
	}
	if err := c.call(ctx, base, "/api/v1/phone/inbox", token, nil, &inbox); err != nil {
		return nil, err
	}
	return inbox.Requests, nil
}

// Approve approves the login request with token, from the inbox of the server at base. It signs
// with the phone's newest binding there unless o.CredentialID says otherwise.
func (c *Client) Approve(ctx context.Context, base, token string, o GetOptions) (LoginResult, error) {
	base = strings.TrimRight(base, "/")
	origin, err := originOf(base)
	if err != nil {
		return LoginResult{}, err
	}
	if cred, ok := c.Phone.boundTo(base); ok && o.CredentialID == nil {
		o.CredentialID = cred.ID
	}
	return c.approve(ctx, base, origin, token, o)
}

// Sign approves the signing request whose QR code reads qrText.
func (c *Client) Sign(ctx context.Context, qrText string, o GetOptions) (SignResult, error) {
	link, err := parseLink(qrText, qr.KindSign)
	if err != nil {
		return SignResult{}, err
	}
	return c.sign(ctx, link.Base, link.Origin, link.Token, o)
}

// ApproveSign approves the signing request with token, from the inbox of the server at base, as
// Approve does a login.
func (c *Client) ApproveSign(ctx context.Context, base, token string, o GetOptions) (SignResult, error) {
	base = strings.TrimRight(base, "/")
	origin, err := originOf(base)
	if err != nil {
		return SignResult{}, err
	}
	if cred, ok := c.Phone.boundTo(base); ok && o.CredentialID == nil {
		o.CredentialID = cred.ID
	}
	return c.sign(ctx, base, origin, token, o)
}

func (c *Client) sign(ctx context.Context, base, origin, token string, o GetOptions) (SignResult, error) {
	var begin struct {
		protocol.CredentialAssertion
		ClientName string         `json:"client_name"`
		Text       string         `json:"text"`
		Documents  []SignDocument `json:"documents"`
	}
	status, err := c.ceremony(ctx, base, origin, "/api/v1/phone/sign", token, o, &begin, &begin.CredentialAssertion)
	if err != nil {
		return SignResult{}, err
	}
	return SignResult{ClientName: begin.ClientName, Text: begin.Text, Documents: begin.Documents, Status: status}, nil
}

// Deny refuses the login or signing request with token, from the inbox of the server at base.
func (c *Client) Deny(ctx context.Context, base, token string) error {
	base = strings.TrimRight(base, "/")
	var answer struct {
		Status string `json:"status"`
	}
	return c.call(ctx, base, "/api/v1/phone/login/deny", "", map[string]string{"token": token}, &answer)
}

func (c *Client) approve(ctx context.Context, base, origin, token string, o GetOptions) (LoginResult, error) {
	var begin struct {
		protocol.CredentialAssertion
		ClientName  string    `json:"client_name"`
		Code        string    `json:"code"`
		Browser     string    `json:"browser"`
		RequestedAt time.Time `json:"requested_at"`
	}
	status, err := c.ceremony(ctx, base, origin, "/api/v1/phone/login", token, o, &begin, &begin.CredentialAssertion)
	if err != nil {
		return LoginResult{}, err
	}
	return LoginResult{ClientName: begin.ClientName, Code: begin.Code, Browser: begin.Browser, RequestedAt: begin.RequestedAt, Status: status}, nil
}

// ceremony runs an approval's begin and finish at path (the login's or the signing request's
// calls): begin's answer goes into begin, whose WebAuthn options assertion is, and finish's
// status is returned.
func (c *Client) ceremony(ctx context.Context, base, origin, path, token string, o GetOptions, begin any, assertion *protocol.CredentialAssertion) (string, error) {
	if err := c.call(ctx, base, path+"/begin", "", map[string]string{"token": token}, begin); err != nil {
		return "", err
	}
	response, err := c.Phone.Get(origin, assertion.Response, o)
	if err != nil {
		return "", err
	}
	// The counter has moved whether or not the server accepts: save it first.
	if err := c.Phone.Save(); err != nil {
		return "", err
	}
	var finish struct {
		Status string `json:"status"`
	}
	if err := c.call(ctx, base, path+"/finish", "", credentialBody(token, response), &finish); err != nil {
		return "", err
	}
	return finish.Status, nil
}

// parseLink reads a QR code text and checks that it is for the step the user asked for.
func parseLink(text, kind string) (qr.Link, error) {
	link, err := qr.Parse(text)
	if err != nil {
		return qr.Link{}, err
	}
	if link.Kind != kind {
		return qr.Link{}, fmt.Errorf("this QR code is for %s, not %s; use the %s command", link.Kind, kind, link.Kind)
	}
	return link, nil
}

// originOf is the WebAuthn origin a browser presents for pages under the public base URL base.
func originOf(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", fmt.Errorf("server URL %q is not an absolute URL such as https://mcert.example.tw", base)
	}
	return u.Scheme + "://" + u.Host, nil
}

func credentialBody(token string, credential []byte) any {
	return struct {
		Token      string          `json:"token"`
		Credential json.RawMessage `json:"credential"`
	}{token, credential}
}

// call sends body as JSON (a GET when body is nil) to base+path and decodes the answer into
// out. A refusal becomes an *APIError.
func (c *Client) call(ctx context.Context, base, path, bearer string, body, out any) error {
	method := http.MethodGet
	if body != nil {
		method = http.MethodPost
	}
	return c.do(ctx, method, base, path, bearer, body, out)
}

// do is call with another method; an answer without a body (204) leaves out as it is.
func (c *Client) do(ctx context.Context, method, base, path, bearer string, body, out any) error {
	var reader io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode the request to %s: %w", path, err)
		}
		reader = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, reader)
	if err != nil {
		return fmt.Errorf("server URL %q is not usable: %w", base, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("reach the mcert server (check the address and the network): %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("read the server's answer to %s: %w", path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return refusal(resp.StatusCode, data)
	}
	if resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the server's answer to %s is not the JSON PROTOCOL.md describes: %w", path, err)
	}
	return nil
}

// refusal reads PROTOCOL.md's error body; an answer without one (a proxy's error page, say)
// keeps its status and says so.
func refusal(status int, data []byte) *APIError {
	var body struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &body) != nil || body.Error == "" {
		return &APIError{Status: status, Code: "no_error_body",
			Message: http.StatusText(status) + ", without an mcert error body; is the address an mcert server?"}
	}
	return &APIError{Status: status, Code: body.Error, Message: body.Message}
}
