// Package haproxy is the hop kind "haproxy": Debian's HAProxy 2.6 as a reverse proxy in
// HTTP mode, its pool of idle server connections the pool under test, started in the
// foreground (-db) with a generated configuration in a private directory.
//
// Options, named as HAProxy names them (with _ for -), with HAProxy 2.6's defaults:
//
//	http_reuse      safe (never, aggressive, always): which requests may take an idle
//	                server connection; with safe, not the first of a client connection
//	retry_on        none, conn-failure (the default), empty-response or
//	                all-retryable-errors: what a failed request is retried on
//	timeout_server  30s here (HAProxy has no default): how long it waits on the server
//
// The client side is not the race: `timeout http-keep-alive` and `timeout client` are an
// hour, so only the server side closes idle connections, but HAProxy carries the race
// to the load: a request that meets a closed server connection it reused gets no 502
// by default; HAProxy closes the load's connection unanswered (http-reuse safe leaves
// the retry to a client whose connection was reused), and the load sees a stale EOF.
// Every request answered is logged to stdout (`log stdout format raw`) with its status
// and HAProxy's retries (%rc); a request dropped that way is not logged.
package haproxy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/hops"
	"github.com/idlerace/idlerace/internal/real"
	"github.com/idlerace/idlerace/internal/spec"
)

// Kind is the name the proxy registers under; its directories are idlerace-haproxy-*.
const Kind = "haproxy"

// DebianPackage provides the binary.
const DebianPackage = "haproxy"

const readyPath = "/_idlerace/proxy-ready"

var binary = "/usr/sbin/haproxy"

// Options are the proxy's settings.
type Options struct {
	HTTPReuse     string
	RetryOn       string
	TimeoutServer time.Duration
}

func init() {
	hops.Register(hops.Kind{
		Name:    Kind,
		Props:   hops.Properties{Pools: true},
		Summary: "HAProxy in HTTP mode with its pool of idle server connections",
		Options: []string{"http_reuse", "retry_on", "timeout_server"},
		Parse:   parse,
	})
}

func parse(o *spec.Options) (hops.Parsed, error) {
	var opts Options
	var err error
	if opts.HTTPReuse, err = o.Enum("http_reuse", "safe", "never", "safe", "aggressive", "always"); err != nil {
		return hops.Parsed{}, err
	}
	if opts.RetryOn, err = o.Enum("retry_on", "conn-failure", "none", "conn-failure", "empty-response", "all-retryable-errors"); err != nil {
		return hops.Parsed{}, err
	}
	if opts.TimeoutServer, err = o.Duration("timeout_server", 30*time.Second, false); err != nil {
		return hops.Parsed{}, err
	}
	if opts.TimeoutServer%time.Millisecond != 0 {
		return hops.Parsed{}, fmt.Errorf("timeout_server: HAProxy takes whole milliseconds, got %v", opts.TimeoutServer)
	}
	return hops.Parsed{
		Start:     func(ctx context.Context, cfg hops.Config) (hops.Hop, error) { return Start(ctx, cfg, opts) },
		Behaviour: opts.behaviour(),
	}, nil
}

// behaviour is HAProxy's server-side pool for the model: an idle server connection is
// still polled for reading by its mux (mux_h1 releases one whose server closed: watch);
// http-reuse never keeps none to reuse; a request that met a close on a reused
// connection got an empty response, which only retry-on empty-response (or
// all-retryable-errors) replays, whatever the method.
//
// Checked against HAProxy 2.6.12 in haproxy_test.go (TestHAProxyMeetsTheClose).
func (o Options) behaviour() pool.Behaviour {
	b := pool.Behaviour{Watch: true}
	if o.HTTPReuse == "never" {
		b.MaxIdle = time.Nanosecond
	}
	switch o.RetryOn {
	case "empty-response", "all-retryable-errors":
		b.Retries = 1
	}
	return b
}

// Proxy is a running HAProxy.
type Proxy struct {
	hops.LogProxy
	opts Options
}

// Start writes the configuration and starts HAProxy in front of cfg.Upstream.
func Start(ctx context.Context, cfg hops.Config, opts Options) (*Proxy, error) {
	version, err := Version(ctx)
	if err != nil {
		return nil, err
	}
	p := &Proxy{opts: opts}
	err = p.Launch(ctx, cfg, hops.ProxyLauncher{Kind: Kind, InUse: "Address already in use", Version: version, Prepare: p.prepare, Count: count})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Proxy) prepare(d string, addr real.Addr, token string) (real.Spec, error) {
	conf := filepath.Join(d, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(p.config(addr, token)), 0o644); err != nil {
		return real.Spec{}, err
	}
	p.Log.Path = filepath.Join(d, "stdout.log")
	return real.Spec{
		Path:      binary,
		Package:   "Debian package " + DebianPackage,
		Args:      []string{"-db", "-f", conf},
		ReadyPath: readyPath,
		// SIGTERM is HAProxy's hard stop, which can drop the log line of a request
		// just answered; SIGUSR1 is its soft stop, which ends idle connections and
		// logs what it served.
		StopSignal: syscall.SIGUSR1,
	}, nil
}

// config renders haproxy.cfg: one frontend on addr answering token on readyPath, one
// backend with the upstream as its one server.
func (p *Proxy) config(addr real.Addr, token string) string {
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by idlerace (hops/haproxy) for one cell.\n")
	fmt.Fprintf(&b, "global\n    log stdout format raw local0\n    maxconn 4096\n\n")
	fmt.Fprintf(&b, "defaults\n    mode http\n    log global\n    option http-keep-alive\n")
	fmt.Fprintf(&b, "    timeout connect 5s\n    timeout client 3600s\n    timeout http-keep-alive 3600s\n    timeout server %s\n", ms(p.opts.TimeoutServer))
	fmt.Fprintf(&b, "    http-reuse %s\n", p.opts.HTTPReuse)
	fmt.Fprintf(&b, "    retry-on %s\n", p.opts.RetryOn)
	// One line a request: its status and HAProxy's retries on the server side.
	fmt.Fprintf(&b, "    log-format \"idlerace %%ST %%rc\"\n\n")
	fmt.Fprintf(&b, "frontend idlerace\n    bind %s\n", addr.HostPort())
	fmt.Fprintf(&b, "    http-request set-log-level silent if { path %s }\n", readyPath)
	fmt.Fprintf(&b, "    http-request return status 200 content-type text/plain string %q if { path %s }\n", token, readyPath)
	fmt.Fprintf(&b, "    default_backend upstream\n\n")
	fmt.Fprintf(&b, "backend upstream\n    server upstream %s\n", p.Upstream)
	return b.String()
}

// Version runs `haproxy -v` and returns "HAProxy/2.6.12-1+deb12u4".
func Version(ctx context.Context) (string, error) {
	first, err := hops.VersionLine(ctx, binary, DebianPackage, "-v")
	if err != nil {
		return "", err
	}
	f := strings.Fields(first) // HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://haproxy.org/
	if len(f) < 3 {
		return first, nil
	}
	return "HAProxy/" + f[2], nil
}

// count adds one log line: "idlerace STATUS RETRIES".
func count(line []byte, st *hops.Stats) {
	f := strings.Fields(string(line))
	if len(f) != 3 || f[0] != "idlerace" {
		return
	}
	status, _ := strconv.Atoi(f[1])
	retries, _ := strconv.ParseInt(strings.TrimPrefix(f[2], "+"), 10, 64)
	st.Requests++
	if pool.IsBadGateway(status) {
		st.BadGateway++
	}
	st.UpstreamTries += max(retries, 0)
}
