package bench

// Runs: a server process on the seeded data, driven over loopback by concurrent software
// phones, beside the in-process ceiling of the same ceremonies.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"golang.org/x/oauth2"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/qr"
)

// scenarios are what a run measures: the unit of each one's report, and how many timed HTTP
// requests one of its operations makes.
var scenarios = map[string]struct {
	unit     string
	requests int
}{"login": {"logins", 2}, "bind": {"bindings", 3}, "ciba": {"CIBA logins", 5}}

// host is the servers' public host name, which is also the phones' WebAuthn RP ID: WebAuthn
// allows http origins on localhost only.
const host = "localhost"

// unlimited raises the server's rate limits out of the bench's way; they are still counted as
// in production.
const unlimited = "1000000000/1m"

// RunConfig is what Run measures.
type RunConfig struct {
	DataDir   string // seeded by Seed
	Keys      string // the key file; "" is <DataDir>/bench-keys.json
	Store     Store  // the store Seed seeded, which the servers serve from
	Instances int    // servers on the store (more than one: a PostgreSQL store only)
	Addr      string // the first server's address, host:port; "" is a free loopback port
	C         int    // concurrent phones
	Duration  time.Duration
	Scenario  string        // login, bind or ciba
	Ceiling   time.Duration // how long to measure the in-process ceiling
	Bin       string        // the mcert binary to serve with; "" is this process's
	Log       string        // the server's log; "" is <DataDir>/bench-serve.log
	// ServerMemory, if positive, is the size of a memory cgroup the server runs in (Linux, root).
	ServerMemory int64
	DebugAddr    string // the server's --debug-addr, if set
	Plot         string // an SVG file to draw the latency distribution and the rate in, if set
	// IDTokenAlg is the algorithm the relying party registers for its ID tokens before the run
	// (id_token_signed_response_alg): RS256, OpenID's default, or ES256; "" is RS256.
	IDTokenAlg string
}

// Validate reports what is wrong with the configuration, every problem at once, in the words
// of the command's flags.
func (c RunConfig) Validate() error {
	var problems []error
	if _, ok := scenarios[c.Scenario]; !ok || c.C < 1 || c.Duration <= 0 || c.Ceiling <= 0 || c.Instances < 1 {
		problems = append(problems, errors.New("--scenario must be login, bind or ciba; --c, --duration, --ceiling and --instances must be positive"))
	}
	if c.Store.BoltPath != "" && c.Instances > 1 {
		problems = append(problems, errors.New("--instances: a bbolt data file is one server's; give a PostgreSQL --store for several"))
	}
	if c.IDTokenAlg != "" && c.IDTokenAlg != "RS256" && c.IDTokenAlg != "ES256" {
		problems = append(problems, errors.New("--id-token-alg must be RS256 or ES256"))
	}
	if c.ServerMemory > 0 && c.Store.BoltPath == "" {
		problems = append(problems, errors.New("--server-memory measures a bbolt data file in the page cache; it has no meaning with PostgreSQL"))
	}
	if c.Addr != "" {
		if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "0" || port == "" {
			problems = append(problems, fmt.Errorf("--addr %q: give host:port with a port, such as 127.0.0.1:8443", c.Addr))
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			problems = append(problems, fmt.Errorf("--addr %q: the port must be a number", c.Addr))
		}
	}
	if c.Plot != "" && !strings.HasSuffix(c.Plot, ".svg") {
		problems = append(problems, fmt.Errorf("--plot %q: the plot is an SVG file, FILE.svg", c.Plot))
	}
	return errors.Join(problems...)
}

