package bench

// mcert bench run --server-memory: the server in a memory cgroup of its own, to show what it
// needs. A process's RSS counts the data file's pages it has read through bbolt's memory map,
// which are page cache the kernel takes back when memory is short; a cgroup's limit makes it
// take them back, so the figures show the server's speed and RSS within that much memory.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// memoryCgroup is a cgroup made for the server, with a memory limit.
type memoryCgroup struct {
	dir  string
	v2   bool // the unified hierarchy (memory.max); else version 1 (memory.limit_in_bytes)
	peak int64
}

// ParseBytes reads a size such as 256MiB, 1GiB or 1048576.
func ParseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		scale  int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}, {"", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(num, 10, 64)
			if err != nil || n <= 0 {
				break
			}
			return n * u.scale, nil
		}
	}
	return 0, fmt.Errorf("%q is not a size such as 256MiB, 1GiB or 1048576", s)
}

// newMemoryCgroup makes a cgroup below this process's own, limited to limit bytes. It needs
// Linux and a cgroup file system this user may write to (root, usually).
func newMemoryCgroup(limit int64) (*memoryCgroup, error) {
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("--server-memory needs Linux cgroups: %w", err)
	}
	name := fmt.Sprintf("mcert-bench-%d", os.Getpid())
	var cg *memoryCgroup
	for line := range strings.SplitSeq(strings.TrimSpace(string(own)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[1] == "memory" || strings.Contains(","+parts[1]+",", ",memory,"):
			cg = &memoryCgroup{dir: filepath.Join("/sys/fs/cgroup/memory", parts[2], name)}
		case parts[0] == "0" && parts[1] == "" && cg == nil:
			if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
				cg = &memoryCgroup{dir: filepath.Join("/sys/fs/cgroup", parts[2], name), v2: true}
			}
		}
	}
	if cg == nil {
		return nil, errors.New("--server-memory: no memory cgroup controller found in /proc/self/cgroup")
	}
	if err := os.Mkdir(cg.dir, 0o755); err != nil {
		return nil, fmt.Errorf("--server-memory needs a cgroup it may create (run as root): %w", err)
	}
	if err := os.WriteFile(cg.file("memory.max", "memory.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0); err != nil {
		cg.remove()
		return nil, fmt.Errorf("--server-memory: set the limit: %w", err)
	}
	return cg, nil
}

func (cg *memoryCgroup) file(v2, v1 string) string {
	if cg.v2 {
		return filepath.Join(cg.dir, v2)
	}
	return filepath.Join(cg.dir, v1)
}

// add moves a process into the cgroup.
func (cg *memoryCgroup) add(pid int) error {
	return os.WriteFile(filepath.Join(cg.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}

// readPeak notes the most memory the cgroup has used: the server's, the page cache it read
// included.
func (cg *memoryCgroup) readPeak() {
	b, err := os.ReadFile(cg.file("memory.peak", "memory.max_usage_in_bytes"))
	if err == nil {
		cg.peak, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
}

// evictFromPageCache asks the kernel to drop the file's cached pages. A page is charged to the
// cgroup that read it into the cache, so pages the seed or an earlier run left there would be
// mapped by the server free of its limit; evicted, the server reads them again, on its account.
func evictFromPageCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// remove deletes the cgroup once its process has ended.
func (cg *memoryCgroup) remove() { _ = os.Remove(cg.dir) }
