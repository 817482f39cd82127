package main

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/web"
)

// apiDoc is the API reference, from this package's directory.
var apiDoc = filepath.Join("..", "..", "docs", "api.md")

// TestAPIDocCoversServer keeps docs/api.md honest: every route the server serves, every endpoint
// its discovery document names, and every code of the error catalog must be in it, so that a new
// endpoint or code without documentation fails here.
func TestAPIDocCoversServer(t *testing.T) {
	data, err := os.ReadFile(apiDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	s := startServer(t) // development mode: the demo relying party's routes too
	var missing []string
	for _, route := range s.server.Handler.(*web.Server).Routes() {
		method, path, _ := strings.Cut(route, " ")
		switch {
		case path == provider.PathPrefix+"*":
			// The OpenID Provider's endpoints share one route: the discovery document names them.
			for _, endpoint := range discoveredEndpoints(t, s) {
				if !documents(doc, "GET", endpoint) && !documents(doc, "POST", endpoint) {
					missing = append(missing, "the endpoint "+endpoint+" (from discovery), as GET or POST")
				}
			}
		case method == "ANY":
			if !documents(doc, "GET", docPath(path)) && !documents(doc, "POST", docPath(path)) {
				missing = append(missing, "the route "+route+", as GET or POST "+docPath(path))
			}
		case !documents(doc, method, docPath(path)):
			missing = append(missing, "the route "+method+" "+docPath(path))
		}
	}
	for _, c := range mcert.Codes() {
		if !strings.Contains(doc, "| `"+c.Name+"` |") {
			missing = append(missing, "the error code "+c.Name+", as a row of the error catalog")
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s does not document:\n  %s\nDescribe each where a reader looks for it: the method and path as `METHOD /path/<param>`, the codes in the catalog's tables (section 1.3).",
			apiDoc, strings.Join(missing, "\n  "))
	}
}

// docPath writes a route's Echo parameters as the document does: /api/v1/bindings/<id>.
func docPath(path string) string {
	return regexp.MustCompile(`:([A-Za-z_]+)`).ReplaceAllString(path, "<$1>")
}

// documents reports whether doc names "METHOD path" as a whole: /api/v1/account is not
// documented by /api/v1/account/events alone.
func documents(doc, method, path string) bool {
	re := regexp.MustCompile(`(^|[^A-Za-z])` + regexp.QuoteMeta(method+" "+path) + `($|[^A-Za-z0-9_/.<>*-])`)
	return re.MatchString(doc)
}

// discoveredEndpoints are the paths of the endpoints the discovery document advertises.
func discoveredEndpoints(t *testing.T, s *server) []string {
	t.Helper()
	b := s.browser(t)
	var paths []string
	for name, v := range b.do("GET", provider.DiscoveryPath, nil).want(t, 200).json(t) {
		u, ok := v.(string)
		if !ok || !(strings.HasSuffix(name, "_endpoint") || name == "jwks_uri") {
			continue
		}
		parsed, err := url.Parse(u)
		if err != nil || !strings.HasPrefix(u, s.PublicURL) {
			t.Fatalf("discovery: %s is %q, not a URL of the server", name, u)
		}
		paths = append(paths, parsed.Path)
	}
	if len(paths) == 0 {
		t.Fatal("the discovery document names no endpoint")
	}
	slices.Sort(paths)
	return paths
}
