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
	"fmt"
	"strconv"
	"time"

	"github.com/idlerace/idlerace/internal/real"
	"github.com/idlerace/idlerace/upstreams"
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

func init() { upstreams.RegisterStart(Kind, upstreams.Properties{}, Start) }

// Server is a running node. It implements upstreams.Upstream through real.App:
//
//	Version  "node/vX.Y.Z" as the script reports process.version
//	Pid      node's process id, also its process group id
//	Closes   nil: the script counts idle closes but does not time them
//	Stats    asks the script for its counts while it runs; after Close the last ones.
//	         Accepted excludes the connections idlerace made itself to poll the script.
//	Close    reads the script's final counts, stops node (SIGTERM to its process group,
//	         SIGKILL after a grace period) and removes its directory
type Server struct {
	real.App
	cfg upstreams.Config
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
	s := &Server{cfg: cfg}
	err := real.StartApp(ctx, &s.App, real.Launcher{
		Kind:    Kind,
		Addr:    cfg.Addr,
		InUse:   "EADDRINUSE",
		Prepare: s.prepare,
	}, real.AppScript{Name: "server.js", Body: serverJS, StatsPath: StatsPath, OwnConnsCounted: true})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// prepare says how to run node on server.js, listening on addr and answering token.
func (s *Server) prepare(_ string, addr real.Addr, token string) (real.Spec, error) {
	return real.Spec{
		Path:    binary,
		Package: "Debian package " + DebianPackage,
		Args:    append(append([]string{}, extraArgs...), "server.js"),
		Env: []string{
			"IDLERACE_HOST=" + addr.Host,
			"IDLERACE_PORT=" + strconv.Itoa(addr.Port),
			"IDLERACE_KEEP_ALIVE_MS=" + strconv.FormatInt(s.cfg.IdleTimeout.Milliseconds(), 10),
			"IDLERACE_MAX_REQUESTS=" + strconv.Itoa(s.cfg.MaxRequests),
			"IDLERACE_RESPONSE_BYTES=" + strconv.Itoa(s.cfg.ResponseBytes),
			"IDLERACE_SERVICE_TIME_MS=" + strconv.FormatInt(s.cfg.ServiceTime.Milliseconds(), 10),
			"IDLERACE_TOKEN=" + token,
		},
	}, nil
}
