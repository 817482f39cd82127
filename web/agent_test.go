package web

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcert/mcert/authn"
)

const serverOrigin = "http://localhost:8080"

// testCards are the development CA and its cards, issued once per test.
type testCards struct {
	ca       *authn.DevCA
	plain    []byte // ECDSA, whole ID, no PIN
	moicaPIN []byte // MOICA-shaped, PIN 123456
}

func newTestCards(t *testing.T) *testCards {
	t.Helper()
	now := time.Now()
	ca, _, err := authn.LoadOrCreateDevCA(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCards{ca: ca}
	if c.plain, err = ca.Issue("王小明", "A123456789", authn.IssueOptions{Now: now}); err != nil {
		t.Fatal(err)
	}
	if c.moicaPIN, err = ca.Issue("王小明", "A123456789", authn.IssueOptions{Now: now, MOICA: true, PIN: "123456"}); err != nil {
		t.Fatal(err)
	}
	return c
}

func readCard(t *testing.T, pemBytes []byte) *authn.CardFile {
	t.Helper()
	f, err := authn.ReadCardFile(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// logBuffer is the agent's log, read by the test while the server writes it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startAgent runs a card agent for cfg (Origin defaults to serverOrigin) and returns its URL,
// which is also its own origin, and its log.
func startAgent(t *testing.T, cfg CardAgentConfig) (string, *logBuffer) {
	t.Helper()
	log := &logBuffer{}
	cfg.Log = slog.New(slog.NewTextHandler(log, nil))
	if cfg.Origin == "" {
		cfg.Origin = serverOrigin
	}
	agent, err := NewCardAgent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(agent)
	t.Cleanup(srv.Close)
	return srv.URL, log
}

// request sends a request to the agent and returns the status and the body.
func request(t *testing.T, method, url, origin string, body []byte, header ...string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" { // the client sends req.Host, not the header
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, out
}

// answer is the component's answer as a page reads it.
type answer struct {
	Func      string `json:"func"`
	RetCode   uint32 `json:"ret_code"`
	LastError uint32 `json:"last_error"`
	Message   string `json:"message"`
	Signature string `json:"signature"`
	CertB64   string `json:"certb64"`
	CardSN    string `json:"cardSN"`
}

// popupSign posts message to /popupSign as the popup does, from the agent's own origin.
func popupSign(t *testing.T, agentURL string, message any) answer {
	t.Helper()
	body, ok := message.([]byte)
	if !ok {
		var err error
		if body, err = json.Marshal(message); err != nil {
			t.Fatal(err)
		}
	}
	status, out := request(t, "POST", agentURL+"/popupSign", agentURL, body)
	var a answer
	if err := json.Unmarshal(out, &a); err != nil || status != 200 || a.Func != "sign" {
		t.Fatalf("/popupSign: status %d, %s", status, out)
	}
	return a
}

// makeSignature is the message a page of the component sends for a login.
func makeSignature(tbs, pin string) map[string]any {
	return map[string]any{
		"func": "MakeSignature", "signatureType": "PKCS7", "tbs": tbs, "tbsEncoding": "NONE",
		"hashAlgorithm": "SHA256", "withCardSN": "false", "pin": pin, "nonce": "",
	}
}

var loginTBS = authn.CardLoginTBS(serverOrigin, "q83vEjRWeJA")

// verifyAnswer checks that a's signature is a SignedData of a card of ca over exactly tbs, as
// the server checks it, and returns the citizen.
func verifyAnswer(t *testing.T, ca *authn.DevCA, a answer, tbs string) authn.Citizen {
	t.Helper()
	if a.RetCode != 0 || a.LastError != 0 {
		t.Fatalf("the answer is a failure: %+v", a)
	}
	der, err := base64.StdEncoding.DecodeString(a.Signature)
	if err != nil {
		t.Fatalf("the signature is not standard base64 with padding: %v", err)
	}
	v, err := authn.NewCardVerifier(ca.CertPEM(), nil)
	if err != nil {
		t.Fatal(err)
	}
	citizen, err := v.VerifyPKCS7(context.Background(), der, []byte(tbs), time.Now())
	if err != nil {
		t.Fatalf("VerifyPKCS7: %v", err)
	}
	if cert, err := base64.StdEncoding.DecodeString(a.CertB64); err != nil || !bytes.Equal(cert, citizen.Certificate.Raw) {
		t.Fatalf("certb64 is not the signer's certificate")
	}
	return citizen
}

func TestCardAgent(t *testing.T) {
	cards := newTestCards(t)
	card, err := authn.ParseCard(cards.plain)
	if err != nil {
		t.Fatal(err)
	}
	agent, log := startAgent(t, CardAgentConfig{Origin: serverOrigin + "/", Card: readCard(t, cards.plain)})

	tests := []struct {
		name, method, origin, body string
		status                     int
		allowOrigin                string
	}{
		{"page of the server", "POST", serverOrigin, `{"challenge":"AQID"}`, 200, serverOrigin},
		{"local program", "POST", "", `{"challenge":"AQID"}`, 200, ""},
		{"preflight", "OPTIONS", serverOrigin, "", 204, serverOrigin},
		{"another site", "POST", "http://evil.example", `{"challenge":"AQID"}`, 403, ""},
		{"another site's preflight", "OPTIONS", "http://evil.example", "", 403, ""},
		{"not JSON", "POST", "", `challenge`, 400, ""},
		{"empty challenge", "POST", "", `{"challenge":""}`, 400, ""},
		{"bad base64", "POST", "", `{"challenge":"%%"}`, 400, ""},
		{"GET", "GET", "", "", 405, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, agent+"/sign", strings.NewReader(tc.body))
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if res.StatusCode != tc.status || res.Header.Get("Access-Control-Allow-Origin") != tc.allowOrigin {
				t.Fatalf("status %d, allow-origin %q; want %d, %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), tc.status, tc.allowOrigin)
			}
			if tc.status != 200 {
				return
			}
			var out struct{ Certificate, Signature string }
			if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
				t.Fatal(err)
			}
			sig, _ := base64.RawURLEncoding.DecodeString(out.Signature)
			digest := sha256.Sum256([]byte{1, 2, 3})
			if out.Certificate != b64(card.Certificate.Raw) || !ecdsa.VerifyASN1(card.Certificate.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
				t.Fatalf("the agent's answer is not the card's signature over the challenge: %+v", out)
			}
		})
	}
	if want := "refused to sign for http://evil.example: the agent signs only for http://localhost:8080"; !strings.Contains(log.String(), want) {
		t.Errorf("the log does not say %q:\n%s", want, log)
	}
}

// TestCardAgentSignWithPIN: POST /sign takes no PIN, so a card with one signs there only when
// the agent was given it.
func TestCardAgentSignWithPIN(t *testing.T) {
	cards := newTestCards(t)
	file := readCard(t, cards.moicaPIN)
	tests := []struct {
		name   string
		cfg    CardAgentConfig
		status int
		code   string
	}{
		{"with the PIN", CardAgentConfig{Card: file, PIN: "123456"}, 200, ""},
		{"without it", CardAgentConfig{Card: file}, 403, "pin_required"},
		{"no card", CardAgentConfig{}, 503, "no_card"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			agent, _ := startAgent(t, tc.cfg)
			status, body := request(t, "POST", agent+"/sign", serverOrigin, []byte(`{"challenge":"AQID"}`))
			if status != tc.status || (tc.code != "" && !strings.Contains(string(body), `"error":"`+tc.code+`"`)) {
				t.Fatalf("status %d, %s; want %d %s", status, body, tc.status, tc.code)
			}
		})
	}
	if _, err := NewCardAgent(CardAgentConfig{Origin: serverOrigin, Card: file, PIN: "654321"}); !errors.Is(err, authn.ErrWrongPIN) {
		t.Errorf("an agent given the wrong PIN: %v, want ErrWrongPIN", err)
	}
}

