package real

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idlerace/idlerace/upstreams"
)

// Defaults for Spec's durations.
const (
	DefaultReadyTimeout = 20 * time.Second
	DefaultGrace        = 3 * time.Second
)

// Spec is one server process to start.
type Spec struct {
	Kind    string   // for messages: "nginx"
	Path    string   // the binary, an absolute path
	Package string   // where Path comes from, for the error when it is missing: "Debian package nginx"
	Args    []string // without the binary
	Dir     string   // working directory: the server's private directory
	Env     []string // the whole environment, beyond a minimal PATH, HOME and LANG
	// Logs are files (besides the process's stderr, which Start sends to Dir/stderr.log)
	// whose last lines explain a failed start, e.g. nginx's error.log.
	Logs []string
	// Addr is polled for readiness: a TCP connect, then GET ReadyPath must answer 200
	// with a body that holds ReadyToken (so that another server that happens to hold the
	// port is not taken for this one).
	Addr       Addr
	ReadyPath  string
	ReadyToken string
	// ReadyTimeout bounds the wait for readiness (DefaultReadyTimeout when 0); Grace is
	// how long Stop waits after SIGTERM before SIGKILL (DefaultGrace when 0).
	ReadyTimeout time.Duration
	Grace        time.Duration
	// StopSignal asks the server to stop (SIGTERM when nil): a server whose SIGTERM drops
	// what it has not logged yet stops gracefully on another (HAProxy's SIGUSR1).
	StopSignal os.Signal
	// DeathSignal is what the kernel sends the server when idlerace dies, even by SIGKILL
	// (SIGKILL when nil). A server whose workers outlive a killed master (nginx's, Apache's
	// children: SIGKILL to the master orphans them, still listening) takes a signal on
	// which the master stops them itself.
	DeathSignal os.Signal
}

// Process is a running server process and its process group.
type Process struct {
	spec   Spec
	cmd    *exec.Cmd
	pid    int
	exited chan struct{} // closed when the leader exited (it is not reaped before Stop)

	//lint:ignore U1000 proc_other.go reaps in launch and keeps the result here; Linux reaps in Stop.
	waitErr error
	probes  atomic.Int64

	stopOnce sync.Once
	stopErr  error
}

// Start runs sp.Path in its own process group (on Linux the kernel SIGKILLs it if this
// process dies: Pdeathsig) and waits until GET sp.ReadyPath on sp.Addr answers 200 with
// sp.ReadyToken. It returns the process and that answer's body. Any failure, the process's exit included, stops
// what was started and returns a *upstreams.StartError carrying the last lines of the
// server's stderr and sp.Logs.
func Start(ctx context.Context, sp Spec) (*Process, []byte, error) {
	if sp.ReadyTimeout == 0 {
		sp.ReadyTimeout = DefaultReadyTimeout
	}
	if sp.Grace == 0 {
		sp.Grace = DefaultGrace
	}
	if _, err := os.Stat(sp.Path); err != nil {
		return nil, nil, &upstreams.StartError{Err: fmt.Errorf("%s binary (%s): %w", sp.Kind, sp.Package, err)}
	}
	stdout, err := os.Create(filepath.Join(sp.Dir, "stdout.log"))
	if err != nil {
		return nil, nil, &upstreams.StartError{Err: err}
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(sp.Dir, "stderr.log"))
	if err != nil {
		return nil, nil, &upstreams.StartError{Err: err}
	}
	defer stderr.Close()

	cmd := exec.Command(sp.Path, sp.Args...)
	cmd.Dir = sp.Dir
	cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + sp.Dir, "LANG=C.UTF-8"}, sp.Env...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = stdout, stderr // files: no copying goroutines to wait for
	cmd.SysProcAttr = sysProcAttr(sp.DeathSignal)
	p := &Process{spec: sp, cmd: cmd, exited: make(chan struct{})}
	if err := p.launch(); err != nil {
		return nil, nil, &upstreams.StartError{Err: fmt.Errorf("%s: %w", sp.Kind, err), Tail: tail(sp)}
	}

	// A probe in flight is abandoned as soon as the server exits.
	readyCtx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-readyCtx.Done():
		}
	}()
	body, err := p.waitReady(readyCtx)
	cancel()
	if err != nil {
		p.Stop()
		return nil, nil, &upstreams.StartError{Err: err, Tail: tail(sp)}
	}
	return p, body, nil
}

