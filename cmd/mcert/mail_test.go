package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/mailer/mailtest"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/storage"
	"github.com/mcert/mcert/storage/postgres/pgtest"
	"github.com/mcert/mcert/web"
)

// mailsOf waits until mails whose subjects contain each of wants have reached the SMTP
// server, in any order, skipping others, and fails after 10 seconds.
func mailsOf(t *testing.T, smtp *mailtest.Server, wants ...string) []mailtest.Message {
	t.Helper()
	got := make([]mailtest.Message, len(wants))
	missing := len(wants)
	deadline := time.After(10 * time.Second)
	for missing > 0 {
		select {
		case m := <-smtp.Messages():
			i := slices.IndexFunc(wants, func(w string) bool { return strings.Contains(m.Subject, w) })
			if i < 0 || got[i].Subject != "" {
				t.Logf("mail %q skipped", m.Subject)
				continue
			}
			got[i] = m
			missing--
		case <-deadline:
			t.Fatalf("mails %q did not all reach the SMTP server", wants)
		}
	}
	return got
}

// mailOf is the one mail of mailsOf.
func mailOf(t *testing.T, smtp *mailtest.Server, want string) mailtest.Message {
	t.Helper()
	return mailsOf(t, smtp, want)[0]
}

// linkIn is the link of path in a mail's body.
func linkIn(t *testing.T, m mailtest.Message, path string) string {
	t.Helper()
	link := regexp.MustCompile(`https?://[^\s]+` + regexp.QuoteMeta(path) + `\?t=[A-Za-z0-9_-]+`).FindString(m.Body)
	if link == "" {
		t.Fatalf("no %s link in the mail %q:\n%s", path, m.Subject, m.Body)
	}
	return link
}

