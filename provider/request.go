package provider

import (
	"cmp"
	"encoding/json"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/storage"
)

// request is what a relying party asked for, kept in the login transaction (storage.Login's
// opaque Request) from the authorization request to the token response.
type request struct {
	Scopes              []string `json:"scopes"`
	Nonce               string   `json:"nonce,omitempty"`
	RedirectURI         string   `json:"redirect_uri,omitempty"`
	State               string   `json:"state,omitempty"`
	ResponseType        string   `json:"response_type,omitempty"`
	ResponseMode        string   `json:"response_mode,omitempty"`
	CodeChallenge       string   `json:"code_challenge,omitempty"`
	CodeChallengeMethod string   `json:"code_challenge_method,omitempty"`
	// A CIBA ping client's request: its auth_req_id and client_notification_token, for the
	// notification.
	AuthReqID         string `json:"auth_req_id,omitempty"`
	NotificationToken string `json:"client_notification_token,omitempty"`
}

// authRequest is a login transaction as op sees it: an authorization request (redirect login)
// or a CIBA request, with the pairwise subject once a phone has approved.
type authRequest struct {
	id      string
	login   storage.Login
	req     request
	subject string
}

func (p *Provider) authRequest(id string, l storage.Login) (*authRequest, error) {
	a := &authRequest{id: id, login: l}
	if err := json.Unmarshal(l.Request, &a.req); err != nil {
		return nil, err
	}
	if l.AccountID != "" && l.AuthTime != nil {
		a.subject = p.subs.of(l.ClientID, l.AccountID)
	}
	return a, nil
}

func (a *authRequest) GetID() string { return a.id }

// GetACR and GetAMR are what the approving device was at approval. A login approved before
// they were recorded claims only what every login met.
func (a *authRequest) GetACR() string { return cmp.Or(a.login.ACR, binding.ACRPhoneBiometric) }
func (a *authRequest) GetAMR() []string {
	if a.login.AMR == nil {
		return []string{"user"}
	}
	return a.login.AMR
}
func (a *authRequest) GetAudience() []string     { return []string{a.login.ClientID} }
func (a *authRequest) GetClientID() string       { return a.login.ClientID }
func (a *authRequest) GetNonce() string          { return a.req.Nonce }
func (a *authRequest) GetRedirectURI() string    { return a.req.RedirectURI }
func (a *authRequest) GetScopes() []string       { return a.req.Scopes }
func (a *authRequest) GetState() string          { return a.req.State }
func (a *authRequest) GetSubject() string        { return a.subject }
func (a *authRequest) SetCurrentScopes([]string) {}
func (a *authRequest) GetResponseType() oidc.ResponseType {
	return oidc.ResponseType(a.req.ResponseType)
}
func (a *authRequest) GetResponseMode() oidc.ResponseMode {
	return oidc.ResponseMode(a.req.ResponseMode)
}

// Done: the phone approved, and the relying party has not taken its tokens yet.
func (a *authRequest) Done() bool { return a.login.Status == storage.LoginApproved }

func (a *authRequest) GetAuthTime() time.Time {
	if a.login.AuthTime == nil {
		return time.Time{}
	}
	return *a.login.AuthTime
}

func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.req.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.req.CodeChallenge, Method: oidc.CodeChallengeMethod(a.req.CodeChallengeMethod)}
}
