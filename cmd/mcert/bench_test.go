package main

import (
	"bytes"
	"context"
	"encoding/json"
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
			if r.Scenario != scenario || r.Ops == 0 || r.ErrorCount != 0 || r.Ceiling <= 0 || r.Latency.P99 <= 0 {
				t.Errorf("bench run: %d ops, errors %v, ceiling %.0f/s, p99 %.1f ms\n%s", r.Ops, r.Errors, r.Ceiling, r.Latency.P99, stdout.String())
			}
		})
	}
	// A second run on the same data must not repeat a signature counter or a citizen.
	stdout.Reset()
	if got := run(context.Background(), []string{"bench", "run", "--data", dir, "--bin", bin, "--c", "2", "--duration", "300ms", "--ceiling", "100ms", "--json"}, &stdout, &stderr); got != 0 {
		t.Fatalf("second bench run: status %d: %s", got, stderr.String())
	}
	var r benchReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil || r.ErrorCount != 0 {
		t.Errorf("second bench run printed %s (%v)", stdout.String(), err)
	}
}
