// Package provider makes mcert an OpenID Provider for relying parties. zitadel/oidc's op package
// does the protocol (discovery, the authorization code flow with PKCE, ID tokens, JWKS, the
// checks of logout); this package adapts it to mcert's store and login transactions, answers
// where op's answers are not those of the RFCs (errors, and userinfo, revocation and
// introspection, see backchannel.go), and adds what op does not have: the decoupled (CIBA,
// poll mode) login.
package provider

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/storage"
)

// Paths of the provider's endpoints, under the issuer (the public URL).
const (
	PathPrefix    = "/oidc/"
	DiscoveryPath = "/.well-known/openid-configuration"
	authorizePath = "/oidc/authorize"
	// ContinuePath is where the login page sends the browser once the phone has answered.
	ContinuePath    = authorizePath + "/callback"
	tokenPath       = "/oidc/token"
	userinfoPath    = "/oidc/userinfo"
	revokePath      = "/oidc/revoke"
	introspectPath  = "/oidc/introspect"
	endSessionPath  = "/oidc/end_session"
	keysPath        = "/oidc/keys"
	backchannelPath = "/oidc/bc-authorize"
	cibaGrantType   = "urn:openid:params:grant-type:ciba"
	accessTokenTTL  = time.Hour
	idTokenTTL      = time.Hour
)

// Endpoint reports whether path is one of the provider's endpoints (those of newRoutes), so
// that metrics and logs may name a request by its path: any other path under PathPrefix is
// the client's to make up.
func Endpoint(path string) bool {
	switch path {
	case DiscoveryPath, authorizePath, ContinuePath, tokenPath, userinfoPath, revokePath, introspectPath, endSessionPath, keysPath, backchannelPath:
		return true
	}
	return false
}

// Config is what the provider needs.
type Config struct {
	Service *binding.Service
	Issuer  string // the public URL
	Logger  *slog.Logger
	// ErrorPage, when set, answers a browser's navigation that failed with no relying party to
	// send the error to (an unknown client, say) with a page a person can read; it reports
	// whether it did. Others get the OAuth JSON error.
	ErrorPage func(w http.ResponseWriter, r *http.Request, status int, code *mcert.Code) bool
}

// Provider serves the OpenID Provider endpoints.
type Provider struct {
	svc       *binding.Service
	errorPage func(w http.ResponseWriter, r *http.Request, status int, code *mcert.Code) bool
	issuer    string
	logger    *slog.Logger
	op        *op.Provider
	subs      subjects
	routes    map[string]http.Handler
	// parsed are the signing keys' private halves by key ID, parsed once: an ID's key never
	// changes, and parsing an RSA key (its checks and precomputation) cost an eighth of a CIBA
	// login's CPU when it was done for every token.
	parsed sync.Map
}

// New builds the provider on the store's shared secrets and signing keys, creating them on
// first use, so that every instance on one store issues tokens the others accept. The
// service's store seals them (seal.Store); one stored in the clear (see seal.SealPlain), or sealed
// with another key, is refused, the latter with an error that wraps seal.ErrWrongKey.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	p := &Provider{svc: cfg.Service, issuer: strings.TrimRight(cfg.Issuer, "/"), logger: cfg.Logger, errorPage: cfg.ErrorPage}
	p.svc.Decided = p.decided
	if p.logger == nil {
		p.logger = slog.Default()
	}
	cryptoKey, err := p.svc.Secret(ctx, cryptoKeyName, random32)
	if err != nil {
		return nil, fmt.Errorf("provider crypto key: %w", err)
	}
	subjectKey, err := p.svc.Secret(ctx, subjectKeyName, random32)
	if err != nil {
		return nil, fmt.Errorf("pairwise subject key: %w", err)
	}
	if p.subs, err = newSubjects(subjectKey); err != nil {
		return nil, err
	}
	if err := p.ensureSigningKeys(ctx); err != nil {
		return nil, err
	}
	config := &op.Config{
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		SupportedScopes:          []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopePhone, scopeCitizenID},
		SupportedClaims:          []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "acr", "amr", "azp", "name", "email", "email_verified", "phone_number", "phone_number_verified", claimCitizenID},
		DefaultLogoutRedirectURI: "/",
	}
	copy(config.CryptoKey[:], cryptoKey)
	opts := []op.Option{
		op.WithCustomEndpoints(
			op.NewEndpoint(authorizePath), op.NewEndpoint(tokenPath), op.NewEndpoint(userinfoPath),
			op.NewEndpoint(revokePath), op.NewEndpoint(endSessionPath), op.NewEndpoint(keysPath),
		),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint(introspectPath)),
		// op's CORS reflects any origin and allows credentials, on every endpoint; off, for
		// routes to apply mcert's own to the endpoints scripts may call.
		op.WithCORSOptions(nil),
	}
	if u, err := url.Parse(p.issuer); err == nil && u.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure()) // development on http://localhost only: serve's config refuses other http URLs
	}
	p.op, err = op.NewProvider(config, &opStorage{p}, op.StaticIssuer(p.issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("OpenID provider: %w", err)
	}
	p.routes = p.newRoutes()
	return p, nil
}

