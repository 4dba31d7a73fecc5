package agent

import (
	_ "embed"

	"github.com/idlerace/idlerace/attack/pool"
)

//go:embed requests/agent.py
var requestsAgentPy []byte

// requests: Python requests (urllib3 underneath) with its defaults, a Session per lane.
//
// Behaviour, from urllib3 1.26 (Debian's python3-urllib3):
//   - like read-probe: HTTPConnectionPool._get_conn checks a pooled connection before
//     reusing it ("If this is a persistent connection, check if it got disconnected":
//     is_connection_dropped, util/wait.py wait_for_read with timeout 0), so a FIN that
//     has arrived drops it; one still in flight does not.
//   - no retry: requests' HTTPAdapter has max_retries=DEFAULT_RETRIES (0) with
//     read=False, so urlopen raises on the first failure.
//   - no margin, no hint: neither library reads Keep-Alive: timeout=N.
var requestsAgent = &Kind{
	Name:      "requests",
	Help:      "Python requests (urllib3) with its defaults, a Session per lane, in Debian's python3",
	Files:     pythonFiles(requestsAgentPy),
	Argv:      []string{python, "agent.py"},
	Missing:   pythonMissing("requests", "python3-requests"),
	Version:   pythonVersion("import requests, urllib3; print('requests', requests.__version__, 'urllib3', urllib3.__version__)"),
	Behaviour: pool.Behaviour{Probe: true},
}

func init() { Register(requestsAgent) }
