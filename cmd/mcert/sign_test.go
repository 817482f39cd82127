package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/storage"
)

// signer is a relying party registered for signing, calling the signing API.
type signer struct {
	t      *testing.T
	s      *server
	id     string
	secret string
}

func (s *server) signingParty(t *testing.T) *signer {
	t.Helper()
	rp := s.relyingParty(t, "地政事務所", provider.ClientSpec{Sign: true})
	return &signer{t: t, s: s, id: rp.oauth.ClientID, secret: rp.oauth.ClientSecret}
}

// call sends a signing-API request authenticated by Basic, and decodes the answer.
func (sp *signer) call(method, path string, body any) reply {
	sp.t.Helper()
	var data []byte
	if body != nil {
		data, _ = json.Marshal(body)
	}
	req, err := http.NewRequest(method, sp.s.PublicURL+path, bytes.NewReader(data))
	if err != nil {
		sp.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(sp.id, sp.secret)
	res, out, err := roundTrip(http.DefaultClient, req)
	if err != nil {
		sp.t.Fatal(err)
	}
	return reply{Status: res.StatusCode, Header: res.Header, Body: out}
}

type document struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

func documentOf(name string, content []byte) document {
	d := sha256.Sum256(content)
	return document{name, base64.RawURLEncoding.EncodeToString(d[:])}
}

// signState is a poll's answer.
type signState struct {
	Status     string `json:"status"`
	Signatures []struct {
		Name, Digest, CMS, Signature string
	} `json:"signatures"`
	Certificate string `json:"certificate"`
	Evidence    string `json:"evidence"`
}

func (sp *signer) poll(id string) signState {
	sp.t.Helper()
	var st signState
	if err := json.Unmarshal(sp.call("GET", "/api/v1/sign/requests/"+id, nil).want(sp.t, 200).Body, &st); err != nil {
		sp.t.Fatal(err)
	}
	return st
}

func std(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("%q is not standard base64: %v", s, err)
	}
	return b
}

