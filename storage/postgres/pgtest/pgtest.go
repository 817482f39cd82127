// Package pgtest gives tests a real PostgreSQL: the one MCERT_TEST_POSTGRES names (a URL of
// a server where the tests may create databases), or else a throwaway cluster it starts
// itself from Debian's PostgreSQL binaries, in a temporary directory on a free port of
// 127.0.0.1, run as an unprivileged user when the tests run as root. Each test gets a database
// of its own.
//
// A package whose tests use it runs them through Main, which stops the cluster at the end:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

var (
	once    sync.Once
	server  string // the URL of the server, without a database
	stop    func()
	failure error
	next    atomic.Int64
)

// Main runs the package's tests and stops the cluster they started, if any.
func Main(m *testing.M) int {
	code := m.Run()
	if stop != nil {
		stop()
	}
	return code
}

// URL is the address of a new, empty database for the test on the test PostgreSQL.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(func() { server, stop, failure = start() })
	if failure != nil {
		t.Fatalf("PostgreSQL for the tests: %v", failure)
	}
	name := fmt.Sprintf("mcert_test_%d_%d", os.Getpid(), next.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, withDatabase(server, "postgres"))
	if err != nil {
		t.Fatalf("connect to the test PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create the test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, withDatabase(server, "postgres")); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(ctx)
		}
	})
	return withDatabase(server, name)
}

func withDatabase(raw, db string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + db
	return u.String()
}

// Cluster starts a throwaway cluster for the test alone, for a test that stops it: stop may be
// called more than once, and the cluster is stopped and removed when the test ends anyway.
// The URL names its database postgres. It needs the PostgreSQL binaries even when
// MCERT_TEST_POSTGRES is set.
func Cluster(t testing.TB) (url string, stop func()) {
	t.Helper()
	url, stopCluster, err := startCluster()
	if err != nil {
		t.Fatalf("PostgreSQL cluster for the test: %v", err)
	}
	var once sync.Once
	stop = func() { once.Do(stopCluster) }
	t.Cleanup(stop)
	return url, stop
}

// start finds or starts the server.
func start() (string, func(), error) {
	if u := os.Getenv("MCERT_TEST_POSTGRES"); u != "" {
		return u, nil, nil
	}
	return startCluster()
}

// startCluster starts a throwaway cluster.
func startCluster() (string, func(), error) {
	bin, err := binaries()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "mcert-pg-")
	if err != nil {
		return "", nil, err
	}
	as, err := runAs(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	data := filepath.Join(dir, "data")
	run := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		if as != "" {
			cmd = exec.Command("runuser", append([]string{"-u", as, "--", filepath.Join(bin, name)}, args...)...)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w\n%s", name, err, out)
		}
		return nil
	}
	if err := run("initdb", "-D", data, "-U", "mcert", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	// Durability does not matter to a throwaway cluster: fsync off makes the tests faster.
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300", port, dir)
	if err := run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	stop := func() {
		_ = run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
		os.RemoveAll(dir)
	}
	// The cluster has no TLS: without sslmode=disable, every connection would try TLS first
	// and spend a round trip on the refusal, which on a loaded machine nears the connect
	// timeout.
	return fmt.Sprintf("postgres://mcert@127.0.0.1:%d/postgres?sslmode=disable", port), stop, nil
}

// binaries is where Debian's PostgreSQL server binaries are: the newest installed version.
func binaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries (initdb): install Debian's postgresql package, which .ci/run does, or set MCERT_TEST_POSTGRES to a server's URL")
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// runAs is the user the cluster runs as: PostgreSQL refuses to run as root, so as root the
// cluster is nobody's, in a directory nobody owns.
func runAs(dir string) (string, error) {
	if os.Geteuid() != 0 {
		return "", nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return "", fmt.Errorf("running as root, PostgreSQL needs an unprivileged user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return "", err
	}
	// nobody must reach the directory through its parents too.
	for p := filepath.Dir(dir); p != "/" && p != "."; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 && !strings.HasPrefix(p, os.TempDir()) {
			return "", fmt.Errorf("%s is not reachable for user nobody; set TMPDIR to a directory that is", p)
		}
	}
	return "nobody", nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
