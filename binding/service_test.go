package binding

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcert/mcert"
	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/internal/testkit"
	"github.com/mcert/mcert/mailer"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/storage"
	"github.com/mcert/mcert/storage/bolt"
)

// The state machines of binding, on a real bbolt store, driven as the web layer and the
// provider drive them, with a software phone. The races the store's transactions close are
// run concurrently, many times, under -race.

const testOrigin = "http://localhost:8080"

type clock = testkit.Clock

type fixture struct {
	*Service
	t     *testing.T
	clock *clock
	ctx   context.Context
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "mcert.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	wa, err := authn.NewWebAuthn(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	c := testkit.NewClock(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	f := &fixture{
		Service: &Service{Store: st, WebAuthn: wa, PublicURL: testOrigin, Now: c.Now},
		t:       t, clock: c, ctx: context.Background(),
	}
	if err := f.CreateClient(f.ctx, testClient, ""); err != nil {
		t.Fatal(err)
	}
	return f
}

var citizens atomic.Int64

// citizen registers a new account and returns its session.
func (f *fixture) citizen() storage.Session {
	f.t.Helper()
	n := citizens.Add(1)
	sess := storage.Session{CitizenID: validCitizenID(fmt.Sprintf("A1%07d", n)), Name: "王小明"}
	email, tel := "citizen@example.tw", "0912345678"
	if _, err := f.Register(f.ctx, sess, Contact{Email: &email, Phone: &tel}); err != nil {
		f.t.Fatal(err)
	}
	return sess
}

// validCitizenID is prefix (a letter and eight digits) with its check digit.
func validCitizenID(prefix string) string {
	for check := '0'; ; check++ {
		if authn.ValidateCitizenID(prefix+string(check)) == nil {
			return prefix + string(check)
		}
	}
}

