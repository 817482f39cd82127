package web

import (
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

var pages = template.Must(template.ParseFS(templateFS, "templates/*.html"))

func (s *Server) pageRoutes() {
	static, _ := fs.Sub(staticFS, "static") // the directory is embedded above, so Sub cannot fail
	s.echo.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", http.FileServer(http.FS(static)))))
	s.echo.GET("/", s.page("home.html"))
	s.echo.GET("/m/bind", s.page("phone.html"))
	s.echo.GET("/m/login", s.page("phone.html"))
	s.echo.GET("/login/:id", s.page("login.html")) // the script reads the id from the path
}

// page renders a template; the pages' scripts do the rest through the JSON API.
func (s *Server) page(name string) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
		c.Response().WriteHeader(http.StatusOK)
		return pages.ExecuteTemplate(c.Response(), name, map[string]string{"CardAgentURL": s.cfg.CardAgentURL})
	}
}
