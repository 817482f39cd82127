// Package benchtest builds the mcert binary for tests that run it as a process: the servers
// of internal/bench's runs, and cmd/mcert's tests that kill it or run several of it.
package benchtest

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// Mcert builds cmd/mcert, with go build's flags if any, into a temporary directory of t and
// returns the binary's path.
func Mcert(t testing.TB, flags ...string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command, to build mcert: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "mcert")
	args := append(append([]string{"build"}, flags...), "-o", bin, "github.com/mcert/mcert/cmd/mcert")
	if out, err := exec.Command(goTool, args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
