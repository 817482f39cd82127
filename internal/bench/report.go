package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

type latencyMS struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Report is what Run measured; mcert bench run prints it, or its JSON.
type Report struct {
	Scenario       string         `json:"scenario"`
	Unit           string         `json:"unit"`
	Requests       int            `json:"requests_per_op"` // timed HTTP requests in one operation
	Phones         int            `json:"phones"`          // seeded
	Concurrency    int            `json:"concurrency"`
	Store          string         `json:"store"`        // bolt:<file> or the PostgreSQL URL, without its password
	Instances      int            `json:"instances"`    // servers on the store; Server is the first's, but its CPU figures are of them all
	Addr           string         `json:"addr"`         // where the first server listened
	IDTokenAlg     string         `json:"id_token_alg"` // what the relying party's ID tokens are signed with
	Seconds        float64        `json:"seconds"`      // timed
	PrepareSeconds float64        `json:"prepare_seconds"`
	Ops            int            `json:"ops"`
	OpsPerSec      float64        `json:"ops_per_second"`
	Latency        latencyMS      `json:"latency_ms"`
	Errors         map[string]int `json:"errors"`
	ErrorCount     int            `json:"error_count"`
	Ceiling        float64        `json:"ceiling_ops_per_second"`
	CeilingWorkers int            `json:"ceiling_workers"`
	CeilingSeconds float64        `json:"ceiling_seconds"` // timed work of both measures, about a third as much untimed beside it
	// CeilingCPUPerOpMS is the bench process's CPU time per ceremony of the ceiling, while timed:
	// the mean of CeilingCPUPerOpMSEach, measured before the servers start and after they stop.
	CeilingCPUPerOpMS     float64   `json:"ceiling_cpu_ms_per_op"`
	CeilingCPUPerOpMSEach []float64 `json:"ceiling_cpu_ms_per_op_each"`
	Ratio                 float64   `json:"http_to_ceiling"`
	// CostRatio is the server's CPU per operation over the ceiling's: how many times the work
	// of go-webauthn alone the server does for one operation. Unlike the rates, it does not
	// depend on the bench sharing the cores with the server.
	CostRatio float64 `json:"cost_ratio"`
	// SignaturesCPUPerOpMS is the CPU of the signatures the protocol has the server make for one
	// operation besides WebAuthn's (a CIBA login's RS256 ID token, a binding's phone
	// certificate), and SignedCostRatio the server's CPU over the ceiling's and theirs together:
	// how many times the cryptography the server must do it does in all.
	SignaturesCPUPerOpMS float64 `json:"signatures_cpu_ms_per_op"`
	SignedCostRatio      float64 `json:"cost_ratio_with_signatures"`
	// FloorRequestsPerSec is the rate of GET /healthz at the same concurrency: what HTTP alone
	// allows on this machine, before any work.
	FloorRequestsPerSec float64 `json:"floor_requests_per_second"`
	// FloorCPUPerRequestMS is the servers' CPU per request of the floor: what a request costs
	// the server before any work, in net/http, the middleware and the kernel's loopback.
	// FloorCostRatio is the cost ratio of what the server does beyond that: its CPU per
	// operation less the operation's requests at the floor's CPU, over the ceiling's. The
	// protocol fixes how many requests an operation takes, so this is the part the server's own
	// code decides.
	FloorCPUPerRequestMS float64 `json:"floor_server_cpu_ms_per_request"`
	FloorCostRatio       float64 `json:"cost_ratio_over_floor"`
	// Bound is the most operations a second that the floor and the ceiling together allow: each
	// operation's requests at the floor's cost and its ceremony at the ceiling's, one after the
	// other on the same cores, with no storage, no JSON, no client.
	Bound  float64 `json:"bound_ops_per_second"`
	Server struct {
		PID        int     `json:"pid"`
		RSS        int64   `json:"rss_bytes"`
		HWM        int64   `json:"rss_peak_bytes"`
		RSSAnon    int64   `json:"rss_anon_bytes"`
		RSSFile    int64   `json:"rss_file_bytes"`
		CPUSeconds float64 `json:"cpu_seconds"`
		CPUPerOpMS float64 `json:"cpu_ms_per_op"`
		// MajorFaults are the page faults that read the disk while timed: data-file pages that were
		// not in the page cache.
		MajorFaults int64 `json:"major_faults"`
		// MemoryLimit is the server's memory cgroup limit (--server-memory), and CgroupPeak the
		// most the cgroup used, page cache included; 0 without one.
		MemoryLimit int64 `json:"memory_limit_bytes,omitempty"`
		CgroupPeak  int64 `json:"cgroup_peak_bytes,omitempty"`
	} `json:"server"`
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	// OthersCPUSeconds is what other processes took of the machine while timed, and
	// CeilingOthersCPUSeconds while the ceiling was measured: more than a little makes both
	// figures too low.
	OthersCPUSeconds        float64 `json:"others_cpu_seconds"`
	CeilingOthersCPUSeconds float64 `json:"ceiling_others_cpu_seconds"`
	// StolenCPUSeconds and CeilingStolenCPUSeconds are the time a virtual machine's hypervisor
	// gave to others meanwhile (steal), which slows the bench and the server alike.
	StolenCPUSeconds        float64 `json:"stolen_cpu_seconds"`
	CeilingStolenCPUSeconds float64 `json:"ceiling_stolen_cpu_seconds"`
	DataFileBytes           int64   `json:"data_file_bytes,omitempty"`
	BytesPerPhone           float64 `json:"data_file_bytes_per_phone,omitempty"`
	Plot                    string  `json:"plot,omitempty"` // the SVG file written
	GoVersion               string  `json:"go_version"`
	CPUs                    int     `json:"cpus"`

	// latencies and ends are each operation's latency and the time it ended, on the clock of
	// the timed segments (the untimed preparation between them cut out): what the plot draws.
	latencies, ends []time.Duration
}

