package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// ourNamespaces lists the idlerace-PID-* namespaces of this test process.
func ourNamespaces(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	prefix := fmt.Sprintf("%s%d-", netnsPrefix, os.Getpid())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
}

// echoIn serves one echo connection on ln.
func echoIn(t *testing.T, ln net.Listener) {
	t.Helper()
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
}

// roundTrip writes 4 bytes on c and times their echo.
func roundTrip(t *testing.T, c net.Conn) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo read %q, %v", buf, err)
	}
	return time.Since(start)
}

// TestNetemNamespace makes a netem namespace with d=2ms. Where netem works (root, a
// kernel with sch_netem) a loopback round trip inside takes at least 2d. Where it does
// not (this CI machine's kernel has no qdiscs at all), the error is exact, nothing is
// left behind, and the test says it skipped the delay.
func TestNetemNamespace(t *testing.T) {
	const d = 2 * time.Millisecond
	n, err := NewNetemNamespace(context.Background(), d, 0)
	if err != nil {
		want := "netem latency: this kernel has no netem qdisc (tc: Specified qdisc kind is unknown); use the delay proxy: latency 2ms"
		if os.Geteuid() != 0 {
			want = "netem latency needs root (run as root, or use the delay proxy: latency 2ms)"
		}
		if err.Error() != want {
			t.Fatalf("NewNetemNamespace:\n got %q\nwant %q (or success)", err, want)
		}
		if !errors.Is(err, ErrNetemUnavailable) {
			t.Errorf("error %q does not match ErrNetemUnavailable", err)
		}
		if left := ourNamespaces(t); len(left) > 0 {
			t.Fatalf("namespaces left after a failed NewNetemNamespace: %v", left)
		}
		// What could be checked without netem was; the delay itself was not.
		t.Skipf("skipped: no netem qdisc here (%v); the error and the cleanup were checked, the delay was not", err)
	}
	defer func() {
		if err := n.Close(); err != nil {
			t.Error(err)
		}
		if left := ourNamespaces(t); len(left) > 0 {
			t.Errorf("namespaces left after Close: %v", left)
		}
	}()
	ln, err := n.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoIn(t, ln)
	start := time.Now()
	c, err := n.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if connect := time.Since(start); connect < 2*d {
		t.Errorf("connect took %v, want >= 2d = %v (SYN and SYN-ACK each cross netem)", connect, 2*d)
	}
	for range 3 {
		if rtt := roundTrip(t, c); rtt < 2*d {
			t.Errorf("round trip took %v, want >= 2d = %v", rtt, 2*d)
		} else {
			t.Logf("round trip %v (2d = %v)", rtt, 2*d)
		}
	}
}