// TestSignEndToEnd: a relying party asks a citizen to sign two documents by national ID; the
// phone sees them in its inbox and approves; the relying party gets a CMS SignedData per
// document that OpenSSL verifies with mcert's CA, and that fails for a tampered document. The
// same by QR code, in the raw format.
func TestSignEndToEnd(t *testing.T) {
	s := startServer(t, func(c *Config) { c.Now = time.Now })
	ph, _ := boundCitizen(t, s)
	sp := s.signingParty(t)
	contents := map[string][]byte{"買賣契約.pdf": []byte("土地買賣契約書 …"), "附件.txt": []byte("附件一")}
	docs := []document{documentOf("買賣契約.pdf", contents["買賣契約.pdf"]), documentOf("附件.txt", contents["附件.txt"])}

	started := sp.call("POST", "/api/v1/sign/requests", map[string]any{
		"login_hint": "A123456789", "text": "簽署土地買賣契約", "format": "cms", "documents": docs,
	}).want(t, 201).json(t)
	id := started["id"].(string)
	if started["expires_in"] != 300.0 || started["interval"] != 5.0 || started["qr_text"] != nil {
		t.Fatalf("started: %v", started)
	}
	if st := sp.poll(id); st.Status != "pending" || st.Signatures != nil {
		t.Fatalf("before the approval: %+v", st)
	}
	inbox, err := ph.Inbox(context.Background(), s.PublicURL)
	if err != nil || len(inbox) != 1 || inbox[0].Kind != "sign" || inbox[0].Text != "簽署土地買賣契約" || len(inbox[0].Documents) != 2 {
		t.Fatalf("inbox: %+v, %v", inbox, err)
	}
	// A signing token is unknown to the login calls.
	if _, err := ph.Approve(context.Background(), s.PublicURL, inbox[0].Token, phone.GetOptions{}); !isAPIError(err, 404, "login_not_found") {
		t.Fatalf("a signing token at the login calls: %v", err)
	}
	shown, err := ph.ApproveSign(context.Background(), s.PublicURL, inbox[0].Token, phone.GetOptions{})
	if err != nil || shown.ClientName != "地政事務所" || len(shown.Documents) != 2 || shown.Documents[0].Digest != docs[0].Digest {
		t.Fatalf("approve: %+v, %v", shown, err)
	}

	time.Sleep(5 * time.Second) // the poll interval
	st := sp.poll(id)
	if st.Status != "approved" || len(st.Signatures) != 2 || st.Certificate == "" || st.Evidence == "" {
		t.Fatalf("after the approval: %+v", st)
	}
	// The audit log holds the signature, tied to the evidence the relying party keeps.
	events, err := s.service.ListEvents(context.Background(), "", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(std(t, st.Evidence))
	if e := events[0]; e.Type != "sign" || e.ClientID != sp.id || e.DeviceID == "" || e.Detail != fmt.Sprintf("evidence sha256:%x", sum) {
		t.Fatalf("the audit log's newest event: %+v", e)
	}
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	write(t, caFile, get(t, s.PublicURL+"/pki/ca.pem", "application/x-pem-file"))
	for i, sig := range st.Signatures {
		if sig.Name != docs[i].Name || sig.Digest != docs[i].Digest || sig.CMS == "" {
			t.Fatalf("signature %d: %+v", i, sig)
		}
		sigFile, docFile := filepath.Join(dir, "sig.der"), filepath.Join(dir, "document")
		write(t, sigFile, std(t, sig.CMS))
		write(t, docFile, contents[sig.Name])
		verify := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile, "-content", docFile, "-CAfile", caFile, "-out", filepath.Join(dir, "out")}
		if out := openssl(t, verify...); !strings.Contains(out, "Verification successful") {
			t.Fatalf("openssl cms -verify of %s: %s", sig.Name, out)
		}
		evidenceFile := filepath.Join(dir, "evidence")
		write(t, evidenceFile, std(t, st.Evidence))
		if out := runMcert(t, 0, "verify", "--file", docFile, "--cms", sigFile, "--server", s.PublicURL, "--evidence", evidenceFile); !strings.Contains(out, "good at signing time") {
			t.Fatalf("mcert verify of %s: %s", sig.Name, out)
		}
		write(t, docFile, append(contents[sig.Name], '!'))
		runMcert(t, 1, "verify", "--file", docFile, "--cms", sigFile, "--server", s.PublicURL, "--evidence", evidenceFile)
		if out, err := opensslFails(verify...); err == nil {
			t.Fatalf("openssl cms -verify accepted a tampered %s: %s", sig.Name, out)
		}
	}

	// By QR code, raw: the citizen scans the website's page.
	started = sp.call("POST", "/api/v1/sign/requests", map[string]any{"text": "確認", "format": "raw", "documents": docs[:1]}).want(t, 201).json(t)
	if _, err := ph.Sign(context.Background(), started["qr_text"].(string), phone.GetOptions{}); err != nil {
		t.Fatalf("sign by QR code: %v", err)
	}
	st = sp.poll(started["id"].(string))
	cert, err := x509.ParseCertificate(std(t, st.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(contents["買賣契約.pdf"])
	if st.Status != "approved" || !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], std(t, st.Signatures[0].Signature)) {
		t.Fatalf("the raw signature does not verify over the digest: %+v", st)
	}
}

