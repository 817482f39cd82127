package provider

import (
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/mcert/mcert/storage"
)

const (
	scopeCitizenID = "citizen_id"
	claimCitizenID = "citizen_id"
)

// client adapts a registered relying party to op.
type client struct {
	storage.Client
	devMode bool
}

func (c client) GetID() string                       { return c.ID }
func (c client) RedirectURIs() []string              { return c.Client.RedirectURIs }
func (c client) PostLogoutRedirectURIs() []string    { return c.Client.PostLogoutRedirectURIs }
func (c client) LoginURL(id string) string           { return "/login/" + id }
func (c client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c client) IDTokenLifetime() time.Duration      { return idTokenTTL }
func (c client) DevMode() bool                       { return c.devMode }
func (c client) ClockSkew() time.Duration            { return 0 }
func (c client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

// ApplicationType: a public client is a native or browser app, which may use loopback
// redirect URIs; a confidential one is a web server.
func (c client) ApplicationType() op.ApplicationType {
	if c.SecretHash == nil {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (c client) AuthMethod() oidc.AuthMethod {
	if c.SecretHash == nil {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}

func (c client) GrantTypes() []oidc.GrantType {
	grants := []oidc.GrantType{oidc.GrantTypeCode}
	if c.CIBA {
		grants = append(grants, cibaGrantType)
	}
	return grants
}

func (c client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}

func (c client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(scopes []string) []string { return scopes }
}

// IsScopeAllowed decides the scopes beyond the standard ones: citizen_id only for a relying
// party registered for it; for the others the scope is dropped and the claim never issued.
func (c client) IsScopeAllowed(scope string) bool { return scope == scopeCitizenID && c.CitizenID }

// IDTokenUserinfoClaimsAssertion puts the scoped claims in the ID token too, so a relying party
// needs no userinfo call.
func (c client) IDTokenUserinfoClaimsAssertion() bool { return true }
