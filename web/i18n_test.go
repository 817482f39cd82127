package web

import (
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mcert/mcert"
)

func TestChooseLang(t *testing.T) {
	tests := []struct{ name, query, cookie, accept, want string }{
		{"nothing", "", "", "", langZH},
		{"query en", "en", "", "", langEN},
		{"query zh-TW", "zh-TW", "", "en", langZH},
		{"query in other case", "ZH-tw", "", "", langZH},
		{"query wins over cookie", "en", "zh-TW", "zh-TW", langEN},
		{"unknown query falls through to cookie", "fr", "en", "", langEN},
		{"cookie wins over Accept-Language", "", "zh-TW", "en-US", langZH},
		{"unknown cookie falls through", "", "xx", "en", langEN},
		{"zh", "", "", "zh", langZH},
		{"zh-TW", "", "", "zh-TW,zh;q=0.9,en;q=0.8", langZH},
		{"zh-Hant", "", "", "zh-Hant", langZH},
		{"zh-Hant-TW", "", "", "zh-Hant-TW", langZH},
		{"en-US", "", "", "en-US,en;q=0.9", langEN},
		{"en-GB after an unknown language", "", "", "fr-FR, en-GB;q=0.8", langEN},
		{"q values order", "", "", "en;q=0.5, zh-TW;q=0.9", langZH},
		{"q values order, English first", "", "", "zh-TW;q=0.4, en", langEN},
		{"q=0 is a refusal", "", "", "en;q=0, ja", langZH},
		{"unknown only", "", "", "ja, fr;q=0.8", langZH},
		{"wildcard", "", "", "*", langZH},
		{"malformed", "", "", ";;,q=,en;q=x", langZH},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := chooseLang(tc.query, tc.cookie, tc.accept); got != tc.want {
				t.Errorf("chooseLang(%q, %q, %q) = %q, want %q", tc.query, tc.cookie, tc.accept, got, tc.want)
			}
		})
	}
}

// TestCatalogComplete holds the two languages to the same keys, none of them empty.
func TestCatalogComplete(t *testing.T) {
	for lang, texts := range catalog {
		for other, otherTexts := range catalog {
			for key := range texts {
				if _, ok := otherTexts[key]; !ok {
					t.Errorf("%q is in the %s catalog but not in the %s one", key, lang, other)
				}
			}
		}
		for key, text := range texts {
			if strings.TrimSpace(text) == "" {
				t.Errorf("%s: %q is empty", lang, key)
			}
		}
	}
	if len(catalog) != 2 || catalog[langZH] == nil || catalog[langEN] == nil {
		t.Errorf("the catalog's languages are %v, want %s and %s", slices.Collect(maps.Keys(catalog)), langZH, langEN)
	}
}

var (
	inlineStyle  = regexp.MustCompile(`(?i)\sstyle\s*=`)
	scriptTag    = regexp.MustCompile(`(?i)<script[^>]*>`)
	eventHandler = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
)

// TestPagesRender renders every page in every language (an unknown key fails it) and holds
// them to the CSP: no inline script, no style attributes, no event handler attributes.
func TestPagesRender(t *testing.T) {
	demoStates := []pageData{{}, {Claims: `{"name": "王小明"}`}, {Refusal: "access_denied"}, {Refusal: "made_up"}, {Problem: "demo.error_failed", Detail: "oops"}}
	for lang := range catalog {
		for _, p := range []page{homePage, loginPage, phoneBindPage, phoneLoginPage, phoneInboxPage, demoPage} {
			states := []pageData{{}}
			if p.template == demoPage.template {
				states = demoStates
			}
			for _, data := range states {
				data.Lang, data.Other, data.Title, data.Script = lang, otherLang(lang), p.title, p.script
				var b strings.Builder
				if err := templates[lang].ExecuteTemplate(&b, p.template, data); err != nil {
					t.Errorf("%s in %s: %v", p.template, lang, err)
					continue
				}
				html := b.String()
				for _, want := range []string{`<html lang="` + lang + `">`, `id="lang-switch"`, `hreflang="` + otherLang(lang) + `"`, "<h1>"} {
					if !strings.Contains(html, want) {
						t.Errorf("%s in %s lacks %s", p.template, lang, want)
					}
				}
				if inlineStyle.MatchString(html) || eventHandler.MatchString(html) {
					t.Errorf("%s in %s has a style or event handler attribute, which the CSP refuses", p.template, lang)
				}
				for _, tag := range scriptTag.FindAllString(html, -1) {
					if !strings.Contains(tag, `src="/static/`) && !strings.Contains(tag, `type="application/json"`) {
						t.Errorf("%s in %s has an inline script: %s", p.template, lang, tag)
					}
				}
			}
		}
	}
}

var (
	textCall    = regexp.MustCompile(`\bt\("([^"]+)"\s*[,)]`) // literal keys; "prefix." + x is not checked
	moduleOf    = regexp.MustCompile(`from "/static/([^"]+)"`)
	scriptPages = []page{homePage, loginPage, phoneBindPage, phoneLoginPage, phoneInboxPage}
)

