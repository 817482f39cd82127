package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStatus int
		wantOut    string // in stdout
		wantErr    string // in stderr
	}{
		{"no arguments is bad usage", nil, 2, "", "card issue"},
		{"help", []string{"--help"}, 0, "serve", ""},
		{"help command", []string{"help"}, 0, "serve", ""},
		{"unknown command", []string{"frob"}, 2, "", `unknown command "frob"`},
		{"group help", []string{"card", "--help"}, 0, "card agent", ""},
		{"group alone", []string{"phone"}, 2, "", "phone bind"},
		{"unknown in group", []string{"card", "frob"}, 2, "", `unknown command "card frob"`},
		{"command help", []string{"serve", "--help"}, 0, "", "-public-url"},
		{"bad flag", []string{"serve", "--frob"}, 2, "", "flag provided but not defined"},
		{"stray argument", []string{"card", "issue", "extra"}, 2, "", `unexpected argument "extra"`},
		{"missing required flags", []string{"card", "issue", "--data", t.TempDir()}, 2, "", "--name and --id are required"},
		{"bad national ID", []string{"card", "issue", "--data", t.TempDir(), "--name", "王小明", "--id", "A123456788", "--out", t.TempDir() + "/c.pem"}, 1, "", "check digit"},
		{"bad public URL", []string{"serve", "--data", t.TempDir(), "--public-url", "http://example.tw"}, 1, "", "https except on localhost"},
		{"profiler on the network", []string{"serve", "--data", t.TempDir(), "--debug-addr", "0.0.0.0:6060"}, 1, "", "must be a loopback address"},
		{"phone needs a QR code", []string{"phone", "bind", "--keys", t.TempDir() + "/p.json"}, 2, "", "--qr FILE.png or --text URL"},
		{"login needs a QR code", []string{"phone", "login", "--keys", t.TempDir() + "/p.json"}, 2, "", "--qr FILE.png or --text URL"},
		{"inbox of an unbound phone", []string{"phone", "inbox", "--keys", t.TempDir() + "/p.json"}, 1, "", "this phone is not bound to any server yet; bind it first with: mcert phone bind"},
		{"public URL of an IP address", []string{"serve", "--data", t.TempDir(), "--public-url", "http://127.0.0.1:8443"}, 1, "", "cannot be an IP address; use http://localhost:8443 on this machine"},
		{"public URL of an IPv6 address", []string{"serve", "--data", t.TempDir(), "--addr", "[::1]:9000", "--public-url", "https://[::1]"}, 1, "", "cannot be an IP address; use http://localhost:9000 on this machine"},
		{"deny without a server", []string{"phone", "deny", "--keys", t.TempDir() + "/p.json", "--server", "http://127.0.0.1:1", "--token", "abc"}, 1, "", "check the address"},
		{"approve with an unbound phone", []string{"phone", "approve", "--keys", t.TempDir() + "/p.json", "--server", "http://127.0.0.1:1"}, 1, "", "not bound to http://127.0.0.1:1; bind it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			got := run(context.Background(), tc.args, &stdout, &stderr)
			if got != tc.wantStatus || !strings.Contains(stdout.String(), tc.wantOut) || !strings.Contains(stderr.String(), tc.wantErr) {
				t.Fatalf("mcert %v: status %d, want %d\nstdout: %s\nstderr: %s", tc.args, got, tc.wantStatus, stdout.String(), stderr.String())
			}
		})
	}
}

func TestEnvironmentSetsFlags(t *testing.T) {
	t.Setenv("MCERT_PUBLIC_URL", "ftp://nowhere")
	var stdout, stderr bytes.Buffer
	if got := run(context.Background(), []string{"serve", "--data", t.TempDir()}, &stdout, &stderr); got != 1 || !strings.Contains(stderr.String(), "ftp://nowhere") {
		t.Fatalf("MCERT_PUBLIC_URL was not used: status %d, stderr %s", got, stderr.String())
	}
}

func TestRPAdd(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name       string
		args       []string
		wantStatus int
		wantSecret bool
		wantErr    string
	}{
		{"confidential", []string{"--name", "Demo RP", "--redirect-uri", "http://localhost:9000/callback", "--citizen-id"}, 0, true, ""},
		{"public", []string{"--name", "App", "--redirect-uri", "http://127.0.0.1:5000/cb", "--public"}, 0, false, ""},
		{"CIBA only", []string{"--name", "Back office", "--ciba"}, 0, true, ""},
		{"bad", []string{"--name", "", "--redirect-uri", "http://example.tw/cb"}, 1, false, "https"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			got := run(context.Background(), append([]string{"rp", "add", "--data", dir}, tc.args...), &stdout, &stderr)
			if got != tc.wantStatus || !strings.Contains(stderr.String(), tc.wantErr) {
				t.Fatalf("status %d, stderr %s", got, stderr.String())
			}
			if got != 0 {
				return
			}
			var out struct{ ClientID, ClientSecret string }
			if err := json.Unmarshal(stdout.Bytes(), &struct {
				ID     *string `json:"client_id"`
				Secret *string `json:"client_secret"`
			}{&out.ClientID, &out.ClientSecret}); err != nil || out.ClientID == "" || (out.ClientSecret != "") != tc.wantSecret {
				t.Fatalf("printed %s (%v)", stdout.String(), err)
			}
		})
	}
}

func TestCanonicalURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://MCert.example.tw:443/": "https://mcert.example.tw",
		"http://localhost:80":           "http://localhost",
		"http://localhost:8080/":        "http://localhost:8080",
		"https://example.tw/mcert/":     "https://example.tw/mcert",
	} {
		if got := canonicalURL(in); got != want {
			t.Errorf("canonicalURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBinaryUsage runs the built binary, whose exit status is what scripts see: no command is
// bad usage (2, the usage on stderr), asking for help is not.
func TestBinaryUsage(t *testing.T) {
	bin := buildMcert(t)
	for _, tc := range []struct {
		args             []string
		wantStatus       int
		wantOut, wantErr bool // usage on stdout, on stderr
	}{
		{nil, 2, false, true},
		{[]string{"help"}, 0, true, false},
		{[]string{"--help"}, 0, true, false},
		{[]string{"-h"}, 0, true, false},
	} {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, tc.args...)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		status := 0
		if ee, ok := err.(*exec.ExitError); ok {
			status = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		hasUsage := func(s string) bool { return strings.Contains(s, "Usage: mcert <command>") }
		if status != tc.wantStatus || hasUsage(stdout.String()) != tc.wantOut || hasUsage(stderr.String()) != tc.wantErr {
			t.Errorf("mcert %v: status %d, want %d\nstdout: %s\nstderr: %s", tc.args, status, tc.wantStatus, stdout.String(), stderr.String())
		}
	}
}
