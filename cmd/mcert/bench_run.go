package main

// mcert bench run: a server process on the seeded data, driven over loopback by concurrent
// software phones, beside the in-process ceiling of the same ceremonies.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"golang.org/x/oauth2"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/qr"
)

// benchScenarios are what bench run measures: the unit of each one's report, and how many
// timed HTTP requests one of its operations makes.
var benchScenarios = map[string]struct {
	unit     string
	requests int
}{"login": {"logins", 2}, "bind": {"bindings", 3}, "ciba": {"CIBA logins", 5}}

// benchUnlimited raises the server's rate limits out of the bench's way; they are still counted
// as in production.
const benchUnlimited = "1000000000/1m"

func runBenchRun(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) (err error) {
	dataDir := fs.String("data", "./data", "data directory seeded by mcert bench seed")
	storeFlag := fs.String("store", "", "the store seeded by mcert bench seed --store, which the servers serve from (default bolt:<data>/mcert.db)")
	instances := fs.Int("instances", 1, "servers to run on the store, which the phones' connections take turns between as behind a load balancer (a PostgreSQL store only, for more than one)")
	keys := fs.String("keys", "", "the bench's key file (default <data>/bench-keys.json)")
	c := fs.Int("c", 64, "concurrent phones")
	duration := fs.Duration("duration", 20*time.Second, "how long to measure (the login transactions and fresh accounts the phones use are prepared beforehand, untimed)")
	scenario := fs.String("scenario", "login", "login (QR login: phone begin and finish), bind (binding, begin, finish on a fresh account) or ciba (bc-authorize to tokens)")
	ceilingFor := fs.Duration("ceiling", 3*time.Second, "how long to measure the in-process ceiling (go-webauthn alone, GOMAXPROCS workers)")
	bin := fs.String("bin", "", "the mcert binary to serve with (default: this one)")
	logPath := fs.String("log", "", "the server's log (default <data>/bench-serve.log)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	serverMemory := fs.String("server-memory", "", "run the server in a memory cgroup of this size, e.g. 256MiB, so that the kernel keeps no more of the data file mapped than fits (Linux, as root)")
	debugAddr := fs.String("debug-addr", "", "serve the server's profiler here (its --debug-addr), to profile it during the run, e.g. go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, ok := benchScenarios[*scenario]; !ok || *c < 1 || *duration <= 0 || *ceilingFor <= 0 || *instances < 1 {
		fmt.Fprintln(fs.Output(), "--scenario must be login, bind or ciba; --c, --duration, --ceiling and --instances must be positive")
		return errUsage
	}
	where, err := parseStoreSpec(*storeFlag, *dataDir)
	if err != nil {
		return usageError(fs, err.Error())
	}
	if where.boltPath != "" && *instances > 1 {
		return usageError(fs, "--instances: a bbolt data file is one server's; give a PostgreSQL --store for several")
	}
	var memoryLimit int64
	if *serverMemory != "" {
		if memoryLimit, err = parseBytes(*serverMemory); err != nil {
			fmt.Fprintln(fs.Output(), "--server-memory:", err)
			return errUsage
		}
	}
	keysPath := benchKeysPath(*dataDir, *keys)
	st, err := loadBenchState(keysPath)
	if err != nil {
		return err
	}
	if *scenario != "bind" && *c > st.N {
		return fmt.Errorf("--c %d is more than the %d seeded phones; each concurrent phone needs phones of its own", *c, st.N)
	}
	if *bin == "" {
		if *bin, err = os.Executable(); err != nil {
			return err
		}
	}
	if *logPath == "" {
		*logPath = filepath.Join(*dataDir, "bench-serve.log")
	}
	addrs := make([]string, *instances)
	for i := range addrs {
		if addrs[i], err = freeLoopbackAddr(); err != nil {
			return err
		}
	}
	r := &benchRun{
		state: st, scenario: *scenario, c: *c, addrs: addrs,
		base: "http://localhost:" + addrs[0][strings.LastIndex(addrs[0], ":")+1:], uses: make([]uint32, st.N),
	}
	r.counterBase = max(st.NextCounter, uint32(time.Since(st.CreatedAt)/(10*time.Millisecond)))

	report := benchReport{
		Scenario: *scenario, Unit: benchScenarios[*scenario].unit, Requests: benchScenarios[*scenario].requests, Phones: st.N, Concurrency: *c,
		Store: where.String(), Instances: *instances,
		GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Errors: map[string]int{},
	}
	before := snapshotCPU()
	if report.Ceiling, err = benchCeiling(ctx, *scenario, st, r.base, *ceilingFor); err != nil {
		return fmt.Errorf("in-process ceiling: %w", err)
	}
	report.CeilingWorkers = runtime.GOMAXPROCS(0)
	report.CeilingOthersCPUSeconds = before.to(snapshotCPU()).others.Seconds()
	report.CeilingSeconds = ceilingFor.Seconds()

	serveFlags := []string{
		"--limit-card-login-ip", benchUnlimited, "--limit-card-login-citizen", benchUnlimited,
		"--limit-phone-begin-ip", benchUnlimited, "--limit-ciba-client", benchUnlimited, "--limit-login-ip", benchUnlimited,
		"--store", where.flag(), "--public-url", r.base, // every instance is the one origin
	}
	if *debugAddr != "" {
		serveFlags = append(serveFlags, "--debug-addr", *debugAddr)
	}
	var cg *memoryCgroup
	if memoryLimit > 0 {
		if cg, err = newMemoryCgroup(memoryLimit); err != nil {
			return err
		}
		defer cg.remove() // after the server has ended: deferred calls run last first
		if where.boltPath == "" {
			return usageError(fs, "--server-memory measures a bbolt data file in the page cache; it has no meaning with PostgreSQL")
		}
		if err := evictFromPageCache(where.boltPath); err != nil {
			return fmt.Errorf("--server-memory: evict the data file from the page cache: %w", err)
		}
		report.Server.MemoryLimit = memoryLimit
	}
	servers := make([]*serveProcess, len(addrs))
	for i, addr := range addrs {
		logFile := *logPath
		if i > 0 {
			logFile = fmt.Sprintf("%s.%d", *logPath, i)
		}
		if servers[i], err = startServe(ctx, *bin, *dataDir, addr, logFile, cg, serveFlags...); err != nil {
			return err
		}
		defer servers[i].kill()
		r.pids = append(r.pids, servers[i].cmd.Process.Pid)
	}
	srv := servers[0]
	defer func() { // whatever happens: a signature counter sent must not be sent again
		st.NextCounter = r.counterBase + slices.Max(r.uses) + 1
		st.NextBinder += int(r.binders.Load())
		if serr := st.save(keysPath); err == nil {
			err = serr
		}
	}()
	report.Server.PID = srv.cmd.Process.Pid
	if err := r.connect(ctx, *dataDir); err != nil {
		return err
	}
	if report.FloorRequestsPerSec, err = r.floor(ctx, *ceilingFor); err != nil {
		return fmt.Errorf("HTTP floor: %w", err)
	}
	report.Bound = 1 / (float64(report.Requests)/report.FloorRequestsPerSec + 1/report.Ceiling)
	if err := r.measure(ctx, *duration, &report); err != nil {
		return err
	}
	if cg != nil {
		cg.readPeak()
		report.Server.CgroupPeak = cg.peak
	}
	if p, err := readProc(srv.cmd.Process.Pid); err == nil {
		report.Server.RSS, report.Server.HWM, report.Server.RSSAnon, report.Server.RSSFile = p.rss, p.hwm, p.anon, p.file
	}
	for _, srv := range servers {
		if err := srv.stop(); err != nil {
			return err
		}
	}
	if info, err := os.Stat(where.boltPath); where.boltPath != "" && err == nil {
		report.DataFileBytes = info.Size()
		report.BytesPerPhone = float64(info.Size()) / float64(st.N)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(report)
	}
	return report.print(stdout)
}

// benchRun drives one server.
type benchRun struct {
	state       *benchState
	scenario    string
	c           int
	addrs       []string // where the servers listen, which connections take turns between
	pids        []int    // the servers' processes
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
func (r *benchRun) connect(ctx context.Context, dataDir string) error {
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
	if _, err := r.send(ctx, benchRequest{method: "GET", path: provider.DiscoveryPath, want: 200}, &disc); err != nil {
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

// benchItem is what one timed operation needs, prepared beforehand.
type benchItem struct {
	phone  benchPhone // login, ciba: the phone that approves, with its key derived
	sig    *presigned // login, ciba: its signature, made as far as it can be ahead
	token  string     // login: the QR code's token
	cookie string     // bind: the card session of a freshly registered citizen
}

// benchWorker is one concurrent phone: it owns the seeded phones i with i%c == id, so that no
// two signatures of one phone race each other to the server.
type benchWorker struct {
	id   int
	rng  *mrand.Rand
	ops  int
	seq  int // CIBA requests made
	lat  []time.Duration
	errs map[string]int
}

func (r *benchRun) pick(w *benchWorker) (benchPhone, error) {
	owned := (r.state.N - w.id + r.c - 1) / r.c
	return r.state.phone(w.id + r.c*w.rng.IntN(owned))
}

// prepare makes the untimed part of one operation: for a login, the relying party's
// authorization request as far as the login page's QR token; for a binding, a fresh citizen's
// card login and registration.
func (r *benchRun) prepare(ctx context.Context, w *benchWorker) (benchItem, error) {
	switch r.scenario {
	case "bind":
		cookie, err := r.register(ctx, benchCitizenID(benchIDSpace-1-(r.state.NextBinder+int(r.binders.Add(1)-1))))
		return benchItem{cookie: cookie}, err
	}
	p, err := r.pick(w)
	if err != nil {
		return benchItem{}, err
	}
	key, err := p.key.Bytes()
	if err != nil {
		return benchItem{}, err
	}
	it := benchItem{phone: p}
	if it.sig, err = presign(key); err != nil || r.scenario != "login" {
		return it, err
	}
	it.token, err = r.loginPage(ctx)
	return it, err
}

// run does one timed operation and returns its latency: the time of its requests, not of the
// phone's own signing.
func (r *benchRun) run(ctx context.Context, w *benchWorker, it benchItem) (time.Duration, error) {
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
func (r *benchRun) measure(ctx context.Context, duration time.Duration, report *benchReport) error {
	workers := make([]*benchWorker, r.c)
	for i := range workers {
		workers[i] = &benchWorker{id: i, rng: mrand.New(mrand.NewPCG(uint64(i), uint64(time.Now().UnixNano()))), errs: map[string]int{}}
	}
	const segment = 5 * time.Second
	var timed, prepared time.Duration
	var cpu cpuUse
	perWorker := 16
	for timed < duration {
		items := make([][]benchItem, r.c)
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
				lat, err := r.run(ctx, w, it)
				if err != nil {
					w.errs[benchErrorCode(err)]++
					continue
				}
				w.ops++
				w.lat = append(w.lat, lat)
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

	var lat []time.Duration
	for _, w := range workers {
		report.Ops += w.ops
		lat = append(lat, w.lat...)
		for code, n := range w.errs {
			report.Errors[code] += n
			report.ErrorCount += n
		}
	}
	slices.Sort(lat)
	report.Seconds = timed.Seconds()
	report.PrepareSeconds = prepared.Seconds()
	report.OpsPerSec = float64(report.Ops) / timed.Seconds()
	report.Ratio = report.OpsPerSec / report.Ceiling
	report.Latency = latencyMS{P50: percentile(lat, 50), P95: percentile(lat, 95), P99: percentile(lat, 99), Max: percentile(lat, 100)}
	report.Server.CPUSeconds = cpu.server.Seconds()
	report.Server.MajorFaults = cpu.serverMajorFaults
	report.ClientCPUSeconds = cpu.client.Seconds()
	report.OthersCPUSeconds = cpu.others.Seconds()
	if report.Ops > 0 {
		report.Server.CPUPerOpMS = cpu.server.Seconds() * 1000 / float64(report.Ops)
	}
	return nil
}

// floor is what HTTP alone costs here: the rate of GET /healthz (a handler that only pings
// the store) from as many concurrent clients as the run has, over the same loopback, with the
// same client. No operation of more than one request can go faster than this rate divided by
// its requests.
func (r *benchRun) floor(ctx context.Context, duration time.Duration) (float64, error) {
	var n atomic.Int64
	deadline := time.Now().Add(duration)
	start := time.Now()
	err := parallel(r.c, func(int) error {
		for time.Now().Before(deadline) {
			if _, err := r.send(ctx, benchRequest{method: "GET", path: "/healthz", want: 200}, nil); err != nil {
				return err
			}
			n.Add(1)
		}
		return nil
	})
	return float64(n.Load()) / time.Since(start).Seconds(), err
}

func percentile(sorted []time.Duration, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, (len(sorted)*p+99)/100-1)
	return float64(sorted[max(i, 0)]) / float64(time.Millisecond)
}

// loginPage starts a relying party's login (authorization code with PKCE) and reads the login
// page's QR token, as the page's script does.
func (r *benchRun) loginPage(ctx context.Context) (string, error) {
	auth := r.oauth.AuthCodeURL(rand.Text(), oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	res, err := r.send(ctx, benchRequest{method: "GET", path: strings.TrimPrefix(auth, r.base), want: http.StatusFound}, nil)
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
	if _, err := r.send(ctx, benchRequest{method: "GET", path: "/api/v1/logins/" + id, cookie: cookie, want: 200}, &page); err != nil {
		return "", err
	}
	link, err := qr.Parse(page.QRText)
	return link.Token, err
}

// approve is the phone's login: begin, sign, finish. It returns how long the signing took.
func (r *benchRun) approve(ctx context.Context, it benchItem, token string) (time.Duration, error) {
	p := it.phone
	var begin struct {
		PublicKey protocol.PublicKeyCredentialRequestOptions `json:"publicKey"`
	}
	if _, err := r.send(ctx, benchRequest{method: "POST", path: "/api/v1/phone/login/begin", json: map[string]string{"token": token}, want: 200}, &begin); err != nil {
		return 0, err
	}
	start := time.Now()
	r.uses[p.index]++
	assertion, err := benchAssertion(p, r.base, begin.PublicKey.Challenge, r.counterBase+r.uses[p.index], it.sig.sign)
	if err != nil {
		return 0, err
	}
	signing := time.Since(start)
	body := map[string]any{"token": token, "credential": json.RawMessage(assertion)}
	_, err = r.send(ctx, benchRequest{method: "POST", path: "/api/v1/phone/login/finish", json: body, want: 200}, nil)
	return signing, err
}

// benchAssertion is the AuthenticationResponseJSON a phone's browser sends: the signature is
// real, ES256 over the authenticator data (user present and verified, the counter) and the hash
// of the client data.
func benchAssertion(p benchPhone, origin string, challenge []byte, counter uint32, sign func(digest []byte) ([]byte, error)) ([]byte, error) {
	u, err := url.Parse(origin)
	if err != nil {
		return nil, err
	}
	clientData, err := json.Marshal(map[string]any{"type": "webauthn.get", "challenge": base64url(challenge), "origin": origin, "crossOrigin": false})
	if err != nil {
		return nil, err
	}
	rpIDHash := sha256.Sum256([]byte(u.Hostname()))
	authData := binary.BigEndian.AppendUint32(append(rpIDHash[:], byte(protocol.FlagUserPresent|protocol.FlagUserVerified)), counter)
	clientHash := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(slices.Clip(authData), clientHash[:]...))
	sig, err := sign(digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": base64url(p.credentialID), "rawId": base64url(p.credentialID), "type": "public-key", "authenticatorAttachment": "platform",
		"response": map[string]string{
			"clientDataJSON": base64url(clientData), "authenticatorData": base64url(authData),
			"signature": base64url(sig), "userHandle": base64url(p.webAuthnID),
		},
		"clientExtensionResults": map[string]any{},
	})
}

// ciba is a relying party's decoupled login from request to tokens: bc-authorize, the phone's
// inbox, begin, finish, and one poll of the token endpoint, which has the tokens by then.
func (r *benchRun) ciba(ctx context.Context, w *benchWorker, it benchItem) (time.Duration, error) {
	p := it.phone
	start := time.Now()
	w.seq++
	msg := fmt.Sprintf("bench %d-%d", w.id, w.seq)
	form := url.Values{"scope": {"openid"}, "login_hint": {p.citizenID}, "binding_message": {msg}}
	var auth struct {
		ID string `json:"auth_req_id"`
	}
	if _, err := r.send(ctx, benchRequest{method: "POST", path: r.cibaURL, form: form, client: true, want: 200}, &auth); err != nil {
		return 0, err
	}
	var inbox struct {
		Requests []phone.InboxRequest `json:"requests"`
	}
	if _, err := r.send(ctx, benchRequest{method: "GET", path: "/api/v1/phone/inbox", bearer: p.deviceToken, want: 200}, &inbox); err != nil {
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
	if _, err := r.send(ctx, benchRequest{method: "POST", path: r.oauth.Endpoint.TokenURL, form: form, client: true, want: 200}, &tokens); err != nil {
		return 0, err
	}
	if tokens.IDToken == "" {
		return 0, fmt.Errorf("%w: the token response has no id_token", errUnexpected)
	}
	return time.Since(start) - signing, nil
}

// register is a fresh citizen's card login and registration; it returns the session cookie.
func (r *benchRun) register(ctx context.Context, citizenID string) (string, error) {
	pemBytes, err := r.ca.Issue("王小明", citizenID, authn.IssueOptions{Now: time.Now()})
	if err != nil {
		return "", err
	}
	card, err := authn.ParseCard(pemBytes)
	if err != nil {
		return "", err
	}
	var ch struct{ Challenge string }
	if _, err := r.send(ctx, benchRequest{method: "GET", path: "/api/v1/card/challenge", want: 200}, &ch); err != nil {
		return "", err
	}
	raw, _ := base64.RawURLEncoding.DecodeString(ch.Challenge)
	sig, err := card.Sign(raw)
	if err != nil {
		return "", err
	}
	login := map[string]string{"challenge": ch.Challenge, "certificate": base64url(card.Certificate.Raw), "signature": base64url(sig)}
	res, err := r.send(ctx, benchRequest{method: "POST", path: "/api/v1/card/login", json: login, want: 200}, nil)
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
	_, err = r.send(ctx, benchRequest{method: "POST", path: "/api/v1/account", json: contact, cookie: cookie, want: 201}, nil)
	return cookie, err
}

// bind is binding a phone from the account page's QR code: the binding, begin, the phone's new
// credential, finish.
func (r *benchRun) bind(ctx context.Context, cookie string) (time.Duration, error) {
	start := time.Now()
	var b struct {
		QRText string `json:"qr_text"`
	}
	if _, err := r.send(ctx, benchRequest{method: "POST", path: "/api/v1/bindings", cookie: cookie, want: 201}, &b); err != nil {
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
	if _, err := r.send(ctx, benchRequest{method: "POST", path: "/api/v1/phone/bind/begin", json: body, want: 200}, &begin); err != nil {
		return 0, err
	}
	creating := time.Now()
	credential, err := new(phone.Phone).Create(r.base, begin.PublicKey, phone.CreateOptions{})
	if err != nil {
		return 0, err
	}
	phoneTook := time.Since(creating)
	finish := map[string]any{"token": link.Token, "credential": json.RawMessage(credential)}
	if _, err := r.send(ctx, benchRequest{method: "POST", path: "/api/v1/phone/bind/finish", json: finish, want: 201}, nil); err != nil {
		return 0, err
	}
	return time.Since(start) - phoneTook, nil
}

// benchRequest is one call to the server.
type benchRequest struct {
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
func (r *benchRun) send(ctx context.Context, q benchRequest, out any) (*http.Response, error) {
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
	res, data, err := roundTrip(r.http, req)
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

// roundTrip sends req and reads the whole answer.
func roundTrip(client *http.Client, req *http.Request) (*http.Response, []byte, error) {
	res, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	return res, data, err
}

// benchErrorCode is how the report counts a failed operation: by the server's error code.
func benchErrorCode(err error) string {
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

// freeLoopbackAddr is a loopback address with a port free a moment ago.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// serveProcess is `mcert serve` running as a child process.
type serveProcess struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// startServe runs `mcert serve` on dataDir at addr, its output in logPath, and waits until it
// answers /healthz.
func startServe(ctx context.Context, bin, dataDir, addr, logPath string, cg *memoryCgroup, extra ...string) (*serveProcess, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own copy
	p := &serveProcess{cmd: exec.Command(bin, append([]string{"serve", "--addr", addr, "--data", dataDir}, extra...)...), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	if cg != nil {
		if err := cg.add(p.cmd.Process.Pid); err != nil {
			p.kill()
			return nil, fmt.Errorf("move mcert serve into its memory cgroup: %w", err)
		}
	}
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/healthz", nil)
		req.Close = true // no idle connection outlives the check
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.exited:
			out, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("mcert serve exited before serving: %s\n%s", p.cmd.ProcessState, out)
		case <-ctx.Done():
			p.kill()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL, which no process can catch, and waits for the process to end.
func (p *serveProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// stop shuts the server down gracefully, as an operator's SIGTERM does.
func (p *serveProcess) stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.kill()
		return errors.New("mcert serve did not stop within 15 s of SIGTERM")
	}
	if !p.cmd.ProcessState.Success() {
		return fmt.Errorf("mcert serve ended with %s", p.cmd.ProcessState)
	}
	return nil
}

// procStat is what Linux says of a process: CPU time and memory.
type procStat struct {
	cpu                  time.Duration
	majorFaults          int64 // page faults that read the disk: of the data file, when it is not cached
	rss, hwm, anon, file int64 // bytes
}

// readProc reads /proc/<pid>/stat and /proc/<pid>/status (Linux only; elsewhere it fails and
// the report leaves the figures out). CPU time is in clock ticks of 1/100 s, Linux's USER_HZ.
func readProc(pid int) (procStat, error) {
	var p procStat
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return p, err
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 13 {
		return p, errors.New("short /proc stat")
	}
	p.majorFaults, _ = strconv.ParseInt(fields[9], 10, 64)
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	p.cpu = time.Duration(utime+stime) * 10 * time.Millisecond
	status, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return p, err
	}
	defer status.Close()
	for sc := bufio.NewScanner(status); sc.Scan(); {
		name, value, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			p.rss = kb << 10
		case "VmHWM":
			p.hwm = kb << 10
		case "RssAnon":
			p.anon = kb << 10
		case "RssFile":
			p.file = kb << 10
		}
	}
	return p, nil
}

// cpuSnapshot is the CPU time used so far by the server, by the bench itself, and by the whole
// machine.
type cpuSnapshot struct {
	server, client, machine time.Duration
	serverMajorFaults       int64
}

// cpuUse is the CPU time used between two snapshots. What others used must be near zero for
// figures worth comparing: the bench and the server share the machine's cores.
type cpuUse struct {
	server, client, others time.Duration
	serverMajorFaults      int64
}

// snapshotCPU reads the CPU time of the servers (their sum), the bench and the machine.
func snapshotCPU(serverPIDs ...int) cpuSnapshot {
	var s cpuSnapshot
	for _, pid := range serverPIDs {
		p, _ := readProc(pid)
		s.server, s.serverMajorFaults = s.server+p.cpu, s.serverMajorFaults+p.majorFaults
	}
	p, _ := readProc(os.Getpid())
	s.client = p.cpu
	// /proc/stat's first line: user nice system idle iowait irq softirq steal…, in ticks.
	if stat, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(stat), "\n")
		for i, f := range strings.Fields(line) {
			if n, err := strconv.ParseInt(f, 10, 64); err == nil && i != 4 && i != 5 && i <= 8 {
				s.machine += time.Duration(n) * 10 * time.Millisecond
			}
		}
	}
	return s
}

func (a cpuSnapshot) to(b cpuSnapshot) cpuUse {
	u := cpuUse{server: b.server - a.server, client: b.client - a.client, serverMajorFaults: b.serverMajorFaults - a.serverMajorFaults}
	u.others = max(0, b.machine-a.machine-u.server-u.client)
	return u
}

func (u cpuUse) add(v cpuUse) cpuUse {
	return cpuUse{
		server: u.server + v.server, client: u.client + v.client, others: u.others + v.others,
		serverMajorFaults: u.serverMajorFaults + v.serverMajorFaults,
	}
}

type latencyMS struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// benchReport is what bench run prints.
type benchReport struct {
	Scenario       string         `json:"scenario"`
	Unit           string         `json:"unit"`
	Requests       int            `json:"requests_per_op"` // timed HTTP requests in one operation
	Phones         int            `json:"phones"`          // seeded
	Concurrency    int            `json:"concurrency"`
	Store          string         `json:"store"`     // bolt:<file> or the PostgreSQL URL, without its password
	Instances      int            `json:"instances"` // servers on the store; Server is the first's, but its CPU figures are of them all
	Seconds        float64        `json:"seconds"`   // timed
	PrepareSeconds float64        `json:"prepare_seconds"`
	Ops            int            `json:"ops"`
	OpsPerSec      float64        `json:"ops_per_second"`
	Latency        latencyMS      `json:"latency_ms"`
	Errors         map[string]int `json:"errors"`
	ErrorCount     int            `json:"error_count"`
	Ceiling        float64        `json:"ceiling_ops_per_second"`
	CeilingWorkers int            `json:"ceiling_workers"`
	CeilingSeconds float64        `json:"ceiling_seconds"` // timed work, about a third as much untimed beside it
	Ratio          float64        `json:"http_to_ceiling"`
	// FloorRequestsPerSec is the rate of GET /healthz at the same concurrency: what HTTP alone
	// allows on this machine, before any work.
	FloorRequestsPerSec float64 `json:"floor_requests_per_second"`
	// Bound is the most operations a second that the floor and the ceiling together allow: each
	// operation's requests at the floor's cost and its ceremony at the ceiling's, one after the
	// other on the same cores, with no storage, no JSON, no client.
	Bound  float64 `json:"bound_ops_per_second"`
	Server struct {
		PID        int     `json:"pid"`
		RSS        int64   `json:"rss_bytes"`
		HWM        int64   `json:"rss_peak_bytes"`
		RSSAnon    int64   `json:"rss_anon_bytes"`
		RSSFile    int64   `json:"rss_file_bytes"`
		CPUSeconds float64 `json:"cpu_seconds"`
		CPUPerOpMS float64 `json:"cpu_ms_per_op"`
		// MajorFaults are the page faults that read the disk while timed: data-file pages that were
		// not in the page cache.
		MajorFaults int64 `json:"major_faults"`
		// MemoryLimit is the server's memory cgroup limit (--server-memory), and CgroupPeak the
		// most the cgroup used, page cache included; 0 without one.
		MemoryLimit int64 `json:"memory_limit_bytes,omitempty"`
		CgroupPeak  int64 `json:"cgroup_peak_bytes,omitempty"`
	} `json:"server"`
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	// OthersCPUSeconds is what other processes took of the machine while timed, and
	// CeilingOthersCPUSeconds while the ceiling was measured: more than a little makes both
	// figures too low.
	OthersCPUSeconds        float64 `json:"others_cpu_seconds"`
	CeilingOthersCPUSeconds float64 `json:"ceiling_others_cpu_seconds"`
	DataFileBytes           int64   `json:"data_file_bytes,omitempty"`
	BytesPerPhone           float64 `json:"data_file_bytes_per_phone,omitempty"`
	GoVersion               string  `json:"go_version"`
	CPUs                    int     `json:"cpus"`
}

func (r *benchReport) print(w io.Writer) error {
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	errs := "none"
	if r.ErrorCount > 0 {
		var list []string
		for code, n := range r.Errors {
			list = append(list, fmt.Sprintf("%s %d", code, n))
		}
		slices.Sort(list)
		errs = strings.Join(list, ", ")
	}
	memory := ""
	if r.Server.MajorFaults > int64(r.Ops)/10 {
		memory = " (the data file was not in the page cache: figures of a cold start; read it once, e.g. cat mcert.db >/dev/null, for a warm one)"
	}
	if r.Server.MemoryLimit > 0 {
		memory = fmt.Sprintf("; in a %.0f MiB memory cgroup, which used at most %.1f MiB, page cache included", mib(r.Server.MemoryLimit), mib(r.Server.CgroupPeak))
	}
	busy := ""
	if r.OthersCPUSeconds > 0.05*r.Seconds*float64(r.CPUs) || r.CeilingOthersCPUSeconds > 0.05*r.CeilingSeconds*float64(r.CPUs) {
		busy = " (the machine was not idle: these figures are low)"
	}
	dataFile := fmt.Sprintf("%.1f MiB, %.0f bytes per seeded phone", mib(r.DataFileBytes), r.BytesPerPhone)
	if r.DataFileBytes == 0 {
		dataFile = "none: the store is PostgreSQL"
	}
	_, err := fmt.Fprintf(w, `mcert bench %s: %d seeded phones, %d concurrent, %.1f s timed (%.1f s preparing), %s, %d CPUs
  %-18s %s, %d instance(s)
  %-18s %.0f/s (%d in all)
  %-18s p50 %.2f  p95 %.2f  p99 %.2f  max %.2f
  %-18s %s
  %-18s %.0f/s (go-webauthn begin, parse, validate; %d workers)
  %-18s %.1f%%
  %-18s %.0f requests/s (GET /healthz, as concurrent): at most %.0f/s at %d requests each, %.1f%% of the ceiling
  %-18s %.0f/s, %.1f%% of the ceiling: the floor's requests and the ceiling's work on the same cores, nothing else
  %-18s RSS %.1f MiB (anon %.1f, file %.1f), peak %.1f MiB; CPU %.1f s, %.3f ms per op; %d major faults%s
  %-18s CPU %.1f s
  %-18s CPU %.1f s while timed, %.1f s during the ceiling%s
  %-18s %s
`,
		r.Scenario, r.Phones, r.Concurrency, r.Seconds, r.PrepareSeconds, r.GoVersion, r.CPUs,
		"store", r.Store, r.Instances,
		r.Unit, r.OpsPerSec, r.Ops,
		"latency ms", r.Latency.P50, r.Latency.P95, r.Latency.P99, r.Latency.Max,
		"errors", errs,
		"in-process ceiling", r.Ceiling, r.CeilingWorkers,
		"HTTP/ceiling", 100*r.Ratio,
		"HTTP floor", r.FloorRequestsPerSec, r.FloorRequestsPerSec/float64(r.Requests), r.Requests,
		100*r.FloorRequestsPerSec/float64(r.Requests)/r.Ceiling,
		"bound", r.Bound, 100*r.Bound/r.Ceiling,
		"server", mib(r.Server.RSS), mib(r.Server.RSSAnon), mib(r.Server.RSSFile), mib(r.Server.HWM), r.Server.CPUSeconds, r.Server.CPUPerOpMS, r.Server.MajorFaults, memory,
		"bench client", r.ClientCPUSeconds,
		"other processes", r.OthersCPUSeconds, r.CeilingOthersCPUSeconds, busy,
		"data file", dataFile)
	return err
}
