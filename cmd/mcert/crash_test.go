package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/internal/bench"
	"github.com/mcert/mcert/internal/bench/benchtest"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/storage"
)

var crashSeed = flag.Uint64("crash.seed", 0, "seed of TestCrash's kill timing, to replay a failure (0: a new one)")

// TestCrash kills a server process with SIGKILL, at random moments, while it binds phones and
// approves logins, and checks after each kill that everything it had acknowledged is still in
// its data file, that the file is sound, and that the server serves again on it.
func TestCrash(t *testing.T) {
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d; replay with: go test -run TestCrash ./cmd/mcert -crash.seed=%d", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	bin := buildMcert(t)
	dir := t.TempDir()
	ca, _, err := authn.LoadOrCreateDevCA(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rp := addClient(t, bin, "--data", dir, "--name", "Crash RP", "--redirect-uri", rpRedirect)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	base := "http://localhost:" + addr[strings.LastIndex(addr, ":")+1:]

	d := &driver{
		base: base, ca: ca, phones: t.TempDir(), ids: citizenIDs(1000), acked: &ledger{logins: map[string]approval{}},
		oauth: oauth2.Config{ClientID: rp.ID, ClientSecret: rp.Secret, RedirectURL: rpRedirect, Scopes: []string{"openid"}},
	}
	const binders, loginers = 2, 2
	var loginPhones []*phone.Phone
	rounds := 3 + rng.IntN(3)
	for round := 0; ; round++ {
		srv := startChild(t, bin, dir, addr)
		c := d.client()
		if round == 0 {
			var disc struct {
				AuthURL string `json:"authorization_endpoint"`
			}
			if _, err := c.call(context.Background(), "GET", provider.DiscoveryPath, nil, 200, &disc); err != nil {
				t.Fatal(err)
			}
			d.oauth.Endpoint.AuthURL = disc.AuthURL
		}
		// It serves again: a bind goes through. The first start binds the phones that log in,
		// in every round, so that later rounds log in with devices bound before a crash.
		for n := max(1, loginers-len(loginPhones)); n > 0; n-- {
			ph, err := c.bind(context.Background())
			if err != nil {
				t.Fatalf("bind after start %d: %v", round+1, err)
			}
			if len(loginPhones) < loginers {
				loginPhones = append(loginPhones, ph)
			}
		}
		c.http.CloseIdleConnections()
		if round == rounds {
			break
		}

		delay := time.Duration(50+rng.IntN(351)) * time.Millisecond
		d.killMidLoad(t, round, binders, loginPhones, delay, srv.Kill)
		store := openChecked(t, filepath.Join(dir, "mcert.db"))
		devices, logins := d.acked.verify(t, store)
		store.Close()
		t.Logf("round %d: killed after %v; %d devices and %d logins acknowledged so far", round+1, delay, devices, logins)
		if t.Failed() {
			return
		}
	}
}

// killMidLoad runs binders binding phones and a login loop for each of phones against the
// server, calls kill after delay, and waits for them all to stop: after the kill only a
// connection cut short is expected, and an answer the server did send, yet not the one wanted,
// is a failure whenever.
func (d *driver) killMidLoad(t *testing.T, round, binders int, phones []*phone.Phone, delay time.Duration, kill func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var killed atomic.Bool
	var wg sync.WaitGroup
	work := func(name string, op func(context.Context, *crashClient) error) {
		wg.Go(func() {
			c := d.client()
			defer func() { c.http.CloseIdleConnections() }()
			for ops := 1; ctx.Err() == nil; ops++ {
				if err := op(ctx, c); err != nil {
					var refused *phone.APIError
					if !killed.Load() || errors.As(err, &refused) || errors.Is(err, errUnexpectedAnswer) {
						t.Errorf("round %d, %s: %v", round+1, name, err)
					}
					return
				}
				// A new address every 20 operations keeps each address under the server's
				// per-address rate limits (card logins, phone ceremonies), however fast this runs.
				if ops%20 == 0 {
					c.http.CloseIdleConnections()
					c = d.client()
				}
			}
		})
	}
	for i := range binders {
		work(fmt.Sprint("binder ", i+1), func(ctx context.Context, c *crashClient) error {
			_, err := c.bind(ctx)
			return err
		})
	}
	for i, ph := range phones {
		work(fmt.Sprint("login ", i+1), func(ctx context.Context, c *crashClient) error { return c.login(ctx, ph) })
	}
	time.Sleep(delay)
	killed.Store(true)
	kill()
	cancel()
	wg.Wait()
}

// registered is what mcert rp add prints of the client it made.
type registered struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

// addClient registers a relying party with the binary's mcert rp add and these flags.
func addClient(t *testing.T, bin string, flags ...string) registered {
	t.Helper()
	out, err := exec.Command(bin, append([]string{"rp", "add"}, flags...)...).Output()
	if err != nil {
		t.Fatalf("mcert rp add: %v", err)
	}
	var rp registered
	if err := json.Unmarshal(out, &rp); err != nil {
		t.Fatalf("mcert rp add printed %s: %v", out, err)
	}
	return rp
}

// buildMcert builds the mcert binary, to run as a process the test can kill.
func buildMcert(t *testing.T) string { return benchtest.Mcert(t) }

// startChild runs `mcert serve` on dir and waits until it answers /healthz. It is killed when
// the test ends, whatever happens.
func startChild(t *testing.T, bin, dir, addr string) *bench.ServeProcess {
	t.Helper()
	p, err := bench.StartServe(context.Background(), bin, dir, addr, filepath.Join(t.TempDir(), "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

// ledger is what the server acknowledged with a 2xx answer, and so must keep through a crash.
type ledger struct {
	mu       sync.Mutex
	accounts []string // citizen IDs
	bindings []string
	devices  []string
	logins   map[string]approval // by login ID
}

// approval is an approved login: the device that signed and the signature counter it sent.
type approval struct {
	device  string
	counter uint32
}

func (l *ledger) add(list *[]string, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	*list = append(*list, id)
}

// verify checks the stopped server's store against the ledger and says how many devices and
// logins it holds.
func (l *ledger) verify(t *testing.T, store storage.Store) (devices, logins int) {
	t.Helper()
	ctx := context.Background()
	for _, id := range l.accounts {
		if _, err := storage.Get(ctx, store, func(tx storage.ReadTx) (storage.Account, error) { return tx.AccountByCitizen(id) }); err != nil {
			t.Errorf("registered account of %s: %v", id, err)
		}
	}
	for _, id := range l.bindings {
		if _, err := storage.Get(ctx, store, func(tx storage.ReadTx) (storage.Binding, error) { return tx.Binding(id) }); err != nil {
			t.Errorf("created binding %s: %v", id, err)
		}
	}
	for _, id := range l.devices {
		if _, err := storage.Get(ctx, store, func(tx storage.ReadTx) (storage.Device, error) { return tx.Device(id) }); err != nil {
			t.Errorf("bound device %s: %v", id, err)
		}
	}
	for id, a := range l.logins {
		lg, err := storage.Get(ctx, store, func(tx storage.ReadTx) (storage.Login, error) { return tx.Login(binding.LoginTokenHash(id)) })
		if err != nil || (lg.Status != storage.LoginApproved && lg.Status != storage.LoginDone) || lg.DeviceID != a.device {
			t.Errorf("login %s approved by device %s: stored as %q by %q (%v)", id, a.device, lg.Status, lg.DeviceID, err)
			continue
		}
		if d, err := storage.Get(ctx, store, func(tx storage.ReadTx) (storage.Device, error) { return tx.Device(a.device) }); err != nil || d.SignCount < a.counter {
			t.Errorf("device %s signed login %s with counter %d; stored counter %d (%v)", a.device, id, a.counter, d.SignCount, err)
		}
	}
	return len(l.devices), len(l.logins)
}

// driver makes clients of the child server, or servers, and records what they acknowledge.
type driver struct {
	base string
	// instances are the addresses of the servers behind base, when there are several: each
	// client sends each request to the next, as a load balancer might, so that every ceremony
	// is begun on one and finished on another.
	instances []string
	ca        *authn.DevCA
	oauth     oauth2.Config
	phones    string // directory of the phones' key files
	ids       []string
	next      atomic.Int32 // next of ids to register
	addrs     atomic.Int32 // loopback addresses handed out
	acked     *ledger
}

// crashClient is a browser with a loopback address of its own: the server's rate limits count per
// address, and a crash test wants writes, not refusals.
type crashClient struct {
	*driver
	http *http.Client
}

func (d *driver) client() *crashClient {
	n := d.addrs.Add(1)
	local := &net.TCPAddr{IP: net.IPv4(127, 0, byte(n/250), byte(2+n%250))}
	jar, _ := cookiejar.New(nil)
	dialer := &net.Dialer{LocalAddr: local}
	var transport http.RoundTripper = &http.Transport{DialContext: dialer.DialContext}
	if len(d.instances) > 0 {
		transport = alternate(dialer, d.instances)
	}
	return &crashClient{driver: d, http: &http.Client{
		Jar:           jar,
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// alternating sends each request to the next of its servers, whatever its URL says.
type alternating struct {
	to   []http.RoundTripper
	next atomic.Uint64
}

func alternate(dialer *net.Dialer, addrs []string) *alternating {
	a := &alternating{}
	for _, addr := range addrs {
		a.to = append(a.to, &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "tcp", addr)
		}})
	}
	return a
}

func (a *alternating) RoundTrip(r *http.Request) (*http.Response, error) {
	return a.to[(a.next.Add(1)-1)%uint64(len(a.to))].RoundTrip(r)
}

var errUnexpectedAnswer = errors.New("unexpected answer")

// call sends body as JSON (none when nil) and decodes the answer into out, which must come with
// status want.
func (c *crashClient) call(ctx context.Context, method, path string, body any, want int, out any) (http.Header, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Origin", c.base) // as a browser does for the pages' fetch() writes
	res, data, err := roundTrip(c.http, req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != want {
		return nil, fmt.Errorf("%w to %s %s: %d, want %d: %s", errUnexpectedAnswer, method, path, res.StatusCode, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("%w to %s %s: %v", errUnexpectedAnswer, method, path, err)
		}
	}
	return res.Header, nil
}

// bind registers a new citizen with a card of their own and binds a new phone to the account.
func (c *crashClient) bind(ctx context.Context) (*phone.Phone, error) {
	n := int(c.next.Add(1))
	if n > len(c.ids) {
		return nil, errors.New("the test ran out of citizen IDs")
	}
	id := c.ids[n-1]
	pemBytes, err := c.ca.Issue("王小明", id, authn.IssueOptions{Now: time.Now()})
	if err != nil {
		return nil, err
	}
	card, err := authn.ParseCard(pemBytes)
	if err != nil {
		return nil, err
	}
	var ch struct{ Challenge string }
	if _, err := c.call(ctx, "GET", "/api/v1/card/challenge", nil, 200, &ch); err != nil {
		return nil, err
	}
	raw, _ := base64.RawURLEncoding.DecodeString(ch.Challenge)
	sig, err := card.Sign(raw)
	if err != nil {
		return nil, err
	}
	login := map[string]string{"challenge": ch.Challenge, "certificate": b64(card.Certificate.Raw), "signature": b64(sig)}
	if _, err := c.call(ctx, "POST", "/api/v1/card/login", login, 200, nil); err != nil {
		return nil, err
	}
	if _, err := c.call(ctx, "POST", "/api/v1/account", map[string]string{"email": "wang@example.tw", "phone": "0912345678"}, 201, nil); err != nil {
		return nil, err
	}
	c.acked.add(&c.acked.accounts, id)
	var b struct {
		ID     string `json:"id"`
		QRText string `json:"qr_text"`
	}
	if _, err := c.call(ctx, "POST", "/api/v1/bindings", nil, 201, &b); err != nil {
		return nil, err
	}
	c.acked.add(&c.acked.bindings, b.ID)
	p, err := phone.Open(filepath.Join(c.phones, id+".json"))
	if err != nil {
		return nil, err
	}
	res, err := (&phone.Client{HTTP: c.http, Phone: p}).Bind(ctx, b.QRText, "Pixel 8", phone.CreateOptions{})
	if err != nil {
		return nil, err
	}
	c.acked.add(&c.acked.devices, res.DeviceID)
	return p, nil
}

// login logs in at the relying party with the phone: the authorization request, as far as the
// login page, and the phone's approval of its QR code.
func (c *crashClient) login(ctx context.Context, p *phone.Phone) error {
	url := c.oauth.AuthCodeURL("state", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	h, err := c.call(ctx, "GET", strings.TrimPrefix(url, c.base), nil, http.StatusFound, nil)
	if err != nil {
		return err
	}
	id, ok := strings.CutPrefix(h.Get("Location"), "/login/")
	if !ok {
		return fmt.Errorf("%w: the authorization request went to %q, not to /login/<id>", errUnexpectedAnswer, h.Get("Location"))
	}
	var page struct {
		QRText string `json:"qr_text"`
	}
	if _, err := c.call(ctx, "GET", "/api/v1/logins/"+id, nil, 200, &page); err != nil {
		return err
	}
	if _, err := (&phone.Client{HTTP: c.http, Phone: p}).Login(ctx, page.QRText, phone.GetOptions{}); err != nil {
		return err
	}
	cred := p.Credentials()[0]
	c.acked.mu.Lock()
	defer c.acked.mu.Unlock()
	c.acked.logins[id] = approval{device: cred.DeviceID, counter: cred.SignCount}
	return nil
}