// setCeiling records the ceiling measured so far (each measure of the same length), and the
// figures that divide by it.
func (r *Report) setCeiling(each []ceiling) {
	var rate, cpu, sign float64
	r.CeilingCPUPerOpMSEach = r.CeilingCPUPerOpMSEach[:0]
	for _, c := range each {
		rate, cpu, sign = rate+c.opsPerSec, cpu+ms(c.cpuPerOp), sign+ms(c.signCPUPerOp)
		r.CeilingCPUPerOpMSEach = append(r.CeilingCPUPerOpMSEach, ms(c.cpuPerOp))
	}
	n := float64(len(each))
	r.Ceiling, r.CeilingCPUPerOpMS, r.SignaturesCPUPerOpMS = rate/n, cpu/n, sign/n
	if r.FloorRequestsPerSec > 0 {
		r.Bound = 1 / (float64(r.Requests)/r.FloorRequestsPerSec + 1/r.Ceiling)
	}
	r.Ratio = r.OpsPerSec / r.Ceiling
	if r.Server.CPUPerOpMS > 0 && r.CeilingCPUPerOpMS > 0 {
		r.CostRatio = r.Server.CPUPerOpMS / r.CeilingCPUPerOpMS
		r.SignedCostRatio = r.Server.CPUPerOpMS / (r.CeilingCPUPerOpMS + r.SignaturesCPUPerOpMS)
		r.FloorCostRatio = (r.Server.CPUPerOpMS - float64(r.Requests)*r.FloorCPUPerRequestMS) / r.CeilingCPUPerOpMS
	}
}

