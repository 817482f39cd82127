package bolt

// The benchmarks of the store's operations. Compare two versions with
//
//	go test -run '^$' -bench . -count 6 ./storage/bolt > new.txt
//	benchstat old.txt new.txt
//
// Every operation runs Serial, one call at a time, and Parallel, from 32 goroutines per core at
// once: there, writes share commits, and ns/op is the wall time per operation (the inverse of
// the throughput). Each write waits for the fsync of its commit.
//
// Each operation is now the transaction a use case runs (BenchmarkUpdateDevice reads the device
// and puts it), under the name of the method it replaced, so that benchstat compares the two
// APIs.

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mcert/mcert/storage"
)

func BenchmarkBindDevice(b *testing.B) {
	s := benchStore(b)
	bd := storage.Binding{ID: "binding", TokenHash: benchHash("binding", 0), AccountID: "account", Status: storage.BindingScanned, CreatedAt: benchTime, ExpiresAt: benchTime.Add(time.Hour)}
	if err := s.Update(context.Background(), func(tx storage.Tx) error { return tx.CreateBinding(bd) }); err != nil {
		b.Fatal(err)
	}
	benchOp(b, func(ctx context.Context, n int) error {
		return s.Update(ctx, func(tx storage.Tx) error { return bind(tx, bd.ID, benchDevice(n)) })
	})
}

func BenchmarkGetDevice(b *testing.B) {
	s, d := benchStoreWithDevice(b)
	benchOp(b, func(ctx context.Context, _ int) error {
		_, err := storage.Get(ctx, s, func(tx storage.ReadTx) (storage.Device, error) { return tx.Device(d.ID) })
		return err
	})
}

func BenchmarkGetDeviceByCredential(b *testing.B) {
	s, d := benchStoreWithDevice(b)
	benchOp(b, func(ctx context.Context, _ int) error {
		_, err := storage.Get(ctx, s, func(tx storage.ReadTx) (storage.Device, error) { return tx.DeviceByCredential(d.CredentialID) })
		return err
	})
}

func BenchmarkUpdateDevice(b *testing.B) {
	s, d := benchStoreWithDevice(b)
	benchOp(b, func(ctx context.Context, _ int) error {
		return s.Update(ctx, func(tx storage.Tx) error {
			d, err := tx.Device(d.ID)
			if err != nil {
				return err
			}
			d.SignCount++
			return tx.PutDevice(d)
		})
	})
}

func BenchmarkCreateLogin(b *testing.B) {
	s := benchStore(b)
	benchOp(b, func(ctx context.Context, n int) error {
		return s.Update(ctx, func(tx storage.Tx) error { return tx.CreateLogin(benchLogin(n)) })
	})
}

func BenchmarkGetLogin(b *testing.B) {
	s, l := benchStoreWithLogin(b)
	benchOp(b, func(ctx context.Context, _ int) error {
		_, err := storage.Get(ctx, s, func(tx storage.ReadTx) (storage.Login, error) { return tx.Login(l.Hash) })
		return err
	})
}

func BenchmarkUpdateLogin(b *testing.B) {
	s, l := benchStoreWithLogin(b)
	benchOp(b, func(ctx context.Context, n int) error {
		return s.Update(ctx, func(tx storage.Tx) error {
			l, err := tx.Login(l.Hash)
			if err != nil {
				return err
			}
			l.LastPolledAt = new(benchTime.Add(time.Duration(n)))
			return tx.PutLogin(l)
		})
	})
}

// BenchmarkListWaitingLogins lists the 10 logins waiting in an account's inbox.
func BenchmarkListWaitingLogins(b *testing.B) {
	s := benchStore(b)
	for i := range 10 {
		if err := s.Update(context.Background(), func(tx storage.Tx) error { return tx.CreateLogin(benchLogin(i)) }); err != nil {
			b.Fatal(err)
		}
	}
	benchOp(b, func(ctx context.Context, _ int) error {
		list, err := storage.Get(ctx, s, func(tx storage.ReadTx) ([]storage.Login, error) { return tx.WaitingLogins("account") })
		if err == nil && len(list) != 10 {
			err = fmt.Errorf("listed %d logins, want 10", len(list))
		}
		return err
	})
}

func BenchmarkHit(b *testing.B) {
	s := benchStore(b)
	benchOp(b, func(ctx context.Context, _ int) error { return benchHit(ctx, s) })
}

func BenchmarkAppendEvent(b *testing.B) {
	s := benchStore(b)
	e := storage.Event{Time: benchTime, AccountID: "account", Type: "login", Outcome: "ok", ClientID: "client", DeviceID: "device", IP: "192.0.2.0/24"}
	benchOp(b, func(ctx context.Context, _ int) error {
		return s.Update(ctx, func(tx storage.Tx) error {
			_, err := tx.AppendEvent(e)
			return err
		})
	})
}

