package web

import (
	"net/http"
	"strings"

	"github.com/mcert/mcert"
)

// wantsHTML reports whether r is a browser navigating, which reads a page, rather than a
// program or a page's script calling the API, which read PROTOCOL.md's JSON error.
func wantsHTML(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if strings.HasPrefix(r.URL.Path, "/api/") || strings.HasPrefix(r.URL.Path, "/static/") {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// ErrorPage answers a browser navigating to r with the error page of code, in the browser's
// language, and reports whether it did; a program gets false, and its JSON from the caller.
func (s *Server) ErrorPage(w http.ResponseWriter, r *http.Request, status int, code *mcert.Code) bool {
	if !wantsHTML(r) {
		return false
	}
	c := s.echo.NewContext(r, w)
	if err := s.renderStatus(c, status, errorPage, pageData{Refusal: code.Name, Status: status}); err != nil {
		s.cfg.Logger.Error("error page", "code", code.Name, "err", err)
		return false
	}
	return true
}
