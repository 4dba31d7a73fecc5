// Package uvicorn is the upstream kind "uvicorn": Debian's python3-uvicorn, started as
// its users run it,
//
//	/usr/bin/python3 -m uvicorn app:app --host 127.0.0.1 --port P --timeout-keep-alive N
//
// in a private directory holding app.py, the ASGI application shipped in this package
// (embedded, written there at start, removed on Close). Debian's uvicorn is a module of
// Debian's python3, hence /usr/bin/python3 and not whatever python3 is first on PATH.
//
// uvicorn closes an idle connection from an asyncio timer (loop.call_later) armed when
// a response completes; --timeout-keep-alive takes whole seconds, so IdleTimeout must
// be whole seconds (an error names the field otherwise). uvicorn sends no Keep-Alive
// header; Advertise > 0 makes the app send one. The app counts executions and
// duplicates itself and answers them on GET /_idlerace/stats; uvicorn does not report
// connections or closes (Accepted and IdleCloses are 0, Closes is nil). It cannot honour
// a skew model, a close mode other than fin, faults or MaxRequests (uvicorn has no
// per-connection request limit: --limit-max-requests stops the whole server).
package uvicorn

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

// Kind is the name uvicorn registers under.
const Kind = "uvicorn"

// DebianPackage provides the uvicorn module of /usr/bin/python3.
const DebianPackage = "python3-uvicorn"

// StatsPath answers the app's counters as JSON; requests to it are not executions.
const StatsPath = "/_idlerace/stats"

//go:embed app.py
var appPy []byte

// python is the interpreter whose uvicorn module runs the app; tests point it elsewhere.
var python = "/usr/bin/python3"

// extraArgs, set by tests, are appended to uvicorn's command line.
var extraArgs []string

// startAttempts bounds retries when a port picked free was taken before uvicorn bound it.
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

// Server is a running uvicorn. It implements upstreams.Upstream.
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
	stats upstreams.Stats // the last counts read from the app
}

// appStats is the app's answer on StatsPath.
type appStats struct {
	upstreams.Stats
	Token   string `json:"token"`
	Version string `json:"version"`
}

// Start checks cfg, writes app.py and starts uvicorn; it returns once the app answers
// on its port. A server that would not start is an *upstreams.StartError with the end
// of uvicorn's stderr.
func Start(ctx context.Context, cfg upstreams.Config) (*Server, error) {
	if err := real.CheckConfig(Kind, cfg, real.Limits{
		MaxRequests: "uvicorn has no per-connection request limit (--limit-max-requests stops the whole server)",
	}); err != nil {
		return nil, err
	}
	if _, err := real.Seconds(Kind, "IdleTimeout", "--timeout-keep-alive", cfg.IdleTimeout); err != nil {
		return nil, err
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
		if attempt == startAttempts || !s.addr.Auto || !strings.Contains(err.Error(), "address already in use") {
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
	if err := os.WriteFile(filepath.Join(s.dir, "app.py"), appPy, 0o644); err != nil {
		os.RemoveAll(s.dir)
		return s, &upstreams.StartError{Err: err}
	}
	env := []string{
		"PYTHONUNBUFFERED=1",
		"PYTHONDONTWRITEBYTECODE=1",
		"IDLERACE_TOKEN=" + s.token,
		"IDLERACE_RESPONSE_BYTES=" + strconv.Itoa(cfg.ResponseBytes),
		"IDLERACE_SERVICE_TIME_S=" + strconv.FormatFloat(cfg.ServiceTime.Seconds(), 'f', -1, 64),
	}
	if cfg.Advertise > 0 {
		env = append(env, "IDLERACE_KEEP_ALIVE=timeout="+strconv.FormatFloat(cfg.Advertise.Seconds(), 'f', -1, 64))
	}
	args := []string{"-m", "uvicorn", "app:app",
		"--host", addr.Host, "--port", strconv.Itoa(addr.Port),
		"--timeout-keep-alive", strconv.FormatInt(int64(cfg.IdleTimeout/time.Second), 10)}
	args = append(args, extraArgs...)
	var body []byte
	s.proc, body, err = real.Start(ctx, real.Spec{
		Kind:       Kind,
		Path:       python,
		Package:    "Debian package " + DebianPackage,
		Args:       args,
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
	var st appStats
	if err := json.Unmarshal(body, &st); err != nil {
		s.proc.Stop()
		os.RemoveAll(s.dir)
		return s, &upstreams.StartError{Err: fmt.Errorf("stats answer %q: %w", body, err)}
	}
	s.version = st.Version
	return s, nil
}

// Kind returns "uvicorn".
func (s *Server) Kind() string { return Kind }

// Version returns what the app reports, e.g. "uvicorn/0.17.6 (CPython 3.11.2, h11 0.14.0)".
func (s *Server) Version() string { return s.version }

// URL returns "http://127.0.0.1:PORT".
func (s *Server) URL() string { return s.addr.URL() }

// Dir is the server's private directory (removed on Close).
func (s *Server) Dir() string { return s.dir }

// Pid is the python process's id, also its process group id.
func (s *Server) Pid() int { return s.proc.Pid() }

// Closes returns nil: uvicorn does not say when it closes a connection.
func (s *Server) Closes() []upstreams.CloseRecord { return nil }

// Stats asks the app for its counts while it runs; after Close it returns the last ones.
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
	var st appStats
	if json.Unmarshal(body, &st) != nil {
		return
	}
	s.mu.Lock()
	s.stats = st.Stats
	s.mu.Unlock()
}

// Close reads the app's final counts, stops uvicorn (SIGTERM to its process group,
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

// Available reports whether python has the uvicorn module (for tests and callers that
// want to skip cleanly).
func Available() error {
	if _, err := os.Stat(python); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := real.Output(ctx, python, "-c", "import uvicorn")
	if err != nil {
		return fmt.Errorf("%s -c 'import uvicorn': %v: %s", python, err, strings.TrimSpace(string(out)))
	}
	return nil
}
