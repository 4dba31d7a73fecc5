package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serverDirs are the private directories real servers and proxies run from.
var serverDirs = []string{"idlerace-nginx-", "idlerace-haproxy-", "idlerace-caddy-", "idlerace-apache-", "idlerace-hyper-proxy-", "idlerace-uvicorn-", "idlerace-node-"}

// leftovers lists processes started from an idlerace server directory (nginx, uvicorn,
// node run from idlerace-KIND-* temp dirs) and idlerace network namespaces.
func leftovers(t *testing.T) []string {
	t.Helper()
	var out []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if slices.ContainsFunc(serverDirs, func(d string) bool { return strings.Contains(cmd, d) }) {
			out = append(out, "process: "+cmd)
		}
	}
	ns, _ := filepath.Glob("/var/run/netns/idlerace-*")
	for _, n := range ns {
		out = append(out, "namespace: "+n)
	}
	if links, err := exec.Command("ip", "-o", "link", "show", "type", "veth").Output(); err == nil && strings.Contains(string(links), "idlerace") {
		out = append(out, "veth: "+string(links))
	}
	return out
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("IDLERACE_REQUIRE_REAL") == "1" {
			t.Fatal("this test needs root (namespaces); CI runs as root")
		}
		t.Skip("needs root")
	}
}

// An interrupted run leaves no server process, namespace or veth link behind: neither a
// real server (nginx, its own process group) nor the netem path's namespace.
func TestInterruptedRunLeavesNothingBehind(t *testing.T) {
	needRoot(t)
	if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
		if os.Getenv("IDLERACE_REQUIRE_REAL") == "1" {
			t.Fatal("nginx is required (Debian package nginx)")
		}
		t.Skip("needs nginx (Debian package nginx)")
	}
	if l := leftovers(t); len(l) > 0 {
		t.Fatalf("left over before the test: %v", l)
	}
	mf := filepath.Join(t.TempDir(), "m.yaml")
	matrix := "idle_timeout: 100ms\nparallel: 2\nstrategies: [blind]\nupstreams: [builtin, nginx]\nlatencies: [\"netem:0\", \"0\"]\n" +
		"loads: [\"sweep:lanes=4,duration=60s\"]\nexclude:\n  - {upstream: nginx, latency: \"netem:0\"}\n  - {upstream: builtin, latency: \"0\"}\n"
	if err := os.WriteFile(mf, []byte(matrix), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := idlerace("run", "-f", mf, "--out", filepath.Join(t.TempDir(), "run"), "-q", "--no-report")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Both cells run at once (parallel 2) for a minute: interrupt once both the nginx
	// process and the namespace exist (the event), or after 30s if they never do.
	var during []string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		during = leftovers(t)
		if slices.ContainsFunc(during, func(s string) bool { return strings.HasPrefix(s, "process: ") }) &&
			slices.ContainsFunc(during, func(s string) bool { return strings.HasPrefix(s, "namespace: ") }) {
			break
		}
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want 130", err)
	}
	if len(during) < 2 {
		t.Fatalf("while running, want an nginx process and a namespace, saw %v", during)
	}
	if l := leftovers(t); len(l) > 0 {
		t.Fatalf("left behind after SIGINT: %v", l)
	}
}

// An upstream that cannot start is exit code 3 with its reason, and leaves nothing.
func TestUpstreamThatCannotStartIsExit3(t *testing.T) {
	mf := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(mf, []byte("idle_timeout: 1500ms\nstrategies: [blind]\nupstreams: [uvicorn]\nloads: [\"sweep:lanes=2,duration=300ms\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "run", "-f", mf, "--out", "-", "-q")
	if code != exitRunBroke || !strings.Contains(stderr, "whole seconds") {
		t.Fatalf("exit %d, stderr %q; want 3 naming uvicorn's whole-second timeout", code, stderr)
	}
	if l := leftovers(t); len(l) > 0 {
		t.Fatalf("left behind: %v", l)
	}
}

// The netem path on a kernel without the netem qdisc (this machine's) is a run error
// that says so and leaves no namespace; where the kernel has it, the round trip shows
// the delay.
func TestNetemPathRunsOrSaysWhyNot(t *testing.T) {
	needRoot(t)
	code, out, stderr := run(t, "run", "--strategy", "blind", "--skew", "none", "--latency", "netem:2ms",
		"--load", "sweep:lanes=4,duration=600ms", "--idle-timeout", "50ms", "--out", "-", "-q", "--format", "json")
	switch code {
	case exitRunBroke:
		if !strings.Contains(stderr, "netem") {
			t.Fatalf("stderr %q does not say what netem lacks", stderr)
		}
		if l := leftovers(t); len(l) > 0 {
			t.Fatalf("left behind: %v", l)
		}
		t.Skipf("skipped: no netem qdisc here (%s); exit 3, its reason and the cleanup were checked, the delay was not", strings.TrimSpace(stderr))
	case 0:
		if !strings.Contains(out, `"latency": "netem:2ms"`) || !strings.Contains(out, `"p50": `) {
			t.Fatalf("output %s", out)
		}
	default:
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if l := leftovers(t); len(l) > 0 {
		t.Fatalf("left behind: %v", l)
	}
}