// Print writes the report for people.
func (r *Report) Print(w io.Writer) error {
	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	errs := "none"
	if r.ErrorCount > 0 {
		var list []string
		for code, n := range r.Errors {
			list = append(list, fmt.Sprintf("%s %d", code, n))
		}
		slices.Sort(list)
		errs = strings.Join(list, ", ")
	}
	memory := ""
	if r.Server.MajorFaults > int64(r.Ops)/10 {
		memory = " (the data file was not in the page cache: figures of a cold start; read it once, e.g. cat mcert.db >/dev/null, for a warm one)"
	}
	if r.Server.MemoryLimit > 0 {
		memory = fmt.Sprintf("; in a %.0f MiB memory cgroup, which used at most %.1f MiB, page cache included", mib(r.Server.MemoryLimit), mib(r.Server.CgroupPeak))
	}
	busy := ""
	if r.OthersCPUSeconds+r.StolenCPUSeconds > 0.05*r.Seconds*float64(r.CPUs) || r.CeilingOthersCPUSeconds+r.CeilingStolenCPUSeconds > 0.05*r.CeilingSeconds*float64(r.CPUs) {
		busy = " (the machine was not idle: these figures are low)"
	}
	signed := ""
	if r.SignaturesCPUPerOpMS > 0 {
		what := signaturesOf[r.Scenario]
		if r.Scenario == "ciba" {
			what += " " + r.IDTokenAlg
		}
		signed = fmt.Sprintf("; %.2f with the signatures the protocol needs beside WebAuthn's (%s, %.3f ms per op)", r.SignedCostRatio, what, r.SignaturesCPUPerOpMS)
	}
	var measures []string
	for _, m := range r.CeilingCPUPerOpMSEach {
		measures = append(measures, fmt.Sprintf("%.3f", m))
	}
	each := strings.Join(measures, ", ")
	dataFile := fmt.Sprintf("%.1f MiB, %.0f bytes per seeded phone", mib(r.DataFileBytes), r.BytesPerPhone)
	if r.DataFileBytes == 0 {
		dataFile = "none: the store is PostgreSQL"
	}
	_, err := fmt.Fprintf(w, `mcert bench %s: %d seeded phones, %d concurrent, %.1f s timed (%.1f s preparing), %s, %d CPUs
  %-18s %s, %d instance(s), at %s
  %-18s %.0f/s (%d in all)
  %-18s p50 %.2f  p95 %.2f  p99 %.2f  max %.2f
  %-18s %s
  %-18s %.0f/s (go-webauthn begin, parse, validate; %d workers), CPU %.3f ms per op (%s: before the run, after)
  %-18s %.1f%%
  %-18s %.2f (server CPU %.3f ms per op / ceiling CPU %.3f ms per op)%s
  %-18s %.2f (the server's CPU less its %d requests at the floor's %.3f ms, over the ceiling's)
  %-18s %.0f requests/s (GET /healthz, as concurrent): at most %.0f/s at %d requests each, %.1f%% of the ceiling; server CPU %.3f ms per request
  %-18s %.0f/s, %.1f%% of the ceiling: the floor's requests and the ceiling's work on the same cores, nothing else
  %-18s RSS %.1f MiB (anon %.1f, file %.1f), peak %.1f MiB; CPU %.1f s, %.3f ms per op; %d major faults%s
  %-18s CPU %.1f s
  %-18s CPU %.1f s while timed, %.1f s during the ceiling; the hypervisor took %.1f s and %.1f s (steal)%s
  %-18s %s
`,
		r.Scenario, r.Phones, r.Concurrency, r.Seconds, r.PrepareSeconds, r.GoVersion, r.CPUs,
		"store", r.Store, r.Instances, r.Addr,
		r.Unit, r.OpsPerSec, r.Ops,
		"latency ms", r.Latency.P50, r.Latency.P95, r.Latency.P99, r.Latency.Max,
		"errors", errs,
		"in-process ceiling", r.Ceiling, r.CeilingWorkers, r.CeilingCPUPerOpMS, each,
		"HTTP/ceiling", 100*r.Ratio,
		"cost ratio", r.CostRatio, r.Server.CPUPerOpMS, r.CeilingCPUPerOpMS, signed,
		"over the floor", r.FloorCostRatio, r.Requests, r.FloorCPUPerRequestMS,
		"HTTP floor", r.FloorRequestsPerSec, r.FloorRequestsPerSec/float64(r.Requests), r.Requests,
		100*r.FloorRequestsPerSec/float64(r.Requests)/r.Ceiling, r.FloorCPUPerRequestMS,
		"bound", r.Bound, 100*r.Bound/r.Ceiling,
		"server", mib(r.Server.RSS), mib(r.Server.RSSAnon), mib(r.Server.RSSFile), mib(r.Server.HWM), r.Server.CPUSeconds, r.Server.CPUPerOpMS, r.Server.MajorFaults, memory,
		"bench client", r.ClientCPUSeconds,
		"other processes", r.OthersCPUSeconds, r.CeilingOthersCPUSeconds, r.StolenCPUSeconds, r.CeilingStolenCPUSeconds, busy,
		"data file", dataFile)
	if err == nil && r.Plot != "" {
		_, err = fmt.Fprintf(w, "  %-18s %s\n", "plot", r.Plot)
	}
	return err
}

// signaturesOf names the signatures of ceiling.signCPUPerOp, by scenario.
var signaturesOf = map[string]string{"ciba": "the ID token's", "bind": "the phone certificate's P-256 key and ECDSA signature"}
