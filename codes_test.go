package mcert

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

var (
	snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	// fmtVerb finds the verbs of a message that Newf fills; %% is none.
	fmtVerb = regexp.MustCompile(`%[-+# 0]*[0-9]*(?:\.[0-9]*)?[a-zA-Z%]`)
	kinds   = map[Kind]bool{
		Invalid: true, Unauthorized: true, Forbidden: true, NotFound: true, Conflict: true,
		Expired: true, TooMany: true, Internal: true, BadMethod: true, TooLarge: true,
		BadMediaType: true, Unavailable: true,
	}
)

func verbs(message string) int {
	n := 0
	for _, v := range fmtVerb.FindAllString(message, -1) {
		if v != "%%" {
			n++
		}
	}
	return n
}

// checkText holds a citizen's text to the pages' style: Traditional Chinese with full-width
// punctuation, a whole sentence in each language.
func checkText(t *testing.T, text Text) {
	t.Helper()
	zh, en := strings.TrimSpace(text.ZH), strings.TrimSpace(text.EN)
	if zh == "" || en == "" {
		t.Fatalf("a text is empty: zh-TW %q, en %q", text.ZH, text.EN)
	}
	if !strings.ContainsFunc(zh, func(r rune) bool { return unicode.Is(unicode.Han, r) }) {
		t.Errorf("the zh-TW text %q has no Chinese characters", zh)
	}
	if !strings.HasSuffix(zh, "。") && !strings.HasSuffix(zh, "？") && !strings.HasSuffix(zh, "！") {
		t.Errorf("the zh-TW text %q does not end with 。, ？ or ！", zh)
	}
	if i := strings.IndexAny(zh, ",;:()!?"); i >= 0 {
		t.Errorf("the zh-TW text %q has the half-width %q: use ，；：（）！？", zh, zh[i])
	}
	if !strings.HasSuffix(en, ".") {
		t.Errorf("the English text %q does not end with a period", en)
	}
	if strings.ContainsFunc(en, func(r rune) bool { return unicode.Is(unicode.Han, r) }) {
		t.Errorf("the English text %q has Chinese characters", en)
	}
}

func TestCatalogEntries(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Codes() {
		t.Run(c.Name, func(t *testing.T) {
			if !snakeCase.MatchString(c.Name) {
				t.Errorf("the code %q is not snake_case", c.Name)
			}
			if seen[c.Name] {
				t.Errorf("the code %q is in the catalog twice", c.Name)
			}
			seen[c.Name] = true
			if !kinds[c.Kind] {
				t.Errorf("the kind %q is not one of errors.go's", c.Kind)
			}
			if strings.TrimSpace(c.Message) == "" {
				t.Error("no API message")
			}
			if Lookup(c.Name) != c {
				t.Errorf("Lookup(%q) is not this entry", c.Name)
			}
			checkText(t, c.Text)
		})
	}
	if Lookup("no_such_code") != nil {
		t.Error("Lookup found a code the catalog does not have")
	}
}

func TestComponentTexts(t *testing.T) {
	for code, text := range ComponentTexts() {
		t.Run(code, func(t *testing.T) {
			if !snakeCase.MatchString(code) {
				t.Errorf("the code %q is not snake_case", code)
			}
			checkText(t, text)
		})
	}
}

func TestNewf(t *testing.T) {
	tests := []struct {
		name          string
		err           *Error
		kind          Kind
		code, message string
	}{
		{"New", LoginUsed.New(), Conflict, "login_used", "this login request has already been answered"},
		{"Newf", DeviceLimit.Newf(5), Conflict, "device_limit", "the account already has 5 phones, the most allowed; remove one on the account page before binding another"},
		{"variant", SessionUnknown.New(), Unauthorized, "no_session", "your session is unknown or has ended; log in with your citizen card again"},
		{"variant with arguments", FieldRequired.Newf("token"), Invalid, "malformed_body", `field "token" is required`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if e := tc.err; e.Kind != tc.kind || e.Code != tc.code || e.Message != tc.message || e.RetryAfter != 0 {
				t.Errorf("got %+v, want kind %s, code %s, message %q", *e, tc.kind, tc.code, tc.message)
			}
		})
	}
	if SessionUnknown.Text != NoSession.Text || SessionUnknown.Kind != NoSession.Kind {
		t.Error("a variant does not keep its code's kind and texts")
	}
}

const modulePath = "github.com/mcert/mcert"

// catalogMessages reads codes.go's entries and variants by their Go names, with their
// messages and, for entries, their codes.
func catalogMessages(t *testing.T) (messages map[string]string, codes map[string]string) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "codes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	messages, codes = map[string]string{}, map[string]string{}
	str := func(e ast.Expr) string {
		lit, ok := e.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			t.Fatalf("codes.go: %T where a string literal belongs", e)
		}
		s, _ := strconv.Unquote(lit.Value)
		return s
	}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				switch v := vs.Values[i].(type) {
				case *ast.UnaryExpr: // &Code{...}
					lit, ok := v.X.(*ast.CompositeLit)
					if !ok {
						continue
					}
					for _, elt := range lit.Elts {
						kv := elt.(*ast.KeyValueExpr)
						switch kv.Key.(*ast.Ident).Name {
						case "Message":
							messages[name.Name] = str(kv.Value)
						case "Name":
							codes[name.Name] = str(kv.Value)
						}
					}
				case *ast.CallExpr: // Entry.variant("...")
					if sel, ok := v.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "variant" {
						messages[name.Name] = str(v.Args[0])
					}
				}
			}
		}
	}
	return messages, codes
}