func TestCardAgentPopupSign(t *testing.T) {
	cards := newTestCards(t)
	agent, log := startAgent(t, CardAgentConfig{Card: readCard(t, cards.moicaPIN)})
	with := func(change func(m map[string]any)) map[string]any {
		m := makeSignature(loginTBS, "123456")
		change(m)
		return m
	}
	tests := []struct {
		name      string
		message   any
		retCode   uint32
		lastError uint32
		log       string // in the agent's log
	}{
		{name: "right PIN", message: makeSignature(loginTBS, "123456")},
		{name: "no tbsEncoding", message: with(func(m map[string]any) { delete(m, "tbsEncoding") })},
		{name: "base64 tbs", message: with(func(m map[string]any) {
			m["tbs"], m["tbsEncoding"] = base64.StdEncoding.EncodeToString([]byte(loginTBS)), "base64"
		})},
		{name: "percent-encoded PIN", message: with(func(m map[string]any) { m["pin"] = "%31%32%33%34%35%36" })},
		{name: "tbs for another origin", message: makeSignature(authn.CardLoginTBS("http://evil.example", "q83vEjRWeJA"), "123456"),
			retCode: 0x7600000F, log: "refused to sign for http://evil.example: the agent signs only for http://localhost:8080"},
		{name: "tbs for another port", message: makeSignature(authn.CardLoginTBS("http://localhost:8081", "q83vEjRWeJA"), "123456"), retCode: 0x7600000F},
		{name: "no tbs", message: with(func(m map[string]any) { delete(m, "tbs") }), retCode: 0x7600000C, log: "has no tbs"},
		{name: "not a login text", message: makeSignature("pay 100 NTD", "123456"), retCode: 0x7600000C, log: "not an mcert login text"},
		{name: "bad base64", message: with(func(m map[string]any) { m["tbsEncoding"] = "base64" }), retCode: 0x7600000C},
		{name: "unknown tbsEncoding", message: with(func(m map[string]any) { m["tbsEncoding"] = "HEX" }), retCode: 0x7600000C},
		{name: "PKCS1", message: with(func(m map[string]any) { m["signatureType"] = "PKCS1" }), retCode: 0x7600000C, log: "signatureType PKCS7"},
		{name: "SHA1", message: with(func(m map[string]any) { m["hashAlgorithm"] = "SHA1" }), retCode: 0x7600000C},
		{name: "no hashAlgorithm", message: with(func(m map[string]any) { delete(m, "hashAlgorithm") }), retCode: 0x7600000C},
		{name: "no PIN", message: makeSignature(loginTBS, ""), retCode: 0x76000998, log: "no PIN was sent"},
		{name: "PIN too short", message: makeSignature(loginTBS, "12"), retCode: 0x76100006, lastError: 0xA2},
		{name: "not JSON", message: []byte(`{"func":`), retCode: 0x7600000B},
		{name: "PIN as a number", message: []byte(`{"func":"MakeSignature","pin":123456}`), retCode: 0x7600000C},
		{name: "unknown func", message: []byte(`{"func":"ChangeUserPin"}`), retCode: 0x7600000E},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := popupSign(t, agent, tc.message)
			if a.RetCode != tc.retCode || a.LastError != tc.lastError {
				t.Fatalf("ret_code %#x, last_error %#x (%s); want %#x, %#x", a.RetCode, a.LastError, a.Message, tc.retCode, tc.lastError)
			}
			if tc.retCode == 0 {
				if citizen := verifyAnswer(t, cards.ca, a, loginTBS); citizen.LastFour != "6789" || citizen.Name != "王小明" {
					t.Fatalf("signed by %+v", citizen)
				}
				if a.CardSN != "" {
					t.Errorf("cardSN %q without withCardSN", a.CardSN)
				}
			} else if a.Signature != "" || a.Message == "" {
				t.Fatalf("a failure with a signature or without a message: %+v", a)
			}
			if !strings.Contains(log.String(), tc.log) {
				t.Fatalf("the log does not say %q:\n%s", tc.log, log)
			}
		})
	}

	withSN := popupSign(t, agent, with(func(m map[string]any) { m["withCardSN"] = "true" }))
	if verifyAnswer(t, cards.ca, withSN, loginTBS); len(withSN.CardSN) != 16 {
		t.Errorf("cardSN %q with withCardSN", withSN.CardSN)
	}
}

