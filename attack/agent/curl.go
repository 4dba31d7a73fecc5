package agent

import (
	_ "embed"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
)

//go:embed curl/agent.py
var curlAgentPy []byte

// curl: libcurl's easy interface with its defaults, through Debian's python3-pycurl, an
// easy handle (and its connection cache) per lane.
//
// Behaviour, from libcurl 7.88 (Debian's libcurl4):
//   - like read-probe: lib/url.c extract_if_dead checks a cached connection before
//     reusing it (Curl_conn_is_alive: a zero-timeout poll), so a FIN that has arrived
//     is seen, one in flight is not.
//   - CURLOPT_MAXAGE_CONN (default 118 s): a connection idle longer is not reused.
//   - one hidden retry, any method: lib/transfer.c Curl_retry_request replays a request
//     that got no response byte on a reused connection on a fresh one ("Connection
//     died, retrying a fresh connect"); the fresh one cannot be stale, so one replay is
//     all it ever takes.
var curlAgent = &Kind{
	Name:      "curl",
	Usage:     "curl[:maxage_conn=D]",
	Idle:      &IdleSetting{Option: "maxage_conn", WholeSeconds: true},
	Help:      "libcurl's connection cache with its defaults (pycurl), an easy handle per lane, in Debian's python3",
	Files:     pythonFiles(curlAgentPy),
	Argv:      []string{python, "agent.py"},
	Missing:   pythonMissing("pycurl", "python3-pycurl"),
	Version:   pythonVersion("import pycurl; print('libcurl', pycurl.version_info()[1], 'pycurl', pycurl.version.split()[0].split('/')[1])"),
	Behaviour: pool.Behaviour{Probe: true, MaxIdle: 118 * time.Second, Retries: 1},
}

func init() { Register(curlAgent) }
