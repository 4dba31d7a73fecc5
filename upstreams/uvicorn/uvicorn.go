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
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/idlerace/idlerace/internal/real"
	"github.com/idlerace/idlerace/upstreams"
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

func init() { upstreams.RegisterStart(Kind, upstreams.Properties{}, Start) }

// Server is a running uvicorn. It implements upstreams.Upstream through real.App:
//
//	Version  what the app reports, e.g. "uvicorn/0.17.6 (CPython 3.11.2, h11 0.14.0)"
//	Pid      the python process's id, also its process group id
//	Closes   nil: uvicorn does not say when it closes a connection
//	Stats    asks the app for its counts while it runs; after Close the last ones
//	Close    reads the app's final counts, stops uvicorn (SIGTERM to its process group,
//	         SIGKILL after a grace period) and removes its directory
type Server struct {
	real.App
	cfg upstreams.Config
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
	s := &Server{cfg: cfg}
	err := real.StartApp(ctx, &s.App, real.Launcher{
		Kind:    Kind,
		Addr:    cfg.Addr,
		InUse:   "address already in use",
		Prepare: s.prepare,
	}, real.AppScript{Name: "app.py", Body: appPy, StatsPath: StatsPath})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// prepare says how to run uvicorn on app.py, listening on addr and answering token.
func (s *Server) prepare(_ string, addr real.Addr, token string) (real.Spec, error) {
	env := []string{
		"PYTHONUNBUFFERED=1",
		"PYTHONDONTWRITEBYTECODE=1",
		"IDLERACE_TOKEN=" + token,
		"IDLERACE_RESPONSE_BYTES=" + strconv.Itoa(s.cfg.ResponseBytes),
		"IDLERACE_SERVICE_TIME_S=" + strconv.FormatFloat(s.cfg.ServiceTime.Seconds(), 'f', -1, 64),
	}
	if s.cfg.Advertise > 0 {
		env = append(env, "IDLERACE_KEEP_ALIVE=timeout="+strconv.FormatFloat(s.cfg.Advertise.Seconds(), 'f', -1, 64))
	}
	args := []string{"-m", "uvicorn", "app:app",
		"--host", addr.Host, "--port", strconv.Itoa(addr.Port),
		"--timeout-keep-alive", strconv.FormatInt(int64(s.cfg.IdleTimeout/time.Second), 10)}
	return real.Spec{
		Path:    python,
		Package: "Debian package " + DebianPackage,
		Args:    append(args, extraArgs...),
		Env:     env,
	}, nil
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