// TestCardAgentPopupSignOrigin: /popupSign answers its own popup only, even when the page
// itself is the configured origin's.
func TestCardAgentPopupSignOrigin(t *testing.T) {
	cards := newTestCards(t)
	agent, log := startAgent(t, CardAgentConfig{Card: readCard(t, cards.plain)})
	body, _ := json.Marshal(makeSignature(loginTBS, "1234"))
	for _, origin := range []string{"http://evil.example", serverOrigin, ""} {
		status, out := request(t, "POST", agent+"/popupSign", origin, body)
		var a answer
		if err := json.Unmarshal(out, &a); err != nil || status != 403 || a.RetCode != 0x7600000F || a.Signature != "" {
			t.Fatalf("/popupSign from %q: status %d, %s", origin, status, out)
		}
	}
	for _, want := range []string{"refused POST /popupSign from a page of http://evil.example: only the agent's own popup", "from a request without an Origin header"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, log)
		}
	}

	// A page of a name that resolves to this machine is not the agent's own origin.
	status, _ := request(t, "POST", agent+"/popupSign", "http://rebind.example:1", body, "Host", "rebind.example:1")
	if status != 403 || !strings.Contains(log.String(), `refused a request for host \"rebind.example:1\"`) {
		t.Fatalf("a request for host rebind.example: status %d\n%s", status, log)
	}
}

