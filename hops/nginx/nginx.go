// Package nginx is the hop kind "nginx": Debian's nginx as a reverse proxy, configured as
// its users put it in front of an application server to keep upstream connections alive
// (nginx's own documentation for the keepalive directive: an upstream block with
// keepalive, proxy_http_version 1.1 and an empty Connection header). Its pool of idle
// upstream connections is then the pool that races the upstream's idle close, and a
// request that loses comes back to the caller as a 502.
//
// Options, named as nginx names them, with nginx 1.22's defaults:
//
//	keepalive            idle upstream connections each worker keeps (16 here: nginx
//	                     has no default, the directive is what turns reuse on)
//	keepalive_timeout    how long one may sit idle (60s)
//	keepalive_requests   requests per upstream connection (1000)
//	proxy_next_upstream  default ("error timeout"), off, or non_idempotent ("error
//	                     timeout non_idempotent": POST too)
//
// The client side is not the race: nginx keeps the load's connections for an hour and a
// million requests, so only the upstream side closes idle connections.
package nginx

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/hops"
	"github.com/idlerace/idlerace/internal/real"
	"github.com/idlerace/idlerace/internal/spec"
	upnginx "github.com/idlerace/idlerace/upstreams/nginx"
)

// Kind is the name the proxy registers under; its processes' directories are named
// idlerace-nginx-proxy-*.
const Kind = "nginx"

const readyPath = "/_idlerace/proxy-ready"

// binary is the nginx to run.
var binary = "/usr/sbin/nginx"

// Options are the proxy's settings.
type Options struct {
	Keepalive         int
	KeepaliveTimeout  time.Duration
	KeepaliveRequests int
	NextUpstream      string // "default", "off", "non_idempotent"
}

// nextUpstream is each proxy_next_upstream option's directive.
var nextUpstream = map[string]string{
	"default":        "error timeout",
	"off":            "off",
	"non_idempotent": "error timeout non_idempotent",
}

func init() {
	hops.Register(hops.Kind{
		Name:    Kind,
		Props:   hops.Properties{Pools: true},
		Summary: "nginx reverse proxy with an upstream keepalive pool",
		Options: []string{"keepalive", "keepalive_timeout", "keepalive_requests", "proxy_next_upstream"},
		Parse:   parse,
	})
}

func parse(o *spec.Options) (hops.Parsed, error) {
	var opts Options
	var err error
	if opts.Keepalive, err = o.Int("keepalive", 16, 1, 1<<20); err != nil {
		return hops.Parsed{}, err
	}
	if opts.KeepaliveTimeout, err = o.Duration("keepalive_timeout", 60*time.Second, false); err != nil {
		return hops.Parsed{}, err
	}
	if opts.KeepaliveTimeout%time.Millisecond != 0 {
		return hops.Parsed{}, fmt.Errorf("keepalive_timeout: nginx takes whole milliseconds, got %v", opts.KeepaliveTimeout)
	}
	if opts.KeepaliveRequests, err = o.Int("keepalive_requests", 1000, 1, 1<<30); err != nil {
		return hops.Parsed{}, err
	}
	if opts.NextUpstream, err = o.Enum("proxy_next_upstream", "default", "default", "off", "non_idempotent"); err != nil {
		return hops.Parsed{}, err
	}
	return hops.Parsed{
		Start:     func(ctx context.Context, cfg hops.Config) (hops.Hop, error) { return Start(ctx, cfg, opts) },
		Behaviour: opts.behaviour(),
	}, nil
}

// behaviour is nginx's upstream pool for the model. A cached connection's read event
// is watched while it idles (ngx_http_upstream_keepalive_close_handler closes it when
// the upstream's FIN arrives: watch), keepalive_timeout caps its reuse, and a request
// that fails on a cached connection is passed to the next try without counting a try
// (ngx_http_upstream_next: "if (u->peer.cached && ft_type == NGX_HTTP_UPSTREAM_FT_ERROR)
// u->peer.tries++"), so proxy_next_upstream's "error" replays it once on a new
// connection: GET and HEAD by default, POST too with non_idempotent, nothing with off.
func (o Options) behaviour() pool.Behaviour {
	b := pool.Behaviour{Watch: true, MaxIdle: o.KeepaliveTimeout}
	switch o.NextUpstream {
	case "default":
		b.Retries, b.IdempotentOnly = 1, true
	case "non_idempotent":
		b.Retries = 1
	}
	return b
}

