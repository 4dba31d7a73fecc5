// Package node is the upstream kind "node": Node's own http server, started as its
// users run it, `/usr/bin/node server.js`, with server.js (shipped in this package,
// embedded, written into a private directory at start and removed on Close) setting
//
//	server.keepAliveTimeout = IdleTimeout (milliseconds)
//	server.headersTimeout   = max(60s, IdleTimeout + 1s), above keepAliveTimeout
//	server.maxRequestsPerSocket = MaxRequests (Node announces the last response with
//	                          Connection: close but does not close: it leaves that to
//	                          the client and answers 503 to any further request)
//
// Node closes an idle connection with socket.setTimeout on its millisecond timer lists.
// Node 20 arms that timeout at keepAliveTimeout + 1s (KeepAliveBuffer, its hard-coded
// HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER, there to make this very race less likely), and
// advertises `Keep-Alive: timeout=floor(keepAliveTimeout/1s)` itself: with IdleTimeout
// 100ms it sends `timeout=0` and closes after 1.1s. Advertise cannot change the header
// (it must be 0). The script counts
// executions, duplicates, accepted connections and idle closes natively and answers
// them on GET /_idlerace/stats; Closes is nil. It cannot honour a skew model, a close
// mode other than fin or faults.
package node

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/idlerace/idlerace/upstreams"
	"github.com/idlerace/idlerace/upstreams/internal/real"
)

// Kind is the name node registers under.
const Kind = "node"

// DebianPackage provides /usr/bin/node.
const DebianPackage = "nodejs"

// StatsPath answers the script's counters as JSON; requests to it are not executions.
const StatsPath = "/_idlerace/stats"

//go:embed server.js
var serverJS []byte

// KeepAliveBuffer is what Node 20 adds to keepAliveTimeout before it closes an idle
// connection (HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER in lib/_http_server.js; newer Nodes
// make it server.keepAliveTimeoutBuffer, same default).
const KeepAliveBuffer = time.Second

// binary is the node to run; tests point it elsewhere.
var binary = "/usr/bin/node"

// extraArgs, set by tests, go to node before the script.
var extraArgs []string

// startAttempts bounds retries when a port picked free was taken before node bound it.
const startAttempts = 3

