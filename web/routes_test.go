package web

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mcert/mcert/binding"
)

func TestRoutes(t *testing.T) {
	provider := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	routes := New(Config{Service: &binding.Service{}, Provider: provider}).Routes()
	for _, want := range []string{
		"GET /healthz",                 // on both listeners, listed once
		"GET /api/v1/bindings/:id",     // Echo's parameters as they are
		"ANY /oidc/*",                  // every method, one entry
		"POST /api/v1/admin/clients",   // the admin group's routes
		"PATCH /api/v1/devices/:id",    // two methods of one path,
		"DELETE /api/v1/devices/:id",   // two entries
		"GET /oidc/authorize/callback", // a route of its own beside the wildcard
	} {
		if !slices.Contains(routes, want) {
			t.Errorf("Routes() lacks %q: %q", want, routes)
		}
	}
	for i, r := range routes {
		method, path, _ := strings.Cut(r, " ")
		switch {
		case method == "" || path == "" || !strings.HasPrefix(path, "/"):
			t.Errorf("route %q is not METHOD /path", r)
		case strings.HasPrefix(path, "/oidc/*") && method != "ANY":
			t.Errorf("the provider's wildcard is listed by method: %q", r)
		case strings.Contains(r, "route_not_found"):
			t.Errorf("Echo's catch-all for a group's middleware is listed: %q", r)
		case i > 0 && routes[i-1] == r:
			t.Errorf("%q is listed twice", r)
		}
	}
}
