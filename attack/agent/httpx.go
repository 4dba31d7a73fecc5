package agent

import (
	_ "embed"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
)

//go:embed httpx/agent.py
var httpxAgentPy []byte

// httpx: httpx's Client with its defaults (httpcore underneath), a Client per lane.
//
// Behaviour, from httpcore 0.16 (Debian's python3-httpcore, under python3-httpx 0.23):
//   - like read-probe: ConnectionPool._close_expired_connections, at checkout, drops a
//     connection whose HTTP11Connection.has_expired() is true, which includes "IDLE
//     while its socket is readable" (a zero-timeout poll, _utils.is_socket_readable):
//     a FIN that has arrived is seen, one in flight is not.
//   - keepalive_expiry (httpx.Limits, default 5.0 s, counted from the response's end):
//     a connection idle longer expires at checkout: MaxIdle.
//   - no retry: the pool replays only ConnectionNotAvailable, a connection found busy.
var httpxAgent = &Kind{
	Name:      "httpx",
	Usage:     "httpx[:keepalive_expiry=D]",
	Idle:      &IdleSetting{Option: "keepalive_expiry"},
	Help:      "httpx's Client with its defaults (httpcore), a Client per lane, in Debian's python3",
	Files:     pythonFiles(httpxAgentPy),
	Argv:      []string{python, "agent.py"},
	Missing:   pythonMissing("httpx", "python3-httpx"),
	Version:   pythonVersion("import httpx, httpcore; print('httpx', httpx.__version__, 'httpcore', httpcore.__version__)"),
	Behaviour: pool.Behaviour{Probe: true, MaxIdle: 5 * time.Second},
}

func init() { Register(httpxAgent) }
