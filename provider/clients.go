package provider

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/storage"
)

// ClientSpec is a relying party to register.
type ClientSpec struct {
	ID                     string // empty: a random one
	Name                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	Public                 bool // no secret: a native or browser app, which must use PKCE
	CitizenID              bool
	CIBA                   bool
	Sign                   bool   // may ask citizens to sign (PROTOCOL.md section 9)
	CIBAPing               string // a CIBA client's notification endpoint, for ping mode
	IDTokenAlg             string // id_token_signed_response_alg: RS256 or ES256; empty: RS256
}

// NewClient is a registered relying party and its secret, shown only now.
type NewClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret,omitempty"`
}

// RegisterClient validates spec, reporting every problem at once, and stores the client with
// its secret's hash, writing event (if any) to the audit log with it.
func RegisterClient(ctx context.Context, svc *binding.Service, spec ClientSpec, event string) (NewClient, error) {
	if problems := spec.problems(); problems != nil {
		return NewClient{}, invalidMetadata(problems)
	}
	c := storage.Client{
		ID: spec.ID, Name: strings.TrimSpace(spec.Name), RedirectURIs: spec.RedirectURIs, PostLogoutRedirectURIs: spec.PostLogoutRedirectURIs,
		CitizenID: spec.CitizenID, CIBA: spec.CIBA, Sign: spec.Sign, CIBAPing: spec.CIBAPing, IDTokenAlg: spec.IDTokenAlg,
	}
	if c.ID == "" {
		c.ID = newID()
	}
	out := NewClient{ID: c.ID}
	if !spec.Public {
		out.Secret, c.SecretHash = newSecret()
	}
	if err := svc.CreateClient(ctx, c, event); err != nil {
		return NewClient{}, err
	}
	return out, nil
}

// problems lists everything wrong with spec, for a registration and an edit alike.
func (spec ClientSpec) problems() []string {
	var problems []string
	if name := strings.TrimSpace(spec.Name); name == "" || !mcert.PlainText(name, 64) {
		problems = append(problems, "name must be 1 to 64 characters with no control, format or bidi characters: citizens see it on the login page and the phone")
	}
	if len(spec.RedirectURIs) == 0 && !spec.CIBA && !spec.Sign {
		problems = append(problems, "give at least one redirect URI (or register a CIBA-only or signing-only client)")
	}
	for _, u := range append(append([]string{}, spec.RedirectURIs...), spec.PostLogoutRedirectURIs...) {
		if err := checkRedirectURI(u); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if spec.IDTokenAlg != "" && !slices.Contains(signingAlgs, jose.SignatureAlgorithm(spec.IDTokenAlg)) {
		problems = append(problems, fmt.Sprintf("id_token_signed_response_alg %q: ID tokens are signed RS256 (the default) or ES256", spec.IDTokenAlg))
	}
	if spec.Public && spec.CIBA {
		problems = append(problems, "a CIBA client authenticates its back end, so it cannot be public")
	}
	if spec.CIBAPing != "" {
		if !spec.CIBA {
			problems = append(problems, "a ping notification endpoint is for a CIBA client: register it with ciba too")
		}
		if err := checkRedirectURI(spec.CIBAPing); err != nil {
			problems = append(problems, "backchannel_client_notification_endpoint: "+err.Error())
		}
	}
	if spec.Public && spec.Sign {
		problems = append(problems, "a signing client authenticates its back end, so it cannot be public")
	}
	return problems
}

func invalidMetadata(problems []string) error {
	return mcert.InvalidClientMetadata.Newf(strings.Join(problems, "; "))
}

// newSecret is a new client secret and its hash, which is all the store keeps of it.
func newSecret() (string, []byte) {
	secret := newID() + newID()
	h := sha256.Sum256([]byte(secret))
	return secret, h[:]
}

// checkRedirectURI accepts absolute https URLs, and http only for the machine itself.
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.Fragment != "" {
		return fmt.Errorf("%q must not have a fragment", raw)
	}
	host := u.Hostname()
	loopback := host == "localhost" || net.ParseIP(host).IsLoopback()
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback) {
		return fmt.Errorf("%q must use https (http only for localhost)", raw)
	}
	return nil
}

// DemoClientID is the development-mode demo relying party's client.
const DemoClientID = "mcert-demo"

// EnsureDemoClient registers the demo relying party, or points its redirect URI at the
// current public URL, which may change between development runs (another port).
func EnsureDemoClient(ctx context.Context, svc *binding.Service, publicURL string) error {
	redirect := []string{strings.TrimRight(publicURL, "/") + "/demo/callback"}
	_, err := RegisterClient(ctx, svc, ClientSpec{
		ID: DemoClientID, Name: "示範網站 Demo RP", RedirectURIs: redirect, Public: true, CitizenID: true,
	}, "")
	if mcert.ErrorKind(err) != mcert.Conflict {
		return err
	}
	_, err = svc.ChangeClient(ctx, DemoClientID, func(c *storage.Client) error {
		c.RedirectURIs = redirect
		return nil
	})
	return err
}