func random32() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// newRoutes maps every endpoint to its handler: op's behind mcert's wrappers, which answer
// what op would answer wrongly for mcert (text/plain errors, missing challenges, prompts and
// response modes mcert cannot serve) and add what op does not have (CIBA, the browser binding).
//
// Scripts of any origin may read discovery, the keys and the back-channel endpoints (a public
// client's page redeems its code itself), without credentials: those endpoints authenticate
// by what the request carries, never by a cookie. The endpoints a browser navigates to get no
// CORS headers, and neither does the backchannel endpoint, which serves servers.
func (p *Provider) newRoutes() map[string]http.Handler {
	crossOrigin := cors.New(cors.Options{
		AllowedOrigins: []string{"*"},
		AllowedMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost},
		AllowedHeaders: []string{"Authorization", "Content-Type"},
		ExposedHeaders: []string{"WWW-Authenticate"},
	}).Handler
	return map[string]http.Handler{
		DiscoveryPath:   crossOrigin(http.HandlerFunc(p.discovery)),
		keysPath:        crossOrigin(p.op),
		tokenPath:       crossOrigin(http.HandlerFunc(p.token)),
		userinfoPath:    crossOrigin(http.HandlerFunc(p.userinfo)),
		revokePath:      crossOrigin(http.HandlerFunc(p.revoke)),
		introspectPath:  crossOrigin(http.HandlerFunc(p.introspect)),
		authorizePath:   http.HandlerFunc(p.authorize),
		ContinuePath:    http.HandlerFunc(p.callback),
		endSessionPath:  http.HandlerFunc(p.endSession),
		backchannelPath: http.HandlerFunc(p.backchannelAuthorize),
	}
}

// ServeHTTP serves every path under /oidc/ and the discovery document.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := p.routes[r.URL.Path]
	if !ok {
		oauthError(w, http.StatusNotFound, mcert.InvalidRequest, "no such endpoint; the discovery document at "+DiscoveryPath+" lists them")
		return
	}
	h.ServeHTTP(&storeDown{ResponseWriter: w, r: r, p: p}, r)
}

// storeDown turns a server error into 503 temporarily_unavailable when the store does not
// answer, which is then its likely cause: op answers every failure of its storage as a 500
// server_error, where a client should learn that trying again soon may work (RFC 6749
// section 4.1.2.1 has temporarily_unavailable for it). The store is asked only on a 500.
type storeDown struct {
	http.ResponseWriter
	r        *http.Request
	p        *Provider
	answered bool // the 503 is written; what the handler writes after goes nowhere
}

