package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/idlerace/idlerace/results"
)

// TestMain doubles as the idlerace binary: with IDLERACE_AS_MAIN=1 the test binary runs
// the CLI on its arguments, so tests can signal a real process without building one.
func TestMain(m *testing.M) {
	if os.Getenv("IDLERACE_AS_MAIN") == "1" {
		os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
	}
	goleak.VerifyTestMain(m)
}

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = execute(args, &o, &e)
	return code, o.String(), e.String()
}

// Bad input: one line on stderr naming the bad value and what is accepted, exit code 2.
func TestBadInputIsOneLineAndExitCode2(t *testing.T) {
	closed := closedPort(t)
	live := listening(t) // accepts, so that the flag after --target is what is bad
	dir := t.TempDir()
	targets := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	liveURL := "http://" + live + "/"
	badMethod := targets("method.txt", "GET "+liveURL+"\n\nget "+liveURL+"\n")
	badURL := targets("url.txt", "# one target\nPOST not-a-url\n")
	noBody := targets("body.txt", "POST "+liveURL+"\nContent-Type: application/json\n@no-such-body.json\n")
	ownID := targets("id.txt", "GET "+liveURL+"\nIdlerace-Request-Id: mine\n")
	atk := func(args ...string) []string {
		return append([]string{"attack", "--idle-timeout", "1s"}, args...)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--strategy", "blnd"}, `unknown strategy "blnd" (known: adaptive-margin, aiohttp, blind,`},
		{[]string{"run", "--strategy", "timeout-margin:margin=-5ms"}, "margin: must be > 0"},
		{[]string{"run", "--strategy", "retry-only:max=x"}, "max: want a whole number from 1 to 10"},
		{[]string{"run", "--strategy", "hyper:retry_canceled_requests=maybe"}, `retry_canceled_requests: "maybe": want true or false`},
		{[]string{"run", "--strategy", "hyper:pool_idle_timeout=soon"}, "pool_idle_timeout"},
		{[]string{"run", "--strategy", "curl:maxage_conn=1500ms"}, "maxage_conn=1.5s: whole seconds only"},
		{[]string{"run", "--strategy", "undici:keepAliveTimeout=4s"}, "undici[:keep_alive_timeout=D]"},
		{[]string{"run", "--strategy", "retry-only,retry-only:max=1", "--skew", "none", "--out", "-"}, "cells 1 and 2 are the same measurement"},
		{[]string{"run", "--skew", "unifrom:5ms"}, `unknown model "unifrom"`},
		{[]string{"run", "--skew", "uniform:0ms"}, "width must be > 0"},
		{[]string{"run", "--skew", "normal:sd=abc"}, `"abc"`},
		{[]string{"run", "--load", "swep"}, `unknown load "swep" (known: constant, lull, sweep)`},
		{[]string{"run", "--load", "sweep:lanes=0"}, "lanes: want a whole number from 1 to 4096"},
		{[]string{"run", "--load", "sweep:duration=0s"}, "duration: must be > 0"},
		{[]string{"run", "--load", "constant:rate=0/s"}, "rate: want a rate such as 100/s"},
		{[]string{"run", "--idle-timeout", "0s"}, "idle timeout 0s: must be > 0"},
		{[]string{"run", "--idle-timeout", "-1s"}, "must be > 0"},
		{[]string{"run", "--idle-timeout", "soon"}, `invalid argument "soon"`},
		{[]string{"run", "--format", "xml"}, `--format "xml": want table or json`},
		{[]string{"run", "extra"}, "takes no arguments"},
		{[]string{"nosuchverb"}, "unknown command"},
		{[]string{"run", "--pcap", "--out", "-"}, "--pcap writes cells/<id>.pcap into the run directory"},
		{[]string{"run", "--pcap", "--wire", "off"}, "--pcap writes the capture that --wire off turns off"},
		{[]string{"run", "--wire", "maybe"}, `--wire "maybe": want auto, on or off`},
		{[]string{"run", "--shard", "1"}, `--shard "1": want I/N, e.g. 0/4`},
		{[]string{"run", "--shard", "x"}, `--shard "x": want I/N, e.g. 0/4`},
		{[]string{"run", "--shard", "3/2"}, `--shard "3/2": shard index "3": want a whole number from 0 to 1`},
		{[]string{"run", "--upstream", "nginz"}, `upstream "nginz": unknown kind "nginz" (known: builtin, gonet, nginx, node, uvicorn)`},
		{[]string{"run", "--shard", "0/2", "--shards", "2"}, "give one"},
		{[]string{"attack", "--target", "http://127.0.0.1:9/", "--idle-timeout", "1s", "--wire", "yes"}, `--wire "yes": want auto, on or off`},
		{[]string{"attack", "--target", "http://" + closed + "/", "--idle-timeout", "1s"}, "connection refused"},
		{[]string{"attack", "--target", "http://192.0.2.1/", "--idle-timeout", "1s"}, "not a loopback address"},
		{[]string{"attack", "--target", "ftp://127.0.0.1/", "--idle-timeout", "1s"}, "want an http:// URL"},
		{[]string{"attack", "--target", "http://" + closed + "/"}, `required flag(s) "idle-timeout" not set`},
		{atk("--target", liveURL, "-H", "X-Tenant 7"), `-H "X-Tenant 7": no colon (want "Name: value"`},
		{atk("--target", liveURL, "-H", "X Tenant: 7"), `-H "X Tenant: 7": header name "X Tenant": not a token (want letters, digits`},
		{atk("--target", liveURL, "-H", "idlerace-request-id: 1"), `-H "idlerace-request-id: 1": header Idlerace-Request-Id: idlerace sets it on every request, a unique id by which the server counts executions (want another name)`},
		{atk("--target", liveURL, "--body", "x", "--body-file", noBody), "--body with --body-file: give one"},
		{atk("--target", liveURL, "--body-file", filepath.Join(dir, "absent.json")), "--body-file " + filepath.Join(dir, "absent.json") + ": no such file or directory (want a readable file)"},
		{atk("--target", liveURL, "--targets", badURL), "--target with --targets: give one"},
		{atk("--targets", badURL, "--method", "GET"), "--method with --targets: each target names its method"},
		{atk(), `required flag(s) "target" not set (or give --targets FILE)`},
		{atk("--targets", filepath.Join(dir, "absent.txt")), "--targets " + filepath.Join(dir, "absent.txt") + ": no such file or directory (want a file of targets in vegeta's http format)"},
		{atk("--targets", badMethod), badMethod + `:3: target: "get ` + liveURL + `": want METHOD URL, the method in capitals`},
		{atk("--targets", badURL), badURL + `:2: url: "not-a-url": parse "not-a-url": invalid URI for request (want an http:// URL`},
		{atk("--targets", noBody), noBody + ":3: @body: " + filepath.Join(dir, "no-such-body.json") + ": no such file or directory (want a file, relative to the targets file)"},
		{atk("--targets", ownID), ownID + ":2: header: header Idlerace-Request-Id: idlerace sets it"},
		{[]string{"probe", "--targets", badMethod}, badMethod + ":3: target:"},
		{[]string{"probe", "--target", liveURL, "-H", "nocolon"}, `-H "nocolon": no colon`},
		{[]string{"upstream", "--idle-timeout", "0s"}, "--idle-timeout 0s: must be > 0"},
		{[]string{"upstream", "--addr", "0.0.0.0:8080"}, "not a loopback address"},
		{[]string{"upstream", "--close", "slam"}, "--close"},
		{[]string{"upstream", "--advertise", "-1s"}, "--advertise"},
		{[]string{"upstream", "--fault", "close-after:n=0"}, `--fault "close-after:n=0"`},
		{[]string{"upstream", "--fault", "meltdown"}, `unknown fault "meltdown" (known: close-after`},
		{[]string{"run", "--proxy", "nginx:keepalive=0"}, `proxy "nginx:keepalive=0": keepalive: want a whole number from 1 to 1048576, got "0"`},
		{[]string{"run", "--proxy", "envoy"}, `proxy "envoy": unknown proxy kind (known: none, apache, caddy, haproxy, hyper, nginx)`},
		{[]string{"attack", "--target", "http://127.0.0.1:9/", "--idle-timeout", "1s", "--proxy", "apache:ttl=1500ms"}, `proxy "apache:ttl=1500ms": ttl: Apache takes whole seconds, got 1.5s`},
		{[]string{"run", "--proxy", "nginx", "--latency", "netem:2ms"}, "the netem path's namespace holds only the builtin upstream"},
		{[]string{"upstream", "--kind", "apache"}, `--kind "apache": want one of builtin, gonet`},
		{[]string{"probe", "--target", "http://" + closed + "/"}, "connection refused"},
		{[]string{"probe", "--target", "http://192.0.2.1/"}, "not a loopback address"},
		{[]string{"probe", "--target", "ftp://127.0.0.1/"}, "want an http:// URL"},
		{[]string{"probe"}, `required flag(s) "target" not set`},
		{[]string{"probe", "--target", "http://" + closed + "/", "--format", "xml"}, `--format "xml": want table or json`},
		{[]string{"probe", "--target", "http://" + live + "/", "--conns", "1"}, "--conns 1: want 2..1024"},
		{[]string{"probe", "--target", "http://" + live + "/", "--max-requests", "1"}, "--max-requests 1: want 2..100000"},
		{[]string{"probe", "--target", "http://" + live + "/", "--max-timeout", "10ms"}, "--max-timeout 10ms: want at least 100ms"},
		{[]string{"probe", "--target", "http://" + live + "/", "--response-timeout", "0s"}, "--response-timeout 0s: want > 0"},
		{[]string{"probe", "--target", "http://" + live + "/", "--max-timeout", "soon"}, `invalid argument "soon"`},
	}
	for _, c := range cases {
		code, _, stderr := run(t, c.args...)
		if code != exitBadInput {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", c.args, code, stderr)
		}
		if !strings.Contains(stderr, c.want) {
			t.Errorf("%v: stderr %q, want it to contain %q", c.args, stderr, c.want)
		}
		if n := strings.Count(strings.TrimRight(stderr, "\n"), "\n"); n != 0 {
			t.Errorf("%v: stderr has %d lines, want 1: %q", c.args, n+1, stderr)
		}
	}
}

