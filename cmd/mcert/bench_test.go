//go:build !nobench

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mcert/mcert/internal/bench"
	"github.com/mcert/mcert/internal/bench/benchtest"
)

// TestBenchCommands runs mcert bench seed and mcert bench run briefly through the command line:
// their flags reach internal/bench, whose own TestBench runs every scenario, and their reports
// print, as JSON and for people.
func TestBenchCommands(t *testing.T) {
	bin := buildMcert(t)
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if got := run(context.Background(), []string{"bench", "seed", "--data", dir, "--n", "20", "--json"}, &stdout, &stderr); got != 0 {
		t.Fatalf("bench seed: status %d: %s", got, stderr.String())
	}
	var seeded bench.SeedReport
	if err := json.Unmarshal(stdout.Bytes(), &seeded); err != nil || seeded.Phones != 20 || seeded.BytesPerDevice <= 0 {
		t.Fatalf("bench seed printed %s (%v)", stdout.String(), err)
	}
	addr, err := bench.FreeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	plot := filepath.Join(t.TempDir(), "login.svg")
	stdout.Reset()
	args := []string{"bench", "run", "--data", dir, "--bin", bin, "--addr", addr, "--plot", plot, "--c", "2", "--duration", "300ms", "--ceiling", "100ms"}
	if got := run(context.Background(), args, &stdout, &stderr); got != 0 {
		t.Fatalf("bench run: status %d: %s", got, stderr.String())
	}
	for _, want := range []string{
		`(?m)^  logins\s+\d+/s`, `(?m)^  errors\s+none$`, `(?m)^  HTTP floor\s+\d+ requests/s`, `(?m)^  bound\s+\d+/s`,
		`(?m)^  store\s+bolt:.*, at ` + regexp.QuoteMeta(addr) + `$`, `(?m)^  cost ratio\s+\d+\.\d\d `,
		`(?m)^  plot\s+` + regexp.QuoteMeta(plot) + `$`,
	} {
		if !regexp.MustCompile(want).Match(stdout.Bytes()) {
			t.Errorf("bench run printed no line matching %s:\n%s", want, stdout.String())
		}
	}
	if data, err := os.ReadFile(plot); err != nil || !bytes.HasPrefix(bytes.TrimSpace(data), []byte("<?xml")) {
		t.Errorf("--plot wrote no SVG to %s (%v)", plot, err)
	}

	stdout.Reset()
	if got := run(context.Background(), []string{"bench", "run", "--data", dir, "--bin", bin, "--scenario", "ciba", "--id-token-alg", "ES256", "--c", "2", "--duration", "300ms", "--ceiling", "100ms", "--json"}, &stdout, &stderr); got != 0 {
		t.Fatalf("bench run --json: status %d: %s", got, stderr.String())
	}
	var r bench.Report
	// The bench refuses every ID token not signed as the relying party registered: none were.
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || r.Scenario != "ciba" || r.Ops == 0 || r.ErrorCount != 0 || r.CostRatio <= 0 || r.IDTokenAlg != "ES256" {
		t.Fatalf("bench run --json printed %s (%v)", stdout.String(), err)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"addr without a port", []string{"--addr", "127.0.0.1"}, "--addr"},
		{"plot not SVG", []string{"--plot", "x.png"}, "--plot"},
		{"scenario", []string{"--scenario", "sign"}, "--scenario must be login, bind or ciba"},
		{"server memory", []string{"--server-memory", "256MB"}, "--server-memory"},
		{"ID token algorithm", []string{"--id-token-alg", "HS256"}, "--id-token-alg must be RS256 or ES256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stderr.Reset()
			args := append([]string{"bench", "run", "--data", dir}, tc.args...)
			if got := run(context.Background(), args, &stdout, &stderr); got != 2 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("status %d, want 2, and %q in: %s", got, tc.want, stderr.String())
			}
		})
	}
}

// TestNoBenchBuild: a build with -tags nobench has neither the load tool nor its plotting
// library, and its bench commands say why they do nothing.
func TestNoBenchBuild(t *testing.T) {
	bin := benchtest.Mcert(t, "-tags", "nobench")
	out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "gonum.org/v1/plot") {
		t.Errorf("the nobench binary links the plotting library:\n%s", out)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "bench", "run", "--data", t.TempDir())
	cmd.Stderr = &stderr
	if err := cmd.Run(); cmd.ProcessState.ExitCode() != 1 || !strings.Contains(stderr.String(), "built with -tags nobench") {
		t.Errorf("bench run in a nobench build: %v, %s", err, stderr.String())
	}
}
