package web

import (
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

// anyMethods are the methods Echo registers a route for with Any.
var anyMethods = func() []string {
	var out []string
	for _, r := range echo.New().Any("/", func(echo.Context) error { return nil }) {
		out = append(out, r.Method)
	}
	return out
}()

// Routes lists what the server serves, on the public listener and the operator's, each route
// once, as "METHOD /path" with Echo's path parameters (/api/v1/bindings/:id) and wildcards
// (/oidc/*), sorted by path. A path served for every method, which its handler sorts out (the
// OpenID Provider's), is one entry "ANY /path". The catch-all routes Echo adds for a group's
// middleware are not routes of the server's and are left out. docs/api.md documents each entry
// (TestAPIDocCoversServer in cmd/mcert).
func (s *Server) Routes() []string {
	methods := map[string][]string{} // path → methods
	for _, e := range []*echo.Echo{s.echo, s.admin} {
		for _, r := range e.Routes() {
			if r.Method == echo.RouteNotFound || slices.Contains(methods[r.Path], r.Method) {
				continue
			}
			methods[r.Path] = append(methods[r.Path], r.Method)
		}
	}
	var out []string
	for path, ms := range methods {
		if !slices.ContainsFunc(anyMethods, func(m string) bool { return !slices.Contains(ms, m) }) {
			out = append(out, "ANY "+path)
			continue
		}
		for _, m := range ms {
			out = append(out, m+" "+path)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		ma, pa, _ := strings.Cut(a, " ")
		mb, pb, _ := strings.Cut(b, " ")
		if c := strings.Compare(pa, pb); c != 0 {
			return c
		}
		return strings.Compare(ma, mb)
	})
	return out
}