// Run serves the seeded store with mcert serve and measures the scenario against it, after
// the in-process ceiling and the HTTP floor. Whatever happens, it saves in the key file what
// the next run must not repeat.
func Run(ctx context.Context, c RunConfig) (report *Report, err error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	keysPath := KeysPath(c.DataDir, c.Keys)
	st, err := loadState(keysPath)
	if err != nil {
		return nil, err
	}
	if c.Scenario != "bind" && c.C > st.N {
		return nil, fmt.Errorf("--c %d is more than the %d seeded phones; each concurrent phone needs phones of its own", c.C, st.N)
	}
	if c.Bin == "" {
		if c.Bin, err = os.Executable(); err != nil {
			return nil, err
		}
	}
	if c.Log == "" {
		c.Log = filepath.Join(c.DataDir, "bench-serve.log")
	}
	addrs := make([]string, c.Instances)
	for i := range addrs {
		if i == 0 && c.Addr != "" {
			// Something that already answers there would be measured in the server's place.
			l, err := net.Listen("tcp", c.Addr)
			if err != nil {
				return nil, fmt.Errorf("--addr %s: %w", c.Addr, err)
			}
			l.Close()
			addrs[i] = c.Addr
			continue
		}
		if addrs[i], err = FreeLoopbackAddr(); err != nil {
			return nil, err
		}
	}
	r := &run{
		state: st, scenario: c.Scenario, c: c.C, addrs: addrs,
		base: "http://" + host + ":" + addrs[0][strings.LastIndex(addrs[0], ":")+1:], uses: make([]uint32, st.N),
	}
	r.counterBase = max(st.NextCounter, uint32(time.Since(st.CreatedAt)/(10*time.Millisecond)))

	report = &Report{
		Scenario: c.Scenario, Unit: scenarios[c.Scenario].unit, Requests: scenarios[c.Scenario].requests, Phones: st.N, Concurrency: c.C,
		Store: c.Store.Name, Instances: c.Instances, Addr: addrs[0],
		GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Errors: map[string]int{},
	}
	alg := cmp.Or(c.IDTokenAlg, "RS256")
	if err := registerIDTokenAlg(ctx, c.Store, st.ClientID, alg); err != nil {
		return nil, fmt.Errorf("--id-token-alg: %w", err)
	}
	report.IDTokenAlg, r.idTokenAlg = alg, alg
	// The ceiling is measured before the servers start and again after they stop: on a shared
	// machine one measure of a few seconds varies by a tenth from the next, and the cost ratio
	// divides by it.
	ceilings := make([]ceiling, 0, 2)
	measureCeilingOnce := func() error {
		before := snapshotCPU()
		ceil, err := measureCeiling(ctx, c.Scenario, st, r.base, c.Ceiling, alg)
		if err != nil {
			return fmt.Errorf("in-process ceiling: %w", err)
		}
		ceilings = append(ceilings, ceil)
		used := before.to(snapshotCPU())
		report.CeilingOthersCPUSeconds += used.others.Seconds()
		report.CeilingStolenCPUSeconds += used.stolen.Seconds()
		report.CeilingSeconds += c.Ceiling.Seconds()
		return nil
	}
	if err := measureCeilingOnce(); err != nil {
		return nil, err
	}
	report.CeilingWorkers = runtime.GOMAXPROCS(0)

	serveFlags := []string{
		"--limit-card-login-ip", unlimited, "--limit-card-login-citizen", unlimited,
		"--limit-phone-begin-ip", unlimited, "--limit-ciba-client", unlimited, "--limit-login-ip", unlimited,
		"--store", c.Store.Flag, "--public-url", r.base, // every instance is the one origin
	}
	if c.DebugAddr != "" {
		serveFlags = append(serveFlags, "--debug-addr", c.DebugAddr)
	}
	var cg *memoryCgroup
	if c.ServerMemory > 0 {
		if cg, err = newMemoryCgroup(c.ServerMemory); err != nil {
			return nil, err
		}
		defer cg.remove() // after the server has ended: deferred calls run last first
		if err := evictFromPageCache(c.Store.BoltPath); err != nil {
			return nil, fmt.Errorf("--server-memory: evict the data file from the page cache: %w", err)
		}
		report.Server.MemoryLimit = c.ServerMemory
	}
	servers := make([]*ServeProcess, len(addrs))
	for i, addr := range addrs {
		logFile := c.Log
		if i > 0 {
			logFile = fmt.Sprintf("%s.%d", c.Log, i)
		}
		if servers[i], err = startServe(ctx, c.Bin, c.DataDir, addr, logFile, cg, serveFlags...); err != nil {
			return nil, err
		}
		defer servers[i].Kill()
		r.pids = append(r.pids, servers[i].PID())
	}
	srv := servers[0]
	defer func() { // whatever happens: a signature counter sent must not be sent again
		st.NextCounter = r.counterBase + slices.Max(r.uses) + 1
		st.NextBinder += int(r.binders.Load())
		if serr := st.save(keysPath); err == nil && serr != nil {
			report, err = nil, serr
		}
	}()
	report.Server.PID = srv.PID()
	if err := r.connect(ctx, c.DataDir); err != nil {
		return nil, err
	}
	if report.FloorRequestsPerSec, report.FloorCPUPerRequestMS, err = r.floor(ctx, c.Ceiling); err != nil {
		return nil, fmt.Errorf("HTTP floor: %w", err)
	}
	if err := r.measure(ctx, c.Duration, report); err != nil {
		return nil, err
	}
	if cg != nil {
		cg.readPeak()
		report.Server.CgroupPeak = cg.peak
	}
	if p, err := readProc(srv.PID()); err == nil {
		report.Server.RSS, report.Server.HWM, report.Server.RSSAnon, report.Server.RSSFile = p.rss, p.hwm, p.anon, p.file
	}
	for _, srv := range servers {
		if err := srv.Stop(); err != nil {
			return nil, err
		}
	}
	if err := measureCeilingOnce(); err != nil {
		return nil, err
	}
	report.setCeiling(ceilings)
	if info, err := os.Stat(c.Store.BoltPath); c.Store.BoltPath != "" && err == nil {
		report.DataFileBytes = info.Size()
		report.BytesPerPhone = float64(info.Size()) / float64(st.N)
	}
	if c.Plot != "" {
		if err := report.writePlot(c.Plot); err != nil {
			return nil, fmt.Errorf("--plot: %w", err)
		}
		report.Plot = c.Plot
	}
	return report, nil
}