// Output runs a short command (`nginx -v`, `python3 -c 'import uvicorn'`) in a process
// group of its own, as Start does, and returns its stdout and stderr; ctx ends it and
// anything it started.
func Output(ctx context.Context, path string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	cmd.SysProcAttr = sysProcAttr(nil)
	cmd.Cancel = func() error { return signalGroup(cmd.Process.Pid, sigKill) }
	cmd.WaitDelay = time.Second
	return cmd.CombinedOutput()
}

// Pid is the server's main process id; it is also its process group id.
func (p *Process) Pid() int { return p.pid }

// Exited is closed when the main process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Stop ends the server: SIGTERM to its process group, then, after Grace, SIGKILL; then
// SIGKILL to whatever is left in the group (workers of a master that exited), and reaps
// the main process. It returns nil for a server that exited on the signal or with
// status 0, else what the exit said. It is safe to call more than once.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		stop := p.spec.StopSignal
		if stop == nil {
			stop = sigTerm
		}
		if err := signalGroup(p.pid, stop); err == nil {
			t := time.NewTimer(p.spec.Grace)
			select {
			case <-p.exited:
				t.Stop()
			case <-t.C:
				signalGroup(p.pid, sigKill)
				<-p.exited
			}
		}
		<-p.exited
		// The main process is a zombie until reaped, so the group id cannot be reused
		// yet: killing the group now reaches only the server's own processes.
		signalGroup(p.pid, sigKill)
		waitGroupGone(p.pid, p.spec.Grace)
		err := p.reap()
		var ee *exec.ExitError
		if errors.As(err, &ee) && (killedBySignal(ee) || ee.ExitCode() == 0) {
			err = nil
		}
		p.stopErr = err
	})
	return p.stopErr
}

// waitReady polls until the server answers GET ReadyPath with 200.
func (p *Process) waitReady(ctx context.Context) ([]byte, error) {
	deadline := time.Now().Add(p.spec.ReadyTimeout)
	var last error
	for {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited before it was ready", p.spec.Kind)
		default:
		}
		if err := ctx.Err(); err != nil {
			select {
			case <-p.exited:
				return nil, fmt.Errorf("%s exited before it was ready", p.spec.Kind)
			default:
				return nil, err
			}
		}
		body, err := getOnce(ctx, p.spec.Addr.HostPort(), p.spec.ReadyPath, &p.probes)
		if err == nil && !bytes.Contains(body, []byte(p.spec.ReadyToken)) {
			err = fmt.Errorf("GET %s answered without this server's token: another server holds %s", p.spec.ReadyPath, p.spec.Addr.HostPort())
		}
		if err == nil {
			return body, nil
		}
		last = err
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s not ready on %s after %v: %v: %w", p.spec.Kind, p.spec.Addr.HostPort(), p.spec.ReadyTimeout, last, ErrNotReady)
		}
		select {
		case <-p.exited:
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// getOnce connects to hostPort and sends GET path with Connection: close; it returns the
// body of a 200 answer.
func getOnce(ctx context.Context, hostPort, path string, conns *atomic.Int64) ([]byte, error) {
	d := net.Dialer{Timeout: time.Second}
	nc, err := d.DialContext(ctx, "tcp", hostPort)
	if err != nil {
		return nil, err
	}
	conns.Add(1)
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	nc.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(nc, "GET "+path+" HTTP/1.1\r\nHost: idlerace\r\nUser-Agent: idlerace-ready\r\nConnection: close\r\n\r\n"); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return body, nil
}

// Get answers GET path on the running server (one connection, Connection: close), for
// kinds whose counters live in the server process. The body must answer 200.
func (p *Process) Get(ctx context.Context, path string) ([]byte, error) {
	return getOnce(ctx, p.spec.Addr.HostPort(), path, &p.probes)
}

// OwnConns is how many connections this package made to the server (readiness polls and
// Get): a kind subtracts them from the server's own count of accepted connections.
func (p *Process) OwnConns() int64 { return p.probes.Load() }

// tail returns the last TailLines non-empty lines of stderr.log and then of each of
// sp.Logs, each line trimmed and cut at 300 bytes.
func tail(sp Spec) []string {
	var lines []string
	for _, f := range append([]string{filepath.Join(sp.Dir, "stderr.log")}, sp.Logs...) {
		lines = append(lines, lastLines(f, upstreams.TailLines)...)
	}
	if len(lines) > upstreams.TailLines {
		lines = lines[len(lines)-upstreams.TailLines:]
	}
	return lines
}

func lastLines(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	const window = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > window {
		f.Seek(st.Size()-window, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	var out []string
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" {
			continue
		}
		if len(s) > 300 {
			s = s[:300] + "..."
		}
		out = append(out, s)
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}
