package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/chromedp"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/push/pushtest"
)

// webManifest is what the test reads of the web app manifest.
type webManifest struct {
	Name      string `json:"name"`
	ShortName string `json:"short_name"`
	StartURL  string `json:"start_url"`
	Scope     string `json:"scope"`
	Display   string `json:"display"`
	Icons     []struct {
		Src     string `json:"src"`
		Sizes   string `json:"sizes"`
		Type    string `json:"type"`
		Purpose string `json:"purpose"`
	} `json:"icons"`
}

// checkManifest reads the manifest as a browser of the given Accept-Language does, holds it
// to PROTOCOL.md section 10, and loads every icon it names as a PNG of its stated size.
func checkManifest(t *testing.T, s *server, acceptLanguage, wantName string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.PublicURL+"/m/manifest.webmanifest", nil)
	req.Header.Set("Accept-Language", acceptLanguage)
	res, body, err := roundTrip(http.DefaultClient, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/manifest+json" {
		t.Fatalf("GET /m/manifest.webmanifest: %d, %s: %s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	var m webManifest
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("the manifest: %v: %s", err, body)
	}
	if m.Name != wantName || m.ShortName == "" || m.StartURL != "/m/inbox" || m.Scope != "/m/" || m.Display != "standalone" {
		t.Errorf("the manifest in %s: %+v", acceptLanguage, m)
	}
	sizes := map[string]bool{}
	for _, icon := range m.Icons {
		img := get(t, s.PublicURL+icon.Src, "image/png")
		cfg, err := png.DecodeConfig(bytes.NewReader(img))
		if err != nil {
			t.Fatalf("icon %s: %v", icon.Src, err)
		}
		if got := fmt.Sprintf("%dx%d", cfg.Width, cfg.Height); got != icon.Sizes || icon.Type != "image/png" {
			t.Errorf("icon %s is a %s %s, the manifest says %s %s", icon.Src, got, "image/png", icon.Sizes, icon.Type)
		}
		if icon.Purpose == "any" {
			sizes[icon.Sizes] = true
		}
	}
	if !sizes["192x192"] || !sizes["512x512"] {
		t.Errorf("the manifest's icons of purpose any: %v, want 192x192 and 512x512", sizes)
	}
}

// evalAwait runs JavaScript whose value is a promise and returns what it resolves to.
func evalAwait[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitForAwait is waitFor for a condition that is a promise.
func waitForAwait(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr, chromedp.EvalAwaitPromise))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v; the page says: %s", what, err, textOf(t, ctx, "main"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// notification is what the page reads of a notification its worker showed.
type notification struct {
	Title, Body, Tag, URL string
}

// shownNotifications are the notifications the worker of the page's scope shows now.
func shownNotifications(t *testing.T, ctx context.Context) []notification {
	t.Helper()
	out := evalAwait[string](t, ctx, `navigator.serviceWorker.ready.then(r => r.getNotifications()).then(ns => JSON.stringify(ns.map(n => ({Title: n.title, Body: n.body, Tag: n.tag, URL: n.data?.url || ""}))))`)
	var ns []notification
	if err := json.Unmarshal([]byte(out), &ns); err != nil {
		t.Fatalf("notifications: %v: %s", err, out)
	}
	return ns
}