// registerIDTokenAlg has the relying party of the seeded store sign its ID tokens with alg,
// as its operator would (the admin API's edit), before the servers start.
func registerIDTokenAlg(ctx context.Context, where Store, clientID, alg string) error {
	store, err := where.Open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	clients := provider.Clients{Service: &binding.Service{Store: store, Now: time.Now}}
	if _, err := clients.Edit(ctx, clientID, provider.ClientChange{IDTokenAlg: &alg}); err != nil {
		return err
	}
	return store.Close()
}

// run drives one server, or several on one store.
type run struct {
	state       *state
	scenario    string
	c           int
	addrs       []string // where the servers listen, which connections take turns between
	pids        []int    // the servers' processes
	idTokenAlg  string   // what the relying party's ID tokens must be signed with
	dials       atomic.Uint64
	base        string // its public URL, which is also the phones' WebAuthn origin
	http        *http.Client
	oauth       oauth2.Config
	cibaURL     string
	ca          *authn.DevCA
	uses        []uint32 // signatures per phone in this run; phone i belongs to worker i%c alone
	counterBase uint32   // above every counter an earlier run has sent
	binders     atomic.Int64
}

// connect makes the phones' HTTP client and reads the provider's endpoints.
func (r *run) connect(ctx context.Context, dataDir string) error {
	dialer := &net.Dialer{}
	r.http = &http.Client{
		Transport: &http.Transport{
			// The URLs name localhost, the WebAuthn origin; every connection goes to the server.
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, "tcp", r.addrs[(r.dials.Add(1)-1)%uint64(len(r.addrs))])
			},
			MaxIdleConns:        4 * r.c,
			MaxIdleConnsPerHost: 4 * r.c,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       time.Minute,
	}
	var disc struct {
		Authorize string `json:"authorization_endpoint"`
		Token     string `json:"token_endpoint"`
		CIBA      string `json:"backchannel_authentication_endpoint"`
	}
	if _, err := r.send(ctx, request{method: "GET", path: provider.DiscoveryPath, want: 200}, &disc); err != nil {
		return err
	}
	r.cibaURL = disc.CIBA
	r.oauth = oauth2.Config{
		ClientID: r.state.ClientID, ClientSecret: r.state.ClientSecret, RedirectURL: r.state.RedirectURI, Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: disc.Authorize, TokenURL: disc.Token},
	}
	if r.scenario == "bind" {
		var err error
		r.ca, _, err = authn.LoadOrCreateDevCA(dataDir, time.Now())
		return err
	}
	return nil
}