// Proxy is a running nginx proxy.
type Proxy struct {
	hops.LogProxy
	opts Options
}

// Start writes the configuration and starts nginx in front of cfg.Upstream; it returns
// once nginx answers on its port. One that will not start is an *upstreams.StartError
// with the end of nginx's error log.
func Start(ctx context.Context, cfg hops.Config, opts Options) (*Proxy, error) {
	version, err := upnginx.Version(ctx)
	if err != nil {
		return nil, err
	}
	p := &Proxy{opts: opts}
	err = p.Launch(ctx, cfg, hops.ProxyLauncher{Kind: Kind, DirKind: Kind + "-proxy", InUse: "Address already in use", Version: version, Prepare: p.prepare, Count: count})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Proxy) prepare(d string, addr real.Addr, token string) (real.Spec, error) {
	p.Log.Path = filepath.Join(d, "access.log")
	os.Chmod(d, 0o711) // workers run unprivileged when nginx starts as root
	if err := os.Mkdir(filepath.Join(d, "tmp"), 0o755); err != nil {
		return real.Spec{}, err
	}
	conf := filepath.Join(d, "nginx.conf")
	if err := os.WriteFile(conf, []byte(p.config(d, addr, token)), 0o644); err != nil {
		return real.Spec{}, err
	}
	return real.Spec{
		Path:        binary,
		Package:     "Debian package " + upnginx.DebianPackage,
		Args:        []string{"-p", d + "/", "-c", conf, "-e", filepath.Join(d, "error.log"), "-g", "daemon off;"},
		Logs:        []string{filepath.Join(d, "error.log")},
		ReadyPath:   readyPath,
		StopSignal:  upnginx.StopSignal,
		DeathSignal: upnginx.DeathSignal,
	}, nil
}

// config renders nginx.conf: one worker, the upstream block with the proxy's keepalive
// settings, and a server that proxies everything but its readiness path.
func (p *Proxy) config(d string, addr real.Addr, token string) string {
	q := strconv.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by idlerace (hops/nginx) for one cell.\n")
	b.WriteString(upnginx.Prelude(d))
	// $upstream_status lists one status per upstream try ("502, 200" after a retry).
	fmt.Fprintf(&b, "    log_format idlerace escape=json '{\"status\":\"$status\",\"upstream\":\"$upstream_status\",\"uri\":\"$uri\",\"id\":\"$http_idlerace_request_id\"}';\n")
	fmt.Fprintf(&b, "    access_log %s idlerace;\n", q(filepath.Join(d, "access.log")))
	// The load's side never idles out: only the upstream side races.
	fmt.Fprintf(&b, "    keepalive_timeout 3600s;\n    keepalive_requests 1000000;\n")
	fmt.Fprintf(&b, "    upstream idlerace_upstream {\n        server %s;\n", p.Upstream)
	fmt.Fprintf(&b, "        keepalive %d;\n        keepalive_timeout %dms;\n        keepalive_requests %d;\n    }\n",
		p.opts.Keepalive, p.opts.KeepaliveTimeout/time.Millisecond, p.opts.KeepaliveRequests)
	fmt.Fprintf(&b, "    server {\n        listen %s;\n", addr.HostPort())
	fmt.Fprintf(&b, "        location = %s {\n            access_log off;\n            return 200 %s;\n        }\n", readyPath, q(token))
	fmt.Fprintf(&b, "        location / {\n            proxy_pass http://idlerace_upstream;\n")
	fmt.Fprintf(&b, "            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n")
	fmt.Fprintf(&b, "            proxy_next_upstream %s;\n        }\n    }\n}\n", nextUpstream[p.opts.NextUpstream])
	return b.String()
}

type logLine struct {
	Status   string `json:"status"`
	Upstream string `json:"upstream"`
	URI      string `json:"uri"`
}

// count adds one access log line: its status, and a try for each status beyond the
// first in $upstream_status ("502, 200" is one replay).
func count(line []byte, st *hops.Stats) {
	var l logLine
	if json.Unmarshal(line, &l) != nil {
		return
	}
	st.Requests++
	if pool.IsBadGateway(atoi(l.Status)) {
		st.BadGateway++
	}
	if l.Upstream != "" && l.Upstream != "-" {
		st.UpstreamTries += int64(strings.Count(l.Upstream, ","))
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
