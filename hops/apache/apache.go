// Package apache is the hop kind "apache": Debian's Apache httpd 2.4 as a reverse proxy
// (mod_proxy_http, ProxyPass), its pool of backend connections the pool under test,
// started in the foreground with a generated configuration in a private directory: one
// child process (mpm_event), so that one pool serves every request of the cell.
//
// Options, named as Apache names them (ProxyPass's keys, and the environment variable
// with _ for -), with Apache 2.4's defaults:
//
//	ttl                       0 (none): whole seconds an idle backend connection may be
//	                          kept; older ones are not used again
//	disablereuse              off (on): a new backend connection for every request
//	proxy_initial_not_pooled  off (on): SetEnv proxy-initial-not-pooled, the first
//	                          request of a client connection never takes a pooled one
//
// The client side is not the race (KeepAliveTimeout an hour, MaxKeepAliveRequests
// unlimited), but Apache carries the race to the load: when reading the response from a
// reused backend connection fails and the client's connection has served a request
// before, mod_proxy_http closes the client's connection without a response, so that the
// client may retry ("Closing connection to client because reading from backend server
// failed", AH01104, modules/proxy/mod_proxy_http.c); only the first request of a client
// connection gets a 502. Every request answered is in the access log, as JSON.
package apache

import (
	"context"
	"encoding/json"
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

// Kind is the name the proxy registers under; its directories are idlerace-apache-*.
const Kind = "apache"

// DebianPackage provides the binary and its modules.
const DebianPackage = "apache2"

const readyPath = "/_idlerace/proxy-ready"

var (
	binary  = "/usr/sbin/apache2"
	modules = "/usr/lib/apache2/modules"
)

// Options are the proxy's settings.
type Options struct {
	TTL              time.Duration
	DisableReuse     bool
	InitialNotPooled bool
}

func init() {
	hops.Register(hops.Kind{
		Name:    Kind,
		Props:   hops.Properties{Pools: true},
		Summary: "Apache httpd mod_proxy_http with its pool of backend connections",
		Options: []string{"ttl", "disablereuse", "proxy_initial_not_pooled"},
		Parse:   parse,
	})
}

func parse(o *spec.Options) (hops.Parsed, error) {
	var opts Options
	var err error
	if opts.TTL, err = o.Duration("ttl", 0, true); err != nil {
		return hops.Parsed{}, err
	}
	if opts.TTL%time.Second != 0 {
		return hops.Parsed{}, fmt.Errorf("ttl: Apache takes whole seconds, got %v", opts.TTL)
	}
	for key, on := range map[string]*bool{"disablereuse": &opts.DisableReuse, "proxy_initial_not_pooled": &opts.InitialNotPooled} {
		v, err := o.Enum(key, "off", "off", "on")
		if err != nil {
			return hops.Parsed{}, err
		}
		*on = v == "on"
	}
	return hops.Parsed{
		Start:     func(ctx context.Context, cfg hops.Config) (hops.Hop, error) { return Start(ctx, cfg, opts) },
		Behaviour: opts.behaviour(),
	}, nil
}

// behaviour is mod_proxy's backend pool for the model: before it reuses a pooled
// connection, ap_proxy_connect_backend asks ap_proxy_is_socket_connected, a
// non-blocking read that sees a FIN already there (a read probe, at any idle age);
// ttl is the reslist's, which destroys a connection idle longer at acquire; nothing is
// replayed (the client is asked to, by the close). disablereuse keeps none.
func (o Options) behaviour() pool.Behaviour {
	b := pool.Behaviour{Probe: true, MaxIdle: o.TTL}
	if o.DisableReuse {
		b.MaxIdle = time.Nanosecond
	}
	return b
}

// Proxy is a running Apache httpd.
type Proxy struct {
	hops.LogProxy
	opts Options
}

// Start writes the configuration and starts Apache in front of cfg.Upstream.
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
	// The child runs as www-data when Apache starts as root: it reads the readiness
	// file; the logs are opened by the parent.
	os.Chmod(d, 0o711)
	www := filepath.Join(d, "www", strings.TrimPrefix(filepath.Dir(readyPath), "/"))
	if err := os.MkdirAll(www, 0o755); err != nil {
		return real.Spec{}, err
	}
	for dir := www; dir != d; dir = filepath.Dir(dir) {
		os.Chmod(dir, 0o755)
	}
	if err := os.WriteFile(filepath.Join(www, filepath.Base(readyPath)), []byte(token), 0o644); err != nil {
		return real.Spec{}, err
	}
	conf := filepath.Join(d, "httpd.conf")
	p.Log.Path = filepath.Join(d, "access.log")
	if err := os.WriteFile(conf, []byte(p.config(d, addr)), 0o644); err != nil {
		return real.Spec{}, err
	}
	return real.Spec{
		Path:      binary,
		Package:   "Debian package " + DebianPackage,
		Args:      []string{"-d", d, "-f", conf, "-DFOREGROUND"},
		Logs:      []string{filepath.Join(d, "error.log")},
		ReadyPath: readyPath,
		// SIGTERM stops at once, and a request answered but not yet logged loses its
		// line; SIGWINCH is the graceful stop: idle connections end, requests finish and
		// are logged.
		StopSignal: syscall.SIGWINCH,
		// SIGKILL to the parent when idlerace dies would orphan its child, still
		// listening; on SIGTERM the parent stops the child and exits.
		DeathSignal: syscall.SIGTERM,
	}, nil
}