// item is what one timed operation needs, prepared beforehand.
type item struct {
	seeded seededPhone      // login, ciba: the citizen whose phone approves
	phone  *phone.Phone     // login, ciba: that phone, with its credential
	sig    *phone.Presigned // login, ciba: its signature, made as far as it can be ahead
	token  string           // login: the QR code's token
	cookie string           // bind: the card session of a freshly registered citizen
}

// worker is one concurrent phone: it owns the seeded phones i with i%c == id, so that no two
// signatures of one phone race each other to the server.
type worker struct {
	id   int
	rng  *mrand.Rand
	ops  int
	seq  int             // CIBA requests made
	lat  []time.Duration // of each operation that went through
	at   []time.Duration // when each ended, on the clock of the timed segments
	errs map[string]int
}

func (r *run) pick(w *worker) (seededPhone, error) {
	owned := (r.state.N - w.id + r.c - 1) / r.c
	return r.state.phone(w.id + r.c*w.rng.IntN(owned))
}

// prepare makes the untimed part of one operation: for a login, the relying party's
// authorization request as far as the login page's QR token, and the phone's presigned nonce;
// for a binding, a fresh citizen's card login and registration.
func (r *run) prepare(ctx context.Context, w *worker) (item, error) {
	if r.scenario == "bind" {
		cookie, err := r.register(ctx, citizenID(idSpace-1-(r.state.NextBinder+int(r.binders.Add(1)-1))))
		return item{cookie: cookie}, err
	}
	p, err := r.pick(w)
	if err != nil {
		return item{}, err
	}
	it := item{seeded: p}
	if it.phone, err = p.authenticator(host); err != nil {
		return it, err
	}
	if it.sig, err = phone.Presign(p.key); err != nil || r.scenario != "login" {
		return it, err
	}
	it.token, err = r.loginPage(ctx)
	return it, err
}

// do does one timed operation and returns its latency: the time of its requests, not of the
// phone's own signing.
func (r *run) do(ctx context.Context, w *worker, it item) (time.Duration, error) {
	switch r.scenario {
	case "bind":
		return r.bind(ctx, it.cookie)
	case "login":
		start := time.Now()
		signing, err := r.approve(ctx, it, it.token)
		return time.Since(start) - signing, err
	}
	return r.ciba(ctx, w, it)
}

// measure runs the workers in segments: each prepares its next operations, untimed, then all run
// them, timed, until they are used up or the duration is over. Segments keep the prepared login
// tokens fresh (they last two minutes) and need no guess of the rate in advance.
func (r *run) measure(ctx context.Context, duration time.Duration, report *Report) error {
	workers := make([]*worker, r.c)
	for i := range workers {
		workers[i] = &worker{id: i, rng: mrand.New(mrand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))), errs: map[string]int{}}
	}
	const segment = 5 * time.Second
	var timed, prepared time.Duration
	var cpu cpuUse
	perWorker := 16
	for timed < duration {
		items := make([][]item, r.c)
		start := time.Now()
		err := parallel(r.c, func(i int) error {
			for range perWorker {
				it, err := r.prepare(ctx, workers[i])
				if err != nil {
					return fmt.Errorf("prepare: %w", err)
				}
				items[i] = append(items[i], it)
			}
			return nil
		})
		if err != nil {
			return err
		}
		prepared += time.Since(start)

		before := snapshotCPU(r.pids...)
		ops0 := 0
		for _, w := range workers {
			ops0 += w.ops
		}
		start = time.Now()
		deadline := start.Add(duration - timed)
		_ = parallel(r.c, func(i int) error {
			w := workers[i]
			for _, it := range items[i] {
				if time.Now().After(deadline) || ctx.Err() != nil {
					break
				}
				lat, err := r.do(ctx, w, it)
				if err != nil {
					w.errs[errorCode(err)]++
					continue
				}
				w.ops++
				w.lat = append(w.lat, lat)
				w.at = append(w.at, timed+time.Since(start))
			}
			return nil
		})
		took := time.Since(start)
		timed += took
		cpu = cpu.add(before.to(snapshotCPU(r.pids...)))
		if err := ctx.Err(); err != nil {
			return err
		}
		ops := -ops0
		for _, w := range workers {
			ops += w.ops
		}
		if ops == 0 {
			break // nothing goes through: report the errors rather than try forever
		}
		rate := float64(ops) / took.Seconds()
		perWorker = int(rate*min(duration-timed, segment).Seconds()*1.2/float64(r.c)) + 2
	}

	for _, w := range workers {
		report.Ops += w.ops
		report.latencies = append(report.latencies, w.lat...)
		report.ends = append(report.ends, w.at...)
		for code, n := range w.errs {
			report.Errors[code] += n
			report.ErrorCount += n
		}
	}
	lat := slices.Sorted(slices.Values(report.latencies))
	report.Seconds = timed.Seconds()
	report.PrepareSeconds = prepared.Seconds()
	report.OpsPerSec = float64(report.Ops) / timed.Seconds()
	report.Latency = latencyMS{P50: percentile(lat, 50), P95: percentile(lat, 95), P99: percentile(lat, 99), Max: percentile(lat, 100)}
	report.Server.CPUSeconds = cpu.server.Seconds()
	report.Server.MajorFaults = cpu.serverMajorFaults
	report.ClientCPUSeconds = cpu.client.Seconds()
	report.OthersCPUSeconds, report.StolenCPUSeconds = cpu.others.Seconds(), cpu.stolen.Seconds()
	if report.Ops > 0 {
		report.Server.CPUPerOpMS = cpu.server.Seconds() * 1000 / float64(report.Ops)
	}
	return nil
}

