package agent

import (
	_ "embed"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
)

//go:embed aiohttp/agent.py
var aiohttpAgentPy []byte

// aiohttp: aiohttp's ClientSession with its defaults (a TCPConnector per lane, limit 1),
// in Debian's python3.
//
// Behaviour, from aiohttp 3.8.4 (Debian's python3-aiohttp):
//   - like watch: asyncio's transport reads a pooled connection all along, so a FIN the
//     event loop has processed marks it closed and connector.py BaseConnector._get
//     skips it ("if proto.is_connected()"); one the loop has not run for yet is reused.
//   - keepalive_timeout (TCPConnector, 15 s): a connection idle longer is closed at
//     checkout ("if t1 - t0 > self._keepalive_timeout"): MaxIdle.
//   - no retry in 3.8's ClientSession._request; no Keep-Alive hint.
var aiohttpAgent = &Kind{
	Name:      "aiohttp",
	Usage:     "aiohttp[:keepalive_timeout=D]",
	Idle:      &IdleSetting{Option: "keepalive_timeout"},
	Help:      "aiohttp's ClientSession with its defaults, a session per lane, in Debian's python3",
	Files:     pythonFiles(aiohttpAgentPy),
	Argv:      []string{python, "agent.py"},
	Missing:   pythonMissing("aiohttp", "python3-aiohttp"),
	Version:   pythonVersion("import aiohttp; print('aiohttp', aiohttp.__version__)"),
	Behaviour: pool.Behaviour{Watch: true, MaxIdle: 15 * time.Second},
}

func init() { Register(aiohttpAgent) }
