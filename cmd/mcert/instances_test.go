package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/internal/bench"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/storage/postgres"
	"github.com/mcert/mcert/storage/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// instances are mcert processes serving one PostgreSQL database behind one public URL.
type instances struct {
	t     *testing.T
	bin   string
	dir   string // their data directory: the key file, the admin token and the development CA
	store string
	addrs []string
	base  string
	procs []*bench.ServeProcess
	extra []string
}

func newInstances(t *testing.T, n int, extra ...string) *instances {
	t.Helper()
	in := &instances{t: t, bin: buildMcert(t), dir: t.TempDir(), store: pgtest.URL(t), extra: extra}
	for range n {
		addr, err := bench.FreeLoopbackAddr()
		if err != nil {
			t.Fatal(err)
		}
		in.addrs = append(in.addrs, addr)
	}
	in.base = "http://localhost:" + in.addrs[0][strings.LastIndex(in.addrs[0], ":")+1:]
	return in
}

// start starts every instance at once, as a deployment's servers start together: the schema is
// migrated under a lock, the signing keys and the admin token made once.
func (in *instances) start() {
	in.t.Helper()
	in.procs = make([]*bench.ServeProcess, len(in.addrs))
	errs := make([]error, len(in.addrs))
	var wg sync.WaitGroup
	for i, addr := range in.addrs {
		wg.Go(func() {
			args := append([]string{"--store", in.store, "--public-url", in.base}, in.extra...)
			in.procs[i], errs[i] = bench.StartServe(context.Background(), in.bin, in.dir, addr, filepath.Join(in.t.TempDir(), "serve.log"), args...)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			in.t.Fatalf("instance %d: %v", i, err)
		}
		in.t.Cleanup(in.procs[i].Kill)
	}
}

// client is a browser (or a relying party's back end) whose requests go to instance i alone.
func (in *instances) client(jar http.CookieJar, i int) *http.Client {
	dialer := &net.Dialer{}
	return &http.Client{
		Jar: jar,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "tcp", in.addrs[i])
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// alternating is a client whose requests take turns between the instances, starting with the
// first: a phone's begin goes to one and its finish to the other.
func (in *instances) alternating(jar http.CookieJar) *http.Client {
	return &http.Client{
		Jar: jar, Transport: alternate(&net.Dialer{}, in.addrs),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

func (in *instances) adminToken() string {
	in.t.Helper()
	data, err := os.ReadFile(filepath.Join(in.dir, "admin-token"))
	if err != nil {
		in.t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// expect makes a request with c and decodes a JSON answer into out, failing unless its status is
// want.
func expect(t *testing.T, c *http.Client, req *http.Request, want int, out any) http.Header {
	t.Helper()
	res, data, err := roundTrip(c, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", req.Method, req.URL.Path, res.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", req.Method, req.URL.Path, err, data)
		}
	}
	return res.Header
}

// TestInstancesShareOnePostgres runs two mcert processes on one database behind one public URL:
// a login begun on one is finished on the other, a CIBA request approved on one is polled on
// the other, a key rotated on one signs on the other, and the rate limits count across both.
func TestInstancesShareOnePostgres(t *testing.T) {
	in := newInstances(t, 2, "--limit-card-login-citizen", "3/1m")
	in.start()
	ca, _, err := authn.LoadOrCreateDevCA(in.dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The operator registers the relying party while the servers run: the store is shared.
	rp := addClient(t, in.bin, "--data", in.dir, "--store", in.store, "--name", "健保署", "--redirect-uri", rpRedirect, "--ciba")

	// A citizen registers and binds a phone, every request to the other instance than the last.
	d := &driver{base: in.base, ca: ca, phones: t.TempDir(), ids: citizenIDs(10), acked: &ledger{logins: map[string]approval{}}, instances: in.addrs}
	ph, err := d.client().bind(context.Background())
	if err != nil {
		t.Fatalf("bind across the instances: %v", err)
	}
	citizen := d.ids[0]

	// A redirect login: authorized on A, its page read on B, the phone's begin on A and finish
	// on B, the browser sent back by A, the code redeemed at B.
	jar, _ := cookiejar.New(nil)
	a, b := in.client(jar, 0), in.client(jar, 1)
	oauth := oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, RedirectURL: rpRedirect, Scopes: []string{"openid", "profile"},
		Endpoint: oauth2.Endpoint{AuthURL: in.base + "/oidc/authorize", TokenURL: in.base + "/oidc/token"}}
	verifier := oauth2.GenerateVerifier()
	req, _ := http.NewRequest("GET", oauth.AuthCodeURL("state", oauth2.S256ChallengeOption(verifier)), nil)
	loginID, ok := strings.CutPrefix(expect(t, a, req, http.StatusFound, nil).Get("Location"), "/login/")
	if !ok {
		t.Fatal("the authorization request did not lead to a login page")
	}
	var page struct {
		QRText string `json:"qr_text"`
	}
	req, _ = http.NewRequest("GET", in.base+"/api/v1/logins/"+loginID, nil)
	expect(t, b, req, 200, &page)
	pc := &phone.Client{HTTP: in.alternating(nil), Phone: ph}
	if _, err := pc.Login(context.Background(), page.QRText, phone.GetOptions{}); err != nil {
		t.Fatalf("phone login begun on one instance, finished on the other: %v", err)
	}
	var state struct {
		Status   string `json:"status"`
		Continue string `json:"continue"`
	}
	req, _ = http.NewRequest("GET", in.base+"/api/v1/logins/"+loginID, nil)
	if expect(t, b, req, 200, &state); state.Status != "approved" {
		t.Fatalf("the login page on the other instance: %s", state.Status)
	}
	req, _ = http.NewRequest("GET", state.Continue, nil)
	back, err := url.Parse(expect(t, a, req, http.StatusFound, nil).Get("Location"))
	if err != nil || back.Query().Get("code") == "" {
		t.Fatalf("continue: %v %v", back, err)
	}
	ctxB := context.WithValue(context.Background(), oauth2.HTTPClient, b)
	tok, err := oauth.Exchange(ctxB, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code redeemed on the other instance: %v", err)
	}
	provider, err := oidc.NewProvider(ctxB, in.base)
	if err != nil {
		t.Fatal(err)
	}
	idVerifier := provider.Verifier(&oidc.Config{ClientID: rp.ID})
	if _, err := idVerifier.Verify(ctxB, tok.Extra("id_token").(string)); err != nil {
		t.Fatalf("ID token: %v", err)
	}

	// The operator rotates the keys on A; B signs with the new key at once.
	var rotated struct {
		Kids map[string]string `json:"kids"`
	}
	req, _ = http.NewRequest("POST", in.base+"/api/v1/admin/keys/rotate", nil)
	req.Header.Set("Authorization", "Bearer "+in.adminToken())
	expect(t, a, req, 200, &rotated)

	// A CIBA request made on B, approved by the phone on A, polled on B.
	form := url.Values{"scope": {"openid"}, "login_hint": {citizen}, "binding_message": {"兩台伺服器"}}
	req, _ = http.NewRequest("POST", in.base+"/oidc/bc-authorize", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(rp.ID, rp.Secret)
	var started struct {
		ID string `json:"auth_req_id"`
	}
	expect(t, b, req, 200, &started)
	onA := &phone.Client{HTTP: in.client(nil, 0), Phone: ph}
	inbox, err := onA.Inbox(context.Background(), in.base)
	if err != nil || len(inbox) != 1 {
		t.Fatalf("inbox on the other instance: %v, %v", inbox, err)
	}
	if _, err := onA.Approve(context.Background(), in.base, inbox[0].Token, phone.GetOptions{}); err != nil {
		t.Fatal(err)
	}
	form = url.Values{"grant_type": {"urn:openid:params:grant-type:ciba"}, "auth_req_id": {started.ID}}
	req, _ = http.NewRequest("POST", in.base+"/oidc/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(rp.ID, rp.Secret)
	var tokens struct {
		IDToken string `json:"id_token"`
	}
	expect(t, b, req, 200, &tokens)
	if _, err := idVerifier.Verify(ctxB, tokens.IDToken); err != nil {
		t.Fatalf("the CIBA ID token: %v", err)
	}
	jws, err := jose.ParseSigned(tokens.IDToken, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if kid := jws.Signatures[0].Header.KeyID; kid != rotated.Kids["RS256"] {
		t.Fatalf("the other instance signed with key %s after the rotation to %s", kid, rotated.Kids["RS256"])
	}

	// One CA: both publish the same, which the phone's certificate, made on one, chains to.
	var pems [2][]byte
	for i := range 2 {
		req, _ := http.NewRequest("GET", in.base+"/pki/ca.pem", nil)
		res, body, err := roundTrip(in.client(nil, i), req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("GET /pki/ca.pem on instance %d: %v %v", i, res, err)
		}
		pems[i] = body
	}
	if !bytes.Equal(pems[0], pems[1]) {
		t.Fatal("the instances publish different signing CAs")
	}

	// Rate limits count on both: three card logins of one citizen a minute, wherever they land.
	card, err := ca.Issue("林小華", d.ids[1], authn.IssueOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := authn.ParseCard(card)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		c := in.client(nil, i%2)
		var ch struct{ Challenge string }
		req, _ := http.NewRequest("GET", in.base+"/api/v1/card/challenge", nil)
		expect(t, c, req, 200, &ch)
		raw, _ := base64.RawURLEncoding.DecodeString(ch.Challenge)
		sig, err := parsed.Sign(raw)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]string{"challenge": ch.Challenge, "certificate": b64(parsed.Certificate.Raw), "signature": b64(sig)})
		req, _ = http.NewRequest("POST", in.base+"/api/v1/card/login", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", in.base)
		want := 200
		if i == 3 {
			want = http.StatusTooManyRequests
		}
		expect(t, c, req, want, nil)
	}
}

// TestBackupOfPostgres: mcert backup, which copies a bbolt file, tells the operator of a
// PostgreSQL store to use pg_dump instead, and writes nothing.
func TestBackupOfPostgres(t *testing.T) {
	in := newInstances(t, 1)
	in.start()
	out := filepath.Join(t.TempDir(), "backup.db")
	said, err := exec.Command(in.bin, "backup", "--server", in.base, "--data", in.dir, "--out", out).CombinedOutput()
	if err == nil || !strings.Contains(string(said), "pg_dump") {
		t.Fatalf("mcert backup of a PostgreSQL store: %v: %s", err, said)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("mcert backup left %s: %v", out, err)
	}
}

// TestInstancesKilledMidLoad kills both instances with SIGKILL while phones bind and log in
// through them, and checks that the database holds everything either acknowledged, and that
// both serve again.
func TestInstancesKilledMidLoad(t *testing.T) {
	in := newInstances(t, 2)
	in.start()
	ca, _, err := authn.LoadOrCreateDevCA(in.dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rp := addClient(t, in.bin, "--data", in.dir, "--store", in.store, "--name", "Crash RP", "--redirect-uri", rpRedirect)
	d := &driver{
		base: in.base, ca: ca, phones: t.TempDir(), ids: citizenIDs(1000), acked: &ledger{logins: map[string]approval{}}, instances: in.addrs,
		oauth: oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, RedirectURL: rpRedirect, Scopes: []string{"openid"},
			Endpoint: oauth2.Endpoint{AuthURL: in.base + "/oidc/authorize"}},
	}
	var phones []*phone.Phone
	for range 2 {
		p, err := d.client().bind(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		phones = append(phones, p)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))
	for round := range 2 {
		d.killMidLoad(t, round, 2, phones, time.Duration(300+rng.IntN(700))*time.Millisecond, func() {
			for _, p := range in.procs {
				p.Kill()
			}
		})
		store, err := postgres.Open(context.Background(), in.store, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		devices, logins := d.acked.verify(t, store)
		store.Close()
		t.Logf("round %d: %d devices and %d logins acknowledged, all kept", round+1, devices, logins)
		if t.Failed() {
			return
		}
		in.start()
		if _, err := d.client().bind(context.Background()); err != nil {
			t.Fatalf("bind after the restart: %v", err)
		}
	}
}