// floor is what HTTP alone costs here: the rate of GET /healthz (a handler that only pings
// the store) from as many concurrent clients as the run has, over the same loopback, with the
// same client, and the servers' CPU per request meanwhile. No operation of more than one
// request can go faster than this rate divided by its requests, nor cost the servers less than
// this CPU times its requests.
func (r *run) floor(ctx context.Context, duration time.Duration) (perSec, cpuPerRequestMS float64, err error) {
	var n atomic.Int64
	deadline := time.Now().Add(duration)
	before := snapshotCPU(r.pids...)
	start := time.Now()
	err = parallel(r.c, func(int) error {
		for time.Now().Before(deadline) {
			if _, err := r.send(ctx, request{method: "GET", path: "/healthz", want: 200}, nil); err != nil {
				return err
			}
			n.Add(1)
		}
		return nil
	})
	took, cpu := time.Since(start), before.to(snapshotCPU(r.pids...))
	if n.Load() == 0 {
		return 0, 0, err
	}
	return float64(n.Load()) / took.Seconds(), cpu.server.Seconds() * 1000 / float64(n.Load()), err
}

// percentile is the p-th percentile of sorted latencies, in milliseconds.
func percentile(sorted []time.Duration, p int) float64 { return ms(perMille(sorted, 10*p)) }

