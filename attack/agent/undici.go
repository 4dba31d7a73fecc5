package agent

import (
	_ "embed"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
)

//go:embed undici/agent.js
var undiciAgentJS []byte

// undici: Node's built-in fetch (the undici bundled in Node: 6.24 in Node 20.20) with its
// defaults, an undici Agent per lane limited to one connection.
//
// Behaviour, from undici 6 (lib/dispatcher/client.js, client-h1.js):
//   - like watch: the client reads its socket all along, so a FIN ends it ('end':
//     "other side closed") when the event loop runs; a request dispatched before then
//     goes out on the closed socket and fails (errorRequest): no retry.
//   - keepAliveTimeout 4e3: an idle socket is closed after 4 s (MaxIdle) when the server
//     sends no hint; a "Keep-Alive: timeout=N" (whole seconds, /timeout=(\d+)/) replaces
//     it with N s - keepAliveTimeoutThreshold (2e3 in undici 6), capped at
//     keepAliveMaxTimeout (600 s), and with that <= 0 the socket is not kept at all.
var undiciAgent = &Kind{
	Name:    "undici",
	Usage:   "undici[:keep_alive_timeout=D]",
	Idle:    &IdleSetting{Option: "keep_alive_timeout"},
	Help:    "Node's built-in fetch (undici) with its defaults, an undici Agent per lane, in a node process",
	Files:   jsFiles(undiciAgentJS),
	Argv:    []string{"node", "agent.js"},
	Missing: nodeMissing,
	Version: nodeVersion(`"undici " + process.versions.undici + " (node " + process.version + ")"`),
	Behaviour: pool.Behaviour{Watch: true, MaxIdle: 4 * time.Second, UseHint: true, HintOnly: true,
		HintReplacesMaxIdle: true, Margin: 2 * time.Second},
}

func init() { Register(undiciAgent) }
