package web

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// The phone pages under /m/ are an installable web app (PROTOCOL.md section 10): they link the
// manifest below and register the service worker, whose scope is /m/, the directory it is
// served from. The worker shows the push notifications of login and signing requests and opens
// the inbox.

// appScope is the web app's scope: the phone pages.
const appScope = "/m/"

// manifest is a web app manifest (W3C Web Application Manifest).
type manifest struct {
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	ShortName       string         `json:"short_name"`
	Description     string         `json:"description"`
	Lang            string         `json:"lang"`
	Dir             string         `json:"dir"`
	StartURL        string         `json:"start_url"`
	Scope           string         `json:"scope"`
	Display         string         `json:"display"`
	BackgroundColor string         `json:"background_color"`
	ThemeColor      string         `json:"theme_color"`
	Icons           []manifestIcon `json:"icons"`
}

type manifestIcon struct {
	Src     string `json:"src"`
	Sizes   string `json:"sizes"`
	Type    string `json:"type"`
	Purpose string `json:"purpose"`
}

// themeColor is the pages' header blue (style.css's --blue), as the phone's status bar.
const themeColor = "#0b5394"

// appIcons are the PNG renderings of static/icon.svg; the maskable one keeps its glyph inside
// the safe zone and fills the square, for launchers that cut their own shape.
var appIcons = []manifestIcon{
	{"/static/icon-192.png", "192x192", "image/png", "any"},
	{"/static/icon-512.png", "512x512", "image/png", "any"},
	{"/static/icon-maskable-512.png", "512x512", "image/png", "maskable"},
}

// webManifest serves the manifest in the request's language: the pages link it with
// crossorigin="use-credentials", so that the language cookie comes with it.
func (s *Server) webManifest(c echo.Context) error {
	lang := s.language(c)
	text := catalog[lang]
	body, err := json.Marshal(manifest{
		ID: appScope + "inbox", StartURL: appScope + "inbox", Scope: appScope, Display: "standalone",
		Name: text["app.name"], ShortName: text["app.short_name"], Description: text["app.description"],
		Lang: lang, Dir: "ltr", BackgroundColor: "#f6f7f9", ThemeColor: themeColor, Icons: appIcons,
	})
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Language", lang)
	h.Add("Vary", "Accept-Language, Cookie")
	return c.Blob(http.StatusOK, "application/manifest+json", body)
}

//go:embed sw.js
var serviceWorkerSource string

// serviceWorker is the worker's script: the catalog's "push." texts of both languages, then
// sw.js. The page names its language in the worker's URL (/m/sw.js?lang=en), which the
// worker reads: it cannot see the page nor its cookie.
var serviceWorker = func() []byte {
	texts := map[string]map[string]string{}
	for lang := range catalog {
		texts[lang] = messagesFor(lang, []string{"push."})
	}
	data, _ := json.Marshal(texts) // a map of strings always encodes
	return fmt.Appendf(nil, "const texts = %s;\nconst defaultLang = %q;\n\n%s", data, langZH, serviceWorkerSource)
}()

// serveServiceWorker serves the worker from /m/, so that its scope may be /m/ without a
// Service-Worker-Allowed header. Browsers check it for a new version on every visit to a phone
// page; no-cache keeps any cache on the way from answering for it.
func (s *Server) serveServiceWorker(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, "text/javascript; charset=utf-8", serviceWorker)
}

// isAppPage reports whether p is one of the phone pages, served under /m/, which belong to
// the web app: their templates are named phone-*.html.
func (p page) isAppPage() bool { return strings.HasPrefix(p.template, "phone-") }
