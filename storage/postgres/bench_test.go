package postgres

// The benchmarks of the store. Compare two versions with
//
//	go test -run '^$' -bench . -count 6 ./storage/postgres > new.txt
//	benchstat old.txt new.txt
//
// Each runs from 1 goroutine and from 64 at once, each goroutine a citizen of its own; ns/op
// is the wall time per operation (the inverse of the throughput), and retries/op how often
// PostgreSQL could not serialize a transaction and it ran again. The store has its default
// pool, so 64 goroutines share a few connections, as a busy instance's requests do.
//
// BenchmarkLogin runs on a store that starts empty and on one holding 50,000 accounts,
// devices and logins of others. The difference is SERIALIZABLE's: PostgreSQL tracks what a transaction
// read by index page, and while the tables are small every login in flight reads and writes
// the same few pages, so that logins that share no record still conflict and retry. A store
// of a national service's size spreads them over many pages.
//
// pgtest's cluster runs with fsync off, so a commit costs no flush to disk; set
// MCERT_TEST_POSTGRES to a server set up as in production for figures that include it.

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcert/mcert/storage"
	"github.com/mcert/mcert/storage/postgres/pgtest"
)

var benchTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func benchHash(what string, i int) []byte {
	h := sha256.Sum256(fmt.Appendf(nil, "%s %d", what, i))
	return h[:]
}

// counted is a store that counts the runs of the functions given to Update, to tell retries.
type counted struct {
	*Store
	runs atomic.Int64
}

func (c *counted) Update(ctx context.Context, fn func(storage.Tx) error) error {
	return c.Store.Update(ctx, func(tx storage.Tx) error {
		c.runs.Add(1)
		return fn(tx)
	})
}

// citizen is one goroutine's account and phone.
type citizen struct {
	n       int
	account storage.Account
	device  storage.Device
	ip      string
}

func newCitizen(b *testing.B, s storage.Store, n int) *citizen {
	c := &citizen{n: n, ip: fmt.Sprintf("198.51.100.%d", n%256)}
	c.account = storage.Account{
		ID: fmt.Sprint("account-", n), CitizenID: fmt.Sprintf("A1%08d", n), Name: "王小明", WebAuthnID: benchHash("user", n),
		Status: storage.AccountActive, CreatedAt: benchTime, UpdatedAt: benchTime,
	}
	c.device = storage.Device{
		ID: fmt.Sprint("device-", n), AccountID: c.account.ID, Name: "Pixel 8",
		CredentialID: benchHash("credential", n), PublicKey: append(benchHash("x", n), benchHash("y", n)...),
		AttestationType: "none", AAGUID: make([]byte, 16), SignCount: 1, Transports: []string{"internal", "hybrid"},
		TokenHash: benchHash("device token", n), Status: storage.DeviceActive,
		CreatedAt: benchTime, ExpiresAt: benchTime.AddDate(1, 0, 0),
	}
	err := s.Update(context.Background(), func(tx storage.Tx) error {
		if err := tx.CreateAccount(c.account); err != nil {
			return err
		}
		return tx.CreateDevice(c.device)
	})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// login runs the transactions of the i-th QR login of c, in the order mcert runs them: the
// relying party starts it, the browser shows it, the phone begins it (rate-limited by its
// IP) and finishes it (approving it with its device, logged), and the relying party redeems
// the code for a token.
func (c *citizen) login(ctx context.Context, s storage.Store, i int) error {
	id := fmt.Sprintf("%d/%d", c.n, i)
	token := benchHash("qr token "+id, 0)
	l := storage.Login{
		Hash: benchHash("login "+id, 0), Kind: storage.LoginRedirect, ClientID: "client", ClientName: "健保署",
		Status: storage.LoginPending, CreatedAt: benchTime, ExpiresAt: benchTime.Add(10 * time.Minute),
		TokenExpiresAt: benchTime.Add(2 * time.Minute), TokenSerial: 1, TokenHashes: [][]byte{token}, Code: "1234",
		Request:     []byte(`{"scope":"openid","nonce":"n-0S6_WzA2Mj","state":"af0ifjsldkj"}`),
		BrowserHash: benchHash("browser", c.n), Browser: "Chrome on Windows",
	}
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.CreateLogin(l) }); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if _, err := storage.Get(ctx, s, func(tx storage.ReadTx) (storage.Login, error) { return tx.Login(l.Hash) }); err != nil {
		return fmt.Errorf("page: %w", err)
	}
	err := s.Update(ctx, func(tx storage.Tx) error {
		l, err := tx.LoginByToken(token)
		if err != nil {
			return err
		}
		if _, err := tx.Hit("phone begin ip "+c.ip, time.Minute, benchTime); err != nil {
			return err
		}
		l.Status, l.WebAuthnSession = storage.LoginScanned, make([]byte, 300)
		return tx.PutLogin(l)
	})
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	code := benchHash("code "+id, 0)
	err = s.Update(ctx, func(tx storage.Tx) error {
		l, err := tx.LoginByToken(token)
		if err != nil {
			return err
		}
		d, err := tx.DeviceByCredential(c.device.CredentialID)
		if err != nil {
			return err
		}
		if _, err := tx.Account(d.AccountID); err != nil {
			return err
		}
		d.SignCount++
		d.LastUsedAt = new(benchTime)
		if err := tx.PutDevice(d); err != nil {
			return err
		}
		l.Status, l.CodeHash, l.AccountID, l.DeviceID, l.AuthTime = storage.LoginApproved, code, d.AccountID, d.ID, new(benchTime)
		if err := tx.PutLogin(l); err != nil {
			return err
		}
		_, err = tx.AppendEvent(storage.Event{Time: benchTime, AccountID: d.AccountID, Type: "login", Outcome: "ok", ClientID: l.ClientID, DeviceID: d.ID, IP: c.ip})
		return err
	})
	if err != nil {
		return fmt.Errorf("finish: %w", err)
	}
	err = s.Update(ctx, func(tx storage.Tx) error {
		l, err := tx.LoginByCode(code)
		if err != nil {
			return err
		}
		l.Status = storage.LoginDone
		if err := tx.PutLogin(l); err != nil {
			return err
		}
		return tx.CreateToken(storage.Token{
			ID: "token " + id, ClientID: l.ClientID, AccountID: l.AccountID, Scopes: []string{"openid"},
			AuthTime: benchTime, CreatedAt: benchTime, ExpiresAt: benchTime.Add(time.Hour),
		})
	})
	if err != nil {
		return fmt.Errorf("redeem: %w", err)
	}
	return nil
}

