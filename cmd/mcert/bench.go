//go:build !nobench

package main

// mcert bench seed and mcert bench run: the load tool's commands. The tool is internal/bench;
// these read its flags. A production build may leave them out, with the tool and its plotting
// library: go build -tags nobench (README, "Operating it"; bench_off.go).

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/mcert/mcert/internal/bench"
)

func init() {
	commands["bench seed"] = command{"seed a stopped server's data with N citizens and bound software phones, for bench run", runBenchSeed}
	commands["bench run"] = command{"serve the seeded data and measure logins, bindings or CIBA over HTTP against the in-process ceiling", runBenchRun}
}

// benchStore is what bench needs to know of --store.
func benchStore(where storeSpec) bench.Store {
	return bench.Store{Name: where.String(), Flag: where.flag(), BoltPath: where.boltPath, Open: where.open}
}

// printReport prints a report of bench as JSON, or for people.
func printReport(w io.Writer, asJSON bool, r interface{ Print(io.Writer) error }) error {
	if asJSON {
		return json.NewEncoder(w).Encode(r)
	}
	return r.Print(w)
}

func runBenchSeed(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	dataDir := fs.String("data", "./data", "data directory of the stopped server (created if missing): the bench key file and development CA go there, and the bbolt store by default")
	storeFlag := fs.String("store", "", storeFlagHelp)
	n := fs.Int("n", 1000, fmt.Sprintf("citizens to seed, each with one bound software phone (at most %d)", bench.MaxN))
	keys := fs.String("keys", "", "the bench's key file: the seed every phone's key derives from, and the relying party's secret (default <data>/bench-keys.json)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	where, err := parseStoreSpec(*storeFlag, *dataDir)
	if err != nil {
		return usageError(fs, err.Error())
	}
	c := bench.SeedConfig{DataDir: *dataDir, Store: benchStore(where), N: *n, Keys: *keys}
	if err := c.Validate(); err != nil {
		fmt.Fprintln(fs.Output(), err)
		return errUsage
	}
	if !*asJSON {
		c.Progress = stdout
	}
	r, err := bench.Seed(ctx, c)
	if err != nil {
		return err
	}
	return printReport(stdout, *asJSON, r)
}

func runBenchRun(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var c bench.RunConfig
	fs.StringVar(&c.DataDir, "data", "./data", "data directory seeded by mcert bench seed")
	storeFlag := fs.String("store", "", "the store seeded by mcert bench seed --store, which the servers serve from (default bolt:<data>/mcert.db)")
	fs.IntVar(&c.Instances, "instances", 1, "servers to run on the store, which the phones' connections take turns between as behind a load balancer (a PostgreSQL store only, for more than one)")
	fs.StringVar(&c.Addr, "addr", "", "the (first) server's address, host:port, which the phones connect to (default: a free loopback port; further instances always take free loopback ports)")
	fs.StringVar(&c.Keys, "keys", "", "the bench's key file (default <data>/bench-keys.json)")
	fs.IntVar(&c.C, "c", 64, "concurrent phones")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "how long to measure (the login transactions and fresh accounts the phones use are prepared beforehand, untimed)")
	fs.StringVar(&c.Scenario, "scenario", "login", "login (QR login: phone begin and finish), bind (binding, begin, finish on a fresh account) or ciba (bc-authorize to tokens)")
	fs.DurationVar(&c.Ceiling, "ceiling", 3*time.Second, "how long to measure the in-process ceiling (go-webauthn alone, GOMAXPROCS workers)")
	fs.StringVar(&c.Bin, "bin", "", "the mcert binary to serve with (default: this one)")
	fs.StringVar(&c.Log, "log", "", "the server's log (default <data>/bench-serve.log)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	serverMemory := fs.String("server-memory", "", "run the server in a memory cgroup of this size, e.g. 256MiB, so that the kernel keeps no more of the data file mapped than fits (Linux, as root)")
	fs.StringVar(&c.DebugAddr, "debug-addr", "", "serve the server's profiler here (its --debug-addr), to profile it during the run, e.g. go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10")
	fs.StringVar(&c.IDTokenAlg, "id-token-alg", "RS256", "the algorithm the relying party registers for its ID tokens before the run (id_token_signed_response_alg): RS256, OpenID's default, or ES256, a tenth of its CPU")
	fs.StringVar(&c.Plot, "plot", "", "write the run's latency distribution and its rate over time to this SVG file, two charts one above the other")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	where, err := parseStoreSpec(*storeFlag, c.DataDir)
	if err != nil {
		return usageError(fs, err.Error())
	}
	c.Store = benchStore(where)
	if *serverMemory != "" {
		if c.ServerMemory, err = bench.ParseBytes(*serverMemory); err != nil {
			fmt.Fprintln(fs.Output(), "--server-memory:", err)
			return errUsage
		}
	}
	if err := c.Validate(); err != nil {
		return usageError(fs, err.Error())
	}
	r, err := bench.Run(ctx, c)
	if err != nil {
		return err
	}
	return printReport(stdout, *asJSON, r)
}
