package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcert/mcert/authn"
)

func TestCardIssueMOICAWithPIN(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "card.pem")
	var stdout, stderr bytes.Buffer
	args := []string{"card", "issue", "--data", dir, "--name", "王小明", "--id", "A123456789", "--out", out, "--moica", "--pin", "123456"}
	if got := run(context.Background(), args, &stdout, &stderr); got != 0 || !strings.Contains(stdout.String(), "MOICA-shaped development card (it carries only 6789)") || !strings.Contains(stdout.String(), "protected by its PIN") {
		t.Fatalf("mcert %v: status %d\nstdout: %s\nstderr: %s", args, got, stdout.String(), stderr.String())
	}
	pemBytes, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authn.ParseCard(pemBytes); !errors.Is(err, authn.ErrPINRequired) {
		t.Fatalf("the card opens without its PIN: %v", err)
	}
	card, err := authn.ParseCardWithPIN(pemBytes, "123456")
	if err != nil {
		t.Fatal(err)
	}
	if name, id := authn.CardHolder(card.Certificate); name != "王小明" || id != "******6789" || card.Certificate.Subject.SerialNumber != "" {
		t.Fatalf("the card names %s %s, subject %s", name, id, card.Certificate.Subject)
	}

	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"card", "issue", "--data", dir, "--name", "王小明", "--id", "A123456789", "--out", filepath.Join(dir, "c2.pem"), "--pin", "12"}, "4 to 12 letters or digits"},
		{[]string{"card", "issue", "--help"}, "-moica"},
		{[]string{"card", "agent", "--help"}, "-pin"},
	} {
		stderr.Reset()
		if run(context.Background(), tc.args, &stdout, &stderr); !strings.Contains(stderr.String(), tc.wantErr) {
			t.Errorf("mcert %v: stderr %s, want %q", tc.args, stderr.String(), tc.wantErr)
		}
	}
}

func TestCardAgentCommand(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := authn.LoadOrCreateDevCA(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, opts authn.IssueOptions) string {
		opts.Now = time.Now()
		pemBytes, err := ca.Issue("王小明", "A123456789", opts)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	withPIN, plain := write("moica.pem", authn.IssueOptions{MOICA: true, PIN: "123456"}), write("plain.pem", authn.IssueOptions{})

	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"--card", withPIN, "--pin", "654321"}, "--pin does not open the card in " + withPIN},
		{[]string{"--card", plain, "--origin", "localhost:8080"}, `the origin "localhost:8080" is not one such as http://localhost:8080`},
		{[]string{"--card", filepath.Join(dir, "missing.pem")}, "issue one with: mcert card issue"},
		{[]string{"--card", plain, "--addr", "0.0.0.0:61161"}, "must be a loopback address"},
	} {
		var stdout, stderr bytes.Buffer
		if got := run(context.Background(), append([]string{"card", "agent"}, tc.args...), &stdout, &stderr); got != 1 || !strings.Contains(stderr.String(), tc.wantErr) {
			t.Errorf("mcert card agent %v: status %d, stderr %s; want 1, %q", tc.args, got, stderr.String(), tc.wantErr)
		}
	}

	for _, tc := range []struct {
		name string
		args []string
		want []string // lines of the log
	}{
		{"card with a PIN", []string{"--card", withPIN}, []string{"with the card of 王小明 (******6789)", "the card has a PIN: the popup checks the PIN each page sends"}},
		{"card without a PIN", []string{"--card", plain}, []string{"with the card of 王小明 (A12****789)", "the card has no PIN and --pin is not set: the popup takes any PIN"}},
		{"card without a PIN, with --pin", []string{"--card", plain, "--pin", "1234"}, []string{"with the card of 王小明 (A12****789)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := freeAddr(t)
			ctx, cancel := context.WithCancel(context.Background())
			log := &syncBuffer{}
			done := make(chan int)
			go func() {
				done <- run(ctx, append([]string{"card", "agent", "--addr", addr}, tc.args...), &bytes.Buffer{}, log)
			}()
			waitForLog(t, log, "card agent listening on http://"+addr+", signing for http://localhost:8080 only")
			res, err := http.Get("http://" + addr + "/pkcs11info")
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("/pkcs11info: %v %v", res, err)
			}
			res.Body.Close()
			cancel()
			if got := <-done; got != 0 {
				t.Fatalf("the agent ended with status %d:\n%s", got, log)
			}
			for _, want := range tc.want {
				if !strings.Contains(log.String(), want) {
					t.Errorf("the log does not say %q:\n%s", want, log)
				}
			}
			if len(tc.want) == 1 && strings.Contains(log.String(), "takes any PIN") {
				t.Errorf("an agent with --pin says it takes any PIN:\n%s", log)
			}
		})
	}
}

