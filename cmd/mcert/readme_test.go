package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The README marks the shell blocks this test runs with a comment before their fence:
//
//	<!-- test: run -->                                   run the block
//	<!-- test: start; ready when URL answers -->         start its one command in the background
//	<!-- test: run with the server stopped -->           stop the server started before, then run it
//
// "test https:" instead of "test:" puts a block in the session of the real-phone recipe. Each
// session is one bash script in a directory of its own, with the built binary as ./mcert; the
// test sets the session's port variables (and HOST) to its own values.

// readmeBlock is one marked shell block of the README.
type readmeBlock struct {
	session string // "" for the walk-throughs, "https" for the real-phone recipe
	action  string // run, start or stopped
	ready   string // for start: the URL that answers once it runs
	script  string
	line    int
}

var readmeMarker = regexp.MustCompile(`^<!-- test( \w+)?: (.+) -->$`)

func readmeBlocks(t *testing.T, readme string) []readmeBlock {
	t.Helper()
	lines := strings.Split(readme, "\n")
	var blocks []readmeBlock
	for i := 0; i < len(lines); i++ {
		m := readmeMarker.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil {
			continue
		}
		b := readmeBlock{session: strings.TrimSpace(m[1]), line: i + 1}
		switch what := m[2]; {
		case what == "run":
			b.action = "run"
		case what == "run with the server stopped":
			b.action = "stopped"
		case strings.HasPrefix(what, "start; ready when ") && strings.HasSuffix(what, " answers"):
			b.action, b.ready = "start", strings.TrimSuffix(strings.TrimPrefix(what, "start; ready when "), " answers")
		default:
			t.Fatalf("README line %d: a test marker of no known kind: %s", i+1, lines[i])
		}
		if i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != "```sh" {
			t.Fatalf("README line %d: a test marker not followed by a ```sh block", i+1)
		}
		indent := lines[i+1][:len(lines[i+1])-len(strings.TrimLeft(lines[i+1], " "))]
		var script []string
		for i += 2; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			script = append(script, strings.TrimPrefix(lines[i], indent))
		}
		b.script = strings.Join(script, "\n")
		blocks = append(blocks, b)
	}
	return blocks
}

// readmeScript is the bash script of one session's blocks, with the variables in set given
// the test's values instead of the README's.
func readmeScript(t *testing.T, blocks []readmeBlock, session string, set map[string]string) string {
	t.Helper()
	var sb strings.Builder
	sb.WriteString(`set -euo pipefail
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait' EXIT
ready() { # URL LOG: wait until URL answers, or show the log
  for _ in $(seq 300); do curl -fs -o /dev/null "$1" && return; sleep 0.1; done
  echo "$1 never answered:" >&2; cat "$2" >&2; return 1
}
`)
	for _, b := range blocks {
		if b.session != session {
			continue
		}
		script := b.script
		for name, value := range set {
			re := regexp.MustCompile(`(?m)^` + name + `=\S+`)
			script = re.ReplaceAllString(script, name+"="+value)
		}
		fmt.Fprintf(&sb, "echo '### README line %d'\n", b.line)
		switch b.action {
		case "run":
			sb.WriteString(script + "\n")
		case "stopped":
			sb.WriteString("kill -TERM \"$server\"; wait \"$server\"; pids=(\"${pids[@]/$server}\")\n" + script + "\n")
		case "start":
			log := fmt.Sprintf("start-%d.log", b.line)
			fmt.Fprintf(&sb, "%s > %s 2>&1 &\npids+=($!)\n", script, log)
			if strings.Contains(script, "mcert serve") {
				sb.WriteString("server=$!\n")
			}
			fmt.Fprintf(&sb, "ready \"%s\" %s\n", b.ready, log)
		}
	}
	for name := range set {
		if !regexp.MustCompile(`(?m)^\s*` + name + `=`).MatchString(readmeSession(blocks, session)) {
			t.Fatalf("the README's %q session sets no %s", session, name)
		}
	}
	return sb.String()
}

func readmeSession(blocks []readmeBlock, session string) string {
	var all []string
	for _, b := range blocks {
		if b.session == session {
			all = append(all, b.script)
		}
	}
	return strings.Join(all, "\n")
}

// runSession runs a session's script in dir with the built binary and returns its output.
func runSession(t *testing.T, bin, dir, script string, env ...string) string {
	t.Helper()
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing; .ci/run installs it", tool)
			}
			t.Skipf("%s is not installed: the README's walk-throughs use it (.ci/run installs it)", tool)
		}
	}
	if err := os.Symlink(bin, filepath.Join(dir, "mcert")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env = dir, append(withoutMCERT(os.Environ()), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's commands failed (%v):\n%s\n\nthe script:\n%s", err, out, script)
	}
	return string(out)
}

