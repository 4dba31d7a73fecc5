package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/idlerace/idlerace/internal/real"
	"github.com/idlerace/idlerace/internal/realtest"
)

// Every proxy kind dies with idlerace. Interrupted (SIGINT), idlerace stops the proxy
// and removes its directory before it exits 130 (the partial run's code). Killed (SIGKILL), it has no chance to:
// the kernel's parent-death signal reaches only the proxy's first process, so a proxy
// with a master and workers must take one on which it stops its workers (with SIGKILL
// there, nginx's worker and Apache's child lived on, still listening). The test waits
// for the proxy to answer (its workers started), signals idlerace, then waits for the
// proxy's whole process group to be gone (a deadline only catches a hang).
func TestKilledRunLeavesNoProxyWorker(t *testing.T) {
	for _, tc := range []struct {
		kind, binary, pkg, dir string
		workers                bool
	}{
		{"nginx", "/usr/sbin/nginx", "nginx", "idlerace-nginx-proxy-", true},
		{"apache", "/usr/sbin/apache2", "apache2", "idlerace-apache-", true},
		{"haproxy", "/usr/sbin/haproxy", "haproxy", "idlerace-haproxy-", false},
		{"caddy", "/usr/bin/caddy", "caddy", "idlerace-caddy-", false},
		{"hyper", "/usr/bin/cargo", "cargo", "idlerace-hyper-proxy-", false},
	} {
		for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGINT} {
			t.Run(tc.kind+"/"+sig.String(), func(t *testing.T) {
				realtest.Require(t, tc.kind+" ("+tc.binary+")", tc.pkg, realtest.Executable(tc.binary))
				runAndSignal(t, tc.kind, tc.dir, tc.workers, sig)
			})
		}
	}
}

// runAndSignal runs a cell behind the proxy kind, signals idlerace once the proxy is up
// and asserts that the proxy's processes are gone (and, after SIGINT, its directory and
// exit code 130).
func runAndSignal(t *testing.T, kind, prefix string, workers bool, sig syscall.Signal) {
	cmd := idlerace("run", "--proxy", kind, "--strategy", "blind", "--skew", "none", "--idle-timeout", "1s",
		"--load", "sweep:lanes=1,duration=1m", "--out", t.TempDir(), "-q")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	defer func() { _ = cmd.Process.Kill(); <-done }()
	deadline := time.Now().Add(2 * time.Minute) // hyper's proxy may build first
	master, dir := childFrom(cmd.Process.Pid, prefix)
	for ; master == 0; master, dir = childFrom(cmd.Process.Pid, prefix) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s process appeared within two minutes", kind)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if sig == syscall.SIGKILL {
		t.Cleanup(func() { os.RemoveAll(dir) }) // nobody is left to remove it
	}
	// A proxy with workers is signalled once they run; one process alone at once, while
	// idlerace may still be waiting for it to answer (which it must clean up too).
	for workers && len(real.GroupMembers(master)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) started no worker within two minutes", kind, master)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%s: pid %d (group %v), directory %s; sending %v", kind, master, real.GroupMembers(master), dir, sig)
	_ = cmd.Process.Signal(sig)
	<-done
	for left := real.GroupMembers(master); len(left) > 0; left = real.GroupMembers(master) {
		if time.Now().After(deadline.Add(time.Minute)) {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Fatalf("after idlerace got %v, %s's processes %v are left", sig, kind, left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if sig != syscall.SIGINT {
		return
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("interrupted, idlerace exited %d, want 130", code)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("interrupted, idlerace left %s's directory %s (%v)", kind, dir, err)
	}
}

// childFrom finds a child of parent started with a private directory named prefix* in
// its command line: its pid and that directory (0 and "" until one runs).
func childFrom(parent int, prefix string) (int, string) {
	// The private directory is under the system's temporary one (real.NewDir); hyper's
	// proxy also runs from its build cache, whose directory has the same prefix.
	dirRE := regexp.MustCompile(regexp.QuoteMeta(filepath.Join(os.TempDir(), prefix)) + `[0-9]+`)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after its ")".
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(parent) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if d := dirRE.FindString(strings.ReplaceAll(string(cmdline), "\x00", " ")); d != "" {
			return pid, strings.TrimSuffix(d, "/")
		}
	}
	return 0, ""
}