func TestCardAgentPINLock(t *testing.T) {
	cards := newTestCards(t)
	file := readCard(t, cards.moicaPIN)
	agent, log := startAgent(t, CardAgentConfig{Card: file, PIN: "123456"})
	for i := range 3 {
		if a := popupSign(t, agent, makeSignature(loginTBS, "000000")); a.RetCode != 0x76100006 || a.LastError != 0xA0 {
			t.Fatalf("wrong PIN %d: %+v, want 0x76100006 with last_error 0xA0", i+1, a)
		}
	}
	if a := popupSign(t, agent, makeSignature(loginTBS, "123456")); a.RetCode != 0x76100006 || a.LastError != 0xA4 {
		t.Fatalf("the right PIN after 3 wrong ones: %+v, want 0x76100006 with last_error 0xA4 (locked)", a)
	}
	if status, body := request(t, "POST", agent+"/sign", "", []byte(`{"challenge":"AQID"}`)); status != 403 || !strings.Contains(string(body), "card_locked") {
		t.Fatalf("POST /sign of a locked card: %d %s", status, body)
	}
	for _, want := range []string{"2 more wrong PINs lock the card", "the card is now locked", "the card is locked after 3 wrong PINs"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, log)
		}
	}

	// A right PIN resets the count; a malformed one does not reach the card.
	agent, _ = startAgent(t, CardAgentConfig{Card: file})
	for _, step := range []struct {
		pin       string
		lastError uint32
	}{{"000000", 0xA0}, {"000000", 0xA0}, {"123456", 0}, {"000000", 0xA0}, {"1", 0xA2}, {"000000", 0xA0}, {"123456", 0}} {
		if a := popupSign(t, agent, makeSignature(loginTBS, step.pin)); a.LastError != step.lastError {
			t.Fatalf("PIN %s: %+v, want last_error %#x", step.pin, a, step.lastError)
		}
	}
}

// TestCardAgentCardWithoutPIN: the agent's --pin stands in for the PIN a card without one lacks.
func TestCardAgentCardWithoutPIN(t *testing.T) {
	cards := newTestCards(t)
	file := readCard(t, cards.plain)
	checked, _ := startAgent(t, CardAgentConfig{Card: file, PIN: "1234"})
	if a := popupSign(t, checked, makeSignature(loginTBS, "4321")); a.RetCode != 0x76100006 || a.LastError != 0xA0 {
		t.Fatalf("a PIN other than --pin: %+v", a)
	}
	if citizen := verifyAnswer(t, cards.ca, popupSign(t, checked, makeSignature(loginTBS, "1234")), loginTBS); citizen.ID != "A123456789" {
		t.Fatalf("signed by %+v", citizen)
	}
	anyPIN, _ := startAgent(t, CardAgentConfig{Card: file})
	verifyAnswer(t, cards.ca, popupSign(t, anyPIN, makeSignature(loginTBS, "9999")), loginTBS)

	none, _ := startAgent(t, CardAgentConfig{})
	if a := popupSign(t, none, makeSignature(loginTBS, "1234")); a.RetCode != 0x76000006 {
		t.Fatalf("no card: %+v, want 0x76000006", a)
	}
}

func TestCardAgentPKCS11Info(t *testing.T) {
	cards := newTestCards(t)
	file := readCard(t, cards.moicaPIN)
	agent, _ := startAgent(t, CardAgentConfig{Card: file})
	empty, _ := startAgent(t, CardAgentConfig{})

	type info struct {
		Func    string `json:"func"`
		RetCode *int   `json:"ret_code"`
		Slots   []struct {
			SlotDescription string `json:"slotDescription"`
			Token           *struct {
				SerialNumber string `json:"serialNumber"`
				Label        string `json:"label"`
				Certs        []struct {
					CertB64, Usage, SubjectDN string
				} `json:"certs"`
			} `json:"token"`
		} `json:"slots"`
	}
	get := func(method, url string) info {
		t.Helper()
		status, body := request(t, method, url, "", nil)
		var i info
		if err := json.Unmarshal(body, &i); err != nil || status != 200 || i.RetCode == nil || *i.RetCode != 0 || len(i.Slots) != 1 || i.Slots[0].SlotDescription == "" {
			t.Fatalf("%s %s: %d %s", method, url, status, body)
		}
		return i
	}

	if tok := get("GET", agent+"/pkcs11info").Slots[0].Token; tok == nil || tok.SerialNumber == "" || tok.Label == "" || len(tok.Certs) != 0 {
		t.Fatalf("/pkcs11info without withcert: token %+v", tok)
	}
	tok := get("POST", agent+"/pkcs11info?withcert=true").Slots[0].Token
	if tok == nil || len(tok.Certs) != 1 || tok.Certs[0].Usage != "digitalSignature" || !strings.Contains(tok.Certs[0].SubjectDN, "CN=王小明") {
		t.Fatalf("/pkcs11info?withcert=true: token %+v", tok)
	}
	if der, err := base64.StdEncoding.DecodeString(tok.Certs[0].CertB64); err != nil || !bytes.Equal(der, file.Certificate.Raw) {
		t.Fatal("certb64 is not the card's certificate")
	}
	if tok := get("GET", empty+"/pkcs11info?withcert=true").Slots[0].Token; tok != nil {
		t.Fatalf("a reader without a card lists a token: %+v", tok)
	}
}

