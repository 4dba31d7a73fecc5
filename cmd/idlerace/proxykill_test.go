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

// A proxy with a master and workers dies with idlerace, even when idlerace is killed:
// SIGKILL gives idlerace no chance to stop it, and the kernel's parent-death signal
// reaches only the master, so the master must take one on which it stops its workers
// (with SIGKILL there, nginx's worker and Apache's child lived on, still listening). The
// test waits for the proxy to appear, kills idlerace, then waits for the proxy's whole
// process group to be gone (a deadline only catches a hang).
func TestKilledRunLeavesNoProxyWorker(t *testing.T) {
	for _, tc := range []struct{ kind, binary, pkg, dir string }{
		{"nginx", "/usr/sbin/nginx", "nginx", "idlerace-nginx-proxy-"},
		{"apache", "/usr/sbin/apache2", "apache2", "idlerace-apache-"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			realtest.Require(t, tc.kind+" ("+tc.binary+")", tc.pkg, realtest.Executable(tc.binary))
			cmd := idlerace("run", "--proxy", tc.kind, "--strategy", "blind", "--skew", "none", "--idle-timeout", "1s",
				"--load", "sweep:lanes=1,duration=1m", "--out", "-", "-q")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			defer func() { _ = cmd.Process.Kill(); <-done }()
			deadline := time.Now().Add(time.Minute)
			master, dir := childFrom(cmd.Process.Pid, tc.dir)
			for ; master == 0; master, dir = childFrom(cmd.Process.Pid, tc.dir) {
				if time.Now().After(deadline) {
					t.Fatalf("no %s process appeared within a minute", tc.kind)
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Cleanup(func() { os.RemoveAll(dir) }) // nobody is left to remove it
			// The proxy has started its workers once it answers: wait for one.
			for len(real.GroupMembers(master)) < 2 {
				if time.Now().After(deadline) {
					t.Fatalf("%s (pid %d) started no worker within a minute", tc.kind, master)
				}
				time.Sleep(20 * time.Millisecond)
			}
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			for left := real.GroupMembers(master); len(left) > 0; left = real.GroupMembers(master) {
				if time.Now().After(deadline.Add(time.Minute)) {
					for _, pid := range left {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
					t.Fatalf("after idlerace was killed, %s's processes %v are left", tc.kind, left)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// childFrom finds a child of parent started from a directory named prefix*: its pid and
// that directory (0 and "" until one runs).
func childFrom(parent int, prefix string) (int, string) {
	dirRE := regexp.MustCompile(`\S*` + regexp.QuoteMeta(prefix) + `[0-9]+`)
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