func freePort(t *testing.T) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(freeAddr(t))
	return port
}

// TestReadmeWalkthrough runs the README's walk-throughs, as far as they need no browser and no
// camera, against the built binary on ports other than those the README shows, and checks
// that every command succeeds and says what the README says it does.
func TestReadmeWalkthrough(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	// Every command and URL of the walk-throughs follows the variables, set once at their top.
	walk := readme[strings.Index(readme, "## Walk through the enrollment"):strings.Index(readme, "### Beyond the protocol")]
	if n := strings.Count(walk, "8080"); n != 1 || !strings.Contains(walk, "\nPORT=8080 ") {
		t.Errorf("the walk-throughs name port 8080 %d times; want once, in PORT=8080", n)
	}
	blocks := readmeBlocks(t, readme)
	bin := buildMcert(t)
	port, dir := freePort(t), t.TempDir()
	out := runSession(t, bin, dir, readmeScript(t, blocks, "", map[string]string{"PORT": port, "AGENT_PORT": freePort(t)}))
	for _, want := range []string{
		`bound "Pixel 8"`,
		`approved: login to "臺灣雲市集"`,
		`"error":"authorization_pending"`,
		`approved: login to "健保署"`,
		`"name":"健保署 (測試)"`,
		`"name": "Demo RP"`,
		`"disabled": true`,
		"http://localhost:" + port + "/m/bind#",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the walk-through's output does not say %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, `"id_token":"`); n != 2 {
		t.Errorf("%d ID tokens issued, want 2 (the terminal website's and CIBA's):\n%s", n, out)
	}
	// What the walk-throughs leave in the repository is ignored by git: what this session
	// made, and the images saved from the pages.
	made := []string{"qr.png", "login.png"}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch name := e.Name(); {
		case strings.HasPrefix(name, "start-"): // the test's own logs
		case e.IsDir():
			made = append(made, name+"/") // as git names a directory
		default:
			made = append(made, name)
		}
	}
	if git, err := exec.LookPath("git"); err == nil {
		for _, name := range made {
			if out, err := exec.Command(git, "-C", "../..", "check-ignore", "--no-index", "-q", name).CombinedOutput(); err != nil {
				t.Errorf("the walk-through makes %s, which .gitignore does not ignore (%v %s)", name, err, out)
			}
		}
	}
	// The server, stopped for mcert rp, said that it stopped.
	logs, _ := filepath.Glob(filepath.Join(dir, "start-*.log"))
	var serverLog string
	for _, name := range logs {
		if data, _ := os.ReadFile(name); strings.Contains(string(data), "mcert is serving at http://localhost:"+port) {
			serverLog = string(data)
		}
	}
	if !strings.Contains(serverLog, "msg=\"shutting down") || !strings.Contains(serverLog, "msg=stopped") {
		t.Errorf("the server's log does not say it shut down:\n%s", serverLog)
	}
}

// TestReadmeRealPhone starts the server as the README's real-phone recipe does, with a
// certificate for localhost instead of the reader's hostname, and finds it serving https at
// the public URL.
func TestReadmeRealPhone(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile := writeTLSFiles(t, dir, "localhost")
	port := freePort(t)
	script := readmeScript(t, readmeBlocks(t, string(data)), "https", map[string]string{"HOST": "localhost", "HTTPS_PORT": port})
	out := runSession(t, buildMcert(t), dir, script+"curl -fsS \"$MCERT/.well-known/openid-configuration\"\n", "CURL_CA_BUNDLE="+caFile)
	if want := `"issuer":"https://localhost:` + port + `"`; !strings.Contains(out, want) {
		t.Errorf("discovery does not say %s:\n%s", want, out)
	}
}

// writeTLSFiles writes fullchain.pem and privkey.pem for host into dir, as certbot makes them,
// from a CA of the test's own, whose certificate file it returns.
func writeTLSFiles(t *testing.T, dir, host string) string {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTemplate := &x509.Certificate{
		Subject: pkix.Name{CommonName: "README test CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	ca := mustCert(t, caTemplate, caTemplate, caKey.Public(), caKey)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := mustCert(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: host}, DNSNames: []string{host}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, key.Public(), caKey)
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := func(c *x509.Certificate) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	files := map[string][]byte{
		"fullchain.pem": append(certPEM(leaf), certPEM(ca)...),
		"privkey.pem":   pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"ca.pem":        certPEM(ca),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "ca.pem")
}