func (d *storeDown) WriteHeader(status int) {
	if status != http.StatusInternalServerError || d.answered {
		d.ResponseWriter.WriteHeader(status)
		return
	}
	ctx, cancel := context.WithTimeout(d.r.Context(), 2*time.Second)
	defer cancel()
	if d.p.svc.Ping(ctx) == nil {
		d.ResponseWriter.WriteHeader(status)
		return
	}
	d.answered = true
	w := d.ResponseWriter
	for _, h := range []string{"Content-Length", "Content-Type", "Location"} {
		w.Header().Del(h)
	}
	w.Header().Set("Retry-After", "5")
	if d.p.errorPage != nil && d.p.errorPage(w, d.r, http.StatusServiceUnavailable, mcert.StoreUnavailable) {
		return
	}
	oauthError(w, http.StatusServiceUnavailable, mcert.TemporarilyUnavailable, mcert.StoreUnavailable.Message)
}

func (d *storeDown) Write(b []byte) (int, error) {
	if d.answered {
		return len(b), nil
	}
	return d.ResponseWriter.Write(b)
}

// allow answers 405 unless the request's method is one of methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	oauthError(w, http.StatusMethodNotAllowed, mcert.InvalidRequest, "use "+strings.Join(methods, " or "))
	return false
}

// Bounds on what an anonymous authorization request may make the store keep: generous for
// every relying-party library (some put a signed JWT in state), far below what fills a disk.
const (
	maxStateLen  = 2048
	maxNonceLen  = 512
	maxParamLen  = 2048
	maxScopes    = 16
	maxScopesLen = 512
)

// authorize is op's authorization endpoint, after what op does not do: it refuses oversized
// parameters and the requests of refuseAuthorization, and it gives the browser its browser
// secret (see binding.Browser), so that the login the request starts belongs to that browser
// alone.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	if err := r.ParseForm(); err != nil {
		p.navigationError(w, r, http.StatusBadRequest, mcert.InvalidRequest, "the request's parameters could not be read")
		return
	}
	if problem := oversized(r.Form); problem != "" {
		p.navigationError(w, r, http.StatusBadRequest, mcert.InvalidRequest, problem)
		return
	}
	if p.refuseAuthorization(w, r) {
		return
	}
	name := binding.BrowserCookie(p.issuer)
	var held string
	if c, err := r.Cookie(name); err == nil {
		held = c.Value
	}
	secret, isNew := binding.BrowserSecret(held)
	if isNew {
		// A session cookie: it lives as long as the browser, and a login lasts minutes.
		http.SetCookie(w, &http.Cookie{
			Name: name, Value: secret, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode,
			Secure: strings.HasPrefix(p.issuer, "https://"),
		})
	}
	ctx := context.WithValue(r.Context(), browserKey{}, binding.Browser{Secret: secret, UserAgent: r.UserAgent()})
	p.op.ServeHTTP(w, r.WithContext(ctx))
}

// refuseAuthorization answers, and reports true for, the authorization requests that op
// would answer in plain text, or serve in a way mcert cannot:
//   - no client_id or an unknown one, no redirect_uri or one the client did not register:
//     there is nowhere safe to send the error (RFC 6749 section 4.1.2.1);
//   - prompt=none: mcert keeps no login session, since every login is approved on the phone,
//     so it never can log the citizen in without showing a page (OIDC Core section 3.1.2.6);
//   - response_mode=form_post: the pages' Content-Security-Policy (form-action 'self', no
//     inline script) stops op's self-posting form.
//
// It validates the request as op's authorization endpoint does, which then validates it
// again; the second time is cheap.
func (p *Provider) refuseAuthorization(w http.ResponseWriter, r *http.Request) bool {
	ctx := op.ContextWithIssuer(r.Context(), p.issuer)
	req, err := op.ParseAuthorizeRequest(r, p.op.Decoder())
	if err != nil {
		p.navigationError(w, r, http.StatusBadRequest, mcert.InvalidRequest, "the request's parameters could not be read")
		return true
	}
	if req.ClientID == "" {
		p.navigationError(w, r, http.StatusBadRequest, mcert.InvalidRequest, "client_id is missing")
		return true
	}
	c, err := p.op.Storage().GetClientByClientID(ctx, req.ClientID)
	if err != nil { // unknown or disabled: a relying party not to send the browser back to
		p.navigationError(w, r, http.StatusBadRequest, mcert.InvalidClient, oidc.DefaultToServerError(err, "unknown client_id").Description)
		return true
	}
	_, err = op.ValidateAuthRequestClient(ctx, req, c, p.op.IDTokenHintVerifier(ctx))
	switch {
	case err != nil:
	case req.ResponseMode != "" && req.ResponseMode != oidc.ResponseModeQuery && req.ResponseMode != oidc.ResponseModeFragment:
		err = oidc.ErrInvalidRequest().WithDescription("response_mode must be query or fragment")
	case slices.Contains(req.Prompt, oidc.PromptNone):
		err = oidc.ErrLoginRequired().WithDescription("every login is approved on the phone: there is no session to log in without it")
	default:
		return false
	}
	if e := oidc.DefaultToServerError(err, err.Error()); e.IsRedirectDisabled() {
		p.navigationError(w, r, http.StatusBadRequest, codeOf(e), e.Description)
		return true
	}
	op.AuthRequestError(w, r, req, err, p.op)
	return true
}

