package main

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
)

// shareSession gives the tab the card session b holds: the card login through the component's
// popup is TestBrowserJourney's, and these tests start where it ends.
func shareSession(t *testing.T, tab context.Context, s *server, b *browser) {
	t.Helper()
	base, _ := url.Parse(s.PublicURL)
	httpOnly := true
	for _, c := range b.http.Jar.Cookies(base) {
		if _, err := chromedp.Call(tab, network.SetCookie, network.SetCookieParams{Name: c.Name, Value: c.Value, URL: s.PublicURL, HTTPOnly: &httpOnly}); err != nil {
			t.Fatalf("set cookie %s: %v", c.Name, err)
		}
	}
}

// waitWithin is waitFor with a deadline of its own: what must happen that soon.
func waitWithin(t *testing.T, ctx context.Context, d time.Duration, what, expr string) {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr)); err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %v; the page says: %s", what, d, textOf(t, ctx, "main"))
		}
	}
}

// TestBrowserRefusalStates checks that the desktop pages leave 「已掃描」 within two seconds of
// the phone's refusal, and say why in the page's language: a login by a removed phone, and a
// binding to a suspended account, in zh-TW and in English.
func TestBrowserRefusalStates(t *testing.T) {
	browser := newChrome(t)
	ctx := context.Background()

	t.Run("login", func(t *testing.T) {
		for _, lang := range []string{"zh-TW", "en"} {
			s := startServer(t)
			ph, card := boundCitizen(t, s)
			b := s.browser(t)
			b.cardLogin(card)
			device := b.do("GET", "/api/v1/devices", nil).want(t, 200).json(t)["devices"].([]any)[0].(map[string]any)
			b.do("DELETE", "/api/v1/devices/"+device["id"].(string), nil).want(t, 200)

			desk := browser.tab(t, 1280, 900, false)
			browse(t, desk, chromedp.Navigate(s.PublicURL+"/demo?lang="+lang))
			click(t, desk, "#demo-login")
			waitFor(t, desk, "the login page", `document.querySelector("#login-status")?.dataset.status === "pending"`)
			qrText := scanQR(t, desk)
			if _, err := ph.Login(ctx, qrText, phone.GetOptions{}); !isAPIError(err, 403, "device_revoked") {
				t.Fatalf("a removed phone's login: %v", err)
			}
			waitWithin(t, desk, 2*time.Second, "the login page showing the refusal", `document.querySelector("#login-status")?.dataset.status === "refused"`)
			text := textOf(t, desk, "#login-status")
			want := map[string]string{"zh-TW": mcert.DeviceRevoked.ZH, "en": mcert.DeviceRevoked.EN}[lang]
			if !strings.Contains(text, want) {
				t.Errorf("the %s login page says %q, want %q in it", lang, text, want)
			}
			if lang == "zh-TW" {
				wantChinese(t, text)
			}
			screenshot(t, desk, "login-refused-"+map[string]string{"zh-TW": "zh", "en": "en"}[lang])
			waitFor(t, desk, "the demo told access_denied", `location.pathname === "/demo/callback"`)
		}
	})

	t.Run("binding", func(t *testing.T) {
		for _, lang := range []string{"zh-TW", "en"} {
			s := startServer(t)
			e := registerAndShowQR(t, s, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
			desk := browser.tab(t, 1280, 900, false)
			shareSession(t, desk, s, e.browser)
			browse(t, desk, chromedp.Navigate(s.PublicURL+"/?lang="+lang))
			waitFor(t, desk, "the account", `!document.querySelector("#account").hidden`)
			click(t, desk, "#bind-button")
			waitFor(t, desk, "a pending binding", `document.querySelector("#bind-status")?.dataset.status === "pending"`)
			link := scanQR(t, desk)
			e.browser.do("POST", "/api/v1/account/suspend", nil).want(t, 200)

			phoneTab := browser.tab(t, 390, 844, true)
			withAuthenticator(t, phoneTab, true)
			browse(t, phoneTab, chromedp.Navigate(link))
			waitFor(t, phoneTab, "whose account the phone joins", `!document.querySelector("#invite").hidden`)
			click(t, phoneTab, "#bind-button")
			phoneSays := messageLine(t, phoneTab, "the phone's refusal")
			waitWithin(t, desk, 2*time.Second, "the desktop showing the refusal", `document.querySelector("#bind-status")?.dataset.status === "refused"`)
			deskSays := textOf(t, desk, "#bind-status")
			want := map[string]string{"zh-TW": mcert.AccountSuspended.ZH, "en": mcert.AccountSuspended.EN}[lang]
			for where, text := range map[string]string{"desktop": deskSays, "phone": phoneSays} {
				if !strings.Contains(text, want) {
					t.Errorf("the %s %s page says %q, want %q in it", lang, where, text, want)
				}
				if lang == "zh-TW" {
					wantChinese(t, text)
				}
			}
			if !eval[bool](t, desk, `!document.querySelector("#bind-again").hidden`) {
				t.Error("the desktop offers no new QR code after the refusal")
			}
			screenshot(t, desk, "bind-refused-"+map[string]string{"zh-TW": "zh", "en": "en"}[lang])
		}
	})
}

// TestBrowserInbox checks that a phone bound in its browser answers a push (CIBA) login: the
// bind page keeps the device token, /m/inbox lists the request, and its approval page approves
// with the biometric; the website's back end then gets its tokens.
func TestBrowserInbox(t *testing.T) {
	browser := newChrome(t)
	s := startServer(t)
	e := registerAndShowQR(t, s, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	phoneTab := browser.tab(t, 390, 844, true)
	withAuthenticator(t, phoneTab, true)
	browse(t, phoneTab, chromedp.Navigate(e.binding["qr_text"].(string)))
	waitFor(t, phoneTab, "whose account the phone joins", `!document.querySelector("#invite").hidden`)
	if invite := textOf(t, phoneTab, "#invite"); !strings.Contains(invite, "王*明") || !strings.Contains(invite, "A12****789") {
		t.Errorf("the bind page says %q of the account", invite)
	}
	click(t, phoneTab, "#bind-button")
	waitFor(t, phoneTab, "the phone bound", `document.querySelector("#result")?.dataset.status === "bound"`)

	browse(t, phoneTab, chromedp.Navigate(s.PublicURL+"/m/inbox"))
	waitFor(t, phoneTab, "an empty inbox", `!document.querySelector("#inbox-empty").hidden`)
	screenshot(t, phoneTab, "phone-inbox-empty-zh")

	c := cibaClient{t: t, rp: s.relyingParty(t, "健保署", provider.ClientSpec{CIBA: true})}
	id := c.start("A123456789", "查詢健保資料")
	click(t, phoneTab, "#inbox-refresh")
	waitFor(t, phoneTab, "the request in the inbox", `document.querySelectorAll("#requests a").length === 1`)
	if item := textOf(t, phoneTab, "#requests"); !strings.Contains(item, "健保署") || !strings.Contains(item, "查詢健保資料") {
		t.Errorf("the inbox shows %q", item)
	}
	screenshot(t, phoneTab, "phone-inbox-zh")
	click(t, phoneTab, "#requests a")
	waitFor(t, phoneTab, "the approval page", `(document.querySelector("#code")?.textContent || "").trim().length === 4`)
	if own := eval[bool](t, phoneTab, `document.querySelector("#own-screen").hidden`); !own {
		t.Error("a push request's approval page warns of a QR code scanned from a screen")
	}
	click(t, phoneTab, "#approve-button")
	waitFor(t, phoneTab, "the phone approved", `document.querySelector("#result")?.dataset.status === "approved"`)
	var tokens map[string]any
	for deadline := time.Now().Add(10 * time.Second); ; {
		s.clock.Advance(6 * time.Second) // poll no faster than the interval
		code, body := c.poll(id)
		if code == "" {
			tokens = body
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the back end still hears %s", code)
		}
	}
	if tokens["id_token"] == nil {
		t.Fatalf("tokens: %v", tokens)
	}
}
