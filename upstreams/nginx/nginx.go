// Package nginx is the upstream kind "nginx": Debian's nginx, started as its users run
// it (a master and one worker, `nginx -p PREFIX -c nginx.conf -g 'daemon off;'`) with a
// generated configuration in a private prefix directory: its own pid file, error log
// and access log, removed on Close.
//
//	keepalive_timeout   IdleTimeout in milliseconds (nginx accepts "100ms"), plus
//	                    Advertise as the header value when > 0 (whole seconds only)
//	keepalive_requests  MaxRequests (nginx announces the last with Connection: close)
//	location /          return 200 "ok" (ResponseBytes of "okok..." when set)
//	log_format          JSON lines with $http_idlerace_request_id: Executed and
//	                    Duplicates are counted from the access log at Stats and Close
//	stub_status         on /_idlerace/stats: readiness, and Accepted (minus our own polls)
//
// nginx closes an idle keep-alive connection from its event loop's timer tree, which
// runs at millisecond resolution. It cannot honour a skew model, a close mode other than
// fin, faults or ServiceTime; it does not report idle closes (Stats.IdleCloses is 0,
// Closes is nil).
package nginx

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/idlerace/idlerace/internal/real"
	"github.com/idlerace/idlerace/upstreams"
)

// Kind is the name nginx registers under.
const Kind = "nginx"

// DebianPackage provides the binary.
const DebianPackage = "nginx"

// StatsPath is served by stub_status and is not logged.
const StatsPath = "/_idlerace/stats"

// readyPath answers this server's token (readiness) and is not logged.
const readyPath = "/_idlerace/ready"

// binary is the nginx to run; tests point it elsewhere.
var binary = "/usr/sbin/nginx"

// extraConf, set by tests, is added verbatim inside http {}.
var extraConf string

// maxLiteral is the longest body put into one `return` string: nginx's configuration
// parser refuses parameters longer than its 4 KiB buffer ("too long parameter").
const maxLiteral = 2048

func init() { upstreams.RegisterStart(Kind, upstreams.Properties{}, Start) }

// Server is a running nginx. It implements upstreams.Upstream, through real.Server but
// for Stats:
//
//	Version  nginx's own name for itself, e.g. "nginx/1.22.1"
//	Dir      the server's prefix directory (removed on Close)
//	Pid      nginx's master process id, also its process group id
//	Closes   nil: nginx does not say when it closes a connection
//	Close    stops nginx (SIGTERM to its process group, SIGKILL after a grace period),
//	         reads the rest of its access log and removes its prefix directory
type Server struct {
	real.Server
	cfg upstreams.Config

	mu         sync.Mutex
	stopped    bool
	log        real.LogTail
	stats      upstreams.Stats
	executions map[string]int64
}