func TestNetemNamespaceNeedsRoot(t *testing.T) {
	defer func(f func() int) { netemGeteuid = f }(netemGeteuid)
	netemGeteuid = func() int { return 1000 }
	before := ourNamespaces(t)
	n, err := NewNetemNamespace(context.Background(), 2*time.Millisecond, 0)
	if err == nil {
		n.Close()
		t.Fatal("NewNetemNamespace succeeded for a non-root user")
	}
	if want := "netem latency needs root (run as root, or use the delay proxy: latency 2ms)"; err.Error() != want {
		t.Fatalf("error\n got %q\nwant %q", err, want)
	}
	if !errors.Is(err, ErrNetemUnavailable) {
		t.Errorf("error %q does not match ErrNetemUnavailable", err)
	}
	if after := ourNamespaces(t); !slices.Equal(before, after) {
		t.Errorf("namespaces before %v, after %v: a refused call created one", before, after)
	}
	// The hint carries the requested jitter too.
	_, err = NewNetemNamespace(context.Background(), 3*time.Millisecond, 500*time.Microsecond)
	if want := "netem latency needs root (run as root, or use the delay proxy: latency 3ms+500µs)"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestNetemArgs(t *testing.T) {
	for _, tc := range []struct {
		delay, jitter time.Duration
		want          string
	}{
		{2 * time.Millisecond, 0, "delay 2000us"},
		{2 * time.Millisecond, 500 * time.Microsecond, "delay 2250us 250us"},
		{1500 * time.Nanosecond, 0, "delay 1.5us"},
		{0, time.Millisecond, "delay 500us 500us"},
	} {
		if got := strings.Join(netemArgs(tc.delay, tc.jitter), " "); got != tc.want {
			t.Errorf("netemArgs(%v, %v) = %q, want %q", tc.delay, tc.jitter, got, tc.want)
		}
	}
	if _, err := NewNetemNamespace(context.Background(), -time.Millisecond, 0); err == nil {
		t.Error("NewNetemNamespace accepted a negative delay")
	}
}

// TestNetnsListenDialInsideNamespace: sockets made through a Netns live in it. A round
// trip on its 127.0.0.1 works, the host's loopback cannot reach its listener, and Close
// removes it.
func TestNetnsListenDialInsideNamespace(t *testing.T) {
	needRoot(t)
	n, err := newNamespace(context.Background(), "use the delay proxy: latency 0")
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if !slices.Contains(ourNamespaces(t), n.Name) {
		t.Fatalf("namespace %s not under %s", n.Name, netnsDir)
	}
	ln, err := n.Listen("tcp", "localhost:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("listener on %s, want 127.0.0.1", addr)
	}
	echoIn(t, ln)
	c, err := n.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rtt := roundTrip(t, c)
	t.Logf("round trip inside %s: %v", n.Name, rtt)

	// The host's 127.0.0.1 is another loopback: a dial from it must not reach a listener
	// in the namespace (if a host process owns the same port number, it gets the dial).
	ln2, err := n.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	if hc, err := net.DialTimeout("tcp", ln2.Addr().String(), time.Second); err == nil {
		hc.Close()
		ln2.(*net.TCPListener).SetDeadline(time.Now().Add(50 * time.Millisecond))
		if a, err := ln2.Accept(); err == nil {
			a.Close()
			t.Fatalf("a dial from the host's loopback reached the namespace's listener on %s", ln2.Addr())
		}
	}

	// A child started with Command runs inside too.
	out, err := n.Command("ip", "netns", "identify").Output()
	if err != nil {
		t.Fatalf("ip netns identify inside: %v", err)
	}
	if got := strings.TrimSpace(string(out)); got != n.Name {
		t.Errorf("child identifies its namespace as %q, want %q", got, n.Name)
	}

	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(netnsDir, n.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("namespace file after Close: %v, want it gone", err)
	}
	if _, err := n.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Fatal("Listen in a closed namespace succeeded")
	}
}

func TestNetnsRejectsNamesThatNeedResolving(t *testing.T) {
	n := &Netns{Name: "idlerace-never-made"}
	if _, err := n.Listen("tcp", "example.com:80"); err == nil || !strings.Contains(err.Error(), `host "example.com" is not an IP literal`) {
		t.Errorf("Listen on a host name: %v", err)
	}
	if _, err := n.DialContext(context.Background(), "tcp", "example.com:80"); err == nil || !strings.Contains(err.Error(), `host "example.com" is not an IP literal`) {
		t.Errorf("Dial to a host name: %v", err)
	}
}

// TestCleanupStaleRemovesCrashLeftNamespace: a namespace named for a pid that no longer
// exists goes; one named for a live pid (ours) stays.
func TestCleanupStaleRemovesCrashLeftNamespace(t *testing.T) {
	needRoot(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if processExists(dead.Process.Pid) {
		t.Skipf("pid %d was reused at once", dead.Process.Pid)
	}
	stale := fmt.Sprintf("%s%d-1", netnsPrefix, dead.Process.Pid)
	live := fmt.Sprintf("%s%d-999999", netnsPrefix, os.Getpid())
	for _, name := range []string{stale, live} {
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", name, err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "delete", name).Run() })
	}
	if err := CleanupStale(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(netnsDir, stale)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("crash-left namespace %s after CleanupStale: %v, want it gone", stale, err)
	}
	if _, err := os.Stat(filepath.Join(netnsDir, live)); err != nil {
		t.Errorf("live process's namespace %s after CleanupStale: %v, want it kept", live, err)
	}
}
