package agent

import (
	_ "embed"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
)

//go:embed java/Agent.java
var javaAgentSource []byte

// The JDK's own parts the java agent needs: the single-file source launcher (JDK 11+)
// runs Agent.java as it is, so there is no build to cache; Debian's Jackson reads and
// writes the protocol's JSON.
var javaClasspath = []string{"/usr/share/java/jackson-databind.jar", "/usr/share/java/jackson-core.jar", "/usr/share/java/jackson-annotations.jar"}

const javaPackages = "openjdk-17-jdk-headless libjackson2-databind-java"

// java: the JDK's java.net.http.HttpClient with its defaults (HttpClient.newHttpClient()),
// a client per lane.
//
// Behaviour, from JDK 17's jdk.internal.net.http:
//   - like watch: ConnectionPool.CleanupTrigger reads a pooled connection and removes it
//     on anything that comes in, the server's FIN included (onComplete), once the
//     selector thread runs; a request handed out first goes on the closed connection.
//   - ConnectionPool.KEEP_ALIVE (jdk.httpclient.keepalive.timeout, 1200 s): MaxIdle,
//     though only roughly: the expiry is the return time truncated to whole seconds plus
//     the keepalive (ExpiryList.add), so a connection has K-1 to K s of life, purged by the
//     selector thread's timer (purgeExpiredConnectionsAndReturnNextDeadline), not checked
//     at checkout, so a connection can be handed out a little past it.
//   - one replay of GET and HEAD only: MultiExchange.getExceptionalCF retries once on
//     ConnectionExpiredException when canRetryRequest (isIdempotentRequest: "GET",
//     "HEAD"); a POST fails with the connection's own error.
//   - no hint: JDK 17 does not read Keep-Alive: timeout=N.
//   - HTTP/2 preferred (HttpClient.Version.HTTP_2, the builder's default): on cleartext
//     the first request of each new connection (GET and POST alike) asks for an h2c
//     upgrade (Connection: Upgrade, HTTP2-Settings; Upgrade: h2c). A server that
//     refuses the upgrade answers it 400 (uvicorn 0.17 does); version=HTTP_1_1 is the
//     setting a JDK user then reaches for.
var javaAgent = &Kind{
	Name:    "java",
	Usage:   "java[:keepalive_timeout=D,version=HTTP_2|HTTP_1_1]",
	Idle:    &IdleSetting{Option: "keepalive_timeout", WholeSeconds: true},
	Options: javaOptions,
	Help:    "the JDK's java.net.http.HttpClient with its defaults, a client per lane, run from source by the JDK",
	Files:   map[string][]byte{"Agent.java": javaAgentSource},
	Argv: []string{"java", "-cp", strings.Join(javaClasspath, ":"),
		"--add-opens", "java.net.http/jdk.internal.net.http=ALL-UNNAMED", "Agent.java"},
	Missing: func() string {
		if _, err := exec.LookPath("java"); err != nil {
			return "java is not on PATH: apt-get install " + javaPackages
		}
		for _, jar := range javaClasspath {
			if _, err := os.Stat(jar); err != nil {
				return "no " + jar + ": apt-get install libjackson2-databind-java"
			}
		}
		return ""
	},
	Version: func() string {
		out, err := exec.Command("java", "-version").CombinedOutput()
		if err != nil {
			return "java: " + err.Error()
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return first
	},
	Behaviour: pool.Behaviour{Watch: true, MaxIdle: 1200 * time.Second, Retries: 1, RetryMethods: "GET HEAD"},
}

func init() { Register(javaAgent) }

// javaOptions reads keepalive_timeout (as every kind's idle option) and version, the
// HttpClient.Version the client prefers.
func javaOptions(o *pool.Options) (Settings, error) {
	set, err := idleOption("java", "keepalive_timeout", true)(o)
	if err != nil {
		return set, err
	}
	v, err := o.Enum("version", "HTTP_2", "HTTP_2", "HTTP_1_1")
	if err != nil {
		return set, err
	}
	if v != "HTTP_2" {
		set.Args = append(set.Args, "--version", v)
		if set.Canonical == "java" {
			set.Canonical += ":version=" + v
		} else {
			set.Canonical += ",version=" + v
		}
	}
	return set, nil
}
