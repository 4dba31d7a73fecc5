package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// netnsDir is where `ip netns` keeps its named namespaces (bind mounts of nsfs).
const netnsDir = "/var/run/netns"

// netnsPrefix starts the name of every namespace idlerace makes: idlerace-PID-N.
const netnsPrefix = "idlerace-"

var (
	netnsSeq atomic.Uint64
	// netemGeteuid is os.Geteuid; a test replaces it to see the error for a plain user.
	netemGeteuid = os.Geteuid
	staleNetns   = regexp.MustCompile(`^idlerace-([0-9]+)-[0-9]+$`)
)

// netnsCmdTimeout bounds each ip and tc command; they answer in milliseconds.
const netnsCmdTimeout = 10 * time.Second

// NewNetemNamespace creates a private network namespace idlerace-PID-N, brings its
// loopback up and adds `netem delay` on it, so that a round trip on its 127.0.0.1 takes
// 2*delay (plus jitter, see Netns). It needs root and a kernel with the netem qdisc
// (sch_netem); without them it fails with an error that matches ErrNetemUnavailable and
// names the delay-proxy spec to use instead. On any error everything created so far is
// removed.
func NewNetemNamespace(ctx context.Context, delay, jitter time.Duration) (*Netns, error) {
	if err := checkNetemDurations(delay, jitter); err != nil {
		return nil, err
	}
	hint := netemProxyHint(delay, jitter)
	if netemGeteuid() != 0 {
		return nil, &netemUnavailable{"netem latency needs root (run as root, or " + hint + ")"}
	}
	tc, err := exec.LookPath("tc")
	if err != nil {
		return nil, &netemUnavailable{"netem latency: tc not found (install iproute2, or " + hint + ")"}
	}
	n, err := newNamespace(ctx, hint)
	if err != nil {
		return nil, err
	}
	if delay == 0 && jitter == 0 {
		// netem:0 is the namespace path with nothing to delay: the same plumbing (server
		// listening and client dialling inside a private namespace) on any kernel.
		return n, nil
	}
	args := append([]string{"-n", n.Name, "qdisc", "add", "dev", "lo", "root", "netem"}, netemArgs(delay, jitter)...)
	if out, err := runNetnsCmd(ctx, tc, args...); err != nil {
		var uerr error
		if strings.Contains(out, "Specified qdisc kind is unknown") {
			uerr = &netemUnavailable{"netem latency: this kernel has no netem qdisc (tc: Specified qdisc kind is unknown); " + hint}
		} else {
			uerr = fmt.Errorf("netem latency: tc %s: %s", strings.Join(args, " "), cmdFailure(out, err))
		}
		return nil, errors.Join(uerr, n.Close())
	}
	return n, nil
}

// newNamespace creates idlerace-PID-N with its loopback up and no qdisc.
func newNamespace(ctx context.Context, hint string) (*Netns, error) {
	ip, err := exec.LookPath("ip")
	if err != nil {
		return nil, &netemUnavailable{"netem latency: ip not found (install iproute2, or " + hint + ")"}
	}
	var n *Netns
	// A name left by an earlier process that had our pid may exist: take the next one.
	for range 8 {
		name := fmt.Sprintf("%s%d-%d", netnsPrefix, os.Getpid(), netnsSeq.Add(1))
		out, err := runNetnsCmd(ctx, ip, "netns", "add", name)
		if err == nil {
			n = &Netns{Name: name}
			break
		}
		if !strings.Contains(out, "File exists") {
			return nil, fmt.Errorf("netem latency: ip netns add %s: %s", name, cmdFailure(out, err))
		}
	}
	if n == nil {
		return nil, fmt.Errorf("netem latency: ip netns add: 8 names in a row exist under %s (run CleanupStale)", netnsDir)
	}
	if out, err := runNetnsCmd(ctx, ip, "-n", n.Name, "link", "set", "lo", "up"); err != nil {
		return nil, errors.Join(fmt.Errorf("netem latency: ip -n %s link set lo up: %s", n.Name, cmdFailure(out, err)), n.Close())
	}
	return n, nil
}

