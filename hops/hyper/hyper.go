// Package hyper is the hop kind "hyper": a reverse proxy on hyper 0.14, the seed's setup
// (hyper used as a reverse proxy in front of uvicorn), its Client's pool of idle
// upstream connections the pool under test. The proxy is a small Rust program
// (proxy/src/main.rs: hyper's Server in front, one Client forwarding, a failed request
// answered 502) built with Debian's cargo against Debian's crates, once, and cached.
//
// Options, named as hyper's client::Builder names them, with its defaults:
//
//	pool_idle_timeout        how long an idle upstream connection is kept (90s)
//	retry_canceled_requests  retry a request canceled before it was written (true)
//	pool_max_idle_per_host   idle connections kept per upstream (no limit)
//
// The client side is not the race: hyper's Server has no idle timeout of its own for a
// keep-alive connection, so only the upstream side closes idle connections.
package hyper

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/hops"
	"github.com/idlerace/idlerace/internal/cargo"
	"github.com/idlerace/idlerace/internal/real"
	"github.com/idlerace/idlerace/internal/spec"
	"github.com/idlerace/idlerace/upstreams"
)

// Kind is the name the proxy registers under; its directories are idlerace-hyper-proxy-*.
const Kind = "hyper"

// DirKind names its private directories.
const DirKind = "hyper-proxy"

// Packages are the Debian packages it builds from.
const Packages = "cargo rustc librust-hyper-dev librust-tokio-dev librust-serde-json-dev"

const readyPath = "/_idlerace/proxy-ready"

var (
	//go:embed proxy/Cargo.toml
	cargoToml []byte
	//go:embed proxy/src/main.rs
	mainRs []byte
)

var project = &cargo.Project{
	Name:  "idlerace-hyper-proxy",
	Files: map[string][]byte{"Cargo.toml": cargoToml, "src/main.rs": mainRs},
	Log:   os.Stderr,
}

// Options are the proxy's settings; a nil or zero field is hyper's default.
type Options struct {
	PoolIdleTimeout       time.Duration // 0: hyper's 90 s
	RetryCanceledRequests *bool
	PoolMaxIdlePerHost    int // -1: hyper's default (no limit)
}

func init() {
	hops.Register(hops.Kind{
		Name:    Kind,
		Props:   hops.Properties{Pools: true},
		Summary: "a reverse proxy on hyper 0.14 (Server and Client, the seed's setup) with its Client's pool of idle upstream connections",
		Options: []string{"pool_idle_timeout", "retry_canceled_requests", "pool_max_idle_per_host"},
		Parse:   parse,
	})
}

// Missing says what to install to build the proxy, or "".
func Missing() string { return cargo.Missing(Packages, "hyper-0.14*", "tokio-1*", "serde_json-1*") }

func parse(o *spec.Options) (hops.Parsed, error) {
	opts := Options{PoolMaxIdlePerHost: -1}
	var err error
	if o.Has("pool_idle_timeout") {
		if opts.PoolIdleTimeout, err = o.Duration("pool_idle_timeout", 0, false); err != nil {
			return hops.Parsed{}, err
		}
	}
	if v, ok := o.String("retry_canceled_requests"); ok {
		if v != "true" && v != "false" {
			return hops.Parsed{}, fmt.Errorf("retry_canceled_requests: %q: want true or false", v)
		}
		b := v == "true"
		opts.RetryCanceledRequests = &b
	}
	if o.Has("pool_max_idle_per_host") {
		if opts.PoolMaxIdlePerHost, err = o.Int("pool_max_idle_per_host", 0, 0, 1<<20); err != nil {
			return hops.Parsed{}, err
		}
	}
	return hops.Parsed{
		Start:     func(ctx context.Context, cfg hops.Config) (hops.Hop, error) { return Start(ctx, cfg, opts) },
		Behaviour: opts.behaviour(),
	}, nil
}

// behaviour is the Client's pool for the model, the hyper client kind's (hyper 0.14.19):
// an idle connection's task keeps reading (proto/h1/conn.rs poll_read_keep_alive), so it
// watches; pool_idle_timeout is MaxIdle (client/pool.rs: an entry idle longer is
// expired at checkout); and it replays only a request canceled before it was written
// (client/client.rs retry_canceled_requests), never one written into a closed
// connection, so the model counts no replay and a GET is a 502 as a POST is.
func (o Options) behaviour() pool.Behaviour {
	idle := o.PoolIdleTimeout
	if idle == 0 {
		idle = 90 * time.Second
	}
	return pool.Behaviour{Watch: true, MaxIdle: idle}
}

// Proxy is a running hyper proxy.
type Proxy struct {
	hops.LogProxy
	opts Options
	bin  string
}

// Start builds the proxy (once) and starts it in front of cfg.Upstream.
func Start(ctx context.Context, cfg hops.Config, opts Options) (*Proxy, error) {
	if what := Missing(); what != "" {
		return nil, &upstreams.StartError{Err: fmt.Errorf("hyper proxy: %s", what)}
	}
	bin, err := project.Build()
	if err != nil {
		return nil, &upstreams.StartError{Err: err}
	}
	p := &Proxy{opts: opts, bin: bin}
	err = p.Launch(ctx, cfg, hops.ProxyLauncher{
		Kind: Kind, DirKind: DirKind, InUse: "Address already in use",
		Version: "hyper/" + project.Locked("hyper"), Prepare: p.prepare, Count: count,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Proxy) prepare(d string, addr real.Addr, token string) (real.Spec, error) {
	p.Log.Path = filepath.Join(d, "access.log")
	args := []string{"--listen", addr.HostPort(), "--upstream", p.Upstream, "--log", p.Log.Path,
		"--ready-path", readyPath, "--ready-token", token}
	if p.opts.PoolIdleTimeout > 0 {
		args = append(args, "--pool-idle-timeout-ns", strconv.FormatInt(p.opts.PoolIdleTimeout.Nanoseconds(), 10))
	}
	if p.opts.RetryCanceledRequests != nil {
		args = append(args, "--retry-canceled-requests", strconv.FormatBool(*p.opts.RetryCanceledRequests))
	}
	if p.opts.PoolMaxIdlePerHost >= 0 {
		args = append(args, "--pool-max-idle-per-host", strconv.Itoa(p.opts.PoolMaxIdlePerHost))
	}
	return real.Spec{
		Path:      p.bin,
		Package:   "built from Debian's crates (" + Packages + ")",
		Args:      args,
		ReadyPath: readyPath,
	}, nil
}

type logLine struct {
	Status int    `json:"status"`
	URI    string `json:"uri"`
}

// count adds one log line: a request the proxy answered, and whether with a 502.
func count(line []byte, st *hops.Stats) {
	var l logLine
	if json.Unmarshal(line, &l) != nil || l.URI == readyPath {
		return
	}
	st.Requests++
	if pool.IsBadGateway(l.Status) {
		st.BadGateway++
	}
}
