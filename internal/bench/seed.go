package bench

// Seeding: citizens with bound software phones, written through storage.Store into a stopped
// server's store (its data file, or a PostgreSQL database), whose keys derive from one seed so
// that a million phones need no storage.

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/storage"
)

// seedBatch phones are written in one transaction: few enough to hold up nothing for long,
// enough that a commit's flush is spread over many.
const seedBatch = 1000

// Store is the store the bench seeds or serves, as the command line named it.
type Store struct {
	Name     string // for the report: bolt:<file>, or the PostgreSQL URL without its password
	Flag     string // as mcert serve's --store takes it, password and all
	BoltPath string // the bbolt data file; "" for PostgreSQL
	// Open opens it, for Seed and for Run's edit of the relying party before the servers start.
	Open func(context.Context) (storage.Store, error)
}

// SeedConfig is what Seed seeds.
type SeedConfig struct {
	DataDir string // the stopped server's data directory: the key file and development CA go there
	Store   Store
	N       int    // citizens, each with one bound phone
	Keys    string // the key file; "" is <DataDir>/bench-keys.json
	// Progress, if set, is told every ten seconds how far the seeding is.
	Progress io.Writer
}

// Validate reports what is wrong with the configuration, every problem at once.
func (c SeedConfig) Validate() error {
	if c.N < 1 || c.N > MaxN {
		return fmt.Errorf("--n must be 1 to %d", MaxN)
	}
	return nil
}

// SeedReport is what Seed did.
type SeedReport struct {
	Phones         int     `json:"phones"`
	Seconds        float64 `json:"seconds"`
	PhonesPerSec   float64 `json:"phones_per_second"`
	Store          string  `json:"store"`
	DataFile       string  `json:"data_file,omitempty"`
	DataFileBytes  int64   `json:"data_file_bytes,omitempty"`
	BytesPerDevice float64 `json:"data_file_bytes_per_device,omitempty"`
	Keys           string  `json:"keys"`
	ClientID       string  `json:"client_id"`
}

// Seed seeds N citizens, each with an account and one bound phone, and a relying party for
// their logins, then writes the key file. The records go in through storage.Store's
// transactions, as the server's own would (see seededPhone.records).
func Seed(ctx context.Context, c SeedConfig) (SeedReport, error) {
	if err := c.Validate(); err != nil {
		return SeedReport{}, err
	}
	keysPath := KeysPath(c.DataDir, c.Keys)
	if _, err := os.Stat(keysPath); err == nil {
		return SeedReport{}, fmt.Errorf("%s exists: this data directory is seeded already (remove both to seed again)", keysPath)
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return SeedReport{}, err
	}
	start := time.Now()
	now := start.UTC()
	// The bind scenario issues cards from the development CA, which the server also uses.
	if _, _, err := authn.LoadOrCreateDevCA(c.DataDir, now); err != nil {
		return SeedReport{}, err
	}
	store, err := c.Store.Open(ctx)
	if err != nil {
		return SeedReport{}, err
	}
	defer store.Close()
	st := &state{Version: keysVersion, Seed: make([]byte, 32), N: c.N, CreatedAt: now, RedirectURI: redirectURI}
	_, _ = rand.Read(st.Seed)
	svc := &binding.Service{Store: store, Now: time.Now}
	rp, err := provider.RegisterClient(ctx, svc, provider.ClientSpec{Name: "Bench RP", RedirectURIs: []string{redirectURI}, CIBA: true}, "")
	if err != nil {
		return SeedReport{}, err
	}
	st.ClientID, st.ClientSecret = rp.ID, rp.Secret
	if err := seedPhones(ctx, store, st, now, c.Progress); err != nil {
		return SeedReport{}, err
	}
	if err := store.Close(); err != nil {
		return SeedReport{}, err
	}
	if err := st.save(keysPath); err != nil {
		return SeedReport{}, fmt.Errorf("save the bench key file (the data file is seeded, but without it useless): %w", err)
	}
	took := time.Since(start).Seconds()
	r := SeedReport{Phones: c.N, Seconds: took, PhonesPerSec: float64(c.N) / took, Store: c.Store.Name, Keys: keysPath, ClientID: st.ClientID}
	if c.Store.BoltPath != "" {
		info, err := os.Stat(c.Store.BoltPath)
		if err != nil {
			return r, err
		}
		r.DataFile, r.DataFileBytes, r.BytesPerDevice = c.Store.BoltPath, info.Size(), float64(info.Size())/float64(c.N)
	}
	return r, nil
}

// Print writes the report for people.
func (r SeedReport) Print(w io.Writer) error {
	fmt.Fprintf(w, "seeded %d citizens with bound phones in %.1f s (%.0f/s) into %s\n", r.Phones, r.Seconds, r.PhonesPerSec, r.Store)
	if r.DataFile != "" {
		fmt.Fprintf(w, "data file %s: %.1f MiB, %.0f bytes per device\n", r.DataFile, float64(r.DataFileBytes)/(1<<20), r.BytesPerDevice)
	}
	_, err := fmt.Fprintf(w, "keys in %s; relying party %s\n", r.Keys, r.ClientID)
	return err
}

// seedPhones writes the accounts and devices, seedBatch to a transaction: the phones' keys are
// derived on every core, and one batch is written while the next is derived.
func seedPhones(ctx context.Context, store storage.Store, st *state, now time.Time, progress io.Writer) error {
	type record struct {
		a storage.Account
		d storage.Device
	}
	ctx, cancel := context.WithCancel(ctx) // a failed write stops the deriving
	defer cancel()
	batches := make(chan []record, 1)
	derived := make(chan error, 1)
	go func() {
		defer close(batches)
		for from := 0; from < st.N; from += seedBatch {
			batch := make([]record, min(seedBatch, st.N-from))
			var next atomic.Int64
			err := parallel(runtime.GOMAXPROCS(0), func(int) error {
				for i := int(next.Add(1) - 1); i < len(batch); i = int(next.Add(1) - 1) {
					p, err := st.phone(from + i)
					if err != nil {
						return err
					}
					if batch[i].a, batch[i].d, err = p.records(now); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				derived <- err
				return
			}
			select {
			case batches <- batch:
			case <-ctx.Done():
				return
			}
		}
		derived <- nil
	}()
	done, last := 0, time.Now()
	for batch := range batches {
		err := store.Update(ctx, func(tx storage.Tx) error {
			for _, r := range batch {
				if err := tx.CreateAccount(r.a); err != nil {
					return fmt.Errorf("seed account %s: %w", r.a.CitizenID, err)
				}
				if err := tx.CreateDevice(r.d); err != nil {
					return fmt.Errorf("seed the device of %s: %w", r.a.CitizenID, err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if done += len(batch); progress != nil && time.Since(last) >= 10*time.Second {
			fmt.Fprintf(progress, "  %d of %d seeded (%.0f s)\n", done, st.N, time.Since(now).Seconds())
			last = time.Now()
		}
	}
	select {
	case err := <-derived:
		return err
	default: // the deriving stopped without a word: ctx is done
		return ctx.Err()
	}
}

// parallel runs fn(0) … fn(n-1) at once and returns the first error.
func parallel(n int, fn func(i int) error) error {
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := range n {
		wg.Go(func() {
			if err := fn(i); err != nil {
				once.Do(func() { first = err })
			}
		})
	}
	wg.Wait()
	return first
}
