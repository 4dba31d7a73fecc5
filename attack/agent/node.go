package agent

import (
	_ "embed"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
)

//go:embed node/agent.js
var nodeAgentJS []byte

// node-agent: Node's http.Agent with keepAlive: true, as a user gets it.
//
// Behaviour, from lib/_http_agent.js (Node 20):
//   - like hint-margin with a margin of 1 s: keepSocketAlive reads the response's
//     "Keep-Alive: timeout=N" (/^timeout=(\d+)/, whole seconds) and sets the free
//     socket's timeout to N*1000 - HTTP_AGENT_KEEP_ALIVE_TIMEOUT_BUFFER (1000 ms),
//     "to reduce the likelihood of ECONNRESET errors"; with N <= 1 it does not keep
//     the socket at all (canKeepSocketAlive = false). A server that sends no
//     Keep-Alive header (nginx, uvicorn, Go's net/http by default) gets no margin.
//   - like watch: a free socket's 'close' removes it from the free list
//     (installListeners: onClose, onRemove), and a server's FIN closes it (allowHalfOpen
//     is false), but only when the event loop gets to it: a request handed to the agent
//     first goes out on the closed socket.
//   - no retry of its own.
//
// The model reads the hint as a decimal (the builtin sends timeout=0.2 at T = 200ms);
// Node reads its whole seconds only, which for the builtin's sub-second hints means the
// same thing: never reuse.
var nodeAgent = &Kind{
	Name:      "node-agent",
	Help:      "Node's http.Agent (keepAlive: true), one per lane, in a node process",
	Files:     jsFiles(nodeAgentJS),
	Argv:      []string{"node", "agent.js"},
	Missing:   nodeMissing,
	Version:   nodeVersion(`"node " + process.version`),
	Behaviour: pool.Behaviour{Watch: true, UseHint: true, HintOnly: true, Margin: time.Second},
}

func init() { Register(nodeAgent) }
