package bench

// What Linux says of the processes: their CPU time and memory, from /proc.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procStat is what Linux says of a process: CPU time and memory.
type procStat struct {
	cpu                  time.Duration
	majorFaults          int64 // page faults that read the disk: of the data file, when it is not cached
	rss, hwm, anon, file int64 // bytes
}

// readProc reads /proc/<pid>/stat and /proc/<pid>/status (Linux only; elsewhere it fails and
// the report leaves the figures out). CPU time is in clock ticks of 1/100 s, Linux's USER_HZ.
func readProc(pid int) (procStat, error) {
	var p procStat
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return p, err
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 13 {
		return p, errors.New("short /proc stat")
	}
	p.majorFaults, _ = strconv.ParseInt(fields[9], 10, 64)
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	p.cpu = time.Duration(utime+stime) * 10 * time.Millisecond
	status, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return p, err
	}
	defer status.Close()
	for sc := bufio.NewScanner(status); sc.Scan(); {
		name, value, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch name {
		case "VmRSS":
			p.rss = kb << 10
		case "VmHWM":
			p.hwm = kb << 10
		case "RssAnon":
			p.anon = kb << 10
		case "RssFile":
			p.file = kb << 10
		}
	}
	return p, nil
}

// selfCPU is the CPU time this process has used, user and system, to the microsecond
// (getrusage), finer than /proc's ticks of 10 ms: the in-process ceiling's CPU is measured
// with it over a few seconds.
func selfCPU() time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// cpuSnapshot is the CPU time used so far by the server, by the bench itself, and by the whole
// machine, and the time the hypervisor of a virtual machine gave to others (steal).
type cpuSnapshot struct {
	server, client, machine, steal time.Duration
	serverMajorFaults              int64
}

// cpuUse is the CPU time used between two snapshots. What others used, and what the hypervisor
// took, must be near zero for figures worth comparing: the bench and the server share the
// machine's cores.
type cpuUse struct {
	server, client, others, stolen time.Duration
	serverMajorFaults              int64
}

// snapshotCPU reads the CPU time of the servers (their sum), the bench and the machine.
func snapshotCPU(serverPIDs ...int) cpuSnapshot {
	var s cpuSnapshot
	for _, pid := range serverPIDs {
		p, _ := readProc(pid)
		s.server, s.serverMajorFaults = s.server+p.cpu, s.serverMajorFaults+p.majorFaults
	}
	p, _ := readProc(os.Getpid())
	s.client = p.cpu
	// /proc/stat's first line: user nice system idle iowait irq softirq steal…, in ticks.
	if stat, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(stat), "\n")
		for i, f := range strings.Fields(line) {
			n, err := strconv.ParseInt(f, 10, 64)
			switch ticks := time.Duration(n) * 10 * time.Millisecond; {
			case err != nil, i == 4, i == 5, i > 8: // idle and iowait; guests are counted in user
			case i == 8:
				s.steal = ticks
			default:
				s.machine += ticks
			}
		}
	}
	return s
}

func (a cpuSnapshot) to(b cpuSnapshot) cpuUse {
	u := cpuUse{server: b.server - a.server, client: b.client - a.client, stolen: b.steal - a.steal, serverMajorFaults: b.serverMajorFaults - a.serverMajorFaults}
	u.others = max(0, b.machine-a.machine-u.server-u.client)
	return u
}

func (u cpuUse) add(v cpuUse) cpuUse {
	return cpuUse{
		server: u.server + v.server, client: u.client + v.client, others: u.others + v.others, stolen: u.stolen + v.stolen,
		serverMajorFaults: u.serverMajorFaults + v.serverMajorFaults,
	}
}
