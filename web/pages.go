package web

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"

	"github.com/labstack/echo/v4"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// templates are the pages parsed once per language, each set with its own t function.
var templates = parseTemplates()

func parseTemplates() map[string]*template.Template {
	out := make(map[string]*template.Template, len(catalog))
	for lang := range catalog {
		funcs := template.FuncMap{"t": translator(lang), "refusal": func(code string) string { return refusal(lang, code) }}
		out[lang] = template.Must(template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html"))
	}
	return out
}

// page is one server-rendered page: its template, the catalog key of its title, its script
// (a module in static/) and the catalog prefixes of the texts that script shows. Every script
// gets the texts of the error codes ("error."), to say what any refusal of the API means.
type page struct {
	template, title, script string
	messages                []string
}

var (
	homePage = page{"home.html", "home.title", "app.js",
		[]string{"common.", "error.", "home.", "card.", "account.", "device.", "bind.", "event.", "outcome."}}
	loginPage      = page{"login.html", "login.title", "login.js", []string{"common.", "error.", "login."}}
	phoneBindPage  = page{"phone-bind.html", "mbind.title", "phone-bind.js", []string{"common.", "error.", "phone.", "mbind."}}
	phoneLoginPage = page{"phone-login.html", "mlogin.title", "phone-login.js", []string{"common.", "error.", "phone.", "mlogin."}}
	phoneSignPage  = page{"phone-sign.html", "msign.title", "phone-sign.js", []string{"common.", "error.", "phone.", "msign."}}
	phoneInboxPage = page{"phone-inbox.html", "minbox.title", "phone-inbox.js", []string{"common.", "error.", "phone.", "minbox."}}
	demoPage       = page{"demo.html", "demo.title", "", nil}
	errorPage      = page{"error.html", "errorpage.title", "", nil}
)

// pageData is what the templates see.
type pageData struct {
	Lang, Other string // the page's language and the one the switch offers
	SwitchPath  string // where the switch goes, with ?lang=; "" is the page itself
	Title       string // catalog key
	Script      string
	Messages    map[string]string // the script's texts, as the page's JSON data block
	App         bool              // a phone page: it links the web app's manifest and registers its worker

	CardAgentURL string
	Operator     Operator

	// The demo's result: claims; or the error code the provider answered with; or a problem
	// of the demo's own, as a catalog key with its detail.
	Claims, Refusal, Problem, Detail string

	Status int // the error page's HTTP status

	// A mailed link's page: the form's action and token, or that it was used.
	Action, Token string
	Done          bool
}

func (s *Server) pageRoutes() {
	static, _ := fs.Sub(staticFS, "static") // the directory is embedded above, so Sub cannot fail
	s.echo.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", http.FileServer(http.FS(static)))))
	s.echo.GET("/", s.homePage)
	s.echo.GET("/m/bind", s.page(phoneBindPage))   // the token is in the fragment, for the script
	s.echo.GET("/m/login", s.page(phoneLoginPage)) // likewise
	s.echo.GET("/m/sign", s.page(phoneSignPage))   // the token is in the fragment, as for a login
	s.echo.GET("/m/inbox", s.page(phoneInboxPage)) // the device token is in the browser's storage
	s.echo.GET("/m/manifest.webmanifest", s.webManifest)
	s.echo.GET("/m/sw.js", s.serveServiceWorker) // from /m/, so that its scope is /m/
	s.echo.GET("/login/:id", s.loginPageFor)     // the script reads the id from the path
}

// homePage is the enrollment page. It opens the card component's popup, which must keep its
// window.opener to post the signature back: COOP same-origin would cut the popup off.
func (s *Server) homePage(c echo.Context) error {
	c.Response().Header().Set("Cross-Origin-Opener-Policy", "same-origin-allow-popups")
	return s.render(c, homePage, pageData{})
}

// page serves a page whose script does the rest through the JSON API.
func (s *Server) page(p page) echo.HandlerFunc {
	return func(c echo.Context) error { return s.render(c, p, pageData{}) }
}

// render writes page p in the request's language.
func (s *Server) render(c echo.Context, p page, data pageData) error {
	return s.renderStatus(c, http.StatusOK, p, data)
}

// renderStatus writes page p in the request's language with the given status.
func (s *Server) renderStatus(c echo.Context, status int, p page, data pageData) error {
	lang := s.language(c)
	data.Lang, data.Other, data.Title, data.Script = lang, otherLang(lang), p.title, p.script
	data.App = p.isAppPage()
	data.CardAgentURL, data.Operator = s.cfg.CardAgentURL, s.cfg.Operator
	if p.script != "" {
		data.Messages = messagesFor(lang, p.messages)
	}
	var buf bytes.Buffer
	if err := templates[lang].ExecuteTemplate(&buf, p.template, data); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Content-Language", lang)
	h.Add("Vary", "Accept-Language, Cookie")
	return c.HTMLBlob(status, buf.Bytes())
}