// listening returns the address of a loopback listener that accepts and closes.
func listening(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestStrategiesListsEveryStrategyOnOneLine(t *testing.T) {
	code, out, _ := run(t, "strategies")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 16 {
		t.Fatalf("exit %d, %d lines:\n%s", code, len(lines), out)
	}
	for _, name := range []string{"blind", "watch", "read-probe", "timeout-margin", "hint-margin", "adaptive-margin", "retry-only", "stdlib", "node-agent", "requests", "hyper", "aiohttp", "httpx", "curl", "undici", "java"} {
		if !strings.Contains(out, name) {
			t.Errorf("missing %s", name)
		}
	}
	// A client kind says which version of its library this machine has, or what to
	// install.
	if !strings.Contains(out, "[client kind: node v") && !strings.Contains(out, "[client kind: not installed: ") {
		t.Errorf("node-agent's line does not say its Node version or what to install:\n%s", out)
	}
}

// --all lists the proxy kinds too, each with the options it takes, as --proxy takes them.
func TestStrategiesAllListsTheProxies(t *testing.T) {
	code, out, _ := run(t, "strategies", "--all")
	if code != 0 || !strings.Contains(out, "PROXIES") {
		t.Fatalf("exit %d, no PROXIES section:\n%s", code, out)
	}
	for _, usage := range []string{"nginx[:keepalive=…,keepalive_timeout=…", "haproxy[:http_reuse=…", "caddy[:keepalive=…", "hyper[:pool_idle_timeout=…"} {
		if !strings.Contains(out, usage) {
			t.Errorf("missing %s in:\n%s", usage, out)
		}
	}
}

// A small run through the CLI writes the run directory and JSON that follows the
// summary schema, with numbers that make sense for the strategies.
func TestRunWritesSummaryAndHlogs(t *testing.T) {
	dir := t.TempDir()
	res := filepath.Join(dir, "results.csv")
	code, out, stderr := run(t, "run", "--strategy", "blind,timeout-margin:margin=20ms", "--skew", "none",
		"--load", "sweep:lanes=8,requests=64,duration=1m", "--idle-timeout", "60ms", "--format", "json", "--out", dir, "--results", res, "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sum results.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	onDisk, err := results.ReadSummary(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if sum.Schema != results.Schema || sum.State != "complete" || len(sum.Cells) != 2 || len(onDisk.Cells) != 2 {
		t.Fatalf("summary %+v", sum)
	}
	blind, margin := sum.Cells[0], sum.Cells[1]
	// The sweep's gaps are 45..75ms around T = 60ms: blind loses about the far half (less
	// by however late a loaded machine's server closes); the margin drops every
	// connection idle past 40ms, i.e. all of them, so none can be stale however loaded.
	if blind.Requests != 64 || blind.ResetRate < 0.2 || blind.Server.UnmatchedFailures != 0 {
		t.Errorf("blind: %d requests, reset %.3f, unmatched %d", blind.Requests, blind.ResetRate, blind.Server.UnmatchedFailures)
	}
	if margin.Stale != 0 || margin.ConnsPer1k < 500 {
		t.Errorf("timeout-margin: stale %d, conns/1k %.0f", margin.Stale, margin.ConnsPer1k)
	}
	for _, c := range sum.Cells {
		h, err := results.ReadHlog(filepath.Join(dir, c.Hlog))
		if err != nil || h.TotalCount() != c.Requests {
			t.Errorf("%s: hlog count %v (err %v), want %d", c.Strategy, h, err, c.Requests)
		}
	}
	csv, err := os.ReadFile(res)
	if err != nil {
		t.Fatal(err)
	}
	if rows := strings.Count(string(csv), "\n"); int64(rows) != blind.Requests+margin.Requests {
		t.Errorf("results.csv has %d rows, want %d", rows, blind.Requests+margin.Requests)
	}
}

// attack runs one cell against a server idlerace did not start: Go's own net/http
// server with a 60ms IdleTimeout.
func TestAttackAgainstNetHTTPServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }),
		IdleTimeout: 60_000_000}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	code, out, stderr := run(t, "attack", "--target", "http://"+ln.Addr().String()+"/", "--strategy", "blind",
		"--load", "sweep:lanes=8,requests=64,duration=1m", "--idle-timeout", "60ms", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sum results.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	c := sum.Cells[0]
	// Bounded by its count (the duration only catches a hang): 64 requests on any machine.
	if c.Requests != 64 || c.ResetRate < 0.2 || c.PredictedResetRate < 0.4 {
		t.Fatalf("blind against net/http: %d requests, reset %.3f, predicted %.3f", c.Requests, c.ResetRate, c.PredictedResetRate)
	}
}