// config renders httpd.conf: the modules it needs, one child of mpm_event, the
// readiness file, the access log as JSON and ProxyPass to the upstream with its keys.
func (p *Proxy) config(d string, addr real.Addr) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by idlerace (hops/apache) for one cell.\n")
	for _, m := range []string{"mpm_event", "authz_core", "env", "proxy", "proxy_http"} {
		fmt.Fprintf(&b, "LoadModule %s_module %s/mod_%s.so\n", m, modules, m)
	}
	if os.Geteuid() == 0 {
		fmt.Fprintf(&b, "User www-data\nGroup www-data\n")
	}
	fmt.Fprintf(&b, "ServerName idlerace\nListen %s\n", addr.HostPort())
	fmt.Fprintf(&b, "PidFile %q\nDefaultRuntimeDir %q\nErrorLog %q\nLogLevel warn\n", filepath.Join(d, "httpd.pid"), d, filepath.Join(d, "error.log"))
	// One child: mod_proxy's pool is per child process.
	fmt.Fprintf(&b, "StartServers 1\nServerLimit 1\nThreadsPerChild 64\nMaxRequestWorkers 64\nMinSpareThreads 1\nMaxSpareThreads 128\nMaxConnectionsPerChild 0\n")
	// The load's side never idles out: only the backend side races.
	fmt.Fprintf(&b, "KeepAlive On\nKeepAliveTimeout 3600\nMaxKeepAliveRequests 0\nTimeout 30\n")
	fmt.Fprintf(&b, "LogFormat \"{\\\"status\\\":\\\"%%>s\\\",\\\"uri\\\":\\\"%%U\\\",\\\"sent\\\":\\\"%%O\\\",\\\"id\\\":\\\"%%{Idlerace-Request-Id}i\\\"}\" idlerace\n")
	fmt.Fprintf(&b, "CustomLog %q idlerace\n", p.Log.Path)
	fmt.Fprintf(&b, "DocumentRoot %q\n<Directory %q>\n    Require all granted\n</Directory>\n", filepath.Join(d, "www"), filepath.Join(d, "www"))
	if p.opts.InitialNotPooled {
		fmt.Fprintf(&b, "SetEnv proxy-initial-not-pooled 1\n")
	}
	fmt.Fprintf(&b, "ProxyPass %s !\n", readyPath)
	fmt.Fprintf(&b, "ProxyPass / http://%s/", p.Upstream)
	if p.opts.TTL > 0 {
		fmt.Fprintf(&b, " ttl=%d", int(p.opts.TTL/time.Second))
	}
	if p.opts.DisableReuse {
		fmt.Fprintf(&b, " disablereuse=On")
	}
	fmt.Fprintf(&b, "\n")
	return b.String()
}

// Version runs `apache2 -v` and returns "Apache/2.4.71".
func Version(ctx context.Context) (string, error) {
	first, err := hops.VersionLine(ctx, binary, DebianPackage, "-v")
	if err != nil {
		return "", err
	}
	// Server version: Apache/2.4.71 (Debian)
	for _, f := range strings.Fields(first) {
		if strings.HasPrefix(f, "Apache/") {
			return f, nil
		}
	}
	return first, nil
}

type logLine struct {
	Status string `json:"status"`
	URI    string `json:"uri"`
	Sent   string `json:"sent"`
}

// count adds one access log line: a request Apache took, and whether the load got a
// 502, 503 or 504 for it. Apache logs a request it dropped by closing the load's
// connection as a 502 with nothing sent (%O 0): that one the load never received, so it
// is not counted as one (the load counts its own EOF); the readiness file's lines are
// not the cell's.
func count(line []byte, st *hops.Stats) {
	var l logLine
	if json.Unmarshal(line, &l) != nil || l.URI == readyPath {
		return
	}
	st.Requests++
	status, _ := strconv.Atoi(l.Status)
	if pool.IsBadGateway(status) && l.Sent != "0" {
		st.BadGateway++
	}
}