func newPhone(t *testing.T) *phone.Phone {
	t.Helper()
	p, err := phone.Open(filepath.Join(t.TempDir(), "phone.json"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func qrToken(text string) string { return text[strings.Index(text, "#")+1:] }

// scanned is a binding the phone p has begun: its token and the phone's answer to finish it.
func (f *fixture) scanned(sess storage.Session, p *phone.Phone) (token string, credential []byte) {
	f.t.Helper()
	nb, err := f.CreateBinding(f.ctx, sess, "session cookie")
	if err != nil {
		f.t.Fatal(err)
	}
	token = qrToken(nb.QRText)
	creation, err := f.BeginBind(f.ctx, token, "Pixel 8")
	if err != nil {
		f.t.Fatal(err)
	}
	credential, err = p.Create(testOrigin, creation.Response, phone.CreateOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return token, credential
}

// bound binds the phone p to the session's account.
func (f *fixture) bound(sess storage.Session, p *phone.Phone) (storage.Device, string) {
	f.t.Helper()
	token, credential := f.scanned(sess, p)
	d, deviceToken, err := f.FinishBind(f.ctx, token, credential)
	if err != nil {
		f.t.Fatal(err)
	}
	return d, deviceToken
}

var testBrowser = Browser{Secret: "browser secret", UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.0.0"}

var testClient = storage.Client{ID: "client", Name: "健保署"}

// approved is a redirect login of testClient that the phone p has approved; it returns the
// login's id.
func (f *fixture) approved(p *phone.Phone) string {
	f.t.Helper()
	id := newID()
	if err := f.StartRedirectLogin(f.ctx, id, testClient, []byte(`{}`), "", testBrowser); err != nil {
		f.t.Fatal(err)
	}
	page, err := f.LoginPage(f.ctx, id, testBrowser.Secret)
	if err != nil {
		f.t.Fatal(err)
	}
	token := qrToken(page.QRText)
	prompt, err := f.BeginLogin(f.ctx, token)
	if err != nil {
		f.t.Fatal(err)
	}
	credential, err := p.Get(testOrigin, prompt.Options.Response, phone.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.FinishLogin(f.ctx, token, credential); err != nil {
		f.t.Fatal(err)
	}
	return id
}

// isCode reports whether err is an error with the catalog code c.
func isCode(err error, c *mcert.Code) bool {
	var me *mcert.Error
	return errors.As(err, &me) && me.Code == c.Name
}

// concurrently runs fn(0) … fn(n-1) at once, released together.
func concurrently(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

func (f *fixture) devices(sess storage.Session) []storage.Device {
	f.t.Helper()
	a, err := f.Account(f.ctx, sess)
	if err != nil {
		f.t.Fatal(err)
	}
	d, err := f.Devices(f.ctx, a)
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

// TestDeviceLimitHoldsUnderConcurrentFinishes: with a limit of one phone, phones that all began
// binding while the account had none finish at once, and one of them is bound.
func TestDeviceLimitHoldsUnderConcurrentFinishes(t *testing.T) {
	for round := range 5 {
		f := newFixture(t)
		f.DeviceLimit = 1
		sess := f.citizen()
		const n = 8
		tokens, credentials := make([]string, n), make([][]byte, n)
		for i := range n {
			tokens[i], credentials[i] = f.scanned(sess, newPhone(t))
		}
		var bound atomic.Int32
		concurrently(n, func(i int) {
			_, _, err := f.FinishBind(f.ctx, tokens[i], credentials[i])
			switch {
			case err == nil:
				bound.Add(1)
			case !isCode(err, mcert.DeviceLimit):
				t.Errorf("round %d: finish %d: %v, want device_limit", round, i, err)
			}
		})
		if got := len(f.devices(sess)); bound.Load() != 1 || got != 1 {
			t.Fatalf("round %d: %d finishes succeeded and the account has %d devices, with a limit of 1", round, bound.Load(), got)
		}
	}
}

// TestBindingBegunBeforeSuspensionNeverFinishesAfterIt: a suspension and a finish race; the
// phone is bound before the suspension or not at all, as the audit log, written with each,
// shows.
func TestBindingBegunBeforeSuspensionNeverFinishesAfterIt(t *testing.T) {
	f := newFixture(t)
	sess := f.citizen()
	token, credential := f.scanned(sess, newPhone(t))
	if _, err := f.SetSuspended(f.ctx, sess, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.FinishBind(f.ctx, token, credential); !isCode(err, mcert.SuspendedNoBinding) {
		t.Fatalf("finish after the suspension: %v, want suspended_no_binding", err)
	}
	if d := f.devices(sess); len(d) != 0 {
		t.Fatalf("the suspended account has %d devices", len(d))
	}

	for round := range 10 {
		sess := f.citizen()
		token, credential := f.scanned(sess, newPhone(t))
		var finishErr error
		concurrently(2, func(i int) {
			if i == 0 {
				_, _, finishErr = f.FinishBind(f.ctx, token, credential)
			} else if _, err := f.SetSuspended(f.ctx, sess, true); err != nil {
				t.Error(err)
			}
		})
		a, _ := f.Account(f.ctx, sess)
		events, err := f.ListEvents(f.ctx, a.ID, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		var order []string // oldest first
		for _, e := range events {
			if e.Outcome == "ok" && (e.Type == EventBind || e.Type == EventSuspend) {
				order = append([]string{e.Type}, order...)
			}
		}
		devices := len(f.devices(sess))
		switch {
		case finishErr == nil && devices == 1 && strings.Join(order, ",") == EventBind+","+EventSuspend:
		case isCode(finishErr, mcert.SuspendedNoBinding) && devices == 0 && strings.Join(order, ",") == EventSuspend:
		default:
			t.Fatalf("round %d: finish %v, %d devices, events %v", round, finishErr, devices, order)
		}
	}
}

// TestCodeRedeemedOnce: eight redemptions of one code at once, as op makes them (the login by
// its code, a token, then the login completed): one gets tokens, the others' tokens are gone.
func TestCodeRedeemedOnce(t *testing.T) {
	f := newFixture(t)
	p := newPhone(t)
	f.bound(f.citizen(), p)
	for round := range 5 {
		id := f.approved(p)
		code := fmt.Sprint("code ", round)
		if err := f.AttachCode(f.ctx, id, code); err != nil {
			t.Fatal(err)
		}
		const n = 8
		tokenIDs := make([]string, n)
		var won atomic.Int32
		concurrently(n, func(i int) {
			l, err := f.LoginByCode(f.ctx, code)
			if err != nil {
				if !isCode(err, mcert.InvalidGrant) {
					t.Errorf("login by code: %v", err)
				}
				return
			}
			tokenIDs[i] = newID()
			if _, err := f.IssueToken(f.ctx, l.Hash, l.ClientID, tokenIDs[i], []string{"openid"}); err != nil {
				if !isCode(err, mcert.InvalidGrant) {
					t.Errorf("issue: %v", err)
				}
				return
			}
			switch err := f.CompleteLogin(f.ctx, l.Hash, tokenIDs[i]); {
			case err == nil:
				won.Add(1)
			case !isCode(err, mcert.InvalidGrant):
				t.Errorf("complete: %v", err)
			}
		})
		live := 0
		for _, tid := range tokenIDs {
			if _, err := f.ActiveToken(f.ctx, tid); err == nil {
				live++
			}
		}
		if won.Load() != 1 || live != 1 {
			t.Fatalf("round %d: %d redemptions won and %d tokens live, want 1 and 1", round, won.Load(), live)
		}
		if _, err := f.LoginByCode(f.ctx, code); !isCode(err, mcert.InvalidGrant) {
			t.Fatalf("the code after its redemption: %v", err)
		}
	}
}

// cibaApproved is a decoupled login of testClient for the citizen, approved from the inbox of
// the phone p with its device token; it returns the auth_req_id.
func (f *fixture) cibaApproved(sess storage.Session, p *phone.Phone, deviceToken string) string {
	f.t.Helper()
	id := f.ciba(sess)
	_, items, err := f.Inbox(f.ctx, deviceToken)
	if err != nil || len(items) == 0 {
		f.t.Fatalf("inbox: %d items, %v", len(items), err)
	}
	prompt, err := f.BeginLogin(f.ctx, items[len(items)-1].Token)
	if err != nil {
		f.t.Fatal(err)
	}
	credential, err := p.Get(testOrigin, prompt.Options.Response, phone.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.FinishLogin(f.ctx, items[len(items)-1].Token, credential); err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *fixture) ciba(sess storage.Session) string {
	f.t.Helper()
	c := testClient
	c.CIBA = true
	id, _, err := f.StartDecoupledLogin(f.ctx, c, sess.CitizenID, "", 0, nil, "")
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

// TestCIBATokensSurviveAFailure: a poll that finds the login approved, whose token response
// fails after its token is stored, leaves the login approved, and the next poll gets tokens;
// once they are taken, polls say so.
func TestCIBATokensSurviveAFailure(t *testing.T) {
	f := newFixture(t)
	sess := f.citizen()
	p := newPhone(t)
	_, deviceToken := f.bound(sess, p)
	id := f.cibaApproved(sess, p, deviceToken)

	l, err := f.PollDecoupled(f.ctx, testClient.ID, id)
	if err != nil {
		t.Fatalf("poll of an approved login: %v", err)
	}
	if _, err := f.IssueToken(f.ctx, l.Hash, l.ClientID, newID(), []string{"openid"}); err != nil {
		t.Fatal(err)
	}
	// The response failed here: no CompleteLogin.
	l, err = f.PollDecoupled(f.ctx, testClient.ID, id)
	if err != nil {
		t.Fatalf("poll after a failed token response: %v", err)
	}
	tid := newID()
	if _, err := f.IssueToken(f.ctx, l.Hash, l.ClientID, tid, []string{"openid"}); err != nil {
		t.Fatal(err)
	}
	if err := f.CompleteLogin(f.ctx, l.Hash, tid); err != nil {
		t.Fatal(err)
	}
	if _, err := f.PollDecoupled(f.ctx, testClient.ID, id); !isCode(err, mcert.TokensIssued) {
		t.Fatalf("poll after the tokens were taken: %v", err)
	}
	if _, err := f.PollDecoupled(f.ctx, "another client", id); !isCode(err, mcert.UnknownAuthReqID) {
		t.Fatalf("another client's poll: %v", err)
	}
}

// TestSlowDownLengthensTheInterval: each poll within the interval is slow_down and adds 5
// seconds to it (CIBA Core 1.0, section 11); a poll that waits the interval out is pending.
func TestSlowDownLengthensTheInterval(t *testing.T) {
	f := newFixture(t)
	sess := f.citizen()
	f.bound(sess, newPhone(t))
	id := f.ciba(sess)
	steps := []struct {
		wait time.Duration
		want *mcert.Code
		msg  string
	}{
		{0, mcert.AuthorizationPending, ""},
		{1 * time.Second, mcert.SlowDown, "every 10 seconds"},
		{9 * time.Second, mcert.SlowDown, "every 15 seconds"},
		{15 * time.Second, mcert.AuthorizationPending, ""},
		{14 * time.Second, mcert.SlowDown, "every 20 seconds"},
		{20 * time.Second, mcert.AuthorizationPending, ""},
	}
	for i, s := range steps {
		f.clock.Advance(s.wait)
		_, err := f.PollDecoupled(f.ctx, testClient.ID, id)
		if !isCode(err, s.want) || !strings.Contains(err.Error(), s.msg) {
			t.Fatalf("poll %d after %s: %v, want %s %q", i, s.wait, err, s.want.Name, s.msg)
		}
	}
}

// TestPendingLimitHoldsUnderConcurrentRequests: ten relying-party requests for one citizen at
// once, and MaxPending of them wait.
func TestPendingLimitHoldsUnderConcurrentRequests(t *testing.T) {
	f := newFixture(t)
	for round := range 5 {
		sess := f.citizen()
		f.bound(sess, newPhone(t))
		c := testClient
		c.CIBA = true
		var made atomic.Int32
		concurrently(10, func(int) {
			_, _, err := f.StartDecoupledLogin(f.ctx, c, sess.CitizenID, "", 0, nil, "")
			switch {
			case err == nil:
				made.Add(1)
			case !isCode(err, mcert.TooManyPending):
				t.Errorf("request: %v", err)
			}
		})
		if made.Load() != MaxPending {
			t.Fatalf("round %d: %d requests wait for one citizen, want %d", round, made.Load(), MaxPending)
		}
	}
}

// TestLoginStateMachine walks a redirect login through its states and tries every step where
// it does not belong.
func TestLoginStateMachine(t *testing.T) {
	f := newFixture(t)
	p := newPhone(t)
	f.bound(f.citizen(), p)

	id := newID()
	if err := f.StartRedirectLogin(f.ctx, id, testClient, []byte(`{}`), "", testBrowser); err != nil {
		t.Fatal(err)
	}
	if _, err := f.LoginPage(f.ctx, id, "another browser"); !isCode(err, mcert.LoginNotFound) {
		t.Fatalf("another browser's view: %v", err)
	}
	page, err := f.LoginPage(f.ctx, id, testBrowser.Secret)
	if err != nil || page.Status != storage.LoginPending {
		t.Fatalf("page: %+v, %v", page, err)
	}
	token := qrToken(page.QRText)
	if err := f.FinishLogin(f.ctx, token, []byte(`{}`)); !isCode(err, mcert.LoginNotStarted) {
		t.Fatalf("finish before begin: %v", err)
	}
	if err := f.AttachCode(f.ctx, id, "code"); !isCode(err, mcert.InvalidGrant) {
		t.Fatalf("a code for a pending login: %v", err)
	}
	prompt, err := f.BeginLogin(f.ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.BeginLogin(f.ctx, token); !isCode(err, mcert.LoginUsed) {
		t.Fatalf("second begin: %v", err)
	}
	if page, _ := f.LoginPage(f.ctx, id, testBrowser.Secret); page.Status != storage.LoginScanned {
		t.Fatalf("after begin: %s", page.Status)
	}
	credential, err := p.Get(testOrigin, prompt.Options.Response, phone.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.FinishLogin(f.ctx, token, credential); err != nil {
		t.Fatal(err)
	}
	if err := f.FinishLogin(f.ctx, token, credential); !isCode(err, mcert.LoginUsed) {
		t.Fatalf("second finish: %v", err)
	}
	if _, err := f.CancelLogin(f.ctx, id, testBrowser.Secret); !isCode(err, mcert.LoginUsed) {
		t.Fatalf("cancel of an approved login: %v", err)
	}
	if page, _ := f.LoginPage(f.ctx, id, testBrowser.Secret); page.Status != storage.LoginApproved {
		t.Fatalf("after finish: %s", page.Status)
	}
	if _, err := f.AuthRequest(f.ctx, id); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(RedirectLoginTTL)
	if _, err := f.AuthRequest(f.ctx, id); !isCode(err, mcert.LoginNotFound) {
		t.Fatalf("an expired authorization request: %v", err)
	}
}

// TestRefusedFinishesEndALogin: a phone whose answers are refused three times ends the login,
// refused, with the reason the page shows; one audit event is written, not three.
func TestRefusedFinishesEndALogin(t *testing.T) {
	f := newFixture(t)
	sess := f.citizen()
	f.bound(sess, newPhone(t))
	id := newID()
	if err := f.StartRedirectLogin(f.ctx, id, testClient, []byte(`{}`), "", testBrowser); err != nil {
		t.Fatal(err)
	}
	page, _ := f.LoginPage(f.ctx, id, testBrowser.Secret)
	token := qrToken(page.QRText)
	if _, err := f.BeginLogin(f.ctx, token); err != nil {
		t.Fatal(err)
	}
	for i := range maxFailures {
		err := f.FinishLogin(f.ctx, token, []byte(`{"id":"junk"}`))
		if i < maxFailures-1 && err == nil || i == maxFailures-1 && !isCode(err, mcert.TooManyFailures) {
			t.Fatalf("finish %d: %v", i, err)
		}
	}
	page, _ = f.LoginPage(f.ctx, id, testBrowser.Secret)
	if page.Status != storage.LoginRefused || page.Reason != mcert.TooManyFailures.Name {
		t.Fatalf("after %d refused finishes: %s %s", maxFailures, page.Status, page.Reason)
	}
	events, _ := f.ListEvents(f.ctx, "", "", 100)
	n := 0
	for _, e := range events {
		if e.Type == EventLogin && e.Outcome == "refused" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d refused-login events, want 1", n)
	}
}

// TestRevokeTokenOfAnotherClient: a relying party cannot revoke another's token, and revoking
// an unknown one is no error (RFC 7009).
func TestRevokeTokenOfAnotherClient(t *testing.T) {
	f := newFixture(t)
	p := newPhone(t)
	f.bound(f.citizen(), p)
	id := f.approved(p)
	l, err := f.AuthRequest(f.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	tid := newID()
	if _, err := f.IssueToken(f.ctx, l.Hash, l.ClientID, tid, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.IssueToken(f.ctx, l.Hash, "another client", newID(), nil); !isCode(err, mcert.InvalidGrant) {
		t.Fatalf("a token of another client's login: %v", err)
	}
	if err := f.RevokeToken(f.ctx, tid, "another client"); !isCode(err, mcert.InvalidGrant) {
		t.Fatalf("revoked by another client: %v", err)
	}
	if err := f.RevokeToken(f.ctx, "unknown", testClient.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.RevokeToken(f.ctx, tid, testClient.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ActiveToken(f.ctx, tid); !errors.Is(err, ErrInactiveToken) {
		t.Fatalf("a revoked token: %v", err)
	}
}

// writeCounter is a store that counts the write transactions begun on it.
type writeCounter struct {
	storage.Store
	updates atomic.Int64
}

func (w *writeCounter) Update(ctx context.Context, fn func(storage.Tx) error) error {
	w.updates.Add(1)
	return w.Store.Update(ctx, fn)
}

// TestWrongMailLinksWriteNothing: the mailed links are anonymous, so a wrong token, or one of
// the other link's kind, is refused by a read: no write transaction, whose failure would roll
// back and redo the writes it shared a commit with.
func TestWrongMailLinksWriteNothing(t *testing.T) {
	f := newFixture(t)
	counter := &writeCounter{Store: f.Store}
	f.Store = counter
	sess := f.citizen()
	verify := f.verificationToken(sess)
	for _, tc := range []struct {
		name  string
		use   func(context.Context, string) (storage.Account, error)
		token string
	}{
		{"unknown verification", f.VerifyEmail, "no such token"},
		{"unknown not-me", f.NotMe, "no such token"},
		{"a verification link used as not-me", f.NotMe, verify},
	} {
		before := counter.updates.Load()
		if _, err := tc.use(f.ctx, tc.token); !isCode(err, mcert.MailLinkUnknown) {
			t.Errorf("%s: %v, want mail_link_unknown", tc.name, err)
		}
		if n := counter.updates.Load() - before; n != 0 {
			t.Errorf("%s began %d write transactions", tc.name, n)
		}
	}
	if _, err := f.VerifyEmail(f.ctx, verify); err != nil {
		t.Fatalf("the right link: %v", err)
	}
}

// verificationToken is the token of the verification link mailed to the citizen of sess.
func (f *fixture) verificationToken(sess storage.Session) string {
	f.t.Helper()
	mails, err := storage.Get(f.ctx, f.Store, func(tx storage.ReadTx) ([]storage.Mail, error) {
		a, err := tx.AccountByCitizen(sess.CitizenID)
		if err != nil {
			return nil, err
		}
		return tx.Mails(a.ID)
	})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, m := range mails {
		var params map[string]string
		if m.Notice == mailer.VerifyEmail && json.Unmarshal(m.Params, &params) == nil {
			if _, token, ok := strings.Cut(params["link"], "?t="); ok {
				return token
			}
		}
	}
	f.t.Fatalf("no verification link among %d mails", len(mails))
	return ""
}
