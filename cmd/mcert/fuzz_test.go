package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
)

// fuzzPost sends body straight to the server's handler and checks the protocol's promises: no
// 5xx, every error in the JSON error shape, and a refused request leaves the store unchanged.
func fuzzPost(t *testing.T, s *server, path string, body []byte) {
	fuzzRequest(t, s, path, "application/json", nil, body)
}

// fuzzRequest is fuzzPost for any content type and headers. OAuth endpoints answer with
// their RFCs' error bodies, which fuzzRequest checks for an "error" member.
func fuzzRequest(t *testing.T, s *server, path, contentType string, header http.Header, body []byte) {
	before := s.snapshot(t)
	req := httptest.NewRequest("POST", path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	s.server.Handler.ServeHTTP(rec, req)
	if rec.Code >= 500 {
		t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
	}
	if rec.Code >= 300 {
		if strings.HasPrefix(path, "/oidc/") {
			if code, _ := (reply{Status: rec.Code, Body: rec.Body.Bytes()}).json(t)["error"].(string); code == "" {
				t.Fatalf("OAuth error without an error code: %s", rec.Body)
			}
		} else {
			reply{Status: rec.Code, Body: rec.Body.Bytes()}.errorCode(t)
		}
		if !bytes.Equal(before, s.snapshot(t)) {
			t.Fatalf("refused %q with %d but changed the store", body, rec.Code)
		}
	}
}

func FuzzCardLogin(f *testing.F) {
	s := startServer(f)
	card := s.issueCard(f, "王小明", "A123456789", authn.IssueOptions{})
	b := s.browser(f)
	for _, seed := range []map[string]any{signedLogin(f, b, card), {"challenge": "", "certificate": "", "signature": ""}} {
		data, _ := json.Marshal(seed)
		f.Add(data)
	}
	f.Add([]byte(`{"challenge": 1}`))
	f.Add([]byte(`{"certificate": "MIIB"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzPost(t, s, "/api/v1/card/login", body)
	})
}

func FuzzPhoneBindFinish(f *testing.F) {
	s := startServer(f)
	e := registerAndShowQR(f, s, s.issueCard(f, "王小明", "A123456789", authn.IssueOptions{}))
	token := tokenOf(f, e.binding["qr_text"].(string))
	begin := e.browser.do("POST", "/api/v1/phone/bind/begin", map[string]any{"token": token}).want(f, 200).json(f)
	var opts struct {
		PublicKey protocol.PublicKeyCredentialCreationOptions `json:"publicKey"`
	}
	raw, _ := json.Marshal(begin)
	if err := json.Unmarshal(raw, &opts); err != nil {
		f.Fatal(err)
	}
	p, err := phone.Open(f.TempDir() + "/phone.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, o := range []phone.CreateOptions{{}, {Attestation: "packed"}, {NoUserVerification: true}} {
		cred, err := p.Create(s.PublicURL, opts.PublicKey, o)
		if err != nil {
			f.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"token": token, "credential": json.RawMessage(cred)})
		f.Add(body)
	}
	f.Add([]byte(`{"token": "` + token + `", "credential": {"id": "AAAA", "response": {"attestationObject": "oA"}}}`))
	f.Add([]byte(`{"token": 7}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzPost(t, s, "/api/v1/phone/bind/finish", body)
	})
}

func FuzzPhoneLoginFinish(f *testing.F) {
	s := startServer(f)
	ph, _ := boundCitizen(f, s)
	rp := s.relyingParty(f, "臺灣雲市集", provider.ClientSpec{})
	a := rp.startLogin()
	token := tokenOf(f, a.scan(f))
	begin := a.browser.do("POST", "/api/v1/phone/login/begin", map[string]string{"token": token}).want(f, 200).json(f)
	var opts struct {
		PublicKey protocol.PublicKeyCredentialRequestOptions `json:"publicKey"`
	}
	raw, _ := json.Marshal(begin)
	if err := json.Unmarshal(raw, &opts); err != nil {
		f.Fatal(err)
	}
	for _, o := range []phone.GetOptions{{}, {NoUserVerification: true}} {
		cred, err := ph.Phone.Get(s.PublicURL, opts.PublicKey, o)
		if err != nil {
			f.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"token": token, "credential": json.RawMessage(cred)})
		f.Add(body)
	}
	f.Add([]byte(`{"token": "` + token + `", "credential": {"id": "AQID", "response": {"authenticatorData": "AAAA", "signature": ""}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzPost(t, s, "/api/v1/phone/login/finish", body)
	})
}

func FuzzBackchannelAuthorize(f *testing.F) {
	s := startServer(f)
	boundCitizen(f, s)
	rp := s.relyingParty(f, "健保署", provider.ClientSpec{CIBA: true})
	auth := basicAuth(rp.oauth.ClientID, rp.oauth.ClientSecret)
	f.Add([]byte("scope=openid&login_hint=A123456789&binding_message=%E7%99%BB%E5%85%A5&requested_expiry=60"))
	f.Add([]byte("scope=openid&login_hint=A123456789&user_code=1"))
	f.Add([]byte("scope=openid+profile&login_hint=%00%ff&requested_expiry=99999999999999999999"))
	f.Add([]byte("%zz=&&=="))
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzRequest(t, s, "/oidc/bc-authorize", "application/x-www-form-urlencoded", auth, body)
	})
}

// FuzzSignRequests sends arbitrary signing requests of a client registered for signing:
// whatever is refused is answered with a code and stores nothing.
func FuzzSignRequests(f *testing.F) {
	s := startServer(f)
	boundCitizen(f, s)
	rp := s.relyingParty(f, "地政事務所", provider.ClientSpec{Sign: true})
	auth := basicAuth(rp.oauth.ClientID, rp.oauth.ClientSecret)
	digest := strings.Repeat("A", 43)
	f.Add([]byte(`{"login_hint":"A123456789","text":"簽署","format":"cms","documents":[{"name":"a.pdf","digest":"` + digest + `"}]}`))
	f.Add([]byte(`{"text":"確認","format":"raw","documents":[{"name":"a","digest":"` + digest + `="},{"name":"b","digest":"` + digest + `"}]}`))
	f.Add([]byte(`{"text":"‮","format":"cms","documents":[{"name":"","digest":""}]}`))
	f.Add([]byte(`{"client_id":"x","client_secret":"y","text":"t","format":"cms","documents":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzRequest(t, s, "/api/v1/sign/requests", "application/json", auth, body)
	})
}

// FuzzJSONEndpoints sends arbitrary bodies to every JSON endpoint with a live session: the
// first byte picks the endpoint.
func FuzzJSONEndpoints(f *testing.F) {
	s := startServer(f)
	e := registerAndShowQR(f, s, s.issueCard(f, "王小明", "A123456789", authn.IssueOptions{}))
	cookie := e.browser.http.Jar.Cookies(mustParseURL(f, s.PublicURL))
	paths := []string{
		"/api/v1/account", "/api/v1/phone/bind/begin", "/api/v1/phone/login/begin",
		"/api/v1/phone/login/deny", "/api/v1/bindings", "/api/v1/account/suspend",
		"/api/v1/phone/sign/begin", "/api/v1/phone/sign/finish",
	}
	token := tokenOf(f, e.binding["qr_text"].(string))
	f.Add(byte(0), []byte(`{"email":"a@b.tw","phone":"0912345678"}`))
	f.Add(byte(1), []byte(`{"token":"`+token+`","device_name":"x"}`))
	f.Add(byte(2), []byte(`{"token":"`+token+`"}`))
	f.Add(byte(3), []byte(`{"token":null}`))
	f.Fuzz(func(t *testing.T, which byte, body []byte) {
		h := http.Header{"Origin": {s.PublicURL}}
		for _, c := range cookie {
			h.Add("Cookie", c.String())
		}
		fuzzRequest(t, s, paths[int(which)%len(paths)], "application/json", h, body)
	})
}

func mustParseURL(t testing.TB, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// basicAuth is the header of a client authenticating by client_secret_basic.
func basicAuth(id, secret string) http.Header {
	req, _ := http.NewRequest("POST", "/", nil)
	req.SetBasicAuth(id, secret)
	return http.Header{"Authorization": req.Header["Authorization"]}
}
