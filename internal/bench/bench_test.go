package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcert/mcert/internal/bench/benchtest"
	"github.com/mcert/mcert/storage"
	"github.com/mcert/mcert/storage/bolt"
)

func boltStore(dir string) Store {
	path := filepath.Join(dir, "mcert.db")
	return Store{Name: "bolt:" + path, Flag: "bolt:" + path, BoltPath: path, Open: func(context.Context) (storage.Store, error) {
		return bolt.Open(path, bolt.Options{})
	}}
}

// TestBench seeds a few phones and runs each scenario briefly against a server process. It
// checks that everything goes through, not how fast: the figures are measured on purpose,
// never in CI.
func TestBench(t *testing.T) {
	bin, dir := benchtest.Mcert(t), t.TempDir()
	store := boltStore(dir)
	seeded, err := Seed(context.Background(), SeedConfig{DataDir: dir, Store: store, N: 50})
	if err != nil {
		t.Fatal(err)
	}
	if seeded.Phones != 50 || seeded.BytesPerDevice <= 0 {
		t.Fatalf("seeded %+v", seeded)
	}
	if _, err := Seed(context.Background(), SeedConfig{DataDir: dir, Store: store, N: 50}); err == nil {
		t.Fatal("a seeded data directory was seeded again")
	}
	for _, scenario := range []string{"login", "bind", "ciba"} {
		t.Run(scenario, func(t *testing.T) {
			plot := filepath.Join(t.TempDir(), scenario+".svg")
			r, err := Run(context.Background(), RunConfig{
				DataDir: dir, Store: store, Instances: 1, Bin: bin, Scenario: scenario,
				C: 4, Duration: time.Second, Ceiling: 200 * time.Millisecond, Plot: plot,
			})
			if err != nil {
				t.Fatal(err)
			}
			if r.Scenario != scenario || r.Ops == 0 || r.ErrorCount != 0 || r.Ceiling <= 0 || r.Latency.P99 <= 0 || r.FloorRequestsPerSec <= 0 {
				t.Errorf("%d ops, errors %v, ceiling %.0f/s, p99 %.1f ms, floor %.0f/s", r.Ops, r.Errors, r.Ceiling, r.Latency.P99, r.FloorRequestsPerSec)
			}
			if r.CeilingCPUPerOpMS <= 0 || r.Server.CPUPerOpMS <= 0 || r.CostRatio <= 0 || len(r.CeilingCPUPerOpMSEach) != 2 {
				t.Errorf("ceiling CPU %.3f ms per op (measures %v), server CPU %.3f ms per op, cost ratio %.2f: want all positive, the ceiling measured twice", r.CeilingCPUPerOpMS, r.CeilingCPUPerOpMSEach, r.Server.CPUPerOpMS, r.CostRatio)
			}
			// The signatures beside WebAuthn's: a CIBA login's ID token and a binding's
			// certificate; a QR login's timed requests make none.
			if signs := r.SignaturesCPUPerOpMS > 0; signs != (scenario != "login") || (signs && (r.SignedCostRatio <= 0 || r.SignedCostRatio >= r.CostRatio)) {
				t.Errorf("signatures' CPU %.3f ms per op, cost ratio with them %.2f (without %.2f)", r.SignaturesCPUPerOpMS, r.SignedCostRatio, r.CostRatio)
			}
			if len(r.latencies) != r.Ops || len(r.ends) != r.Ops {
				t.Errorf("%d latencies and %d end times for %d ops", len(r.latencies), len(r.ends), r.Ops)
			}
			data, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range []string{`"cost_ratio":`, `"ceiling_cpu_ms_per_op":`, `"addr":"127.0.0.1:`, `"plot":`} {
				if !bytes.Contains(data, []byte(key)) {
					t.Errorf("the JSON report has no %s: %s", key, data)
				}
			}
			checkPlot(t, plot)
		})
	}
	// A second run on the same data must not repeat a signature counter or a citizen; this
	// one prints its report for people, with the server at an address of the test's choice.
	addr, err := FreeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), RunConfig{
		DataDir: dir, Store: store, Instances: 1, Addr: addr, Bin: bin, Scenario: "login",
		C: 2, Duration: 300 * time.Millisecond, Ceiling: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.Print(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`(?m)^  logins\s+\d+/s`, `(?m)^  errors\s+none$`, `(?m)^  HTTP floor\s+\d+ requests/s`, `(?m)^  bound\s+\d+/s`,
		`(?m)^  store\s+bolt:.*, at ` + regexp.QuoteMeta(addr) + `$`,
		`(?m)^  cost ratio\s+\d+\.\d\d \(server CPU \d+\.\d{3} ms per op / ceiling CPU \d+\.\d{3} ms per op\)(; \d+\.\d\d with the signatures .*)?$`,
		`(?m)^  over the floor\s+-?\d+\.\d\d \(the server's CPU less its 2 requests at the floor's \d+\.\d{3} ms, over the ceiling's\)$`,
		`(?m)^  HTTP floor\s+\d+ requests/s .*; server CPU \d+\.\d{3} ms per request$`,
		`(?m)^  in-process ceiling\s+\d+/s .*, CPU \d+\.\d{3} ms per op \(\d+\.\d{3}, \d+\.\d{3}: before the run, after\)$`,
	} {
		if !regexp.MustCompile(want).Match(out.Bytes()) {
			t.Errorf("the second run printed no line matching %s:\n%s", want, out.String())
		}
	}
}