// Start checks cfg, writes the configuration and starts nginx; it returns once nginx
// answers on its port. A server that would not start is an *upstreams.StartError with
// the end of nginx's error log.
func Start(ctx context.Context, cfg upstreams.Config) (*Server, error) {
	if err := real.CheckConfig(Kind, cfg, real.Limits{
		ServiceTime: "nginx has no way to delay a response without extra modules",
	}); err != nil {
		return nil, err
	}
	if cfg.IdleTimeout%time.Millisecond != 0 {
		return nil, fmt.Errorf("upstream config: IdleTimeout: nginx keepalive_timeout takes whole milliseconds; got %v", cfg.IdleTimeout)
	}
	if cfg.Advertise > 0 {
		// nginx prints the second keepalive_timeout parameter as whole seconds
		// (Keep-Alive: timeout=N), so only whole seconds can be advertised.
		if _, err := real.Seconds(Kind, "Advertise", "keepalive_timeout's header timeout", cfg.Advertise); err != nil {
			return nil, err
		}
	}
	if cfg.ResponseBytes == 0 {
		cfg.ResponseBytes = upstreams.DefaultResponseBytes
	}
	version, err := Version(ctx)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, executions: make(map[string]int64)}
	err = real.Launch(ctx, &s.Server, real.Launcher{
		Kind:       Kind,
		Addr:       cfg.Addr,
		InUse:      "Address already in use",
		Version:    version,
		Prepare:    s.prepare,
		BeforeStop: s.refreshAccepted,
		AfterStop:  s.readLastLog,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// prepare writes the prefix directory d: nginx.conf for addr and token, and tmp.
func (s *Server) prepare(d string, addr real.Addr, token string) (real.Spec, error) {
	// Workers run unprivileged when nginx starts as root: let them through the prefix.
	os.Chmod(d, 0o711)
	if err := os.Mkdir(filepath.Join(d, "tmp"), 0o755); err != nil {
		return real.Spec{}, err
	}
	conf := filepath.Join(d, "nginx.conf")
	if err := os.WriteFile(conf, []byte(s.config(d, addr, token)), 0o644); err != nil {
		return real.Spec{}, err
	}
	return real.Spec{
		Path:        binary,
		Package:     "Debian package " + DebianPackage,
		Args:        []string{"-p", d + "/", "-c", conf, "-e", filepath.Join(d, "error.log"), "-g", "daemon off;"},
		Logs:        []string{filepath.Join(d, "error.log")},
		ReadyPath:   readyPath,
		StopSignal:  StopSignal,
		DeathSignal: DeathSignal,
	}, nil
}

// StopSignal stops nginx gracefully. SIGTERM is its fast shutdown: a worker that has
// sent a response but not yet run its log phase exits without the access log line (CI
// lost a cell's last request so, 3 ms after its response). On SIGQUIT the worker closes
// its idle connections, finishes the requests it serves and logs them.
var StopSignal os.Signal = syscall.SIGQUIT

// DeathSignal is what nginx's master gets when idlerace dies: SIGTERM, on which it stops
// its workers and exits. SIGKILL would orphan the worker, still listening.
var DeathSignal os.Signal = syscall.SIGTERM

// config renders nginx.conf for the prefix directory d, listening on addr and answering
// token on readyPath.
func (s *Server) config(d string, addr real.Addr, token string) string {
	q := strconv.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "# Generated by idlerace (upstreams/nginx) for one run.\n")
	b.WriteString(Prelude(d))
	fmt.Fprintf(&b, "    log_format idlerace escape=json '{\"msec\":\"$msec\",\"conn\":\"$connection\",\"n\":\"$connection_requests\",\"status\":\"$status\",\"uri\":\"$uri\",\"id\":\"$http_idlerace_request_id\"}';\n")
	fmt.Fprintf(&b, "    access_log %s idlerace;\n", q(filepath.Join(d, "access.log")))
	keepalive := fmt.Sprintf("%dms", s.cfg.IdleTimeout/time.Millisecond)
	if s.cfg.Advertise > 0 {
		// The optional second value is sent as "Keep-Alive: timeout=N"; nginx
		// advertises whole seconds only (Start refused anything else).
		keepalive += fmt.Sprintf(" %ds", s.cfg.Advertise/time.Second)
	}
	fmt.Fprintf(&b, "    keepalive_timeout %s;\n", keepalive)
	requests := s.cfg.MaxRequests
	if requests == 0 {
		requests = 1 << 30 // nginx has no "unlimited"; its default is 1000
	}
	fmt.Fprintf(&b, "    keepalive_requests %d;\n", requests)
	if extraConf != "" {
		fmt.Fprintf(&b, "    %s\n", extraConf)
	}
	fmt.Fprintf(&b, "    server {\n        listen %s;\n", addr.HostPort())
	fmt.Fprintf(&b, "        location = %s {\n            stub_status;\n            access_log off;\n        }\n", StatsPath)
	fmt.Fprintf(&b, "        location = %s {\n            access_log off;\n            return 200 %s;\n        }\n", readyPath, q(token))
	fmt.Fprintf(&b, "        location / {\n            default_type text/plain;\n")
	body := strings.Repeat("ok", s.cfg.ResponseBytes/2+1)[:s.cfg.ResponseBytes]
	if len(body) <= maxLiteral {
		fmt.Fprintf(&b, "            return 200 %s;\n", q(body))
	} else {
		// Longer bodies are assembled from variables of at most maxLiteral bytes.
		var vars strings.Builder
		for i := 0; len(body) > 0; i++ {
			n := min(len(body), maxLiteral)
			fmt.Fprintf(&b, "            set $idlerace_body%d %s;\n", i, q(body[:n]))
			fmt.Fprintf(&vars, "$idlerace_body%d", i)
			body = body[n:]
		}
		fmt.Fprintf(&b, "            return 200 %s;\n", q(vars.String()))
	}
	fmt.Fprintf(&b, "        }\n    }\n}\n")
	return b.String()
}

// Prelude is the start of an nginx.conf whose every file lives in the prefix directory
// d (pid, error log, temporary files, so that nginx runs beside another as any user):
// one worker, and "http {" opened for the caller to fill and close.
func Prelude(d string) string {
	q := strconv.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "worker_processes 1;\npid %s;\nerror_log %s notice;\n", q(filepath.Join(d, "nginx.pid")), q(filepath.Join(d, "error.log")))
	fmt.Fprintf(&b, "events {\n    worker_connections 4096;\n}\n")
	fmt.Fprintf(&b, "http {\n")
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "    %s_temp_path %s;\n", t, q(filepath.Join(d, "tmp", t)))
	}
	return b.String()
}