// loginUpdates is how many of a login's transactions are Updates.
const loginUpdates = 4

// BenchmarkLogin runs whole logins. With sharedIP every phone begins from one address, as
// phones behind one carrier's NAT do: their rate-limit counter is one row, which concurrent
// SERIALIZABLE transactions cannot all update, so they retry.
func BenchmarkLogin(b *testing.B) {
	for _, rows := range []int{0, 50_000} {
		for _, shared := range []bool{false, true} {
			for _, goroutines := range []int{1, 64} {
				// One store for all of the sub-benchmark's runs: filling it takes a while.
				s := &counted{Store: open(b, pgtest.URL(b), Options{})}
				fill(b, s.Store, rows)
				citizens := make([]*citizen, goroutines)
				for i := range citizens {
					citizens[i] = newCitizen(b, s, i)
					if shared {
						citizens[i].ip = "192.0.2.1"
					}
				}
				var logins atomic.Int64 // numbers the logins across runs, which share the store
				b.Run(fmt.Sprintf("rows=%d/sharedIP=%v/goroutines=%d", rows, shared, goroutines), func(b *testing.B) {
					run(b, s, loginUpdates, goroutines, func(ctx context.Context, g, _ int) error {
						return citizens[g].login(ctx, s, int(logins.Add(1)))
					})
				})
			}
		}
	}
}

