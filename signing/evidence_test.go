package signing_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/pki"
	"github.com/mcert/mcert/signing"
	"github.com/mcert/mcert/signing/signingtest"
)

const (
	rpID   = "mcert.example"
	origin = "https://mcert.example"
)

var signedAt = time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)

func request() signing.Request {
	a, b := sha256.Sum256([]byte("contract")), sha256.Sum256([]byte("annex"))
	return signing.Request{
		ID: "req-1", ClientID: "client-1", Text: "簽署租約", Format: "cms",
		Documents: []signing.Document{{Name: "contract.pdf", Digest: a[:]}, {Name: "annex.pdf", Digest: b[:]}},
	}
}

// certificate is a signing certificate of mcert's CA, DER.
func certificate(t testing.TB) []byte {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA(rand.Reader, now.Add(-time.Hour), "test")
	if err != nil {
		t.Fatal(err)
	}
	_, der, _, err := signingtest.Certificate(ca, now, now.Add(time.Hour), "https://mcert.example/pki/ca.crl", "https://mcert.example/pki/ocsp")
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func device(t testing.TB, id string) *signingtest.Device {
	t.Helper()
	d, err := signingtest.NewDevice(t.TempDir(), id, rpID, origin)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func approve(t testing.TB, d *signingtest.Device, r signing.Request, cert []byte, o phone.GetOptions) signing.Evidence {
	t.Helper()
	e, err := d.Approve(r, cert, signedAt, o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// reparsed is e through Marshal and ParseEvidence, as a relying party receives it, and a copy
// that a test may change without changing e.
func reparsed(t *testing.T, e signing.Evidence) signing.Evidence {
	t.Helper()
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out, err := signing.ParseEvidence(b)
	if err != nil {
		t.Fatalf("ParseEvidence of Marshal's output: %v", err)
	}
	return out
}

func TestCommitment(t *testing.T) {
	base := signing.Commitment(request())
	// Moving a byte from one field to the next keeps the concatenation but not the lengths.
	shifted := request()
	shifted.ID, shifted.Text = "req-1簽", "署租約"
	otherClient := request()
	otherClient.ClientID = "client-2"
	if signing.Commitment(shifted) == base {
		t.Error("the commitment does not tell the fields apart")
	}
	if signing.Commitment(otherClient) != base {
		t.Error("the commitment depends on the client, which the contract leaves out")
	}
	c, err := signing.NewChallenge(request())
	if err != nil {
		t.Fatal(err)
	}
	again, err := signing.NewChallenge(request())
	if err != nil {
		t.Fatal(err)
	}
	if len(c) != 48 || !bytes.HasPrefix(c, base[:]) || bytes.Equal(c, again) {
		t.Errorf("challenges %x and %x: want 48 bytes, the commitment %x first, then random bytes", c, again, base)
	}
	bad := request()
	bad.Documents[1].Digest = bad.Documents[1].Digest[:31]
	if _, err := signing.NewChallenge(bad); err == nil || !strings.Contains(err.Error(), "31 bytes") {
		t.Errorf("NewChallenge of a 31-byte digest: %v, want it refused", err)
	}
}

func TestVerify(t *testing.T) {
	d, other := device(t, "device-1"), device(t, "device-2")
	cert := certificate(t)
	parsedCert, err := x509.ParseCertificate(cert)
	if err != nil {
		t.Fatal(err)
	}
	otherCert, err := x509.ParseCertificate(certificate(t))
	if err != nil {
		t.Fatal(err)
	}
	valid := approve(t, d, request(), cert, phone.GetOptions{})
	withoutUV := approve(t, d, request(), cert, phone.GetOptions{NoUserVerification: true})
	// Another approval of the same request by the same device: a well-formed signature, but over
	// another challenge.
	second := approve(t, d, request(), cert, phone.GetOptions{})
	unlisted := sha256.Sum256([]byte("something else"))

	tests := []struct {
		name   string
		change func(e *signing.Evidence)
		digest []byte
		cert   *x509.Certificate
		want   string // in the error; "" for none
	}{
		{name: "valid", change: func(*signing.Evidence) {}},
		{name: "valid for its document and certificate", change: func(*signing.Evidence) {}, digest: request().Documents[1].Digest, cert: parsedCert},
		{name: "request text", change: func(e *signing.Evidence) { e.Request.Text = "簽署借據" }, want: "does not commit to the request"},
		{name: "request id", change: func(e *signing.Evidence) { e.Request.ID = "req-2" }, want: "does not commit to the request"},
		{name: "a digest", change: func(e *signing.Evidence) { e.Request.Documents[0].Digest[0] ^= 1 }, want: "does not commit to the request"},
		{name: "a name", change: func(e *signing.Evidence) { e.Request.Documents[1].Name = "annex2.pdf" }, want: "does not commit to the request"},
		{name: "challenge", change: func(e *signing.Evidence) { e.Challenge[40] ^= 1 }, want: "the assertion is of challenge"},
		{name: "origin", change: func(e *signing.Evidence) { e.Origin = "https://evil.example" }, want: `comes from origin "https://mcert.example", not "https://evil.example"`},
		{name: "rp id", change: func(e *signing.Evidence) { e.RPID = "evil.example" }, want: `another relying party than RP ID "evil.example"`},
		{name: "user verification off", change: func(e *signing.Evidence) { *e = reparsed(t, withoutUV) }, want: "user-verified flag"},
		{name: "signature", change: func(e *signing.Evidence) { e.Credential = swapSignature(t, e.Credential, second.Credential) }, want: "signature does not verify with the public key of device device-1"},
		{name: "public key of another device", change: func(e *signing.Evidence) { e.PublicKey = other.PublicKey }, want: "signature does not verify"},
		{name: "public key not COSE", change: func(e *signing.Evidence) { e.PublicKey = []byte{0xa0} }, want: "not a COSE key"},
		{name: "credential not an assertion", change: func(e *signing.Evidence) { e.Credential = json.RawMessage(`{"id":"x"}`) }, want: "not a WebAuthn assertion"},
		{name: "digest not listed", change: func(*signing.Evidence) {}, digest: unlisted[:], want: "lists no document of SHA-256"},
		{name: "another certificate", change: func(*signing.Evidence) {}, cert: otherCert, want: "another certificate than the signer's"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := reparsed(t, valid)
			tc.change(&e)
			err := e.Verify(tc.digest, tc.cert)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Verify: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Verify: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// swapSignature is credential with the assertion signature of from.
func swapSignature(t *testing.T, credential, from json.RawMessage) json.RawMessage {
	t.Helper()
	var c, f map[string]any
	if err := json.Unmarshal(credential, &c); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(from, &f); err != nil {
		t.Fatal(err)
	}
	c["response"].(map[string]any)["signature"] = f["response"].(map[string]any)["signature"]
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseEvidence(t *testing.T) {
	valid, err := approve(t, device(t, "device-1"), request(), certificate(t), phone.GetOptions{}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// edit is the valid evidence with a change to its JSON object.
	edit := func(change func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(valid, &m); err != nil {
			t.Fatal(err)
		}
		change(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	documents := func(m map[string]any) map[string]any {
		return m["request"].(map[string]any)["documents"].([]any)[0].(map[string]any)
	}
	tests := []struct {
		name string
		in   []byte
		want string // in the error; "" for none
	}{
		{name: "valid", in: valid},
		{name: "not JSON", in: []byte("evidence"), want: "not mcert's JSON"},
		{name: "data after the object", in: append(bytes.Clone(valid), "{}"...), want: "data after its object"},
		{name: "unknown field", in: edit(func(m map[string]any) { m["extra"] = 1 }), want: `unknown field "extra"`},
		{name: "unknown request field", in: edit(func(m map[string]any) { m["request"].(map[string]any)["login_hint"] = "A123456789" }), want: `unknown field "login_hint"`},
		{name: "version 2", in: edit(func(m map[string]any) { m["v"] = 2 }), want: "version 2"},
		{name: "no version", in: edit(func(m map[string]any) { delete(m, "v") }), want: "version 0"},
		{name: "short challenge", in: edit(func(m map[string]any) { m["challenge"] = "AAAA" }), want: "challenge has 3 bytes"},
		{name: "short digest", in: edit(func(m map[string]any) { documents(m)["digest"] = "AAAA" }), want: "digest of 3 bytes"},
		{name: "no documents", in: edit(func(m map[string]any) { m["request"].(map[string]any)["documents"] = []any{} }), want: "no documents"},
		{name: "format", in: edit(func(m map[string]any) { m["request"].(map[string]any)["format"] = "pades" }), want: `format is "pades"`},
		{name: "credential null", in: edit(func(m map[string]any) { m["credential"] = nil }), want: "credential is not a JSON object"},
		{name: "no device", in: edit(func(m map[string]any) { delete(m, "device_id") }), want: "names no device"},
		{name: "no public key", in: edit(func(m map[string]any) { delete(m, "public_key") }), want: "no device public key"},
		{name: "no origin", in: edit(func(m map[string]any) { m["origin"] = "" }), want: "no origin"},
		{name: "no signing time", in: edit(func(m map[string]any) { delete(m, "signed_at") }), want: "no signing time"},
		{name: "certificate", in: edit(func(m map[string]any) { m["certificate"] = "AAAA" }), want: "the evidence's certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := signing.ParseEvidence(tc.in)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("ParseEvidence: %v", err)
			case tc.want == "":
				if err := e.Verify(nil, nil); err != nil {
					t.Fatalf("Verify: %v", err)
				}
			case err == nil || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("ParseEvidence: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// FuzzParseEvidence checks that no input makes ParseEvidence or Verify panic, and that what
// parses is written back by Marshal into evidence that parses again and verifies the same.
func FuzzParseEvidence(f *testing.F) {
	valid, err := approve(f, device(f, "device-1"), request(), certificate(f), phone.GetOptions{}).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := signing.ParseEvidence(b)
		if err != nil {
			return
		}
		verified := e.Verify(nil, nil)
		again, err := e.Marshal()
		if err != nil {
			t.Fatalf("Marshal of parsed evidence: %v", err)
		}
		e2, err := signing.ParseEvidence(again)
		if err != nil {
			t.Fatalf("ParseEvidence of Marshal's output: %v", err)
		}
		if err := e2.Verify(nil, nil); (err == nil) != (verified == nil) {
			t.Fatalf("Verify after a round trip: %v, before: %v", err, verified)
		}
	})
}