// waitNotification waits until the page's worker shows a notification that ok accepts.
func waitNotification(t *testing.T, ctx context.Context, what string, ok func(notification) bool) notification {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ns := shownNotifications(t, ctx)
		for _, n := range ns {
			if ok(n) {
				return n
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notification %s; the worker shows %+v", what, ns)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPushServiceWorker checks the phone pages' web app (PROTOCOL.md section 10): the manifest
// and its icons; and, in Chromium, that a phone bound in its browser has the service worker of
// scope /m/ on its inbox, which offers 開啟通知, and that a push delivered through the DevTools
// protocol shows the request's notification in the page's language, opening the inbox,
// replaces a repeat of it, has the open inbox read the request at once, and shows a general one
// for data it cannot read. The login's push is the server's own: sent to a local push service
// that decrypts it, whose plaintext the DevTools protocol hands the worker as the browser would;
// the page the notification opens then approves the request, and the website gets its tokens.
func TestPushServiceWorker(t *testing.T) {
	browser := newChrome(t)
	s := startServer(t)
	checkManifest(t, s, "zh-TW,zh;q=0.9", "mcert 行動自然人憑證")
	checkManifest(t, s, "en-US,en;q=0.9", "mcert mobile citizen certificate")
	if res, body, err := roundTrip(http.DefaultClient, mustRequest(t, "GET", s.PublicURL+"/m/sw.js", nil)); err != nil || res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/javascript") || !bytes.Contains(body, []byte(`addEventListener("push"`)) {
		t.Fatalf("GET /m/sw.js: %v, %v", res, err)
	}
	for path, want := range map[string]bool{"/m/inbox": true, "/m/bind": true, "/m/login": true, "/m/sign": true, "/": false} {
		page := string(get(t, s.PublicURL+path, "text/html; charset=UTF-8"))
		if links := strings.Contains(page, `<link rel="manifest" href="/m/manifest.webmanifest"`); links != want {
			t.Errorf("GET %s links the manifest: %v, want %v", path, links, want)
		}
	}

	// A phone bound in its browser, as TestBrowserInbox binds it.
	e := registerAndShowQR(t, s, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	phoneTab := browser.tab(t, 390, 844, true)
	withAuthenticator(t, phoneTab, true)
	var mu sync.Mutex
	registrations := map[string]serviceworker.RegistrationID{} // scope → ID
	if err := chromedp.Listen(phoneTab, func(ev any) {
		if ev, ok := ev.(*serviceworker.EventWorkerRegistrationUpdated); ok {
			mu.Lock()
			defer mu.Unlock()
			for _, r := range ev.Registrations {
				if !r.IsDeleted {
					registrations[r.ScopeURL] = r.RegistrationID
				}
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(phoneTab, serviceworker.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("ServiceWorker.enable: %v", err)
	}
	browse(t, phoneTab, chromedp.Navigate(e.binding["qr_text"].(string)))
	click(t, phoneTab, "#bind-button")
	waitFor(t, phoneTab, "the phone bound", `document.querySelector("#result")?.dataset.status === "bound"`)
	if result := textOf(t, phoneTab, "#result"); !strings.Contains(result, "開啟通知") {
		t.Errorf("the bind page's result does not mention notifications: %q", result)
	}

	browse(t, phoneTab, chromedp.Navigate(s.PublicURL+"/m/inbox"))
	waitFor(t, phoneTab, "an empty inbox", `!document.querySelector("#inbox-empty").hidden`)
	scope := s.PublicURL + "/m/"
	waitForAwait(t, phoneTab, "the service worker of scope /m/", fmt.Sprintf(`navigator.serviceWorker.getRegistration().then(r => !!r && !!r.active && r.scope === %q)`, scope))
	waitFor(t, phoneTab, "the 開啟通知 button", `!!document.querySelector("#push-on") && !document.querySelector("#push-on").closest("[hidden]")`)
	if label := textOf(t, phoneTab, "#push-on"); label != "開啟通知" {
		t.Errorf("the notifications button reads %q", label)
	}
	screenshot(t, phoneTab, "phone-inbox-push-zh")

	if _, err := chromedp.CallBrowser(phoneTab, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
		Permission: &cdpbrowser.PermissionDescriptor{Name: "notifications"}, Setting: cdpbrowser.PermissionSettingGranted, Origin: s.PublicURL,
	}); err != nil {
		t.Fatalf("grant notifications: %v", err)
	}
	waitFor(t, phoneTab, "the notifications permission", `Notification.permission === "granted"`)
	var id serviceworker.RegistrationID
	for deadline := time.Now().Add(10 * time.Second); id == ""; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		id = registrations[scope]
		mu.Unlock()
		if id == "" && time.Now().After(deadline) {
			t.Fatalf("no ServiceWorker.workerRegistrationUpdated for %s: %v", scope, registrations)
		}
	}
	push := func(data string) {
		t.Helper()
		if _, err := chromedp.Call(phoneTab, serviceworker.DeliverPushMessage, serviceworker.DeliverPushMessageParams{Origin: s.PublicURL, RegistrationID: id, Data: data}); err != nil {
			t.Fatalf("deliver push %s: %v", data, err)
		}
	}
	// The open inbox hears of each push from the worker.
	eval[bool](t, phoneTab, `(window.pushes = 0, navigator.serviceWorker.addEventListener("message", e => { if (e.data?.type === "mcert.push") window.pushes++ }), true)`)

	// The browser's subscription, as its vendor's push service would hold it (pushManager.subscribe
	// needs a real push service, which headless Chromium has not): the local one, given to the
	// server with the device token the page keeps.
	ps := pushtest.New(t)
	deviceToken := eval[string](t, phoneTab, `localStorage.getItem("mcert.device_token")`)
	body, _ := json.Marshal(map[string]any{"subscription": ps.Subscribe()})
	req := mustRequest(t, "POST", s.PublicURL+"/api/v1/phone/push", body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+deviceToken)
	if res, out, err := roundTrip(http.DefaultClient, req); err != nil || res.StatusCode != 201 {
		t.Fatalf("subscribe: %v %s", err, out)
	}

	// A website's push login: the server's notification, decrypted by the push service, is
	// what the DevTools protocol hands the worker, as the browser would.
	c := cibaClient{t: t, rp: s.relyingParty(t, "臺灣雲市集", provider.ClientSpec{CIBA: true})}
	authReqID := c.start("A123456789", "登入臺灣雲市集")
	login := string(nextMessage(t, ps).Plaintext)
	push(login)
	n := waitNotification(t, phoneTab, "of the login request", func(n notification) bool { return strings.Contains(n.Title, "臺灣雲市集") })
	if n.Title != "臺灣雲市集要求登入" || n.URL != "/m/inbox" || !strings.Contains(n.Body, "生物特徵") {
		t.Errorf("the login request's notification: %+v", n)
	}
	waitFor(t, phoneTab, "the inbox told of the push", `window.pushes === 1`)
	waitFor(t, phoneTab, "the inbox reading the request at once", `[...document.querySelectorAll("#requests a")].some(a => a.textContent.includes("臺灣雲市集"))`)
	push(login) // a repeat replaces it
	waitFor(t, phoneTab, "the inbox told of the second push", `window.pushes === 2`)
	if got := len(shownNotifications(t, phoneTab)); got != 1 {
		t.Errorf("after the same request twice, %d notifications, want 1", got)
	}

	expires := time.Now().Add(2 * time.Minute).UTC().Format(time.RFC3339)
	push(fmt.Sprintf(`{"kind":"sign","client_name":"地政事務所","expires_at":%q}`, expires))
	waitNotification(t, phoneTab, "of the signing request", func(n notification) bool { return n.Title == "地政事務所要求簽章" && n.URL == "/m/inbox" })

	push("not JSON {")
	waitNotification(t, phoneTab, "for data it cannot read", func(n notification) bool {
		return n.Title == "行動自然人憑證" && n.Tag == "mcert" && n.URL == "/m/inbox"
	})
	if got := len(shownNotifications(t, phoneTab)); got != 3 {
		t.Errorf("%d notifications, want 3 (login, signing, general): %+v", got, shownNotifications(t, phoneTab))
	}

	// In English, the page registers the worker for English, which replaces the other.
	browse(t, phoneTab, chromedp.Navigate(s.PublicURL+"/m/inbox?lang=en"))
	waitForAwait(t, phoneTab, "the English worker", `navigator.serviceWorker.getRegistration().then(r => !!r?.active && r.active.scriptURL.endsWith("/m/sw.js?lang=en"))`)
	if label := textOf(t, phoneTab, "#push-on"); label != "Turn on notifications" {
		t.Errorf("the English notifications button reads %q", label)
	}
	push(strings.Replace(login, "臺灣雲市集", "Taiwan Cloud Market", 1))
	n = waitNotification(t, phoneTab, "in English", func(n notification) bool { return strings.Contains(n.Title, "Taiwan Cloud Market") })
	if n.Title != "Taiwan Cloud Market asks you to log in" || !strings.Contains(n.Body, "biometrics") {
		t.Errorf("the English notification: %+v", n)
	}

	// The page the notification opens approves the request with the biometric, and the
	// website's poll gets the tokens.
	browse(t, phoneTab, chromedp.Navigate(s.PublicURL+n.URL))
	waitFor(t, phoneTab, "the request in the inbox", `document.querySelectorAll("#requests a").length === 1`)
	click(t, phoneTab, "#requests a")
	waitFor(t, phoneTab, "the approval page", `(document.querySelector("#code")?.textContent || "").trim().length === 4`)
	click(t, phoneTab, "#approve-button")
	waitFor(t, phoneTab, "the phone approved", `document.querySelector("#result")?.dataset.status === "approved"`)
	if code, tokens := c.poll(authReqID); code != "" || tokens["id_token"] == nil {
		t.Fatalf("the website's poll after the approval: %s %v", code, tokens)
	}
}