// TestSignRefusals: every way a signature could be got without the citizen's approval, or
// a request that breaks the rules, is refused, and the malformed ones store nothing.
func TestSignRefusals(t *testing.T) {
	s := startServer(t)
	ph, card := boundCitizen(t, s)
	sp := s.signingParty(t)
	doc := documentOf("a.pdf", []byte("a"))
	request := func(extra map[string]any) map[string]any {
		r := map[string]any{"login_hint": "A123456789", "text": "簽署", "format": "cms", "documents": []document{doc}}
		for k, v := range extra {
			r[k] = v
		}
		return r
	}
	many := make([]document, 21)
	for i := range many {
		many[i] = documentOf(strings.Repeat("n", i+1), []byte{byte(i)})
	}
	logins := func() int {
		n := 0
		if err := s.store.Dump(context.Background(), func(r storage.Record) error {
			if r.Login != nil {
				n++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := logins()
	for _, tc := range []struct {
		name   string
		body   map[string]any
		status int
		code   string
	}{
		{"21 digests", request(map[string]any{"documents": many}), 400, "invalid_request"},
		{"no documents", request(map[string]any{"documents": []document{}}), 400, "invalid_request"},
		{"no text", request(map[string]any{"text": ""}), 400, "invalid_request"},
		{"text too long", request(map[string]any{"text": strings.Repeat("字", 257)}), 400, "invalid_request"},
		{"control character", request(map[string]any{"text": "簽\x07署"}), 400, "invalid_request"},
		{"bidi override in a name", request(map[string]any{"documents": []document{{"a\u202eb.pdf", doc.Digest}}}), 400, "invalid_request"},
		{"two documents of one name", request(map[string]any{"documents": []document{doc, doc}}), 400, "invalid_request"},
		{"short digest", request(map[string]any{"documents": []document{{"a", base64.RawURLEncoding.EncodeToString(make([]byte, 31))}}}), 400, "invalid_request"},
		{"digest not base64url", request(map[string]any{"documents": []document{{"a", "!!"}}}), 400, "invalid_request"},
		{"padded digest", request(map[string]any{"documents": []document{{"a", doc.Digest + "="}}}), 400, "invalid_request"},
		{"unknown format", request(map[string]any{"format": "pdf"}), 400, "invalid_request"},
		{"unknown citizen", request(map[string]any{"login_hint": "B234567894"}), 400, "unknown_user_id"},
	} {
		if got := sp.call("POST", "/api/v1/sign/requests", tc.body); got.Status != tc.status || got.errorCode(t) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, got.Status, got.Body, tc.status, tc.code)
		}
	}
	if after := logins(); after != before {
		t.Fatalf("refused requests stored %d logins", after-before)
	}
	// A client not registered for signing, a wrong secret, and Basic credentials that are not
	// form-encoded (RFC 6749 section 2.3.1), as the token endpoint refuses them.
	plain := s.relyingParty(t, "一般網站", provider.ClientSpec{})
	for _, c := range []*signer{{t, s, plain.oauth.ClientID, plain.oauth.ClientSecret}, {t, s, sp.id, "wrong"}, {t, s, sp.id, sp.secret + "%zz"}} {
		if got := c.call("POST", "/api/v1/sign/requests", request(nil)); got.Status != 401 || got.errorCode(t) != "invalid_client" {
			t.Errorf("client %s: %d %s", c.id, got.Status, got.Body)
		}
	}

	// Another client's request is unknown; a poll sooner than the interval is 429.
	id := sp.call("POST", "/api/v1/sign/requests", request(nil)).want(t, 201).json(t)["id"].(string)
	other := s.signingParty(t)
	if got := other.call("GET", "/api/v1/sign/requests/"+id, nil); got.Status != 404 {
		t.Errorf("another client's request: %d %s", got.Status, got.Body)
	}
	sp.poll(id)
	if got := sp.call("GET", "/api/v1/sign/requests/"+id, nil); got.Status != 429 || got.errorCode(t) != "slow_down" || got.Header.Get("Retry-After") == "" {
		t.Errorf("a poll too soon: %d %s %v", got.Status, got.Body, got.Header)
	}

	// Approval by a phone of another citizen, forced to answer with its own key.
	other2 := s.issueCard(t, "林小華", "B234567894", authn.IssueOptions{})
	b2 := s.loggedIn(t, other2)
	b2.do("POST", "/api/v1/account", map[string]string{"email": "lin@example.tw", "phone": "0987654321"}).want(t, 201)
	bind := b2.do("POST", "/api/v1/bindings", nil).want(t, 201).json(t)
	p2, _ := phone.Open(t.TempDir() + "/phone2.json")
	ph2 := &phone.Client{HTTP: http.DefaultClient, Phone: p2}
	if _, err := ph2.Bind(context.Background(), bind["qr_text"].(string), "Other", phone.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	inbox, err := ph.Inbox(context.Background(), s.PublicURL)
	if err != nil || len(inbox) != 1 {
		t.Fatalf("inbox: %v %v", inbox, err)
	}
	token := inbox[0].Token
	if _, err := ph2.ApproveSign(context.Background(), s.PublicURL, token, phone.GetOptions{CredentialID: p2.Credentials()[0].ID}); err == nil {
		t.Fatal("a phone of another citizen approved the signing request")
	}
	s.clock.Advance(6 * time.Second)
	if st := sp.poll(id); st.Status != "pending" || st.Signatures != nil {
		t.Fatalf("after another citizen's approval: %+v", st)
	}

	// A revoked certificate signs nothing, even from a usable phone.
	deviceID := ph.Phone.Credentials()[0].DeviceID
	cert, err := s.service.DeviceCertificate(context.Background(), deviceID)
	if err != nil {
		t.Fatal(err)
	}
	now := s.clock.Now()
	if err := s.store.Update(context.Background(), func(tx storage.Tx) error {
		c, err := tx.Certificate(cert.Serial)
		if err != nil {
			return err
		}
		c.RevokedAt, c.Reason = &now, 1
		return tx.PutCertificate(c)
	}); err != nil {
		t.Fatal(err)
	}
	sp.call("POST", "/api/v1/sign/requests", request(nil)).want(t, 201)
	inbox, _ = ph.Inbox(context.Background(), s.PublicURL)
	token = inbox[len(inbox)-1].Token
	if _, err := ph.ApproveSign(context.Background(), s.PublicURL, token, phone.GetOptions{}); !isAPIError(err, 403, "no_signing_certificate") {
		t.Fatalf("approval with a revoked certificate: %v", err)
	}

	// A new certificate (suspension and reinstatement give one); the approval replayed is used.
	b := s.loggedIn(t, card)
	b.do("POST", "/api/v1/account/suspend", nil).want(t, 200)
	b.do("POST", "/api/v1/account/reinstate", nil).want(t, 200)
	id = sp.call("POST", "/api/v1/sign/requests", request(nil)).want(t, 201).json(t)["id"].(string)
	inbox, _ = ph.Inbox(context.Background(), s.PublicURL)
	var fresh string
	for _, it := range inbox {
		if it.Kind == "sign" {
			fresh = it.Token
		}
	}
	var finish json.RawMessage
	recorder := &recordingClient{inner: http.DefaultTransport, path: "/api/v1/phone/sign/finish", body: &finish}
	if _, err := (&phone.Client{HTTP: &http.Client{Transport: recorder}, Phone: ph.Phone}).ApproveSign(context.Background(), s.PublicURL, fresh, phone.GetOptions{}); err != nil {
		t.Fatalf("approve with the new certificate: %v", err)
	}
	replay, _ := http.NewRequest("POST", s.PublicURL+"/api/v1/phone/sign/finish", bytes.NewReader(finish))
	replay.Header.Set("Content-Type", "application/json")
	if res, body, err := roundTrip(http.DefaultClient, replay); err != nil || res.StatusCode != 409 {
		t.Fatalf("the approval replayed: %v %s %v", res.StatusCode, body, err)
	}
	s.clock.Advance(6 * time.Second)
	if st := sp.poll(id); st.Status != "approved" || len(st.Signatures) != 1 {
		t.Fatalf("the approved request: %+v", st)
	}

	// Expired: nobody answered in five minutes.
	id = sp.call("POST", "/api/v1/sign/requests", request(nil)).want(t, 201).json(t)["id"].(string)
	s.clock.Advance(6 * time.Minute)
	if st := sp.poll(id); st.Status != "expired" {
		t.Fatalf("after five minutes: %+v", st)
	}
}

// recordingClient keeps the body of the last request to path.
type recordingClient struct {
	inner http.RoundTripper
	path  string
	body  *json.RawMessage
}

func (r *recordingClient) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Path == r.path && req.Body != nil {
		data, err := readBody(req)
		if err != nil {
			return nil, err
		}
		*r.body = data
	}
	return r.inner.RoundTrip(req)
}

// opensslFails runs openssl, which the caller expects to refuse.
func opensslFails(args ...string) (string, error) {
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}

func readBody(req *http.Request) ([]byte, error) {
	data, err := io.ReadAll(req.Body)
	req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(data))
	return data, err
}
