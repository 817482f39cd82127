package main

// mcert bench seed: citizens with bound software phones, written straight into a store (a
// stopped server's data file, or a PostgreSQL database), whose keys derive from one seed so that
// a million phones need no storage.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/mcert/mcert/authn"
	"github.com/mcert/mcert/binding"
	"github.com/mcert/mcert/provider"
	"github.com/mcert/mcert/storage"
)

const (
	benchKeysVersion = 1
	// benchIDSpace is how many national IDs benchCitizenID makes: 26 letters, 1 or 2, 10⁷.
	// Seeded citizens count up from 0, the bind scenario's fresh citizens down from the top.
	benchIDSpace = 26 * 2 * 10_000_000
	benchMaxN    = 10_000_000
	// seedBatch phones are written in one transaction: few enough to hold up nothing for long,
	// enough that a commit's flush is spread over many.
	seedBatch        = 1000
	benchRedirectURI = "http://localhost:9000/callback"
)

// benchState is the bench's key file: the seed every phone derives from, the relying party the
// logins are for, and what runs must not repeat (signature counters, fresh citizens).
type benchState struct {
	Version      int       `json:"version"`
	Seed         []byte    `json:"seed"`
	N            int       `json:"n"`
	CreatedAt    time.Time `json:"created_at"`
	ClientID     string    `json:"client_id"`
	ClientSecret string    `json:"client_secret"`
	RedirectURI  string    `json:"redirect_uri"`
	// NextCounter is above every signature counter a run has sent; the next run counts from it.
	NextCounter uint32 `json:"next_counter"`
	// NextBinder is the first citizen the bind scenario has not registered yet.
	NextBinder int `json:"next_binder"`
}

func benchKeysPath(dataDir, keys string) string {
	if keys != "" {
		return keys
	}
	return filepath.Join(dataDir, "bench-keys.json")
}

func loadBenchState(path string) (*benchState, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no bench key file at %s: run mcert bench seed first", path)
	}
	if err != nil {
		return nil, err
	}
	var st benchState
	if err := json.Unmarshal(data, &st); err != nil || st.Version != benchKeysVersion || len(st.Seed) == 0 || st.N < 1 {
		return nil, fmt.Errorf("%s is not a bench key file of version %d (%v); seed again", path, benchKeysVersion, err)
	}
	return &st, nil
}

// save writes the key file, readable by its owner only: it holds every phone's key.
func (st *benchState) save(path string) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// benchPhone is seeded citizen i with their one bound phone.
type benchPhone struct {
	index        int
	citizenID    string
	accountID    string
	deviceID     string
	webAuthnID   []byte // the account's user handle, 64 bytes
	credentialID []byte
	deviceToken  string // the inbox secret, which the server knows by hash
	key          *ecdsa.PrivateKey
}

// derive is the seed's HMAC of purpose and i: every secret and ID of the bench.
func (st *benchState) derive(purpose string, i int) []byte {
	m := hmac.New(sha256.New, st.Seed)
	m.Write([]byte("mcert bench " + purpose + " " + strconv.Itoa(i)))
	return m.Sum(nil)
}

func (st *benchState) phone(i int) (benchPhone, error) {
	p := benchPhone{
		index: i, citizenID: benchCitizenID(i),
		accountID:    base64url(st.derive("account", i)[:16]),
		deviceID:     base64url(st.derive("device", i)[:16]),
		webAuthnID:   append(st.derive("user handle a", i), st.derive("user handle b", i)...),
		credentialID: st.derive("credential", i),
		deviceToken:  base64url(st.derive("device token", i)),
	}
	// A P-256 scalar from 32 random bytes is out of range once in 2³², so a second try is enough.
	for try := 0; p.key == nil; try++ {
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), st.derive("key "+strconv.Itoa(try), i))
		if err != nil && try > 3 {
			return p, fmt.Errorf("derive the key of phone %d: %w", i, err)
		}
		p.key = k
	}
	return p, nil
}

// records are the account and device the server would have made of this citizen's card login,
// registration and binding, with the same encodings.
func (p benchPhone) records(now time.Time) (storage.Account, storage.Device, error) {
	a := storage.Account{
		ID: p.accountID, CitizenID: p.citizenID, Name: "王小明", Email: fmt.Sprintf("bench%d@example.tw", p.index),
		Phone: fmt.Sprintf("09%08d", p.index%100_000_000), WebAuthnID: p.webAuthnID, Status: storage.AccountActive,
		CreatedAt: now, UpdatedAt: now,
	}
	point, err := p.key.PublicKey.Bytes() // 0x04 | X | Y
	if err != nil {
		return a, storage.Device{}, err
	}
	cose, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         int64(webauthncose.P256), XCoord: point[1:33], YCoord: point[33:],
	})
	if err != nil {
		return a, storage.Device{}, err
	}
	tokenHash := sha256.Sum256([]byte(p.deviceToken))
	d := storage.Device{
		ID: p.deviceID, AccountID: p.accountID, Name: "Bench phone", CredentialID: p.credentialID, PublicKey: cose,
		AttestationType: "none", AttestationFmt: "none", AAGUID: make([]byte, 16),
		Transports: []string{string(protocol.Internal)}, TokenHash: tokenHash[:], Status: storage.DeviceActive,
		CreatedAt: now, ExpiresAt: now.AddDate(0, 0, binding.DeviceDays),
	}
	return a, d, nil
}

