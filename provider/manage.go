package provider

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/storage"
)

// Clients is the operator's management of the registered relying parties: the admin API and
// the mcert rp commands both go through it, so that a change is validated, made and written
// to the audit log the same way however it is asked for.
type Clients struct {
	Service *binding.Service
}

// ClientInfo is a registered relying party as the operator sees it: everything but its secret.
type ClientInfo struct {
	ID                     string   `json:"client_id"`
	Name                   string   `json:"name"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	Public                 bool     `json:"public"`
	CitizenID              bool     `json:"citizen_id"`
	CIBA                   bool     `json:"ciba"`
	Sign                   bool     `json:"sign"`
	DeliveryMode           string   `json:"backchannel_token_delivery_mode,omitempty"`
	NotificationEndpoint   string   `json:"backchannel_client_notification_endpoint,omitempty"`
	IDTokenAlg             string   `json:"id_token_signed_response_alg"`
	Disabled               bool     `json:"disabled"`
	CreatedAt              string   `json:"created_at"`
}

func infoOf(c storage.Client) ClientInfo {
	mode := ""
	switch {
	case c.CIBAPing != "":
		mode = "ping"
	case c.CIBA:
		mode = "poll"
	}
	return ClientInfo{
		DeliveryMode: mode, NotificationEndpoint: c.CIBAPing,
		ID: c.ID, Name: c.Name, RedirectURIs: orEmpty(c.RedirectURIs), PostLogoutRedirectURIs: orEmpty(c.PostLogoutRedirectURIs),
		Public: c.SecretHash == nil, CitizenID: c.CitizenID, CIBA: c.CIBA, Sign: c.Sign, IDTokenAlg: cmp.Or(c.IDTokenAlg, "RS256"),
		Disabled: c.Disabled, CreatedAt: c.CreatedAt.UTC().Format(time.RFC3339),
	}
}

// orEmpty makes a missing list [] rather than null in JSON.
func orEmpty(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}

// ClientChange is an edit of a registered relying party: what is nil stays as it is. Whether
// a client is public, and its ID, cannot change: that is another client, to register anew.
type ClientChange struct {
	Name                   *string
	RedirectURIs           *[]string
	PostLogoutRedirectURIs *[]string
	CitizenID              *bool
	CIBA                   *bool
	Sign                   *bool
	IDTokenAlg             *string
	Disabled               *bool

	problems []string // of the body ClientChangeFrom read it from
}

// ClientChangeFrom reads an edit from the fields of a JSON object, named as in a registration
// (and "disabled"). A field it does not know, or one of the wrong type, is a problem that Edit
// reports together with the edit's own.
func ClientChangeFrom(fields map[string]json.RawMessage) ClientChange {
	var ch ClientChange
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		raw := fields[name]
		var problem string
		switch name {
		case "name":
			ch.Name, problem = field[string](name, raw, "a string")
		case "redirect_uris":
			ch.RedirectURIs, problem = field[[]string](name, raw, "an array of strings")
		case "post_logout_redirect_uris":
			ch.PostLogoutRedirectURIs, problem = field[[]string](name, raw, "an array of strings")
		case "citizen_id":
			ch.CitizenID, problem = field[bool](name, raw, "true or false")
		case "ciba":
			ch.CIBA, problem = field[bool](name, raw, "true or false")
		case "sign":
			ch.Sign, problem = field[bool](name, raw, "true or false")
		case "id_token_signed_response_alg":
			ch.IDTokenAlg, problem = field[string](name, raw, "a string")
		case "disabled":
			ch.Disabled, problem = field[bool](name, raw, "true or false")
		case "client_secret":
			problem = "client_secret cannot be set: rotate it with POST /api/v1/admin/clients/<id>/secret"
		case "client_id", "public", "created_at":
			problem = fmt.Sprintf("%s cannot be changed: register a new client instead", name)
		default:
			problem = fmt.Sprintf("unknown field %q: a client has name, redirect_uris, post_logout_redirect_uris, citizen_id, ciba, sign, id_token_signed_response_alg and disabled", name)
		}
		if problem != "" {
			ch.problems = append(ch.problems, problem)
		}
	}
	return ch
}

// field decodes one field's value, or says what it must be.
func field[T any](name string, raw json.RawMessage, what string) (*T, string) {
	v := new(T)
	if string(raw) == "null" || json.Unmarshal(raw, v) != nil {
		return nil, fmt.Sprintf("%s must be %s", name, what)
	}
	return v, ""
}

// metadata reports whether the change edits more than whether the client is disabled.
func (ch ClientChange) metadata() bool {
	return ch.Name != nil || ch.RedirectURIs != nil || ch.PostLogoutRedirectURIs != nil || ch.CitizenID != nil || ch.CIBA != nil || ch.Sign != nil || ch.IDTokenAlg != nil
}

func (ch ClientChange) apply(c storage.Client) storage.Client {
	if ch.Name != nil {
		c.Name = strings.TrimSpace(*ch.Name)
	}
	if ch.RedirectURIs != nil {
		c.RedirectURIs = *ch.RedirectURIs
	}
	if ch.PostLogoutRedirectURIs != nil {
		c.PostLogoutRedirectURIs = *ch.PostLogoutRedirectURIs
	}
	if ch.CitizenID != nil {
		c.CitizenID = *ch.CitizenID
	}
	if ch.CIBA != nil {
		c.CIBA = *ch.CIBA
	}
	if ch.Sign != nil {
		c.Sign = *ch.Sign
	}
	if ch.IDTokenAlg != nil {
		c.IDTokenAlg = *ch.IDTokenAlg
	}
	if ch.Disabled != nil {
		c.Disabled = *ch.Disabled
	}
	return c
}

func specOf(c storage.Client) ClientSpec {
	return ClientSpec{
		ID: c.ID, Name: c.Name, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		Public: c.SecretHash == nil, CitizenID: c.CitizenID, CIBA: c.CIBA, Sign: c.Sign, CIBAPing: c.CIBAPing, IDTokenAlg: c.IDTokenAlg,
	}
}

// Register registers a relying party (RegisterClient) as the operator's action.
func (cs Clients) Register(ctx context.Context, spec ClientSpec) (NewClient, error) {
	return RegisterClient(ctx, cs.Service, spec, binding.EventAdminClientCreate)
}

// Registration is a registered relying party as the admin API answers its registration: the
// metadata registered, and the secret, shown this once.
type Registration struct {
	ClientInfo
	Secret string `json:"client_secret,omitempty"`
}

// Create registers a relying party as Register does, and answers with what was registered.
func (cs Clients) Create(ctx context.Context, spec ClientSpec) (Registration, error) {
	out, err := cs.Register(ctx, spec)
	if err != nil {
		return Registration{}, err
	}
	c, err := cs.Service.Client(ctx, out.ID)
	if err != nil {
		return Registration{}, err
	}
	return Registration{ClientInfo: infoOf(c), Secret: out.Secret}, nil
}

// List is every registered relying party, oldest first.
func (cs Clients) List(ctx context.Context) ([]ClientInfo, error) {
	list, err := cs.Service.Clients(ctx)
	if err != nil {
		return nil, err
	}
	infos := make([]ClientInfo, 0, len(list))
	for _, c := range list {
		infos = append(infos, infoOf(c))
	}
	return infos, nil
}

// Edit applies ch to the relying party id, validated as a registration is, with every problem
// at once, and returns it as it is now. Disabling it refuses it everywhere: the authorization
// endpoint, the token endpoint, CIBA, revocation and introspection, and its access tokens are
// inactive at userinfo and introspection until it is enabled again.
func (cs Clients) Edit(ctx context.Context, id string, ch ClientChange) (ClientInfo, error) {
	var events []string
	if ch.metadata() {
		events = append(events, binding.EventAdminClientUpdate)
	}
	switch {
	case ch.Disabled == nil:
	case *ch.Disabled:
		events = append(events, binding.EventAdminClientDisable)
	default:
		events = append(events, binding.EventAdminClientEnable)
	}
	c, err := cs.Service.ChangeClient(ctx, id, func(c *storage.Client) error {
		*c = ch.apply(*c)
		if problems := slices.Concat(ch.problems, specOf(*c).problems()); len(problems) > 0 {
			return invalidMetadata(problems)
		}
		return nil
	}, events...)
	if err != nil {
		return ClientInfo{}, err
	}
	return infoOf(c), nil
}

// Delete removes the relying party id and its access tokens, and returns what it was.
func (cs Clients) Delete(ctx context.Context, id string) (ClientInfo, error) {
	c, err := cs.Service.DeleteClient(ctx, id)
	if err != nil {
		return ClientInfo{}, err
	}
	return infoOf(c), nil
}

// RotateSecret gives the confidential relying party id a new secret, returned only now; the old
// one stops working at once. The client's access tokens stay as they are.
func (cs Clients) RotateSecret(ctx context.Context, id string) (NewClient, error) {
	secret, hash := newSecret()
	_, err := cs.Service.ChangeClient(ctx, id, func(c *storage.Client) error {
		if c.SecretHash == nil {
			return mcert.PublicClient.Newf(id)
		}
		c.SecretHash = hash
		return nil
	}, binding.EventAdminClientRotateSecret)
	if err != nil {
		return NewClient{}, err
	}
	return NewClient{ID: id, Secret: secret}, nil
}
