package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcert/mcert/storage"
	"github.com/mcert/mcert/storage/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var ctx = context.Background()

func open(t testing.TB, url string, opts Options) *Store {
	t.Helper()
	s, err := Open(ctx, url, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func update(t testing.TB, s storage.Store, fn func(storage.Tx) error) {
	t.Helper()
	if err := s.Update(ctx, fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func device(i int) storage.Device {
	return storage.Device{
		ID: fmt.Sprint("device-", i), AccountID: "account-1", Name: "Pixel 8",
		CredentialID: fmt.Appendf(nil, "credential %d", i), TokenHash: fmt.Appendf(nil, "token %d", i),
		Status: storage.DeviceActive, CreatedAt: time.Unix(1_700_000_000, 0), ExpiresAt: time.Unix(1_800_000_000, 0),
	}
}

// TestOpenConcurrently opens one new database from several instances at once: each migration
// is applied once, and every instance gets a store that works.
func TestOpenConcurrently(t *testing.T) {
	u := pgtest.URL(t)
	const instances = 8
	stores := make([]*Store, instances)
	errs := make([]error, instances)
	var wg sync.WaitGroup
	for i := range instances {
		wg.Go(func() { stores[i], errs[i] = Open(ctx, u, Options{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: Open: %v", i, err)
		}
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	want, err := readMigrations()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != len(want) {
		t.Errorf("schema_migrations holds %d rows (%v), want %d", n, err, len(want))
	}
	for i, s := range stores {
		update(t, s, func(tx storage.Tx) error { return tx.CreateDevice(device(i)) })
	}
}

// TestConflictingUpdatesRetry makes two Updates read a device before either writes it: one of
// them cannot be serialized after the other and runs again, and neither increment is lost.
func TestConflictingUpdatesRetry(t *testing.T) {
	s := open(t, pgtest.URL(t), Options{})
	d := device(1)
	update(t, s, func(tx storage.Tx) error { return tx.CreateDevice(d) })
	var runs [2]atomic.Int32
	var read, wg sync.WaitGroup
	read.Add(2)
	for i := range runs {
		wg.Go(func() {
			err := s.Update(ctx, func(tx storage.Tx) error {
				v, err := tx.Device(d.ID)
				if err != nil {
					return err
				}
				if runs[i].Add(1) == 1 {
					read.Done()
					read.Wait()
				}
				v.SignCount++
				return tx.PutDevice(v)
			})
			if err != nil {
				t.Errorf("Update %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	got, err := storage.Get(ctx, s, func(tx storage.ReadTx) (storage.Device, error) { return tx.Device(d.ID) })
	if err != nil || got.SignCount != d.SignCount+2 {
		t.Errorf("SignCount after two increments: %d (%v), want %d", got.SignCount, err, d.SignCount+2)
	}
	if a, b := runs[0].Load(), runs[1].Load(); a+b != 3 {
		t.Errorf("the functions ran %d and %d times, want one of them twice", a, b)
	}
}

// TestWriteSkew is why Update is SERIALIZABLE: two Updates check a rule over rows that do not
// exist yet (at most one device), both before either writes. Under REPEATABLE READ both would
// add theirs; here one runs again and sees the other's.
func TestWriteSkew(t *testing.T) {
	s := open(t, pgtest.URL(t), Options{})
	errLimit := errors.New("the account has its device")
	var read, wg sync.WaitGroup
	read.Add(2)
	errs := make([]error, 2)
	for i := range errs {
		first := true
		wg.Go(func() {
			errs[i] = s.Update(ctx, func(tx storage.Tx) error {
				list, err := tx.Devices("account-1")
				if err != nil {
					return err
				}
				if first {
					first = false
					read.Done()
					read.Wait()
				}
				if len(list) > 0 {
					return errLimit
				}
				return tx.CreateDevice(device(i))
			})
		})
	}
	wg.Wait()
	if !(errs[0] == nil && errors.Is(errs[1], errLimit) || errs[1] == nil && errors.Is(errs[0], errLimit)) {
		t.Errorf("Updates returned %v and %v, want one nil and one %v", errs[0], errs[1], errLimit)
	}
	list, err := storage.Get(ctx, s, func(tx storage.ReadTx) ([]storage.Device, error) { return tx.Devices("account-1") })
	if err != nil || len(list) != 1 {
		t.Errorf("the account has %d devices (%v), want 1", len(list), err)
	}
}

// TestViewSnapshot: a View does not see what an Update commits while the View is open. (The
// conformance suite cannot show this on every backend: bbolt's commit may wait for the View.)
func TestViewSnapshot(t *testing.T) {
	s := open(t, pgtest.URL(t), Options{})
	d := device(1)
	err := s.View(ctx, func(tx storage.ReadTx) error {
		if _, err := tx.Device(d.ID); !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("before the Update: got %v, want %v", err, storage.ErrNotFound)
		}
		if err := s.Update(ctx, func(tx storage.Tx) error { return tx.CreateDevice(d) }); err != nil {
			return err
		}
		if _, err := tx.Device(d.ID); !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("after the Update committed: got %v, want %v", err, storage.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestCreateLoginTakenToken: a login whose token is taken is refused under a savepoint, and
// the transaction goes on to commit what else it writes.
func TestCreateLoginTakenToken(t *testing.T) {
	s := open(t, pgtest.URL(t), Options{})
	l := storage.Login{Hash: []byte("login 1"), Kind: storage.LoginRedirect, Status: storage.LoginPending, TokenHashes: [][]byte{[]byte("a"), []byte("b")}}
	update(t, s, func(tx storage.Tx) error { return tx.CreateLogin(l) })
	update(t, s, func(tx storage.Tx) error {
		dup := l
		dup.Hash, dup.TokenHashes = []byte("login 2"), [][]byte{[]byte("c"), []byte("b")}
		if err := tx.CreateLogin(dup); !errors.Is(err, storage.ErrAlreadyExists) {
			return fmt.Errorf("CreateLogin with a taken token: got %v, want %v", err, storage.ErrAlreadyExists)
		}
		return tx.CreateDevice(device(1))
	})
	err := s.View(ctx, func(tx storage.ReadTx) error {
		if _, err := tx.LoginByToken([]byte("c")); !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("the refused login's free token: got %v, want %v", err, storage.ErrNotFound)
		}
		_, err := tx.Device(device(1).ID)
		return err
	})
	if err != nil {
		t.Error(err)
	}
}

// TestTimes stores times to the nanosecond, Go's zero time, and a pointer to it, and gets
// each back as it was, in UTC; a time outside the years a bigint of nanoseconds holds is
// refused, not stored as another.
func TestTimes(t *testing.T) {
	s := open(t, pgtest.URL(t), Options{})
	zone := time.FixedZone("CST", 8*60*60)
	k := storage.SigningKey{ID: "k", Algorithm: "ES256", CreatedAt: time.Unix(1_700_000_000, 123_456_789).In(zone), RetireAt: &time.Time{}}
	tk := storage.Token{ID: "t", CreatedAt: time.Unix(-1, 999_999_999).In(zone), ExpiresAt: time.Unix(0, 1)}
	update(t, s, func(tx storage.Tx) error {
		if err := tx.CreateSigningKey(k); err != nil {
			return err
		}
		return tx.CreateToken(tk)
	})
	err := s.View(ctx, func(tx storage.ReadTx) error {
		keys, err := tx.SigningKeys()
		if err != nil {
			return err
		}
		gotToken, err := tx.Token(tk.ID)
		if err != nil {
			return err
		}
		for _, c := range []struct {
			name      string
			got, want time.Time
		}{
			{"CreatedAt", keys[0].CreatedAt, k.CreatedAt},
			{"RetireAt", *keys[0].RetireAt, time.Time{}},
			{"token AuthTime", gotToken.AuthTime, time.Time{}},
			{"token CreatedAt", gotToken.CreatedAt, tk.CreatedAt},
			{"token ExpiresAt", gotToken.ExpiresAt, tk.ExpiresAt},
		} {
			if !c.got.Equal(c.want) || c.got.Location() != time.UTC {
				t.Errorf("%s: got %v, want %v in UTC", c.name, c.got, c.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	far := storage.Token{ID: "far", CreatedAt: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.CreateToken(far) }); err == nil || !strings.Contains(err.Error(), "1678 to 2262") {
		t.Errorf("a token created in 2300: got %v, want the range refused", err)
	}
}

// TestEventsAcrossInstances appends events from two stores on one database in turn: the IDs
// increase in the order of appending, whichever instance appended.
func TestEventsAcrossInstances(t *testing.T) {
	u := pgtest.URL(t)
	instances := []*Store{open(t, u, Options{}), open(t, u, Options{})}
	var last string
	for i := range 6 {
		var e storage.Event
		update(t, instances[i%2], func(tx storage.Tx) error {
			var err error
			e, err = tx.AppendEvent(storage.Event{Time: time.Unix(int64(i), 0), Type: "login", Outcome: "ok"})
			return err
		})
		if e.ID <= last {
			t.Errorf("event %d has ID %q, not after %q", i, e.ID, last)
		}
		last = e.ID
	}
}

// TestGarbageCollectOneAtATime: while another instance holds the collection lock,
// GarbageCollect returns at once having deleted nothing; once it is released, it collects.
func TestGarbageCollectOneAtATime(t *testing.T) {
	u := pgtest.URL(t)
	s := open(t, u, Options{})
	for i := range 3 {
		update(t, s, func(tx storage.Tx) error {
			return tx.CreateChallenge(storage.Challenge{Hash: fmt.Appendf(nil, "c%d", i), ExpiresAt: time.Unix(int64(i), 0)})
		})
	}
	other, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	if _, err := other.Exec(ctx, "SELECT pg_advisory_lock($1)", collectLock); err != nil {
		t.Fatal(err)
	}
	p := storage.GCPolicy{ExpiredBefore: time.Unix(100, 0)}
	start := time.Now()
	if got, err := s.GarbageCollect(ctx, p); err != nil || got != (storage.GCResult{}) {
		t.Errorf("GarbageCollect beside another: got %+v and %v, want nothing deleted", got, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("GarbageCollect beside another took %v, want it to return at once", d)
	}
	if _, err := other.Exec(ctx, "SELECT pg_advisory_unlock($1)", collectLock); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GarbageCollect(ctx, p); err != nil || got != (storage.GCResult{Challenges: 3}) {
		t.Errorf("GarbageCollect alone: got %+v and %v, want 3 challenges", got, err)
	}
	// The lock went back with the connection: another instance can take it.
	var locked bool
	if err := other.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", collectLock).Scan(&locked); err != nil || !locked {
		t.Errorf("taking the collection lock after GarbageCollect: %v, %v; want it free", locked, err)
	}
}

// within fails t unless err wraps storage.ErrUnavailable and came within most of start.
func within(t *testing.T, what string, start time.Time, most time.Duration, err error) {
	t.Helper()
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("%s: got %v, want %v", what, err, storage.ErrUnavailable)
	}
	if d := time.Since(start); d > most {
		t.Errorf("%s took %v, want at most %v", what, d, most)
	}
}

// TestOpenUnreachable opens a database where nothing listens, and one where a server accepts
// connections but never answers: both fail in bounded time, name the address, and are
// ErrUnavailable.
func TestOpenUnreachable(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	silent := newProxy(t, closedAddr)
	silent.freeze()
	for _, tc := range []struct {
		name, addr string
	}{
		{"Closed", closedAddr},
		{"Silent", silent.addr()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := Open(ctx, "postgres://mcert@"+tc.addr+"/mcert", Options{ConnectTimeout: 500 * time.Millisecond})
			within(t, "Open", start, 2*time.Second, err)
			if err != nil && !strings.Contains(err.Error(), tc.addr) {
				t.Errorf("Open: %v, want the error to name %s", err, tc.addr)
			}
		})
	}
}

// TestServerStopped stops the database under an open store: Ping, View and Update fail at
// once with ErrUnavailable.
func TestServerStopped(t *testing.T) {
	server, stop := pgtest.Cluster(t)
	s := open(t, server, Options{})
	update(t, s, func(tx storage.Tx) error { return tx.CreateDevice(device(1)) })
	stop()
	calls := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return s.Ping(ctx) }},
		{"View", func() error {
			return s.View(ctx, func(tx storage.ReadTx) error { _, err := tx.Device(device(1).ID); return err })
		}},
		{"Update", func() error { return s.Update(ctx, func(tx storage.Tx) error { return tx.CreateDevice(device(2)) }) }},
		{"GarbageCollect", func() error { _, err := s.GarbageCollect(ctx, storage.GCPolicy{}); return err }},
	}
	for _, c := range calls {
		start := time.Now()
		within(t, c.name, start, 2*time.Second, c.call())
	}
}

// TestNetworkFrozen: a database that stops answering without closing anything (a network
// partition) makes calls fail after Options.Timeout with ErrUnavailable, not hang; a caller's
// own cancellation is not reported as the store's unavailability.
func TestNetworkFrozen(t *testing.T) {
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.addr()
	const timeout = time.Second
	s := open(t, u.String(), Options{Timeout: timeout})
	update(t, s, func(tx storage.Tx) error { return tx.CreateDevice(device(1)) })
	p.freeze()
	start := time.Now()
	err = s.Update(ctx, func(tx storage.Tx) error { return tx.CreateDevice(device(2)) })
	within(t, "Update", start, timeout+time.Second, err)
	start = time.Now()
	within(t, "Ping", start, timeout+time.Second, s.Ping(ctx))

	cancelled, cancel := context.WithTimeout(ctx, timeout/2)
	defer cancel()
	err = s.View(cancelled, func(tx storage.ReadTx) error { _, err := tx.Device(device(1).ID); return err })
	if err == nil || errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("View whose caller gave up: got %v, want an error that is not %v", err, storage.ErrUnavailable)
	}
}

// proxy forwards TCP connections to a server until frozen; then it passes nothing more, and
// closes nothing, as a network partition does.
type proxy struct {
	ln     net.Listener
	frozen chan struct{}
	mu     sync.Mutex
	conns  []net.Conn
}

func newProxy(t *testing.T, server string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, frozen: make(chan struct{})}
	t.Cleanup(p.close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.keep(c)
			select {
			case <-p.frozen:
				continue
			default:
			}
			up, err := net.Dial("tcp", server)
			if err != nil {
				c.Close()
				continue
			}
			p.keep(up)
			go p.pipe(up, c)
			go p.pipe(c, up)
		}
	}()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) freeze() { close(p.frozen) }

func (p *proxy) keep(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.frozen:
			return
		default:
		}
		if _, werr := dst.Write(buf[:n]); werr != nil || err != nil {
			dst.Close()
			return
		}
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestMigrationMail upgrades a database of the release before the outbox (migrations 1 to 4)
// holding an account and a device: the account reads with its email unverified and the
// default language, as does one that an instance of that release writes after the upgrade,
// which names none of the new columns; and the device is found by its expiry.
func TestMigrationMail(t *testing.T) {
	u := pgtest.URL(t)
	list, err := readMigrations()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
		t.Fatal(err)
	}
	for _, m := range list {
		if m.version >= 5 {
			break
		}
		if _, err := conn.Exec(ctx, m.sql); err != nil {
			t.Fatalf("migration %s: %v", m.name, err)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
			t.Fatal(err)
		}
	}
	// As the previous release writes them: without the columns it does not know.
	const oldAccount = `INSERT INTO accounts (id, citizen_id, name, email, phone, webauthn_id, status, created_ns, updated_ns)
		VALUES ($1, $2, '王小明', 'ming@example.tw', '', NULL, 'active', 0, 0)`
	if _, err := conn.Exec(ctx, oldAccount, "account-1", "A123456789"); err != nil {
		t.Fatal(err)
	}
	d := device(1)
	if _, err := conn.Exec(ctx, `INSERT INTO devices (id, account_id, name, credential_id, attestation_type, attestation_fmt, sign_count,
		backup_eligible, backup_state, status, created_ns, expires_ns) VALUES ($1, $2, '', $3, '', '', 0, false, false, 'active', 0, $4)`,
		d.ID, d.AccountID, d.CredentialID, d.ExpiresAt.UnixNano()); err != nil {
		t.Fatal(err)
	}
	s := open(t, u, Options{})
	if _, err := conn.Exec(ctx, oldAccount, "account-2", "B123456789"); err != nil {
		t.Fatalf("an account written as the previous release writes it, after the upgrade: %v", err)
	}
	err = s.View(ctx, func(tx storage.ReadTx) error {
		for _, id := range []string{"account-1", "account-2"} {
			a, err := tx.Account(id)
			if err != nil {
				return err
			}
			if a.EmailVerified || a.Lang != "" || a.Email != "ming@example.tw" {
				return fmt.Errorf("%s reads as %+v, want its email unverified and no language", id, a)
			}
		}
		list, err := tx.ExpiringDevices(time.Time{}, "", d.ExpiresAt.Add(time.Second), 10)
		if err != nil || len(list) != 1 || list[0].ID != d.ID {
			return fmt.Errorf("ExpiringDevices: got %+v and %v, want %s", list, err, d.ID)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestIndexScans checks that the queries that must not read every row can be answered from a
// range of their index: with sequential scans disabled, the plan of each scans it with an
// index condition. (The partial index of the due mails serves only a query that states its
// condition.)
func TestIndexScans(t *testing.T) {
	s := open(t, pgtest.URL(t), Options{})
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = conn.Exec(ctx, "RESET enable_seqscan") }()
	now := cutoff(time.Now())
	tests := []struct {
		name  string
		index string
		sql   string
		args  []any
	}{
		{"DueMails", "mails_due", "SELECT " + mails.read + " FROM mails " + dueMails, []any{now, 100}},
		{"ExpiringDevices", "devices_by_expiry", "SELECT " + devices.read + " FROM devices " + expiringDevices, []any{now, "device-1", now, 100}},
		{"Mails", "mails_by_account", "SELECT " + mails.read + " FROM mails WHERE account_id = $1 ORDER BY created_ns, id", []any{"account-1"}},
		{"MailByKey", "mails_key_key", "SELECT " + mails.read + " FROM mails WHERE key = $1", []any{"expiring-30/device-1"}},
		{"GarbageCollect/Mails", "mails_by_creation", "SELECT id FROM mails WHERE created_ns < $1 ORDER BY created_ns LIMIT $2", []any{now, 1000}},
		{"GarbageCollect/Tickets", "tickets_by_expiry", "SELECT hash FROM tickets WHERE expires_ns < $1 ORDER BY expires_ns LIMIT $2", []any{now, 1000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := conn.Query(ctx, "EXPLAIN "+tc.sql, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			plan := strings.Join(lines, "\n")
			// The index bounds the scan (Index Cond), not only orders a scan of every entry.
			if !strings.Contains(plan, " "+tc.index+" ") || !strings.Contains(plan, "Index Cond") {
				t.Errorf("the plan does not scan a range of %s:\n%s", tc.index, plan)
			}
		})
	}
}
