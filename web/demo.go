package web

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"
)

// demo is a development-mode relying party served beside the provider, so that a newcomer sees
// a whole login with one command. It is an ordinary OIDC client (go-oidc and x/oauth2, public
// client with PKCE) that happens to share the process: it reaches the provider over HTTP.
type demo struct {
	clientID  string
	publicURL string
	render    func(echo.Context, page, pageData) error

	mu       sync.Mutex
	provider *oidc.Provider // discovered on first use, when the server is listening
}

const demoCookie = "mcert_demo"

func (s *Server) demoRoutes() {
	if s.cfg.DemoClientID == "" {
		return
	}
	d := &demo{clientID: s.cfg.DemoClientID, publicURL: s.cfg.PublicURL, render: s.render}
	s.echo.GET("/demo", func(c echo.Context) error { return d.show(c, pageData{}) })
	s.echo.GET("/demo/login", d.login)
	s.echo.GET("/demo/callback", d.callback)
}

func (d *demo) config(ctx context.Context) (oauth2.Config, *oidc.Provider, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.provider == nil {
		p, err := oidc.NewProvider(ctx, d.publicURL)
		if err != nil {
			return oauth2.Config{}, nil, err
		}
		d.provider = p
	}
	return oauth2.Config{
		ClientID: d.clientID, Endpoint: d.provider.Endpoint(), RedirectURL: d.publicURL + "/demo/callback",
		Scopes: []string{oidc.ScopeOpenID, "profile", "email", "phone", "citizen_id"},
	}, d.provider, nil
}

// show renders the demo's page: its start, or the result in data. The language switch goes to
// the start, never to a used callback.
func (d *demo) show(c echo.Context, data pageData) error {
	data.SwitchPath = "/demo"
	return d.render(c, demoPage, data)
}

func (d *demo) login(c echo.Context) error {
	cfg, _, err := d.config(c.Request().Context())
	if err != nil {
		return d.show(c, pageData{Problem: "demo.error_discovery", Detail: err.Error()})
	}
	state, nonce, verifier := rand.Text(), rand.Text(), oauth2.GenerateVerifier()
	c.SetCookie(&http.Cookie{
		Name: demoCookie, Value: state + "." + nonce + "." + verifier, Path: "/demo", MaxAge: 600,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: strings.HasPrefix(d.publicURL, "https://"),
	})
	return c.Redirect(http.StatusFound, cfg.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)))
}

func (d *demo) callback(c echo.Context) error {
	q := c.QueryParams()
	// A relying party shows its visitor what the error means, in the visitor's language; the
	// error_description is for its developers.
	if e := q.Get("error"); e != "" {
		return d.show(c, pageData{Refusal: e})
	}
	ck, err := c.Cookie(demoCookie)
	parts := []string{}
	if err == nil {
		parts = strings.Split(ck.Value, ".")
	}
	if len(parts) != 3 || parts[0] != q.Get("state") {
		return d.show(c, pageData{Problem: "demo.error_state"})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 10*time.Second)
	defer cancel()
	claims, err := d.redeem(ctx, q.Get("code"), parts[1], parts[2])
	var refused *oauth2.RetrieveError
	switch {
	case errors.As(err, &refused) && refused.ErrorCode != "":
		return d.show(c, pageData{Refusal: refused.ErrorCode})
	case err != nil:
		return d.show(c, pageData{Problem: "demo.error_failed", Detail: err.Error()})
	}
	return d.show(c, pageData{Claims: claims})
}

// redeem exchanges the code with the PKCE verifier and verifies the ID token and its nonce,
// as any relying party must; it returns the token's claims for display.
func (d *demo) redeem(ctx context.Context, code, nonce, verifier string) (string, error) {
	cfg, p, err := d.config(ctx)
	if err != nil {
		return "", err
	}
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return "", err
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: d.clientID}).Verify(ctx, raw)
	if err != nil {
		return "", err
	}
	if idt.Nonce != nonce {
		return "", errors.New("nonce mismatch")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return "", err
	}
	pretty, err := json.MarshalIndent(claims, "", "  ")
	return string(pretty), err
}