type browserKey struct{}

// oversized says which parameter of an authorization request is too large, or "".
func oversized(form url.Values) string {
	for name, values := range form {
		if len(values) > 1 {
			return fmt.Sprintf("the parameter %s is given more than once", name)
		}
		limit := maxParamLen
		switch name {
		case "state":
			limit = maxStateLen
		case "nonce":
			limit = maxNonceLen
		case "scope":
			if scopes := strings.Fields(values[0]); len(scopes) > maxScopes {
				return fmt.Sprintf("scope lists more than %d scopes", maxScopes)
			}
			limit = maxScopesLen
		}
		if len(values[0]) > limit {
			return fmt.Sprintf("the parameter %s is longer than %d bytes", name, limit)
		}
	}
	return ""
}

// ContinueURL is where the login page sends the browser once the phone has approved: op's
// callback, which redirects to the relying party with the code.
func (p *Provider) ContinueURL(ctx context.Context, loginID string) string {
	return op.AuthCallbackURL(p.op)(op.ContextWithIssuer(ctx, p.issuer), loginID)
}

// callback returns the browser to the relying party: op's callback, except that a login the
// citizen denied on the phone answers access_denied (op would say interaction_required). The
// web layer lets only the browser that started the login this far (ContinuePath), and only a
// navigation, GET, which it checks.
func (p *Provider) callback(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	id := r.URL.Query().Get("id")
	l, err := p.svc.AuthRequest(r.Context(), id)
	if err == nil && (l.Status == storage.LoginDenied || l.Status == storage.LoginRefused) {
		if req, err := p.authRequest(id, l); err == nil {
			answer := oidc.ErrAccessDenied()
			if l.Reason == mcert.AssuranceTooLow.Name {
				// OpenID Connect Core Error Code unmet_authentication_requirements 1.0.
				answer = &oidc.Error{ErrorType: "unmet_authentication_requirements"} // mcert.UnmetAuthenticationRequirements
			}
			op.AuthRequestError(w, r, req, answer.WithDescription("%s", refusedDescription(l)), p.op)
			return
		}
	}
	p.op.ServeHTTP(w, r)
}

// refusedDescription tells the relying party why a login ended without tokens: the citizen
// said no on the phone, cancelled on the login page, or the phone was refused (the reason's
// error code then follows, for the website's logs).
func refusedDescription(l storage.Login) string {
	switch {
	case l.Status == storage.LoginRefused:
		return "the citizen's phone was refused: " + l.Reason
	case l.Reason != "":
		return "the citizen cancelled the login"
	}
	return "the citizen denied the login on the phone"
}