func TestCardAgentPopupForm(t *testing.T) {
	agent, log := startAgent(t, CardAgentConfig{Origin: "http://LOCALHOST:8080/"})
	res, err := http.Get(agent + "/popupForm")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	csp := res.Header.Get("Content-Security-Policy")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(page), `data-origin="http://localhost:8080"`) || !strings.Contains(string(page), `src="/popupForm.js"`) ||
		!strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("/popupForm: %d %q %q\n%s", res.StatusCode, res.Header.Get("Content-Type"), csp, page)
	}
	status, script := request(t, "GET", agent+"/popupForm.js", "", nil)
	if status != 200 || !bytes.Contains(script, []byte(`JSON.stringify({func: "getTbs"})`)) || bytes.Contains(script, []byte(`"*"`)) {
		t.Fatalf("/popupForm.js: %d\n%s", status, script)
	}

	// The Referer names the page that opened the popup: one of another origin is logged.
	request(t, "GET", agent+"/popupForm", "", nil, "Referer", serverOrigin+"/")
	request(t, "GET", agent+"/popupForm", "", nil, "Referer", agent+"/popupForm")
	if strings.Contains(log.String(), "opened the card popup") {
		t.Fatalf("the server's own page opening the popup was logged:\n%s", log)
	}
	request(t, "GET", agent+"/popupForm", "", nil, "Referer", "http://localhost:9999/login")
	if want := "a page of http://localhost:9999 opened the card popup, but the agent signs only for http://localhost:8080"; !strings.Contains(log.String(), want) {
		t.Fatalf("the log does not say %q:\n%s", want, log)
	}

	if status, _ := request(t, "POST", agent+"/popupIgnored", agent, []byte(`{"origin":"http://localhost:9999"}`)); status != 204 ||
		!strings.Contains(log.String(), "the card popup ignored a message from a page of http://localhost:9999") {
		t.Fatalf("/popupIgnored: %d\n%s", status, log)
	}
	if status, _ := request(t, "POST", agent+"/popupIgnored", "http://localhost:9999", []byte(`{"origin":"x"}`)); status != 403 {
		t.Fatalf("/popupIgnored from another origin: %d", status)
	}
}

func TestNewCardAgentErrors(t *testing.T) {
	for _, origin := range []string{"localhost:8080", "http://localhost:8080/login", "ftp://localhost", "http://localhost:8080?x=1", ""} {
		if _, err := NewCardAgent(CardAgentConfig{Origin: origin}); err == nil || !strings.Contains(err.Error(), "is not one such as http://localhost:8080") {
			t.Errorf("origin %q: %v", origin, err)
		}
	}
	if _, err := NewCardAgent(CardAgentConfig{Origin: serverOrigin, PIN: "12"}); err == nil || !strings.Contains(err.Error(), "4 to 12 letters or digits") {
		t.Errorf("a 2-digit PIN: %v", err)
	}
}

// TestCardAgentSelfTest checks the page the login page links to as the component's self-test:
// it says for which site the agent signs and whose card it holds, and never more of the ID.
func TestCardAgentSelfTest(t *testing.T) {
	cards := newTestCards(t)
	agent, _ := startAgent(t, CardAgentConfig{Card: readCard(t, cards.moicaPIN)})
	empty, _ := startAgent(t, CardAgentConfig{})
	status, body := request(t, "GET", agent+"/selfTest.htm", "", nil)
	if status != 200 || !strings.Contains(string(body), "王小明") || !strings.Contains(string(body), "http://localhost:8080") || strings.Contains(string(body), "A123456789") {
		t.Errorf("self-test page: %d %s", status, body)
	}
	if status, body := request(t, "GET", empty+"/selfTest.htm", "", nil); status != 200 || !strings.Contains(string(body), "no card") {
		t.Errorf("self-test page without a card: %d %s", status, body)
	}
}