func init() {
	upstreams.Register(Kind, func(ctx context.Context, cfg upstreams.Config) (upstreams.Upstream, error) {
		s, err := Start(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return s, nil
	})
}

// Server is a running node. It implements upstreams.Upstream.
type Server struct {
	cfg     upstreams.Config
	addr    real.Addr
	dir     string
	token   string
	proc    *real.Process
	version string
	stopCtx func() bool

	closeOnce sync.Once
	closeErr  error

	mu    sync.Mutex
	stats upstreams.Stats // the last counts read from the script
}

type scriptStats struct {
	upstreams.Stats
	Token   string `json:"token"`
	Version string `json:"version"`
}

// Start checks cfg, writes server.js and starts node; it returns once the script
// answers on its port. A server that would not start is an *upstreams.StartError with
// the end of node's stderr.
func Start(ctx context.Context, cfg upstreams.Config) (*Server, error) {
	if err := real.CheckConfig(Kind, cfg, real.Limits{
		Advertise:   "node advertises Keep-Alive: timeout=floor(keepAliveTimeout/1s) itself",
		NoAdvertise: "node always sends Keep-Alive: timeout=floor(keepAliveTimeout/1s)",
	}); err != nil {
		return nil, err
	}
	if cfg.IdleTimeout%time.Millisecond != 0 {
		return nil, fmt.Errorf("upstream config: IdleTimeout: node keepAliveTimeout takes whole milliseconds; got %v", cfg.IdleTimeout)
	}
	if cfg.ServiceTime%time.Millisecond != 0 {
		return nil, fmt.Errorf("upstream config: ServiceTime: node setTimeout takes whole milliseconds; got %v", cfg.ServiceTime)
	}
	if cfg.ResponseBytes == 0 {
		cfg.ResponseBytes = upstreams.DefaultResponseBytes
	}
	for attempt := 1; ; attempt++ {
		s, err := start(ctx, cfg)
		if err == nil {
			s.stopCtx = context.AfterFunc(ctx, func() { s.Close() })
			return s, nil
		}
		if attempt == startAttempts || !s.addr.Auto || !strings.Contains(err.Error(), "EADDRINUSE") {
			return nil, err
		}
	}
}

func start(ctx context.Context, cfg upstreams.Config) (*Server, error) {
	addr, err := real.ListenAddr(cfg.Addr)
	if err != nil {
		return &Server{}, err
	}
	s := &Server{cfg: cfg, addr: addr, token: real.Token()}
	if s.dir, err = real.NewDir(Kind); err != nil {
		return s, err
	}
	if err := os.WriteFile(filepath.Join(s.dir, "server.js"), serverJS, 0o644); err != nil {
		os.RemoveAll(s.dir)
		return s, &upstreams.StartError{Err: err}
	}
	env := []string{
		"IDLERACE_HOST=" + addr.Host,
		"IDLERACE_PORT=" + strconv.Itoa(addr.Port),
		"IDLERACE_KEEP_ALIVE_MS=" + strconv.FormatInt(cfg.IdleTimeout.Milliseconds(), 10),
		"IDLERACE_MAX_REQUESTS=" + strconv.Itoa(cfg.MaxRequests),
		"IDLERACE_RESPONSE_BYTES=" + strconv.Itoa(cfg.ResponseBytes),
		"IDLERACE_SERVICE_TIME_MS=" + strconv.FormatInt(cfg.ServiceTime.Milliseconds(), 10),
		"IDLERACE_TOKEN=" + s.token,
	}
	var body []byte
	s.proc, body, err = real.Start(ctx, real.Spec{
		Kind:       Kind,
		Path:       binary,
		Package:    "Debian package " + DebianPackage,
		Args:       append(append([]string{}, extraArgs...), "server.js"),
		Dir:        s.dir,
		Env:        env,
		Addr:       addr,
		ReadyPath:  StatsPath,
		ReadyToken: s.token,
	})
	if err != nil {
		os.RemoveAll(s.dir)
		return s, err
	}
	var st scriptStats
	if err := json.Unmarshal(body, &st); err != nil {
		s.proc.Stop()
		os.RemoveAll(s.dir)
		return s, &upstreams.StartError{Err: fmt.Errorf("stats answer %q: %w", body, err)}
	}
	s.version = st.Version
	return s, nil
}

// Kind returns "node".
func (s *Server) Kind() string { return Kind }

// Version returns "node/vX.Y.Z" as the script reports process.version.
func (s *Server) Version() string { return s.version }

// URL returns "http://127.0.0.1:PORT".
func (s *Server) URL() string { return s.addr.URL() }

// Dir is the server's private directory (removed on Close).
func (s *Server) Dir() string { return s.dir }

// Pid is node's process id, also its process group id.
func (s *Server) Pid() int { return s.proc.Pid() }

// Closes returns nil: the script counts idle closes but does not time them.
func (s *Server) Closes() []upstreams.CloseRecord { return nil }

// Stats asks the script for its counts while it runs; after Close it returns the last
// ones. Accepted excludes the connections idlerace made itself to poll the script.
func (s *Server) Stats() upstreams.Stats {
	s.refresh()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Server) refresh() {
	select {
	case <-s.proc.Exited():
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := s.proc.Get(ctx, StatsPath)
	if err != nil {
		return
	}
	var st scriptStats
	if json.Unmarshal(body, &st) != nil {
		return
	}
	st.Accepted = max(st.Accepted-s.proc.OwnConns(), 0)
	s.mu.Lock()
	s.stats = st.Stats
	s.mu.Unlock()
}

// Close reads the script's final counts, stops node (SIGTERM to its process group,
// SIGKILL after a grace period) and removes its directory.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stopCtx()
		s.refresh()
		err := s.proc.Stop()
		s.closeErr = errors.Join(err, os.RemoveAll(s.dir))
	})
	return s.closeErr
}
