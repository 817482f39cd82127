package main

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/authn"
)

// englishSentence finds three English words in a row: on a zh-TW page, the API's message
// leaking through.
var englishSentence = regexp.MustCompile(`[A-Za-z]+(?:[ ,;:']+[A-Za-z]+){2,}`)

// messageLine waits for the page's message line to show an error and returns its text.
func messageLine(t *testing.T, ctx context.Context, what string) string {
	t.Helper()
	waitFor(t, ctx, what, `document.querySelector("#message")?.dataset.kind === "error" && document.querySelector("#message").textContent.trim() !== ""`)
	return textOf(t, ctx, "#message")
}

// wantChinese fails unless text is Chinese, with no English sentence in it.
func wantChinese(t *testing.T, text string) {
	t.Helper()
	if !strings.ContainsFunc(text, func(r rune) bool { return unicode.Is(unicode.Han, r) }) {
		t.Errorf("the zh-TW page says %q, without Chinese", text)
	}
	if s := englishSentence.FindString(text); s != "" {
		t.Errorf("the zh-TW page says %q, with the English %q", text, s)
	}
}

// TestBrowserRefusals provokes refusals in real browsers and reads what the citizen is told:
// a registration with a bad mobile number shows the catalog's text for invalid_contact on the
// zh-TW page and on the English one, and the demo relying party, after the citizen denies the
// login on the phone, shows access_denied's.
func TestBrowserRefusals(t *testing.T) {
	browser := newChrome(t)
	s := startServer(t)
	desk := browser.tab(t, 1280, 900, false)

	// The card login through the component's popup is TestBrowserJourney's; this tab takes
	// the session of one made over HTTP.
	b := s.browser(t)
	b.cardLogin(s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	base, _ := url.Parse(s.PublicURL)
	httpOnly := true
	for _, c := range b.http.Jar.Cookies(base) {
		if _, err := chromedp.Call(desk, network.SetCookie, network.SetCookieParams{Name: c.Name, Value: c.Value, URL: s.PublicURL, HTTPOnly: &httpOnly}); err != nil {
			t.Fatalf("set cookie %s: %v", c.Name, err)
		}
	}

	register := func(lang string) string {
		t.Helper()
		browse(t, desk, chromedp.Navigate(s.PublicURL+"/?lang="+lang))
		waitFor(t, desk, "the registration form in "+lang, fmt.Sprintf(`document.documentElement.lang === %q && !document.querySelector("#register").hidden`, lang))
		fill(t, desk, `#register-form input[name="email"]`, "wang@example.tw")
		fill(t, desk, `#register-form input[name="phone"]`, "02-2345-6789")
		// The form's own pattern would stop the number in the browser: off, for the server's
		// refusal, as a browser without form validation would send it.
		eval[bool](t, desk, `(() => { const f = document.querySelector("#register-form"); f.noValidate = true; f.requestSubmit(); return true })()`)
		return messageLine(t, desk, "the refused registration in "+lang)
	}
	if got, want := register("zh-TW"), "錯誤："+mcert.InvalidContact.ZH; got != want {
		t.Errorf("the zh-TW page says %q, want %q", got, want)
	} else {
		wantChinese(t, got)
	}
	screenshot(t, desk, "register-refused-zh")
	if got, want := register("en"), "Error: "+mcert.InvalidContact.EN; got != want {
		t.Errorf("the English page says %q, want %q", got, want)
	}

	// The citizen denies a login to the demo website on the phone.
	browse(t, desk, chromedp.Navigate(s.PublicURL+"/demo?lang=zh-TW"))
	click(t, desk, "#demo-login")
	waitFor(t, desk, "the login page", `location.pathname.startsWith("/login/") && document.querySelector("#login-status")?.dataset.status === "pending"`)
	phoneTab := browser.tab(t, 390, 844, true)
	browse(t, phoneTab, chromedp.Navigate(scanQR(t, desk)))
	waitFor(t, phoneTab, "the login request on the phone", `(document.querySelector("#code")?.textContent || "").trim().length === 4`)
	click(t, phoneTab, "#deny-button")
	waitFor(t, phoneTab, "the phone denied", `document.querySelector("#result")?.dataset.status === "denied"`)
	waitFor(t, desk, "the demo's callback", `location.pathname === "/demo/callback"`)
	got := messageLine(t, desk, "the demo's refusal")
	if want := "錯誤：" + mcert.AccessDenied.ZH; got != want {
		t.Errorf("the demo says %q, want %q", got, want)
	}
	wantChinese(t, got)
	if strings.Contains(got, "access_denied") {
		t.Errorf("the demo shows the code: %q", got)
	}
	screenshot(t, desk, "demo-denied-zh")
}
