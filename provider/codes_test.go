package provider

import (
	"testing"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// TestOpErrorTypes holds the catalog to every error type of zitadel's op, whose errors the
// provider passes on (codeOf): a relying party's page can then explain each one.
func TestOpErrorTypes(t *testing.T) {
	for _, e := range []*oidc.Error{
		oidc.ErrInvalidRequest(), oidc.ErrInvalidScope(), oidc.ErrInvalidClient(), oidc.ErrInvalidGrant(),
		oidc.ErrUnauthorizedClient(), oidc.ErrUnsupportedGrantType(), oidc.ErrServerError(),
		oidc.ErrInteractionRequired(), oidc.ErrLoginRequired(), oidc.ErrRequestNotSupported(),
		oidc.ErrAuthorizationPending(), oidc.ErrSlowDown(), oidc.ErrAccessDenied(),
		oidc.ErrExpiredDeviceCode(), oidc.ErrInvalidTarget(),
	} {
		if got := codeOf(e).Name; got != string(e.ErrorType) {
			t.Errorf("op's error type %q is answered as %q: it is not in the catalog", e.ErrorType, got)
		}
	}
}