// benchCitizenID is the i-th of benchIDSpace well-formed national IDs.
func benchCitizenID(i int) string {
	prefix := fmt.Sprintf("%c%d%07d", 'A'+i/20_000_000, 1+i/10_000_000%2, i%10_000_000)
	for check := '0'; ; check++ {
		if authn.ValidateCitizenID(prefix+string(check)) == nil {
			return prefix + string(check)
		}
	}
}

func base64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// seedReport is what mcert bench seed prints.
type seedReport struct {
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

func runBenchSeed(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	dataDir := fs.String("data", "./data", "data directory of the stopped server (created if missing): the bench key file and development CA go there, and the bbolt store by default")
	storeFlag := fs.String("store", "", storeFlagHelp)
	n := fs.Int("n", 1000, fmt.Sprintf("citizens to seed, each with one bound software phone (at most %d)", benchMaxN))
	keys := fs.String("keys", "", "the bench's key file: the seed every phone's key derives from, and the relying party's secret (default <data>/bench-keys.json)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *n < 1 || *n > benchMaxN {
		fmt.Fprintf(fs.Output(), "--n must be 1 to %d\n", benchMaxN)
		return errUsage
	}
	where, err := parseStoreSpec(*storeFlag, *dataDir)
	if err != nil {
		return usageError(fs, err.Error())
	}
	keysPath := benchKeysPath(*dataDir, *keys)
	if _, err := os.Stat(keysPath); err == nil {
		return fmt.Errorf("%s exists: this data directory is seeded already (remove both to seed again)", keysPath)
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return err
	}
	start := time.Now()
	now := start.UTC()
	// The bind scenario issues cards from the development CA, which the server also uses.
	if _, _, err := authn.LoadOrCreateDevCA(*dataDir, now); err != nil {
		return err
	}
	store, err := where.open(ctx)
	if err != nil {
		return err
	}
	defer store.Close()
	st := &benchState{Version: benchKeysVersion, Seed: make([]byte, 32), N: *n, CreatedAt: now, RedirectURI: benchRedirectURI}
	_, _ = rand.Read(st.Seed)
	svc := &binding.Service{Store: store, Now: time.Now}
	rp, err := provider.RegisterClient(ctx, svc, provider.ClientSpec{Name: "Bench RP", RedirectURIs: []string{benchRedirectURI}, CIBA: true}, "")
	if err != nil {
		return err
	}
	st.ClientID, st.ClientSecret = rp.ID, rp.Secret
	if err := seedPhones(ctx, store, st, now, *asJSON, stdout); err != nil {
		return err
	}
	if err := store.Close(); err != nil {
		return err
	}
	if err := st.save(keysPath); err != nil {
		return fmt.Errorf("save the bench key file (the data file is seeded, but without it useless): %w", err)
	}
	took := time.Since(start).Seconds()
	r := seedReport{Phones: *n, Seconds: took, PhonesPerSec: float64(*n) / took, Store: where.String(), Keys: keysPath, ClientID: st.ClientID}
	if where.boltPath != "" {
		info, err := os.Stat(where.boltPath)
		if err != nil {
			return err
		}
		r.DataFile, r.DataFileBytes, r.BytesPerDevice = where.boltPath, info.Size(), float64(info.Size())/float64(*n)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(r)
	}
	fmt.Fprintf(stdout, "seeded %d citizens with bound phones in %.1f s (%.0f/s) into %s\n", r.Phones, r.Seconds, r.PhonesPerSec, r.Store)
	if r.DataFile != "" {
		fmt.Fprintf(stdout, "data file %s: %.1f MiB, %.0f bytes per device\n", r.DataFile, float64(r.DataFileBytes)/(1<<20), r.BytesPerDevice)
	}
	_, err = fmt.Fprintf(stdout, "keys in %s; relying party %s\n", r.Keys, r.ClientID)
	return err
}

// seedPhones writes the accounts and devices, seedBatch to a transaction: the phones' keys are
// derived on every core, and one batch is written while the next is derived.
func seedPhones(ctx context.Context, store storage.Store, st *benchState, now time.Time, quiet bool, stdout io.Writer) error {
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
		if done += len(batch); !quiet && time.Since(last) >= 10*time.Second {
			fmt.Fprintf(stdout, "  %d of %d seeded (%.0f s)\n", done, st.N, time.Since(now).Seconds())
			last = time.Now()
		}
	}
	return <-derived
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