// goFiles parses every Go file of the module.
func goFiles(t *testing.T, fset *token.FileSet, visit func(path string, f *ast.File)) {
	t.Helper()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		visit(path, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// importName is the name under which f imports path, or "".
func importName(f *ast.File, path string) string {
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == path {
			if imp.Name != nil {
				return imp.Name.Name
			}
			return path[strings.LastIndex(path, "/")+1:]
		}
	}
	return ""
}

// TestNoCodeOutsideCatalog parses the module and fails on every error code made beside the
// catalog: an Error or Code literal outside codes.go, an OAuth error body or op error with a
// code the catalog lacks. It also holds each New and Newf call on a catalog entry to its
// message's verbs.
func TestNoCodeOutsideCatalog(t *testing.T) {
	messages, codes := catalogMessages(t)
	if len(messages) < len(Codes()) {
		t.Fatalf("read %d messages from codes.go, fewer than the %d entries", len(messages), len(Codes()))
	}
	seenCode := map[string]string{}
	for name, code := range codes {
		if Lookup(code) == nil {
			t.Errorf("codes.go: %s (%q) is not listed in the catalog", name, code)
		}
		if other, ok := seenCode[code]; ok {
			t.Errorf("codes.go: %s and %s are both %q: make one a variant of the other", name, other, code)
		}
		seenCode[code] = name
	}

	fset := token.NewFileSet()
	at := func(n ast.Node) string { return fset.Position(n.Pos()).String() }
	goFiles(t, fset, func(path string, f *ast.File) {
		inMcert := f.Name.Name == "mcert" && filepath.Dir(path) == "."
		mcertName := importName(f, modulePath)
		oidcName := importName(f, "github.com/zitadel/oidc/v3/pkg/oidc")
		// isType says whether e names the type mcert.<name> in this file.
		isType := func(e ast.Expr, name string) bool {
			switch e := e.(type) {
			case *ast.Ident:
				return inMcert && e.Name == name
			case *ast.SelectorExpr:
				x, ok := e.X.(*ast.Ident)
				return ok && mcertName != "" && x.Name == mcertName && e.Sel.Name == name
			}
			return false
		}
		// entry is the catalog name a call's receiver names, or "".
		entry := func(e ast.Expr) string {
			switch e := e.(type) {
			case *ast.Ident:
				if inMcert {
					return e.Name
				}
			case *ast.SelectorExpr:
				if x, ok := e.X.(*ast.Ident); ok && mcertName != "" && x.Name == mcertName {
					return e.Sel.Name
				}
			}
			return ""
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				switch {
				case path == "codes.go":
				case isType(n.Type, "Error"):
					t.Errorf("%s: an mcert.Error made by hand; use its catalog entry's New or Newf", at(n))
				case isType(n.Type, "Code"):
					t.Errorf("%s: an mcert.Code outside codes.go; add the code to the catalog", at(n))
				}
				if strings.HasSuffix(path, "_test.go") {
					return true
				}
				if sel, ok := n.Type.(*ast.SelectorExpr); ok && oidcName != "" && sel.Sel.Name == "Error" {
					if x, ok := sel.X.(*ast.Ident); ok && x.Name == oidcName {
						for _, elt := range n.Elts {
							if kv, ok := elt.(*ast.KeyValueExpr); ok && isIdent(kv.Key, "ErrorType") {
								checkLiteralCode(t, at(n), kv.Value)
							}
						}
					}
				}
				for _, elt := range n.Elts {
					if kv, ok := elt.(*ast.KeyValueExpr); ok && stringLit(kv.Key) == "error" {
						checkLiteralCode(t, at(n), kv.Value)
					}
				}
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || (sel.Sel.Name != "New" && sel.Sel.Name != "Newf") {
					return true
				}
				name := entry(sel.X)
				msg, ok := messages[name]
				if !ok {
					return true
				}
				want := verbs(msg)
				switch {
				case sel.Sel.Name == "New" && want > 0:
					t.Errorf("%s: %s.New() leaves the %d verbs of %q unfilled; use Newf", at(n), name, want, msg)
				case sel.Sel.Name == "Newf" && len(n.Args) != want:
					t.Errorf("%s: %s.Newf has %d arguments for the %d verbs of %q", at(n), name, len(n.Args), want, msg)
				}
			}
			return true
		})
	})
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// stringLit is the value of a string literal, or "" for any other expression.
func stringLit(e ast.Expr) string {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return ""
	}
	s, _ := strconv.Unquote(lit.Value)
	return s
}

// checkLiteralCode fails when e is a string literal that is not a catalog code; any other
// expression is checked by the compiler (a catalog entry's Name) or comes from elsewhere.
func checkLiteralCode(t *testing.T, where string, e ast.Expr) {
	t.Helper()
	if code := stringLit(e); code != "" && Lookup(code) == nil {
		t.Errorf("%s: the error code %q is not in the catalog", where, code)
	}
}