// fill stores n accounts with a device each, and n finished logins, in one COPY per table,
// written from the store's own column lists.
func fill(b *testing.B, s *Store, n int) {
	if n == 0 {
		return
	}
	conn, err := s.pool.Acquire(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	accountRows, deviceRows, loginRows, tokenRows := make([][]any, n), make([][]any, n), make([][]any, n), make([][]any, n)
	for i := range n {
		a := storage.Account{ID: fmt.Sprint("other-", i), CitizenID: fmt.Sprintf("B1%08d", i), Name: "林美玲", WebAuthnID: benchHash("other user", i), Status: storage.AccountActive, CreatedAt: benchTime, UpdatedAt: benchTime}
		d := storage.Device{
			ID: fmt.Sprint("other-", i), AccountID: a.ID, Name: "iPhone", CredentialID: benchHash("other credential", i),
			TokenHash: benchHash("other device token", i), Status: storage.DeviceActive, CreatedAt: benchTime, ExpiresAt: benchTime.AddDate(1, 0, 0),
		}
		l := storage.Login{
			Hash: benchHash("other login", i), Kind: storage.LoginRedirect, ClientID: "client", Status: storage.LoginDone,
			CreatedAt: benchTime, ExpiresAt: benchTime.Add(10 * time.Minute), TokenHashes: [][]byte{benchHash("other login token", i)},
			CodeHash: benchHash("other code", i), AccountID: a.ID, DeviceID: d.ID,
		}
		accountRows[i], deviceRows[i], loginRows[i] = args(accounts.columns(&a)), args(devices.columns(&d)), args(logins.columns(&l))
		tokenRows[i] = []any{l.TokenHashes[0], l.Hash}
	}
	copyIn := func(table string, names []string, rows [][]any) {
		if _, err := conn.CopyFrom(context.Background(), pgx.Identifier{table}, names, pgx.CopyFromRows(rows)); err != nil {
			b.Fatalf("fill %s: %v", table, err)
		}
	}
	copyIn("accounts", names(accounts), accountRows)
	copyIn("devices", names(devices), deviceRows)
	copyIn("logins", names(logins), loginRows)
	copyIn("login_tokens", []string{"hash", "login"}, tokenRows)
	if _, err := conn.Exec(context.Background(), "ANALYZE"); err != nil {
		b.Fatal(err)
	}
}

func names[T any](tb *table[T]) []string {
	var zero T
	var list []string
	for _, c := range tb.columns(&zero) {
		list = append(list, c.name)
	}
	return list
}

// BenchmarkOps runs the transactions of a login one at a time, each on records of its
// goroutine's citizen.
func BenchmarkOps(b *testing.B) {
	ops := []struct {
		name    string
		updates int // how many of its transactions are Updates
		op      func(ctx context.Context, s storage.Store, c *citizen, i int) error
	}{
		{"GetDeviceByCredential", 0, func(ctx context.Context, s storage.Store, c *citizen, _ int) error {
			_, err := storage.Get(ctx, s, func(tx storage.ReadTx) (storage.Device, error) { return tx.DeviceByCredential(c.device.CredentialID) })
			return err
		}},
		{"UpdateDevice", 1, func(ctx context.Context, s storage.Store, c *citizen, _ int) error {
			return s.Update(ctx, func(tx storage.Tx) error {
				d, err := tx.Device(c.device.ID)
				if err != nil {
					return err
				}
				d.SignCount++
				return tx.PutDevice(d)
			})
		}},
		{"CreateLogin", 1, func(ctx context.Context, s storage.Store, c *citizen, i int) error {
			id := fmt.Sprintf("%d/%d", c.n, i)
			return s.Update(ctx, func(tx storage.Tx) error {
				return tx.CreateLogin(storage.Login{
					Hash: benchHash("login "+id, 0), Kind: storage.LoginCIBA, ClientID: "client", Status: storage.LoginPending,
					CreatedAt: benchTime, ExpiresAt: benchTime.Add(10 * time.Minute), AccountID: c.account.ID,
					TokenHashes: [][]byte{benchHash("login token "+id, 0)}, Request: make([]byte, 64),
				})
			})
		}},
		{"Hit", 1, func(ctx context.Context, s storage.Store, c *citizen, _ int) error {
			return s.Update(ctx, func(tx storage.Tx) error {
				_, err := tx.Hit("phone begin ip "+c.ip, time.Minute, benchTime)
				return err
			})
		}},
		{"AppendEvent", 1, func(ctx context.Context, s storage.Store, c *citizen, _ int) error {
			return s.Update(ctx, func(tx storage.Tx) error {
				_, err := tx.AppendEvent(storage.Event{Time: benchTime, AccountID: c.account.ID, Type: "login", Outcome: "ok", IP: c.ip})
				return err
			})
		}},
	}
	for _, o := range ops {
		for _, goroutines := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/goroutines=%d", o.name, goroutines), func(b *testing.B) {
				s := &counted{Store: open(b, pgtest.URL(b), Options{})}
				citizens := make([]*citizen, goroutines)
				for i := range citizens {
					citizens[i] = newCitizen(b, s, i)
				}
				run(b, s, o.updates, goroutines, func(ctx context.Context, g, i int) error { return o.op(ctx, s, citizens[g], i) })
			})
		}
	}
}

// run calls op b.N times in all from the given number of goroutines, op(ctx, g, i) being
// goroutine g's i-th call, and reports the retries per call of the updates calls Update
// times each.
func run(b *testing.B, s *counted, updates, goroutines int, op func(ctx context.Context, g, i int) error) {
	ctx := context.Background()
	s.runs.Store(0)
	var done atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := 0; done.Add(1) <= int64(b.N); i++ {
				if err := op(ctx, g, i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if updates > 0 {
		b.ReportMetric(float64(s.runs.Load()-int64(updates*b.N))/float64(b.N), "retries/op")
	}
}
