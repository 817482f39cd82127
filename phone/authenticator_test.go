package phone

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

const (
	testRPID   = "localhost"
	testOrigin = "http://localhost:8080"
)

// testUser is the relying party's side of an account, holding its registered credentials.
type testUser struct {
	id    []byte
	creds []webauthn.Credential
}

func (u *testUser) WebAuthnID() []byte                         { return u.id }
func (u *testUser) WebAuthnName() string                       { return "A12****789" }
func (u *testUser) WebAuthnDisplayName() string                { return "王小明" }
func (u *testUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func newRP(t *testing.T) *webauthn.WebAuthn {
	t.Helper()
	rp, err := webauthn.New(&webauthn.Config{RPID: testRPID, RPDisplayName: "mcert", RPOrigins: []string{testOrigin}})
	if err != nil {
		t.Fatal(err)
	}
	return rp
}

func newPhone(t *testing.T) *Phone {
	t.Helper()
	p, err := Open(filepath.Join(t.TempDir(), "phone.json"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// throughJSON sends v through JSON as a server does to its client, so that the phone reads
// the options as it would over the wire.
func throughJSON[T any](t *testing.T, v T) T {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// serverSelection is what the mcert server asks of the phone: user verification and a
// discoverable credential.
func serverSelection() webauthn.RegistrationOption {
	requireResidentKey := true
	return webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
		AuthenticatorAttachment: protocol.Platform,
		RequireResidentKey:      &requireResidentKey,
		ResidentKey:             protocol.ResidentKeyRequirementRequired,
		UserVerification:        protocol.VerificationRequired,
	})
}

// register runs a registration as the mcert server configures it.
func register(t *testing.T, rp *webauthn.WebAuthn, p *Phone, u *testUser, o CreateOptions) (*webauthn.Credential, error) {
	t.Helper()
	creation, session, err := rp.BeginRegistration(u, serverSelection())
	if err != nil {
		t.Fatal(err)
	}
	response, err := p.Create(testOrigin, throughJSON(t, *creation).Response, o)
	return rp.CreateCredential(u, *session, parse(t, response, err, protocol.ParseCredentialCreationResponseBytes))
}

// enrol registers a new credential of the phone with u.
func enrol(t *testing.T, rp *webauthn.WebAuthn, p *Phone, u *testUser) {
	t.Helper()
	cred, err := register(t, rp, p, u, CreateOptions{})
	if err != nil {
		t.Fatalf("CreateCredential: %v", err)
	}
	u.creds = append(u.creds, *cred)
}

// assert runs a login for u's credentials with user verification required, as the mcert
// server does, and returns what the relying party would store.
func assert(t *testing.T, rp *webauthn.WebAuthn, p *Phone, u *testUser, o GetOptions) (*webauthn.Credential, error) {
	t.Helper()
	assertion, session, err := rp.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		t.Fatal(err)
	}
	response, err := p.Get(testOrigin, throughJSON(t, *assertion).Response, o)
	return rp.ValidateLogin(u, *session, parse(t, response, err, protocol.ParseCredentialRequestResponseBytes))
}

// parse reads the phone's response as the relying party does; the phone must have answered.
func parse[P any](t *testing.T, response []byte, err error, parse func([]byte) (P, error)) P {
	t.Helper()
	if err != nil {
		t.Fatalf("the phone did not answer: %v", err)
	}
	parsed, err := parse(response)
	if err != nil {
		t.Fatalf("the relying party cannot read the phone's response: %v\n%s", err, response)
	}
	return parsed
}

func login(t *testing.T, rp *webauthn.WebAuthn, p *Phone, u *testUser, o GetOptions) *webauthn.Credential {
	t.Helper()
	cred, err := assert(t, rp, p, u, o)
	if err != nil {
		t.Fatalf("ValidateLogin: %v", err)
	}
	return cred
}

func TestCreateVerifiesWithGoWebAuthn(t *testing.T) {
	tests := []struct {
		name            string
		attestation     string
		wantAttestation string // go-webauthn's attestation type
	}{
		{"none", "", "none"},
		{"packed", "packed", "basic_surrogate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rp, p := newRP(t), newPhone(t)
			u := &testUser{id: bytes.Repeat([]byte{7}, 64)}
			cred, err := register(t, rp, p, u, CreateOptions{Attestation: tc.attestation})
			if err != nil {
				t.Fatalf("CreateCredential: %v", err)
			}
			if cred.AttestationType != tc.wantAttestation || !cred.Flags.UserVerified || !cred.Flags.UserPresent ||
				cred.Flags.BackupEligible || cred.Flags.BackupState {
				t.Errorf("got attestation %q and flags %+v", cred.AttestationType, cred.Flags)
			}
			got := p.Credentials()
			if len(got) != 1 || !bytes.Equal(got[0].ID, cred.ID) || len(cred.ID) != credentialIDLen ||
				got[0].RPID != testRPID || !bytes.Equal(got[0].UserHandle, u.id) || got[0].UserName != "A12****789" {
				t.Fatalf("the phone holds %+v, want the new credential %x", got, cred.ID)
			}
		})
	}
}

func TestCreateResponseIsBrowserShaped(t *testing.T) {
	rp, p := newRP(t), newPhone(t)
	creation, _, err := rp.BeginRegistration(&testUser{id: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	response, err := p.Create(testOrigin, throughJSON(t, *creation).Response, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		ID                      string         `json:"id"`
		RawID                   string         `json:"rawId"`
		Type                    string         `json:"type"`
		AuthenticatorAttachment string         `json:"authenticatorAttachment"`
		ClientExtensionResults  map[string]any `json:"clientExtensionResults"`
		Response                struct {
			ClientDataJSON protocol.URLEncodedBase64 `json:"clientDataJSON"`
			Transports     []string                  `json:"transports"`
		} `json:"response"`
	}
	if err := json.Unmarshal(response, &got); err != nil {
		t.Fatal(err)
	}
	wantClientData := `{"type":"webauthn.create","challenge":"` + creation.Response.Challenge.String() +
		`","origin":"http://localhost:8080","crossOrigin":false}`
	if got.ID != got.RawID || got.Type != "public-key" || got.AuthenticatorAttachment != "platform" ||
		got.ClientExtensionResults == nil || len(got.ClientExtensionResults) != 0 ||
		strings.Join(got.Response.Transports, ",") != "internal" || string(got.Response.ClientDataJSON) != wantClientData {
		t.Errorf("got %+v with clientDataJSON %s", got, got.Response.ClientDataJSON)
	}
}

func TestCreateWithoutUserVerificationIsRefused(t *testing.T) {
	rp, p := newRP(t), newPhone(t)
	_, err := register(t, rp, p, &testUser{id: []byte{1, 2, 3}}, CreateOptions{NoUserVerification: true})
	if err == nil {
		t.Fatal("go-webauthn accepted a registration without UV where UV was required")
	}
}

func TestCreateRefuses(t *testing.T) {
	rp := newRP(t)
	creation, _, err := rp.BeginRegistration(&testUser{id: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	good := throughJSON(t, *creation).Response
	tests := []struct {
		name   string
		origin string
		change func(*protocol.PublicKeyCredentialCreationOptions)
		o      CreateOptions
		want   string
	}{
		{"no ES256", testOrigin, func(o *protocol.PublicKeyCredentialCreationOptions) {
			o.Parameters = []protocol.CredentialParameter{{Type: protocol.PublicKeyCredentialType, Algorithm: -257}}
		}, CreateOptions{}, "ES256"},
		{"other site", "https://evil.example", nil, CreateOptions{}, "does not cover"},
		{"parent of RP ID", "https://example.tw", func(o *protocol.PublicKeyCredentialCreationOptions) {
			o.RelyingParty.ID = "id.example.tw"
		}, CreateOptions{}, "does not cover"},
		{"suffix without dot", "https://badexample.tw", func(o *protocol.PublicKeyCredentialCreationOptions) {
			o.RelyingParty.ID = "example.tw"
		}, CreateOptions{}, "does not cover"},
		{"origin with path", testOrigin + "/m/bind", nil, CreateOptions{}, "not scheme://host"},
		{"no challenge", testOrigin, func(o *protocol.PublicKeyCredentialCreationOptions) { o.Challenge = nil }, CreateOptions{}, "no challenge"},
		{"no user id", testOrigin, func(o *protocol.PublicKeyCredentialCreationOptions) { o.User.ID = nil }, CreateOptions{}, "user.id"},
		{"unknown attestation", testOrigin, nil, CreateOptions{Attestation: "tpm"}, "attestation"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := throughJSON(t, good)
			if tc.change != nil {
				tc.change(&opts)
			}
			p := newPhone(t)
			_, err := p.Create(tc.origin, opts, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
			if n := len(p.Credentials()); n != 0 {
				t.Errorf("the phone kept %d credentials from a refused registration", n)
			}
		})
	}
}

func TestCreateForSubdomainOrigin(t *testing.T) {
	rp, err := webauthn.New(&webauthn.Config{RPID: "example.tw", RPDisplayName: "mcert", RPOrigins: []string{"https://id.example.tw"}})
	if err != nil {
		t.Fatal(err)
	}
	creation, _, err := rp.BeginRegistration(&testUser{id: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newPhone(t).Create("https://id.example.tw", throughJSON(t, *creation).Response, CreateOptions{}); err != nil {
		t.Fatalf("a page on a subdomain of the RP ID was refused: %v", err)
	}
}

func TestCreateHonoursExcludeList(t *testing.T) {
	rp, p := newRP(t), newPhone(t)
	u := &testUser{id: []byte{9}}
	enrol(t, rp, p, u)
	creation, _, err := rp.BeginRegistration(u, webauthn.WithExclusions([]protocol.CredentialDescriptor{
		{Type: protocol.PublicKeyCredentialType, CredentialID: u.creds[0].ID},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Create(testOrigin, throughJSON(t, *creation).Response, CreateOptions{}); err == nil {
		t.Fatal("the phone made a second credential for an account that excluded its first")
	}
}

func TestGetVerifiesWithGoWebAuthn(t *testing.T) {
	rp, p := newRP(t), newPhone(t)
	u := &testUser{id: []byte("user handle")}
	enrol(t, rp, p, u)

	for want := uint32(1); want <= 3; want++ {
		got := login(t, rp, p, u, GetOptions{})
		if got.Authenticator.SignCount != want || got.Authenticator.CloneWarning {
			t.Fatalf("login %d: counter %d, clone warning %v", want, got.Authenticator.SignCount, got.Authenticator.CloneWarning)
		}
		u.creds = []webauthn.Credential{*got}
	}

	backwards := uint32(1)
	if got := login(t, rp, p, u, GetOptions{SignCount: &backwards}); !got.Authenticator.CloneWarning {
		t.Fatalf("a counter going from 3 to 1 gave no clone warning: %+v", got.Authenticator)
	}
}

func TestGetWithoutUserVerificationIsRefused(t *testing.T) {
	rp, p := newRP(t), newPhone(t)
	u := &testUser{id: []byte{5}}
	enrol(t, rp, p, u)
	if _, err := assert(t, rp, p, u, GetOptions{NoUserVerification: true}); err == nil {
		t.Fatal("go-webauthn accepted a login without UV where UV was required")
	}
}

func TestDiscoverableLogin(t *testing.T) {
	rp, p := newRP(t), newPhone(t)
	users := []*testUser{{id: []byte("first")}, {id: []byte("second")}}
	for _, u := range users {
		enrol(t, rp, p, u)
	}
	tests := []struct {
		name string
		o    GetOptions
		want *testUser
	}{
		{"newest by default", GetOptions{}, users[1]},
		{"chosen", GetOptions{CredentialID: users[0].creds[0].ID}, users[0]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assertion, session, err := rp.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
			if err != nil {
				t.Fatal(err)
			}
			response, err := p.Get(testOrigin, throughJSON(t, *assertion).Response, tc.o)
			parsed := parse(t, response, err, protocol.ParseCredentialRequestResponseBytes)
			var found *testUser
			handler := func(rawID, userHandle []byte) (webauthn.User, error) {
				for _, u := range users {
					if bytes.Equal(u.id, userHandle) {
						found = u
					}
				}
				return found, nil
			}
			if _, _, err := rp.ValidatePasskeyLogin(handler, *session, parsed); err != nil {
				t.Fatalf("ValidatePasskeyLogin: %v", err)
			}
			if found != tc.want {
				t.Fatalf("the phone answered as %q, want %q", found.id, tc.want.id)
			}
		})
	}
}

func TestGetRefuses(t *testing.T) {
	rp, p := newRP(t), newPhone(t)
	u := &testUser{id: []byte{5}}
	enrol(t, rp, p, u)
	assertion, _, err := rp.BeginLogin(u)
	if err != nil {
		t.Fatal(err)
	}
	opts := throughJSON(t, *assertion).Response
	unknown := opts
	unknown.AllowedCredentials = []protocol.CredentialDescriptor{{Type: protocol.PublicKeyCredentialType, CredentialID: []byte("other")}}
	otherRP := opts
	otherRP.RelyingPartyID = "example.tw"
	tests := []struct {
		name   string
		origin string
		opts   protocol.PublicKeyCredentialRequestOptions
		o      GetOptions
		want   string
	}{
		{"not allowed", testOrigin, unknown, GetOptions{}, "no credential"},
		{"other RP", "https://example.tw", otherRP, GetOptions{}, "no credential"},
		{"wrong origin", "https://example.tw", opts, GetOptions{}, "does not cover"},
		{"unknown choice", testOrigin, opts, GetOptions{CredentialID: []byte("other")}, "no credential"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := p.Get(tc.origin, tc.opts, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
	if got := p.Credentials()[0].SignCount; got != 0 {
		t.Errorf("refused logins moved the counter to %d", got)
	}
}

func TestSaveOpen(t *testing.T) {
	rp := newRP(t)
	path := filepath.Join(t.TempDir(), "keys", "phone.json")
	if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	p, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.Credentials()); n != 0 {
		t.Fatalf("a phone without a key file holds %d credentials", n)
	}
	u := &testUser{id: []byte("saved")}
	enrol(t, rp, p, u)
	u.creds[0] = *login(t, rp, p, u, GetOptions{})
	p.bound(p.creds[0], testOrigin, "device-1", "secret")
	if err := p.Save(); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want mode 0600", err, info.Mode())
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("Save left %d files behind, want only the key file", len(entries))
	}

	reopened, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	before, after := p.Credentials(), reopened.Credentials()
	if len(after) != 1 || !after[0].key.Equal(before[0].key) || after[0].SignCount != 1 ||
		!bytes.Equal(after[0].ID, before[0].ID) || !bytes.Equal(after[0].UserHandle, before[0].UserHandle) ||
		after[0].RPID != testRPID || after[0].UserName != before[0].UserName ||
		after[0].Server != testOrigin || after[0].DeviceID != "device-1" || after[0].DeviceToken != "secret" {
		t.Fatalf("reopened %+v, saved %+v", after, before)
	}
	if got := login(t, rp, reopened, u, GetOptions{}); got.Authenticator.SignCount != 2 || got.Authenticator.CloneWarning {
		t.Fatalf("after reopening: counter %d, clone warning %v", got.Authenticator.SignCount, got.Authenticator.CloneWarning)
	}
}

func TestOpenRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string
	}{
		{"not JSON", "{", "not valid JSON"},
		{"other version", `{"version": 2, "credentials": []}`, "version 2"},
		{"no id", `{"version": 1, "credentials": [{"rp_id": "localhost"}]}`, "no id"},
		{"bad key", `{"version": 1, "credentials": [{"id": "AQ", "rp_id": "localhost", "private_key": "AQID"}]}`, "PKCS#8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "phone.json")
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := Open(path); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
	if err := new(Phone).Save(); err == nil {
		t.Error("a phone without a key file saved")
	}
}