// BenchmarkWriters counts hits from 1 to 64 writers at once: how commits are shared as the
// concurrency grows. ns/op is the wall time per hit.
func BenchmarkWriters(b *testing.B) {
	for _, writers := range []int{1, 2, 4, 8, 16, 64} {
		b.Run(fmt.Sprint("writers=", writers), func(b *testing.B) {
			s := benchStore(b)
			var done atomic.Int64
			var wg sync.WaitGroup
			for range writers {
				wg.Go(func() {
					for done.Add(1) <= int64(b.N) {
						if err := benchHit(context.Background(), s); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// BenchmarkLookup finds random devices by credential among 1,000 and among 100,000: an index
// lookup is O(log n), so the two differ by little.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprint("devices=", n), func(b *testing.B) {
			s := filledStore(b, n)
			credentials := make([][]byte, 1000) // every n/1000th device, looked up in turn
			for i := range credentials {
				credentials[i] = benchHash("credential", i*n/len(credentials))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := storage.Get(context.Background(), s, func(tx storage.ReadTx) (storage.Device, error) {
					return tx.DeviceByCredential(credentials[i%len(credentials)])
				}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// benchOp runs op Serial and Parallel. op gets a number no other call gets, for keys that must
// be new.
func benchOp(b *testing.B, op func(ctx context.Context, n int) error) {
	ctx := context.Background()
	var next atomic.Int64
	b.Run("Serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := op(ctx, int(next.Add(1))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := op(ctx, int(next.Add(1))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

var benchTime = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// benchHit counts a hit of the phone's begin, the most frequent write.
func benchHit(ctx context.Context, s *Store) error {
	return s.Update(ctx, func(tx storage.Tx) error {
		_, err := tx.Hit("phone begin ip 192.0.2.1", time.Minute, benchTime)
		return err
	})
}

func benchHash(what string, i int) []byte {
	h := sha256.Sum256(fmt.Appendf(nil, "%s %d", what, i))
	return h[:]
}

// benchDevice is the n-th of distinct devices, the size of a phone's: a P-256 COSE key and
// 32-byte credential ID.
func benchDevice(n int) storage.Device {
	return storage.Device{
		ID: fmt.Sprint("device-", n), AccountID: fmt.Sprint("account-", n), Name: "Pixel 8",
		CredentialID: benchHash("credential", n), PublicKey: append(benchHash("x", n), benchHash("y", n)...),
		AttestationType: "none", AAGUID: make([]byte, 16), SignCount: 1, Transports: []string{"internal"},
		TokenHash: benchHash("device token", n), Status: storage.DeviceActive,
		CreatedAt: benchTime, ExpiresAt: benchTime.AddDate(1, 0, 0),
	}
}

// benchLogin is the n-th of distinct logins of one account, scanned by a phone.
func benchLogin(n int) storage.Login {
	return storage.Login{
		Hash: benchHash("login", n), Kind: storage.LoginCIBA, ClientID: "client", ClientName: "健保署",
		Status: storage.LoginScanned, CreatedAt: benchTime, ExpiresAt: benchTime.Add(10 * time.Minute),
		TokenExpiresAt: benchTime.Add(2 * time.Minute), TokenSerial: 1, TokenHashes: [][]byte{benchHash("login token", n)},
		Code: "1234", Request: []byte(`{"scope":"openid","nonce":"n-0S6_WzA2Mj"}`),
		WebAuthnSession: make([]byte, 300), AccountID: "account",
	}
}

func benchStore(b *testing.B) *Store {
	return open(b, filepath.Join(b.TempDir(), "mcert.db"), Options{})
}

func benchStoreWithDevice(b *testing.B) (*Store, storage.Device) {
	s := benchStore(b)
	return s, seedDevice(b, s)
}

func benchStoreWithLogin(b *testing.B) (*Store, storage.Login) {
	s, l := benchStore(b), benchLogin(0)
	if err := s.Update(context.Background(), func(tx storage.Tx) error { return tx.CreateLogin(l) }); err != nil {
		b.Fatal(err)
	}
	return s, l
}

// filled keeps the stores BenchmarkLookup fills, one per size, for the whole test process:
// filling 100,000 devices takes seconds, and the benchmark runs many times. TestMain removes them.
var filled struct {
	sync.Mutex
	dir    string
	stores map[int]*Store
}

// filledStore returns a store holding devices 0 to n-1, written in one transaction.
func filledStore(b *testing.B, n int) *Store {
	filled.Lock()
	defer filled.Unlock()
	if s, ok := filled.stores[n]; ok {
		return s
	}
	if filled.dir == "" {
		dir, err := os.MkdirTemp("", "mcert-bench-")
		if err != nil {
			b.Fatal(err)
		}
		filled.dir, filled.stores = dir, make(map[int]*Store)
	}
	s, err := Open(filepath.Join(filled.dir, fmt.Sprint(n, ".db")), Options{})
	if err != nil {
		b.Fatal(err)
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		for i := range n {
			if _, err := devices.put(tx, benchDevice(i), nil, false); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	filled.stores[n] = s
	return s
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, s := range filled.stores {
		_ = s.Close()
	}
	if filled.dir != "" {
		_ = os.RemoveAll(filled.dir)
	}
	os.Exit(code)
}

// BenchmarkGarbageCollect collects once a minute's worth of expired logins among live ones:
// the write transaction it holds must not grow with the live logins.
func BenchmarkGarbageCollect(b *testing.B) {
	for _, live := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("live=%d", live), func(b *testing.B) {
			s := benchStore(b)
			add := func(from, n int, expires time.Time) {
				err := s.db.Update(func(tx *bbolt.Tx) error {
					for i := from; i < from+n; i++ {
						l := benchLogin(i)
						l.ExpiresAt = expires
						if err := logins.create(tx, l); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			add(0, live, benchTime.Add(time.Hour))
			next := live
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				add(next, 100, benchTime)
				next += 100
				b.StartTimer()
				got, err := s.GarbageCollect(context.Background(), storage.GCPolicy{ExpiredBefore: benchTime.Add(time.Minute)})
				if err != nil || got.Logins != 100 {
					b.Fatalf("GarbageCollect: %+v, %v; want 100 logins", got, err)
				}
			}
		})
	}
}