// runNetnsCmd runs an ip or tc command and returns its combined output.
func runNetnsCmd(ctx context.Context, path string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, netnsCmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

// cmdFailure is one line for a failed command: its output's first line, else err.
func cmdFailure(out string, err error) string {
	if first, _, _ := strings.Cut(out, "\n"); first != "" {
		return first
	}
	return err.Error()
}

// Listen is net.Listen with the socket created inside the namespace. addr's host must be
// an IP literal, empty or "localhost" (127.0.0.1): a name would be resolved outside.
func (n *Netns) Listen(network, addr string) (net.Listener, error) {
	addr, err := netnsAddr(network, addr)
	if err != nil {
		return nil, fmt.Errorf("netns %s: listen %s: %w", n.Name, addr, err)
	}
	var ln net.Listener
	if err := n.in(func() { ln, err = net.Listen(network, addr) }); err != nil {
		return nil, err
	}
	return ln, err
}

// DialContext is net.Dialer.DialContext with the socket created inside the namespace.
// addr's host must be an IP literal or "localhost" (127.0.0.1), so that exactly one
// address is dialled, from the calling thread, with no resolver involved.
func (n *Netns) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	addr, err := netnsAddr(network, addr)
	if err != nil {
		return nil, fmt.Errorf("netns %s: dial %s: %w", n.Name, addr, err)
	}
	var c net.Conn
	if err := n.in(func() {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
	}); err != nil {
		return nil, err
	}
	return c, err
}

// netnsAddr checks that addr needs no name resolution and maps localhost to 127.0.0.1.
func netnsAddr(network, addr string) (string, error) {
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return addr, nil // unix sockets and the like: nothing to resolve
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, err
	}
	if host == "localhost" {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	if host != "" && net.ParseIP(host) == nil {
		return addr, fmt.Errorf("host %q is not an IP literal (a name would be resolved outside the namespace)", host)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return addr, fmt.Errorf("port %q is not a number", port)
	}
	return addr, nil
}

// Do runs f on an OS thread in the namespace: a socket f opens (a packet capture of
// the namespace's loopback, say) belongs to it.
func (n *Netns) Do(f func()) error { return n.in(f) }

// in runs f on an OS thread switched into the namespace, then switches the thread back.
// It runs on a fresh goroutine, so the caller's thread is never touched; if switching
// back fails, that goroutine exits still locked to its thread and the runtime ends the
// thread rather than reuse it in the wrong namespace.
func (n *Netns) in(f func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- n.inLocked(f)
	}()
	return <-errc
}

func (n *Netns) inLocked(f func()) error {
	orig, err := syscall.Open("/proc/thread-self/ns/net", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns %s: open this thread's network namespace: %w", n.Name, err)
	}
	defer syscall.Close(orig)
	target, err := syscall.Open(filepath.Join(netnsDir, n.Name), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns %s: %w", n.Name, err)
	}
	defer syscall.Close(target)
	if err := setns(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns %s: setns: %w", n.Name, err)
	}
	f()
	if err := setns(orig); err != nil {
		return fmt.Errorf("netns %s: setns back to the original namespace: %w", n.Name, err)
	}
	runtime.UnlockOSThread()
	return nil
}

func setns(fd int) error {
	if _, _, e := syscall.RawSyscall(sysSetns, uintptr(fd), syscall.CLONE_NEWNET, 0); e != 0 {
		return e
	}
	return nil
}

// Command returns `ip netns exec NAME name args...`: a child server that runs inside the
// namespace (its sockets, and its children's, are made there).
func (n *Netns) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Close deletes the namespace (`ip netns delete`). Sockets still open inside it keep the
// namespace itself alive until they close, but its name is gone. Calling Close again
// returns the first call's result.
func (n *Netns) Close() error {
	n.closeOnce.Do(func() { n.closeErr = deleteNetns(n.Name) })
	return n.closeErr
}

func deleteNetns(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), netnsCmdTimeout)
	defer cancel()
	if out, err := runNetnsCmd(ctx, "ip", "netns", "delete", name); err != nil {
		return fmt.Errorf("netns %s: ip netns delete: %s", name, cmdFailure(out, err))
	}
	return nil
}

// CleanupStale deletes idlerace-* namespaces whose pid no longer exists (left by a crash).
// A namespace of a live process, this one included, is left alone. Pids are this pid
// namespace's: run it where the runs that crashed ran.
func CleanupStale() error {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("netem cleanup: %w", err)
	}
	var errs []error
	for _, e := range entries {
		m := staleNetns.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid <= 0 || processExists(pid) {
			continue
		}
		if err := deleteNetns(e.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// processExists reports whether pid names a process (kill -0: EPERM still means it does).
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
