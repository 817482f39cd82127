package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"testing"
)

// TestBench seeds a few phones and runs each scenario of mcert bench briefly against a server
// process. It checks that everything goes through, not how fast: the figures are measured on
// purpose, never in CI.
func TestBench(t *testing.T) {
	bin := buildMcert(t)
	dir := t.TempDir()
	var stdout, stderr bytes.Buffer
	if got := run(context.Background(), []string{"bench", "seed", "--data", dir, "--n", "50", "--json"}, &stdout, &stderr); got != 0 {
		t.Fatalf("bench seed: status %d: %s", got, stderr.String())
	}
	var seeded seedReport
	if err := json.Unmarshal(stdout.Bytes(), &seeded); err != nil || seeded.Phones != 50 || seeded.BytesPerDevice <= 0 {
		t.Fatalf("bench seed printed %s (%v)", stdout.String(), err)
	}
	for _, scenario := range []string{"login", "bind", "ciba"} {
		t.Run(scenario, func(t *testing.T) {
			stdout.Reset()
			stderr.Reset()
			args := []string{"bench", "run", "--data", dir, "--bin", bin, "--scenario", scenario,
				"--c", "4", "--duration", "1s", "--ceiling", "200ms", "--json"}
			if got := run(context.Background(), args, &stdout, &stderr); got != 0 {
				t.Fatalf("bench run: status %d: %s", got, stderr.String())
			}
			var r benchReport
			if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
				t.Fatalf("bench run printed %s: %v", stdout.String(), err)
			}
			if r.Scenario != scenario || r.Ops == 0 || r.ErrorCount != 0 || r.Ceiling <= 0 || r.Latency.P99 <= 0 || r.FloorRequestsPerSec <= 0 {
				t.Errorf("bench run: %d ops, errors %v, ceiling %.0f/s, p99 %.1f ms, floor %.0f/s\n%s", r.Ops, r.Errors, r.Ceiling, r.Latency.P99, r.FloorRequestsPerSec, stdout.String())
			}
		})
	}
	// A second run on the same data must not repeat a signature counter or a citizen; this
	// one prints its report for people.
	stdout.Reset()
	if got := run(context.Background(), []string{"bench", "run", "--data", dir, "--bin", bin, "--c", "2", "--duration", "300ms", "--ceiling", "100ms"}, &stdout, &stderr); got != 0 {
		t.Fatalf("second bench run: status %d: %s", got, stderr.String())
	}
	for _, want := range []string{`(?m)^  logins\s+\d+/s`, `(?m)^  errors\s+none$`, `(?m)^  HTTP floor\s+\d+ requests/s`, `(?m)^  bound\s+\d+/s`} {
		if !regexp.MustCompile(want).Match(stdout.Bytes()) {
			t.Errorf("second bench run printed no line matching %s:\n%s", want, stdout.String())
		}
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
		got, err := parseBytes(tc.in)
		if got != tc.want || (err == nil) != (tc.want > 0) {
			t.Errorf("parseBytes(%q): got %d and %v, want %d", tc.in, got, err, tc.want)
		}
	}
}