// Version runs `nginx -v` and returns what it prints, e.g. "nginx/1.22.1". A missing
// binary is an *upstreams.StartError that wraps fs.ErrNotExist.
func Version(ctx context.Context) (string, error) {
	if _, err := os.Stat(binary); err != nil {
		return "", &upstreams.StartError{Err: fmt.Errorf("nginx binary (Debian package %s): %w", DebianPackage, err)}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := real.Output(ctx, binary, "-v")
	line := strings.TrimSpace(string(out))
	if err != nil {
		return "", &upstreams.StartError{Err: fmt.Errorf("%s -v: %w", binary, err), Tail: []string{line}}
	}
	return strings.TrimPrefix(line, "nginx version: "), nil
}

// Stats reads the access log so far (Executed, Duplicates) and, while nginx runs, asks
// stub_status how many connections it accepted (Accepted, less the connections idlerace
// made itself to poll it). After Close it returns the final counts.
func (s *Server) Stats() upstreams.Stats {
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if !stopped {
		s.refreshAccepted()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readLogLocked()
	return s.stats
}

// refreshAccepted asks stub_status for its accepts count.
func (s *Server) refreshAccepted() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := s.Proc().Get(ctx, StatsPath)
	if err != nil {
		return
	}
	// Active connections: 1
	// server accepts handled requests
	//  16 16 31
	lines := strings.Split(string(body), "\n")
	if len(lines) < 3 {
		return
	}
	f := strings.Fields(lines[2])
	if len(f) < 1 {
		return
	}
	accepts, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return
	}
	own := s.Proc().OwnConns()
	s.mu.Lock()
	s.stats.Accepted = max(s.stats.Accepted, accepts-own)
	s.mu.Unlock()
}

type logLine struct {
	Status string `json:"status"`
	URI    string `json:"uri"`
	ID     string `json:"id"`
}

// readLogLocked counts the access log lines written since the last read.
func (s *Server) readLogLocked() {
	if s.log.Path == "" {
		s.log.Path = filepath.Join(s.Dir(), "access.log")
	}
	for _, line := range s.log.Lines() {
		var l logLine
		if json.Unmarshal(line, &l) != nil || l.Status != "200" || l.URI == StatsPath {
			continue
		}
		s.stats.Executed++
		if l.ID == "" {
			continue
		}
		s.executions[l.ID]++
		if s.executions[l.ID] > 1 {
			s.stats.Duplicates++
		}
	}
}

// readLastLog reads the rest of the access log once nginx has stopped; Stats asks
// stub_status no more.
func (s *Server) readLastLog() {
	s.mu.Lock()
	s.stopped = true
	s.readLogLocked()
	s.mu.Unlock()
}