// `strategies --check` starts every client kind once and says what its build and start
// took and which library it ran; one that cannot start (its runtime missing) is named,
// with exit 3.
func TestStrategiesCheckStartsEveryClientKind(t *testing.T) {
	code, out, errOut := run(t, "strategies", "--check", "--format", "json")
	var got struct {
		Kinds []struct {
			Name, Library, Error string
			Start                int64 `json:"start_ns"`
			Missing              bool
		} `json:"client_kinds"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if len(got.Kinds) < 8 {
		t.Fatalf("%d client kinds checked, want every one:\n%s", len(got.Kinds), out)
	}
	broken := false
	for _, k := range got.Kinds {
		switch {
		case k.Missing && os.Getenv("IDLERACE_REQUIRE_REAL") == "1":
			t.Errorf("%s: not installed: %s", k.Name, k.Error)
		case k.Error != "":
			broken = true
		case k.Library == "" || k.Start <= 0:
			t.Errorf("%s started without saying its library or its start time: %+v", k.Name, k)
		}
	}
	if broken != (code == 3) {
		t.Errorf("exit %d with a kind broken %v: want 3 exactly when one did not start (stderr %s)", code, broken, errOut)
	}
}

// --upstream alone runs the default matrix's rows against another server, and the run
// directory's matrix.yaml says so (a resume runs the same).
func TestRunUpstreamFlagRunsTheMatrixAgainstIt(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	code, _, stderr := run(t, "run", "--upstream", "gonet", "--strategy", "watch", "--skew", "none", "--idle-timeout", "200ms",
		"--load", "sweep:lanes=2,requests=6,duration=1m", "--out", out, "-q", "--no-report")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	sum, err := results.ReadSummary(filepath.Join(out, "summary.json"))
	if err != nil || len(sum.Cells) != 1 || sum.Cells[0].Upstream != "gonet" {
		t.Fatalf("summary %+v (%v): want one cell against gonet", sum, err)
	}
	m, _ := os.ReadFile(filepath.Join(out, "matrix.yaml"))
	if !strings.Contains(string(m), "upstreams:\n  - \"gonet\"") {
		t.Errorf("matrix.yaml does not name the upstream:\n%s", m)
	}
}