// TestCardAgentOrigin runs the built agent without --origin: it signs for the server that
// --server or MCERT_PUBLIC_URL names, else for the default one, and says which and why.
func TestCardAgentOrigin(t *testing.T) {
	bin := buildMcert(t)
	dir := t.TempDir()
	card := filepath.Join(dir, "card.pem")
	runMcert(t, 0, "card", "issue", "--data", dir, "--name", "王小明", "--id", "A123456789", "--out", card)
	agent := func(env []string, args ...string) (*exec.Cmd, *syncBuffer) {
		t.Helper()
		log := &syncBuffer{}
		cmd := exec.Command(bin, append([]string{"card", "agent", "--card", card}, args...)...)
		cmd.Env, cmd.Stderr = append(withoutMCERT(os.Environ()), env...), log
		return cmd, log
	}
	for _, tc := range []struct {
		name    string
		env     []string
		args    []string
		signFor string
		why     string // the line that says where the origin came from, or "" for none
	}{
		{"the default", nil, nil, "http://localhost:8080", "the agent signs for http://localhost:8080, the default: start the agent with --server"},
		{"MCERT_PUBLIC_URL", []string{"MCERT_PUBLIC_URL=http://localhost:18080/"}, nil, "http://localhost:18080", "the agent signs for http://localhost:18080, the server's MCERT_PUBLIC_URL"},
		{"--server", []string{"MCERT_PUBLIC_URL=http://localhost:18080"}, []string{"--server", "https://mcert.example.tw/mcert"}, "https://mcert.example.tw", ""},
		{"--origin", nil, []string{"--origin", "http://localhost:9000"}, "http://localhost:9000", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := freeAddr(t)
			cmd, log := agent(tc.env, append(tc.args, "--addr", addr)...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			})
			waitForLog(t, log, "card agent listening on http://"+addr+", signing for "+tc.signFor+" only")
			if tc.why != "" { // its own line, which may come a moment after
				waitForLog(t, log, tc.why)
			}
			if got := strings.Contains(log.String(), "the agent signs for"); got != (tc.why != "") || !strings.Contains(log.String(), tc.why) {
				t.Errorf("the log does not say %q:\n%s", tc.why, log)
			}
			res, err := http.Get("http://" + addr + "/selfTest.htm")
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if !strings.Contains(string(page), "<b>"+tc.signFor+"</b>") {
				t.Errorf("the self-test page does not name %s:\n%s", tc.signFor, page)
			}
		})
	}
	cmd, log := agent(nil, "--server", "http://localhost:8080", "--origin", "http://localhost:9000")
	if err := cmd.Run(); cmd.ProcessState.ExitCode() != 2 || !strings.Contains(log.String(), "disagree; give one of them") {
		t.Errorf("--server and --origin that disagree: %v\n%s", err, log)
	}
}

// withoutMCERT is env without the MCERT_ variables, which would set the flags of the command.
func withoutMCERT(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(v string) bool { return strings.HasPrefix(v, "MCERT_") })
}
