package real

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/upstreams"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// readyServer answers GET /ready with body on loopback, standing in for a server's
// readiness endpoint while the process under test is only a shell.
func readyServer(t *testing.T, body string) Addr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, body)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return Addr{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port}
}

func shell(t *testing.T, script string, addr Addr, token string) Spec {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	return Spec{
		Kind: "sh", Path: "/bin/sh", Package: "Debian package dash", Args: []string{"-c", script},
		Dir: t.TempDir(), Addr: addr, ReadyPath: "/ready", ReadyToken: token,
		ReadyTimeout: 2 * time.Second, Grace: 200 * time.Millisecond,
	}
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		left := GroupMembers(pid)
		if errors.Is(err, os.ErrNotExist) && len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d (stat: %v) or its group %v still there", pid, err, left)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStopKillsTheWholeGroupWhenTERMIsIgnored(t *testing.T) {
	addr := readyServer(t, "tok-1")
	// The shell and both children ignore SIGTERM: only the SIGKILL after Grace ends them.
	sp := shell(t, "trap '' TERM; sleep 30 & sleep 30 & wait", addr, "tok-1")
	p, body, err := Start(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "tok-1" {
		t.Errorf("ready body %q", body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(GroupMembers(p.Pid())) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if group := GroupMembers(p.Pid()); len(group) < 3 {
		t.Fatalf("group %v, want the shell and two sleeps", group)
	}
	start := time.Now()
	if err := p.Stop(); err != nil {
		t.Errorf("Stop: %v, want nil for a server killed by the signal", err)
	}
	// Never before the grace (causal); and the SIGKILL, not the sleeps' own 30s, ended
	// it (a Stop that did not escalate would wait them out).
	if took := time.Since(start); took < sp.Grace || took >= 25*time.Second {
		t.Errorf("Stop took %v, want the %v grace and then the kill, well before the children's 30s", took, sp.Grace)
	}
	if left := GroupMembers(p.Pid()); len(left) != 0 {
		t.Errorf("group %d still has %v after Stop", p.Pid(), left)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", p.Pid())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("process %d not reaped: %v", p.Pid(), err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestStopWithTERMIsQuick(t *testing.T) {
	addr := readyServer(t, "tok-2")
	sp := shell(t, "sleep 30 & wait", addr, "tok-2")
	sp.Grace = 5 * time.Second
	p, _, err := Start(context.Background(), sp)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.Stop()
	// A server that obeys SIGTERM is not waited out for the grace.
	if took := time.Since(start); took >= sp.Grace {
		t.Errorf("Stop took %v for a server that obeys SIGTERM, want less than the %v grace", took, sp.Grace)
	}
	waitGone(t, p.Pid())
}

func TestExitBeforeReadyIsStartErrorWithTail(t *testing.T) {
	addr, err := ListenAddr("") // a free port nobody listens on
	if err != nil {
		t.Fatal(err)
	}
	sp := shell(t, "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line $i >&2; done; echo 'fatal: no config' >&2; exit 3", addr, "x")
	_, _, err = Start(context.Background(), sp)
	var se *upstreams.StartError
	if !errors.As(err, &se) || !errors.Is(err, upstreams.ErrStart) {
		t.Fatalf("Start: %v, want a StartError", err)
	}
	want := "could not start: sh exited before it was ready; log tail: line 4 | line 5 | line 6 | line 7 | line 8 | line 9 | line 10 | line 11 | line 12 | fatal: no config"
	if err.Error() != want {
		t.Errorf("error\n got %q\nwant %q", err, want)
	}
}

func TestNeverReadyTimesOutAndStops(t *testing.T) {
	addr, _ := ListenAddr("")
	sp := shell(t, "echo starting >&2; sleep 30", addr, "x")
	sp.ReadyTimeout = 300 * time.Millisecond
	start := time.Now()
	_, _, err := Start(context.Background(), sp)
	if !errors.Is(err, ErrNotReady) || !errors.Is(err, upstreams.ErrStart) || !strings.Contains(err.Error(), "log tail: starting") {
		t.Fatalf("Start: %v, want ErrStart wrapping ErrNotReady with the tail", err)
	}
	// It gave up at the ready timeout, not when the never-ready server's 30s ran out.
	if took := time.Since(start); took >= 25*time.Second {
		t.Errorf("gave up after %v, want soon after the %v ready timeout", took, sp.ReadyTimeout)
	}
}

func TestAnotherServerOnThePortIsNotReady(t *testing.T) {
	addr := readyServer(t, "someone else")
	sp := shell(t, "sleep 30", addr, "tok-3")
	sp.ReadyTimeout = 200 * time.Millisecond
	_, _, err := Start(context.Background(), sp)
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "another server holds "+addr.HostPort()) {
		t.Fatalf("Start: %v, want not ready: another server holds the port", err)
	}
}

func TestCancelledStartStops(t *testing.T) {
	addr, _ := ListenAddr("")
	sp := shell(t, "sleep 30", addr, "x")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, _, err := Start(ctx, sp)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, upstreams.ErrStart) {
		t.Fatalf("Start: %v, want ErrStart wrapping the context's error", err)
	}
}

func TestMissingBinaryIsStartError(t *testing.T) {
	sp := Spec{Kind: "x", Path: "/nonexistent/x", Package: "Debian package x", Dir: t.TempDir()}
	_, _, err := Start(context.Background(), sp)
	if !errors.Is(err, upstreams.ErrStart) || !errors.Is(err, os.ErrNotExist) ||
		err.Error() != "could not start: x binary (Debian package x): stat /nonexistent/x: no such file or directory; log tail: (empty)" {
		t.Fatalf("Start: %q", err)
	}
}

func TestListenAddr(t *testing.T) {
	a, err := ListenAddr("")
	if err != nil || a.Host != "127.0.0.1" || a.Port == 0 || !a.Auto {
		t.Errorf("ListenAddr(\"\") = %+v, %v", a, err)
	}
	if a, err := ListenAddr("localhost:8080"); err != nil || a.HostPort() != "127.0.0.1:8080" || a.Auto {
		t.Errorf("ListenAddr(localhost:8080) = %+v, %v", a, err)
	}
	if _, err := ListenAddr("0.0.0.0:80"); err == nil || !strings.HasPrefix(err.Error(), "upstream config: Addr:") {
		t.Errorf("ListenAddr(0.0.0.0:80) = %v, want a loopback error", err)
	}
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
		if a, err := ListenAddr("[::1]:0"); err != nil || a.URL()[:12] != "http://[::1]" {
			t.Errorf("ListenAddr([::1]:0) = %+v, %v", a, err)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	none, _ := chaos.ParseSkew("none")
	l := Limits{MaxRequests: "no limit here", ServiceTime: "no delay here", Advertise: "no header here", NoAdvertise: "always a header"}
	if err := CheckConfig("k", upstreams.Config{IdleTimeout: time.Second, Skew: none}, l); err != nil {
		t.Errorf("skew none: %v", err)
	}
	for _, tc := range []struct {
		cfg  upstreams.Config
		want string
	}{
		{upstreams.Config{IdleTimeout: time.Second, MaxRequests: 2}, "upstream config: MaxRequests 2: no limit here"},
		{upstreams.Config{IdleTimeout: time.Second, ServiceTime: time.Millisecond}, "upstream config: ServiceTime 1ms: no delay here"},
		{upstreams.Config{IdleTimeout: time.Second, Advertise: time.Second}, "upstream config: Advertise 1s: no header here"},
		{upstreams.Config{IdleTimeout: time.Second, Advertise: -1}, "upstream config: Advertise -1ns (none): always a header"},
		{upstreams.Config{IdleTimeout: time.Second, Close: chaos.CloseRST}, `upstream config: Close "rst": k closes idle connections its own way (FIN); only builtin can reset them`},
	} {
		if err := CheckConfig("k", tc.cfg, l); err == nil || err.Error() != tc.want {
			t.Errorf("CheckConfig(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestSeconds(t *testing.T) {
	if n, err := Seconds("k", "F", "--flag", 3*time.Second); n != 3 || err != nil {
		t.Errorf("Seconds(3s) = %d, %v", n, err)
	}
	if _, err := Seconds("uvicorn", "IdleTimeout", "--timeout-keep-alive", 1500*time.Millisecond); err == nil ||
		err.Error() != "upstream config: IdleTimeout: uvicorn --timeout-keep-alive takes whole seconds; got 1.5s" {
		t.Errorf("Seconds(1.5s) = %v", err)
	}
}

func TestTailCutsLongLinesAndKeepsTheEnd(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "stderr.log"), []byte("a\n\n  b  \n"+strings.Repeat("x", 400)+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "error.log"), []byte("e1\ne2\n"), 0o644)
	got := tail(Spec{Dir: dir, Logs: []string{filepath.Join(dir, "error.log"), filepath.Join(dir, "missing.log")}})
	want := []string{"a", "b", strings.Repeat("x", 300) + "...", "e1", "e2"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("tail = %q, want %q", got, want)
	}
}