// discovery is op's discovery document, cut to what mcert does (op lists what it could do with
// other storage and clients), with what mcert adds: pairwise subjects and CIBA.
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	ctx := op.ContextWithIssuer(r.Context(), p.issuer)
	doc := op.CreateDiscoveryConfig(ctx, p.op, p.op.Storage())
	doc.SubjectTypesSupported = []string{"pairwise"}
	doc.ResponseTypesSupported = []string{string(oidc.ResponseTypeCode)}
	doc.ResponseModesSupported = []string{string(oidc.ResponseModeQuery), string(oidc.ResponseModeFragment)}
	doc.GrantTypesSupported = []oidc.GrantType{oidc.GrantTypeCode, cibaGrantType}
	doc.IntrospectionEndpointAuthMethodsSupported = []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost}
	// Algorithms of private_key_jwt, which no endpoint accepts.
	doc.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	doc.RevocationEndpointAuthSigningAlgValuesSupported = nil
	doc.DeviceAuthorizationEndpoint = ""
	doc.ACRValuesSupported = binding.ACRValues()
	doc.CodeChallengeMethodsSupported = []oidc.CodeChallengeMethod{oidc.CodeChallengeMethodS256}
	raw, err := json.Marshal(doc)
	var out map[string]any
	if err == nil {
		err = json.Unmarshal(raw, &out)
	}
	if err != nil {
		oauthError(w, http.StatusInternalServerError, mcert.ServerError, "the discovery document could not be built")
		return
	}
	out["backchannel_authentication_endpoint"] = p.issuer + backchannelPath
	out["backchannel_token_delivery_modes_supported"] = []string{"poll", "ping"}
	out["backchannel_user_code_parameter_supported"] = false
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, out)
}

// endSession is RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) on op's
// validation, with its errors as OAuth error bodies: op answers a query it cannot parse with
// a 500, and ignores a post_logout_redirect_uri it has no client to check against.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet, http.MethodPost) {
		return
	}
	req, err := op.ParseEndSessionRequest(r, p.op.Decoder())
	if err != nil {
		p.navigationError(w, r, http.StatusBadRequest, mcert.InvalidRequest, "the request's parameters could not be read")
		return
	}
	if req.PostLogoutRedirectURI != "" && req.IdTokenHint == "" && req.ClientID == "" {
		p.navigationError(w, r, http.StatusBadRequest, mcert.InvalidRequest, "post_logout_redirect_uri needs id_token_hint or client_id, to check that the client registered it")
		return
	}
	ctx := op.ContextWithIssuer(r.Context(), p.issuer)
	session, err := op.ValidateEndSessionRequest(ctx, req, p.op)
	if err == nil {
		err = p.op.Storage().TerminateSession(ctx, session.UserID, session.ClientID)
	}
	if err != nil {
		if e := oidc.DefaultToServerError(err, err.Error()); e.ErrorType != oidc.ServerError {
			p.navigationError(w, r, http.StatusBadRequest, codeOf(e), e.Description)
			return
		}
		p.logger.Error("end session", "err", err)
		p.navigationError(w, r, http.StatusInternalServerError, mcert.ServerError, "internal error; try again later")
		return
	}
	http.Redirect(w, r, session.RedirectURI, http.StatusFound)
}

// navigationError answers a request a browser navigated to when there is no relying party to
// send the error back to: the error page for a browser, the OAuth JSON error for a program.
func (p *Provider) navigationError(w http.ResponseWriter, r *http.Request, status int, code *mcert.Code, description string) {
	if p.errorPage != nil && p.errorPage(w, r, status, code) {
		return
	}
	oauthError(w, status, code, description)
}

// oauthError writes an OAuth 2.0 error body (RFC 6749 section 5.2), which no cache keeps.
func oauthError(w http.ResponseWriter, status int, code *mcert.Code, description string) {
	noStore(w)
	writeJSON(w, status, map[string]string{"error": code.Name, "error_description": description})
}

// codeOf is the catalog's entry for an error of op's. The catalog holds every type op has
// (TestOpErrorTypes); one that a later op might add is answered as a server error rather than
// as a code the pages cannot explain.
func codeOf(e *oidc.Error) *mcert.Code {
	if c := mcert.Lookup(string(e.ErrorType)); c != nil {
		return c
	}
	return mcert.ServerError
}

// noStore keeps an answer out of every cache, as RFC 6749 section 5.1 asks of token responses
// (Pragma for HTTP/1.0 caches).
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