// checkPlot checks that the file is an SVG document of two charts, each with its title and
// axis labels with units.
func checkPlot(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	texts, root, err := svgTexts(data)
	if err != nil {
		t.Fatalf("%s is not XML: %v", path, err)
	}
	if root != "svg" {
		t.Fatalf("%s is a <%s> document, not <svg>", path, root)
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{latencyTitle, rateTitle, "latency (ms)", "per second (1/s)", "time into the timed run (s"} {
		if !strings.Contains(all, want) {
			t.Errorf("%s has no text %q; its texts:\n%s", path, want, all)
		}
	}
}

// svgTexts parses an SVG document and returns its root element's name and its <text>s.
func svgTexts(data []byte) ([]string, string, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	var texts []string
	root, inText := "", false
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			if root == "" {
				return nil, "", errors.New("no element")
			}
			return texts, root, nil
		}
		if err != nil {
			return nil, "", err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
			if inText = tok.Name.Local == "text"; inText {
				texts = append(texts, "")
			}
		case xml.CharData:
			if inText {
				texts[len(texts)-1] += string(tok)
			}
		case xml.EndElement:
			inText = false
		}
	}
}

// TestPlot draws the plot of a made-up run, and of a run in which nothing went through.
func TestPlot(t *testing.T) {
	r := &Report{Scenario: "login", Unit: "logins", Concurrency: 64, Seconds: 2.5, Latency: latencyMS{P50: 10, P99: 40}}
	for i := range 5000 {
		r.latencies = append(r.latencies, time.Duration(5+i%40)*time.Millisecond)
		r.ends = append(r.ends, time.Duration(i)*500*time.Microsecond)
	}
	r.latencies = append(r.latencies, 3*time.Second) // one far off, beyond what the histogram shows
	r.ends = append(r.ends, 2400*time.Millisecond)
	r.Ops = len(r.latencies)
	r.OpsPerSec = float64(r.Ops) / r.Seconds
	for _, tc := range []struct {
		name string
		r    *Report
	}{{"run", r}, {"nothing went through", &Report{Scenario: "bind", Unit: "bindings", Seconds: 1}}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "plot.svg")
			if err := tc.r.writePlot(path); err != nil {
				t.Fatal(err)
			}
			checkPlot(t, path)
		})
	}
}

func TestRunConfigValidate(t *testing.T) {
	good := RunConfig{Store: Store{BoltPath: "x.db"}, Instances: 1, C: 1, Duration: time.Second, Ceiling: time.Second, Scenario: "login"}
	tests := []struct {
		name string
		edit func(*RunConfig)
		want string // in the error; "" for none
	}{
		{"good", func(*RunConfig) {}, ""},
		{"addr", func(c *RunConfig) { c.Addr = "127.0.0.1:9443" }, ""},
		{"scenario", func(c *RunConfig) { c.Scenario = "sign" }, "--scenario must be"},
		{"no phones", func(c *RunConfig) { c.C = 0 }, "--c"},
		{"instances on bbolt", func(c *RunConfig) { c.Instances = 2 }, "--instances"},
		{"memory on PostgreSQL", func(c *RunConfig) { c.Store.BoltPath, c.ServerMemory = "", 1<<28 }, "--server-memory"},
		{"addr without port", func(c *RunConfig) { c.Addr = "127.0.0.1" }, "--addr"},
		{"addr port 0", func(c *RunConfig) { c.Addr = "127.0.0.1:0" }, "--addr"},
		{"addr port name", func(c *RunConfig) { c.Addr = "127.0.0.1:https" }, "--addr"},
		{"plot not SVG", func(c *RunConfig) { c.Plot = "plot.png" }, "--plot"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.edit(&c)
			err := c.Validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
	// Every problem at once.
	bad := good
	bad.Instances, bad.Plot = 2, "x.png"
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "--instances") || !strings.Contains(err.Error(), "--plot") {
		t.Fatalf("Validate reported %v, want both problems", err)
	}
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64 // 0: an error
	}{
		{"256MiB", 256 << 20}, {"1GiB", 1 << 30}, {"64KiB", 64 << 10}, {"1048576", 1 << 20}, {"512B", 512},
		{"", 0}, {"0MiB", 0}, {"-1GiB", 0}, {"1.5GiB", 0}, {"256MB", 0}, {"MiB", 0}, {"256 MiB", 0},
	}
	for _, tc := range tests {
		got, err := ParseBytes(tc.in)
		if got != tc.want || (err == nil) != (tc.want > 0) {
			t.Errorf("ParseBytes(%q): got %d and %v, want %d", tc.in, got, err, tc.want)
		}
	}
}