// perMille is the latency that m thousandths of sorted are at most: the nearest rank.
func perMille(sorted []time.Duration, m int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, (len(sorted)*m+999)/1000-1)
	return sorted[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// loginPage starts a relying party's login (authorization code with PKCE) and reads the login
// page's QR token, as the page's script does.
func (r *run) loginPage(ctx context.Context) (string, error) {
	auth := r.oauth.AuthCodeURL(rand.Text(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	res, err := r.send(ctx, request{method: "GET", path: strings.TrimPrefix(auth, r.base), want: http.StatusFound}, nil)
	if err != nil {
		return "", err
	}
	id, ok := strings.CutPrefix(res.Header.Get("Location"), "/login/")
	if !ok {
		return "", fmt.Errorf("the authorization request went to %q, not to /login/<id>", res.Header.Get("Location"))
	}
	var page struct {
		QRText string `json:"qr_text"`
	}
	// The login belongs to the browser that started it: its cookie goes with the page's call.
	var cookie string
	for _, c := range res.Cookies() {
		cookie = c.Name + "=" + c.Value
	}
	if _, err := r.send(ctx, request{method: "GET", path: "/api/v1/logins/" + id, cookie: cookie, want: 200}, &page); err != nil {
		return "", err
	}
	link, err := qr.Parse(page.QRText)
	return link.Token, err
}

// approve is the phone's login: begin, sign, finish. It returns how long the signing took.
// The phone signs with its presigned nonce, and with the next counter of the run.
func (r *run) approve(ctx context.Context, it item, token string) (time.Duration, error) {
	var begin struct {
		PublicKey protocol.PublicKeyCredentialRequestOptions `json:"publicKey"`
	}
	if _, err := r.send(ctx, request{method: "POST", path: "/api/v1/phone/login/begin", json: map[string]string{"token": token}, want: 200}, &begin); err != nil {
		return 0, err
	}
	start := time.Now()
	r.uses[it.seeded.index]++
	counter := r.counterBase + r.uses[it.seeded.index]
	assertion, err := it.phone.Get(r.base, begin.PublicKey, phone.GetOptions{SignCount: &counter, Signer: it.sig})
	if err != nil {
		return 0, err
	}
	signing := time.Since(start)
	body := map[string]any{"token": token, "credential": json.RawMessage(assertion)}
	_, err = r.send(ctx, request{method: "POST", path: "/api/v1/phone/login/finish", json: body, want: 200}, nil)
	return signing, err
}

// ciba is a relying party's decoupled login from request to tokens: bc-authorize, the phone's
// inbox, begin, finish, and one poll of the token endpoint, which has the tokens by then.
func (r *run) ciba(ctx context.Context, w *worker, it item) (time.Duration, error) {
	p := it.seeded
	start := time.Now()
	w.seq++
	msg := fmt.Sprintf("bench %d-%d", w.id, w.seq)
	form := url.Values{"scope": {"openid"}, "login_hint": {p.citizenID}, "binding_message": {msg}}
	var auth struct {
		ID string `json:"auth_req_id"`
	}
	if _, err := r.send(ctx, request{method: "POST", path: r.cibaURL, form: form, client: true, want: 200}, &auth); err != nil {
		return 0, err
	}
	var inbox struct {
		Requests []phone.InboxRequest `json:"requests"`
	}
	if _, err := r.send(ctx, request{method: "GET", path: "/api/v1/phone/inbox", bearer: p.deviceToken, want: 200}, &inbox); err != nil {
		return 0, err
	}
	i := slices.IndexFunc(inbox.Requests, func(q phone.InboxRequest) bool { return q.BindingMessage == msg })
	if i < 0 {
		return 0, fmt.Errorf("%w: the request is not in the phone's inbox", errUnexpected)
	}
	signing, err := r.approve(ctx, it, inbox.Requests[i].Token)
	if err != nil {
		return 0, err
	}
	form = url.Values{"grant_type": {"urn:openid:params:grant-type:ciba"}, "auth_req_id": {auth.ID}}
	var tokens struct {
		IDToken string `json:"id_token"`
	}
	if _, err := r.send(ctx, request{method: "POST", path: r.oauth.Endpoint.TokenURL, form: form, client: true, want: 200}, &tokens); err != nil {
		return 0, err
	}
	if alg := idTokenAlg(tokens.IDToken); alg != r.idTokenAlg {
		return 0, fmt.Errorf("%w: the ID token is signed %q, not %s as the relying party registered", errUnexpected, alg, r.idTokenAlg)
	}
	return time.Since(start) - signing, nil
}

// idTokenAlg is the alg of a JWS in compact form, or "" if it is not one.
func idTokenAlg(jws string) string {
	header, _, _ := strings.Cut(jws, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	_ = json.Unmarshal(raw, &h)
	return h.Alg
}

// register is a fresh citizen's card login and registration; it returns the session cookie.
func (r *run) register(ctx context.Context, citizenID string) (string, error) {
	pemBytes, err := r.ca.Issue("王小明", citizenID, authn.IssueOptions{Now: time.Now()})
	if err != nil {
		return "", err
	}
	card, err := authn.ParseCard(pemBytes)
	if err != nil {
		return "", err
	}
	var ch struct{ Challenge string }
	if _, err := r.send(ctx, request{method: "GET", path: "/api/v1/card/challenge", want: 200}, &ch); err != nil {
		return "", err
	}
	raw, _ := base64.RawURLEncoding.DecodeString(ch.Challenge)
	sig, err := card.Sign(raw)
	if err != nil {
		return "", err
	}
	login := map[string]string{"challenge": ch.Challenge, "certificate": base64url(card.Certificate.Raw), "signature": base64url(sig)}
	res, err := r.send(ctx, request{method: "POST", path: "/api/v1/card/login", json: login, want: 200}, nil)
	if err != nil {
		return "", err
	}
	var cookie string
	for _, c := range res.Cookies() {
		if c.Name == "mcert_session" {
			cookie = c.Name + "=" + c.Value
		}
	}
	contact := map[string]string{"email": "bench@example.tw", "phone": "0912345678"}
	_, err = r.send(ctx, request{method: "POST", path: "/api/v1/account", json: contact, cookie: cookie, want: 201}, nil)
	return cookie, err
}

// bind is binding a phone from the account page's QR code: the binding, begin, the phone's new
// credential, finish.
func (r *run) bind(ctx context.Context, cookie string) (time.Duration, error) {
	start := time.Now()
	var b struct {
		QRText string `json:"qr_text"`
	}
	if _, err := r.send(ctx, request{method: "POST", path: "/api/v1/bindings", cookie: cookie, want: 201}, &b); err != nil {
		return 0, err
	}
	link, err := qr.Parse(b.QRText)
	if err != nil {
		return 0, err
	}
	var begin struct {
		PublicKey protocol.PublicKeyCredentialCreationOptions `json:"publicKey"`
	}
	body := map[string]string{"token": link.Token, "device_name": "Bench phone"}
	if _, err := r.send(ctx, request{method: "POST", path: "/api/v1/phone/bind/begin", json: body, want: 200}, &begin); err != nil {
		return 0, err
	}
	creating := time.Now()
	credential, err := new(phone.Phone).Create(r.base, begin.PublicKey, phone.CreateOptions{})
	if err != nil {
		return 0, err
	}
	phoneTook := time.Since(creating)
	finish := map[string]any{"token": link.Token, "credential": json.RawMessage(credential)}
	if _, err := r.send(ctx, request{method: "POST", path: "/api/v1/phone/bind/finish", json: finish, want: 201}, nil); err != nil {
		return 0, err
	}
	return time.Since(start) - phoneTook, nil
}

// request is one call to the server.
type request struct {
	method, path string // path may also be an absolute URL of the server
	json         any
	form         url.Values
	client       bool // authenticate as the relying party (client_secret_basic)
	bearer       string
	cookie       string
	want         int
}

var errUnexpected = errors.New("unexpected answer")

// send makes the request and decodes the answer, which must have the wanted status, into out.
// A refusal with an error body is a *phone.APIError.
func (r *run) send(ctx context.Context, q request, out any) (*http.Response, error) {
	var body io.Reader
	contentType := ""
	switch {
	case q.json != nil:
		data, err := json.Marshal(q.json)
		if err != nil {
			return nil, err
		}
		body, contentType = bytes.NewReader(data), "application/json"
	case q.form != nil:
		body, contentType = strings.NewReader(q.form.Encode()), "application/x-www-form-urlencoded"
	}
	target := q.path
	if !strings.Contains(target, "://") {
		target = r.base + q.path
	}
	req, err := http.NewRequestWithContext(ctx, q.method, target, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if q.client {
		req.SetBasicAuth(url.QueryEscape(r.state.ClientID), url.QueryEscape(r.state.ClientSecret))
	}
	if q.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+q.bearer)
	}
	if q.cookie != "" {
		req.Header.Set("Cookie", q.cookie)
	}
	res, err := r.http.Do(req)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	if res.StatusCode != q.want {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return nil, &phone.APIError{Status: res.StatusCode, Code: e.Error, Message: e.Message}
		}
		return nil, fmt.Errorf("%w to %s %s: %d, want %d: %.200s", errUnexpected, q.method, q.path, res.StatusCode, q.want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("%w to %s %s: %v", errUnexpected, q.method, q.path, err)
		}
	}
	return res, nil
}

// errorCode is how the report counts a failed operation: by the server's error code.
func errorCode(err error) string {
	var refused *phone.APIError
	switch {
	case errors.As(err, &refused):
		return refused.Code
	case errors.Is(err, errUnexpected):
		return "unexpected_answer"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "timeout"
	}
	return "transport"
}
