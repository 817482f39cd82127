package bench

// mcert serve as a child process: the server the bench measures, and the one the end-to-end
// tests of cmd/mcert crash and run several of.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// FreeLoopbackAddr is a loopback address with a port free a moment ago.
func FreeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// ServeProcess is `mcert serve` running as a child process.
type ServeProcess struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartServe runs `bin serve --addr addr --data dataDir` with the extra flags, its output in
// logPath, and waits until it answers /healthz.
func StartServe(ctx context.Context, bin, dataDir, addr, logPath string, extra ...string) (*ServeProcess, error) {
	return startServe(ctx, bin, dataDir, addr, logPath, nil, extra...)
}

// startServe is StartServe with the server in cg, when there is one.
func startServe(ctx context.Context, bin, dataDir, addr, logPath string, cg *memoryCgroup, extra ...string) (*ServeProcess, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own copy
	p := &ServeProcess{cmd: exec.Command(bin, append([]string{"serve", "--addr", addr, "--data", dataDir}, extra...)...), exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	if cg != nil {
		if err := cg.add(p.cmd.Process.Pid); err != nil {
			p.Kill()
			return nil, fmt.Errorf("move mcert serve into its memory cgroup: %w", err)
		}
	}
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/healthz", nil)
		req.Close = true // no idle connection outlives the check
		res, err := http.DefaultClient.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.exited:
			out, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("mcert serve exited before serving: %s\n%s", p.cmd.ProcessState, out)
		case <-ctx.Done():
			p.Kill()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// PID is the server's process ID.
func (p *ServeProcess) PID() int { return p.cmd.Process.Pid }

// Kill sends SIGKILL, which no process can catch, and waits for the process to end.
func (p *ServeProcess) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Stop shuts the server down gracefully, as an operator's SIGTERM does.
func (p *ServeProcess) Stop() error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		p.Kill()
		return errors.New("mcert serve did not stop within 15 s of SIGTERM")
	}
	if !p.cmd.ProcessState.Success() {
		return fmt.Errorf("mcert serve ended with %s", p.cmd.ProcessState)
	}
	return nil
}