// useLink opens a mailed link as a browser does, then presses the page's button, and returns
// the status and page of the answer.
func useLink(t *testing.T, link string) (int, string) {
	t.Helper()
	page := string(get(t, link, "text/html; charset=UTF-8"))
	if !strings.Contains(page, `id="confirm-button"`) {
		t.Fatalf("the link's page asks nothing before it acts:\n%s", page)
	}
	u, _ := url.Parse(link)
	req, _ := http.NewRequest("POST", u.Scheme+"://"+u.Host+u.Path, strings.NewReader(url.Values{"t": {u.Query().Get("t")}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", u.Scheme+"://"+u.Host)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// operator is who runs the servers that send mail.
var operator = web.Operator{Name: "內政部", SupportPhone: "0800-080-117"}

func (s *server) account(t *testing.T) storage.Account {
	t.Helper()
	a, err := storage.Get(context.Background(), s.store, func(tx storage.ReadTx) (storage.Account, error) { return tx.AccountByCitizen("A123456789") })
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestMailVerificationAndNotices: registration mails a verification link, binding a phone a
// notice with a "not me" link, both in Traditional Chinese with the operator's name and
// support line, through a real SMTP server. The verification link verifies the address, which
// the account and the ID token then say; the "not me" link suspends the account. A second use
// of either, or a made-up link, is refused with a page that says why, and changes nothing.
func TestMailVerificationAndNotices(t *testing.T) {
	smtp := mailtest.New(t)
	s := startServer(t, func(c *Config) { c.SMTPURL, c.Operator = smtp.URL(), operator })
	ph, _ := boundCitizen(t, s)

	mails := mailsOf(t, smtp, "驗證", "綁定", "簽章憑證")
	verify, bound := mails[0], mails[1]
	if len(verify.To) != 1 || verify.To[0] != "wang@example.tw" || !strings.Contains(verify.Body, "內政部") || !strings.Contains(verify.Body, "0800-080-117") {
		t.Fatalf("verification mail to %v:\n%s", verify.To, verify.Body)
	}
	if !strings.Contains(bound.Body, "Pixel 8") {
		t.Fatalf("phone-bound notice without the phone:\n%s", bound.Body)
	}
	if s.account(t).EmailVerified {
		t.Fatal("verified before the link was used")
	}

	// The citizen follows the link in a browser, and presses the page's button.
	tab := newChrome(t).tab(t, 1280, 900, false)
	browse(t, tab, chromedp.Navigate(linkIn(t, verify, "/email/verify")))
	screenshot(t, tab, "mail-verify-zh")
	click(t, tab, "#confirm-button")
	waitFor(t, tab, "the address verified", `document.querySelector("#message")?.dataset.kind === "done"`)
	if !s.account(t).EmailVerified {
		t.Fatal("the page said verified, the account is not")
	}
	_, idToken := s.relyingParty(t, "健保署", provider.ClientSpec{}).login(ph)
	var c claims
	if err := idToken.Claims(&c); err != nil || !c.EmailVerified || c.Email != "wang@example.tw" {
		t.Fatalf("ID token after the verification: %+v, %v", c, err)
	}
	if status, page := useLink(t, linkIn(t, verify, "/email/verify")); status != 409 || !strings.Contains(page, "已使用過") {
		t.Fatalf("the link used twice: %d\n%s", status, page)
	}
	if status, page := useLink(t, s.PublicURL+"/email/verify?t=made-up"); status != 404 || !strings.Contains(page, "此連結無效") {
		t.Fatalf("a made-up link: %d\n%s", status, page)
	}

	notMe := linkIn(t, bound, "/email/not-me")
	if status, page := useLink(t, notMe); status != 200 || s.account(t).Status != storage.AccountSuspended {
		t.Fatalf("not me: %d, account %s\n%s", status, s.account(t).Status, page)
	}
	mailOf(t, smtp, "暫停")
	if status, _ := useLink(t, notMe); status != 409 {
		t.Fatalf("the not-me link used twice: %d", status)
	}
}

// TestMailWhileSMTPIsDown: with the mail server down, the citizen's requests are answered as
// ever; the mails they queued arrive once it is back.
func TestMailWhileSMTPIsDown(t *testing.T) {
	smtp := mailtest.New(t)
	s := startServer(t, func(c *Config) { c.SMTPURL, c.Operator = smtp.URL(), operator })
	smtp.Stop()
	boundCitizen(t, s) // registers, and binds: two mails queued, neither sent
	time.Sleep(2 * time.Second)
	select {
	case m := <-smtp.Messages():
		t.Fatalf("a mail while the server was down: %q", m.Subject)
	default:
	}
	smtp.Start()
	s.clock.Advance(time.Minute) // the retries are due
	mailsOf(t, smtp, "驗證", "綁定", "簽章憑證")
}

// TestExpiryReminderOnce: two instances on one PostgreSQL run the expiry-reminder job, each
// slot and at once: a device 29 days from the end of its year is reminded once, and 6 days from
// it once more.
func TestExpiryReminderOnce(t *testing.T) {
	smtp := mailtest.New(t)
	store := pgtest.URL(t)
	s1 := startServer(t, func(c *Config) { c.Store, c.SMTPURL, c.Operator = store, smtp.URL(), operator })
	s2 := startServer(t, func(c *Config) {
		c.Store, c.SMTPURL, c.Operator, c.Now = store, smtp.URL(), operator, s1.clock.Now
		c.KeyFile = filepath.Join(s1.Config.DataDir, "mcert.key")
	})
	boundCitizen(t, s1)
	mailsOf(t, smtp, "驗證", "綁定", "簽章憑證")
	both := func() {
		var wg sync.WaitGroup
		for _, s := range []*server{s1, s2, s1, s2} {
			wg.Go(func() {
				if _, err := s.service.RemindExpiring(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	s1.clock.Advance(336 * 24 * time.Hour) // 29 days left
	both()
	s1.clock.Advance(time.Hour) // a later slot
	both()
	mailOf(t, smtp, "30 天")
	s1.clock.Advance(23 * 24 * time.Hour) // 6 days left
	both()
	mailOf(t, smtp, "7 天")
	time.Sleep(2 * time.Second)
	select {
	case m := <-smtp.Messages():
		t.Fatalf("a reminder sent twice: %q", m.Subject)
	default:
	}
	mails, err := storage.Get(context.Background(), s1.store, func(tx storage.ReadTx) ([]storage.Mail, error) { return tx.Mails(s1.account(t).ID) })
	if err != nil {
		t.Fatal(err)
	}
	reminders := 0
	for _, m := range mails {
		if strings.HasPrefix(m.Key, "expiring-") {
			reminders++
		}
	}
	if reminders != 2 {
		t.Fatalf("%d reminders in the outbox, want 2", reminders)
	}
}

// TestMailAddressChange: a new address is unverified until its own link is used, in English
// for a citizen on the English pages; the old address's link no longer verifies anything; the
// account page's resend sends another link, within its limit, and none once verified.
func TestMailAddressChange(t *testing.T) {
	smtp := mailtest.New(t)
	s := startServer(t, func(c *Config) { c.SMTPURL, c.Operator = smtp.URL(), operator })
	e := registerAndShowQR(t, s, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	first := mailOf(t, smtp, "驗證")
	b := e.browser
	changed := b.do("PATCH", "/api/v1/account?lang=en", map[string]string{"email": "ming@example.tw"}).want(t, 200).json(t)
	if changed["email_verified"] != false {
		t.Fatalf("a new address verified: %v", changed)
	}
	second := mailOf(t, smtp, "Verify")
	if second.To[0] != "ming@example.tw" || !strings.Contains(second.Body, "0800-080-117") {
		t.Fatalf("the new address's mail: %v\n%s", second.To, second.Body)
	}
	if status, page := useLink(t, linkIn(t, first, "/email/verify")); status != 409 || s.account(t).EmailVerified {
		t.Fatalf("the old address's link: %d\n%s", status, page)
	}
	b.do("POST", "/api/v1/account/email/verification", nil).want(t, 202)
	third := mailOf(t, smtp, "Verify")
	if status, _ := useLink(t, linkIn(t, third, "/email/verify")); status != 200 || !s.account(t).EmailVerified {
		t.Fatalf("the resent link: %d", status)
	}
	if code := b.do("POST", "/api/v1/account/email/verification", nil).want(t, 409).errorCode(t); code != "email_already_verified" {
		t.Fatalf("resend once verified: %s", code)
	}
}

// TestMailAddressChangesLimited: each new address is mailed a link, so changes of the address
// count against the account's mails: past them a change is refused, and the account keeps the
// address it had, and no mail is queued.
func TestMailAddressChangesLimited(t *testing.T) {
	s := startServer(t)
	b := registerAndShowQR(t, s, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{})).browser
	for i := range 5 {
		b.do("PATCH", "/api/v1/account", map[string]string{"email": fmt.Sprintf("wang%d@example.tw", i)}).want(t, 200)
	}
	before := s.snapshot(t)
	if code := b.do("PATCH", "/api/v1/account", map[string]string{"email": "someone-else@example.tw"}).want(t, 429).errorCode(t); code != "rate_limited" {
		t.Fatalf("a sixth address within the hour: %s", code)
	}
	if !bytes.Equal(before, s.snapshot(t)) || s.account(t).Email != "wang4@example.tw" {
		t.Fatalf("a refused change changed the store: the address is %s", s.account(t).Email)
	}
	// The phone number is not mailed: changing it alone is not counted.
	b.do("PATCH", "/api/v1/account", map[string]string{"phone": "0987654321"}).want(t, 200)
}

// TestDevMailbox: development mode's mails are at /dev/mailbox for the operator alone, since
// their links act on the citizen's account.
func TestDevMailbox(t *testing.T) {
	s := startServer(t)
	registerAndShowQR(t, s, s.issueCard(t, "王小明", "A123456789", authn.IssueOptions{}))
	if code := s.browser(t).do("GET", "/dev/mailbox", nil).want(t, 401).errorCode(t); code != "admin_token_required" {
		t.Fatalf("the mailbox without the admin token: %s", code)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var box struct {
			Mails []struct{ To, Subject, Body string }
		}
		if err := json.Unmarshal(s.admin(t)("GET", "/dev/mailbox", nil).want(t, 200).Body, &box); err != nil {
			t.Fatal(err)
		}
		if len(box.Mails) > 0 && box.Mails[len(box.Mails)-1].To == "wang@example.tw" && strings.Contains(box.Mails[len(box.Mails)-1].Body, "/email/verify?t=") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no verification mail in the mailbox: %+v", box)
		}
	}
}