// TestScriptTexts checks that each text a page's scripts (and the modules they import) name
// is among the texts the page hands them.
func TestScriptTexts(t *testing.T) {
	for _, p := range scriptPages {
		given := messagesFor(langEN, p.messages)
		seen := map[string]bool{}
		var visit func(name string)
		visit = func(name string) {
			if seen[name] {
				return
			}
			seen[name] = true
			src, err := fs.ReadFile(staticFS, "static/"+name)
			if err != nil {
				t.Errorf("%s: %v", p.template, err)
				return
			}
			for _, m := range textCall.FindAllStringSubmatch(string(src), -1) {
				if _, ok := given[m[1]]; !ok {
					t.Errorf("%s uses text %q, which %s does not give it", name, m[1], p.template)
				}
			}
			for _, m := range moduleOf.FindAllStringSubmatch(string(src), -1) {
				visit(m[1])
			}
		}
		visit(p.script)
	}
}

// TestScriptsGetErrorTexts checks that every page's script gets the text of every error code
// of the catalog, and the sentence for a code it lacks, in the page's language.
func TestScriptsGetErrorTexts(t *testing.T) {
	for lang := range catalog {
		for _, p := range scriptPages {
			given := messagesFor(lang, p.messages)
			for _, c := range mcert.Codes() {
				want := map[string]string{langZH: c.ZH, langEN: c.EN}[lang]
				if got := given["error."+c.Name]; got != want {
					t.Errorf("%s in %s gets %q for error.%s, want %q", p.script, lang, got, c.Name, want)
				}
			}
			if given["common.unknown_error"] == "" || !strings.Contains(given["common.unknown_error"], "{code}") {
				t.Errorf("%s in %s has no sentence for an unknown code", p.script, lang)
			}
		}
	}
	for code, text := range mcert.ComponentTexts() {
		if got := messagesFor(langZH, homePage.messages)["card."+code]; got != text.ZH {
			t.Errorf("the home page gets %q for card.%s, want %q", got, code, text.ZH)
		}
	}
}

func TestRefusal(t *testing.T) {
	tests := []struct{ name, lang, code, want string }{
		{"zh-TW", langZH, "access_denied", mcert.AccessDenied.ZH},
		{"English", langEN, "login_used", mcert.LoginUsed.EN},
		{"unknown in zh-TW", langZH, "xyz", "發生錯誤（代碼 xyz）。請稍後再試，或聯絡客服。"},
		{"unknown in English", langEN, "xyz", "Something went wrong (code xyz). Try again later, or contact support."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := refusal(tc.lang, tc.code); got != tc.want {
				t.Errorf("refusal(%s, %s) = %q, want %q", tc.lang, tc.code, got, tc.want)
			}
		})
	}
}

// cardCode finds the codes card.js gives its CardErrors: in the tables of the component's
// codes, as the fallback, and in the page's own failures.
var cardCode = regexp.MustCompile(`CardError\("(\w+)"|wait\(\w+, "(\w+)"\)|^\s+0x[0-9a-fA-F]+: "(\w+)",$|\|\| "(\w+)";$`)

// TestCardCodes checks that the catalog has a text for every code card.js reports, and none
// for a code it does not.
func TestCardCodes(t *testing.T) {
	src, err := fs.ReadFile(staticFS, "static/card.js")
	if err != nil {
		t.Fatal(err)
	}
	reported := map[string]bool{}
	for _, line := range strings.Split(string(src), "\n") {
		for _, m := range cardCode.FindAllStringSubmatch(line, -1) {
			reported[strings.Join(m[1:], "")] = true
		}
	}
	texts := mcert.ComponentTexts()
	for code := range reported {
		if _, ok := texts[code]; !ok {
			t.Errorf("card.js reports %q, which mcert.ComponentTexts lacks", code)
		}
	}
	for code := range texts {
		if !reported[code] {
			t.Errorf("mcert.ComponentTexts has %q, which card.js does not report", code)
		}
	}
}

// TestLanguageChoice follows the choice through a server: the query sets the cookie, the cookie
// is remembered, Accept-Language decides otherwise.
func TestLanguageChoice(t *testing.T) {
	srv := httptest.NewServer(New(Config{PublicURL: "http://localhost", Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	get := func(path, cookie, accept string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: langCookie, Value: cookie})
		}
		if accept != "" {
			req.Header.Set("Accept-Language", accept)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}
	tests := []struct{ name, path, cookie, accept, want, setCookie string }{
		{"default", "/", "", "", langZH, ""},
		{"query", "/?lang=en", "", "zh-TW", langEN, langEN},
		{"query back to Chinese", "/m/bind?lang=zh-TW", "en", "", langZH, langZH},
		{"cookie", "/m/bind", "en", "zh-TW", langEN, ""},
		{"Accept-Language", "/m/login", "", "en-US,en;q=0.9", langEN, ""},
		{"unknown query", "/?lang=fr", "", "", langZH, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, body := get(tc.path, tc.cookie, tc.accept)
			if res.StatusCode != http.StatusOK || !strings.Contains(body, `<html lang="`+tc.want+`">`) || res.Header.Get("Content-Language") != tc.want {
				t.Fatalf("GET %s: %d, Content-Language %q, want %s", tc.path, res.StatusCode, res.Header.Get("Content-Language"), tc.want)
			}
			var set string
			for _, c := range res.Cookies() {
				if c.Name == langCookie {
					set = c.Value
				}
			}
			if set != tc.setCookie {
				t.Errorf("GET %s set %s=%q, want %q", tc.path, langCookie, set, tc.setCookie)
			}
			if !strings.Contains(body, `id="lang-switch" href="?lang=`+otherLang(tc.want)+`"`) {
				t.Errorf("GET %s: no switch to %s", tc.path, otherLang(tc.want))
			}
		})
	}
}
