package agent

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"strconv"

	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/internal/cargo"
)

var (
	//go:embed hyper/Cargo.toml
	hyperCargoToml []byte
	//go:embed hyper/src/main.rs
	hyperMainRs []byte
)

const hyperPackages = "cargo rustc librust-hyper-dev librust-tokio-dev librust-serde-json-dev librust-libc-dev"

// hyperProject is the agent's Rust program, built once with Debian's cargo.
var hyperProject = &cargo.Project{
	Name:  "idlerace-hyper-agent",
	Files: map[string][]byte{"Cargo.toml": hyperCargoToml, "src/main.rs": hyperMainRs},
	Log:   os.Stderr,
}

// hyper: hyper 0.14's Client, the seed's, with Client::builder()'s defaults
// (pool_idle_timeout 90 s, retry_canceled_requests true), options as hyper names them.
//
// Behaviour, from hyper 0.14.19 (Debian's librust-hyper-dev):
//   - like watch: an idle client connection's task keeps reading (proto/h1/conn.rs
//     poll_read_keep_alive -> require_empty_read: "found EOF on idle connection,
//     closing"), so a FIN that the task has run for takes the connection out of the
//     pool; one it has not run for yet is still handed out.
//   - a retry only of requests canceled before they were written on a reused
//     connection (client/client.rs retry_canceled_requests, send_request's
//     ClientError::Canceled with connection_reused): a request written into a closed
//     connection fails (IncompleteMessage, connection reset), so the model counts no
//     replay.
//   - pool_idle_timeout: a connection idle longer is not reused (MaxIdle).
//   - no hint: hyper does not read Keep-Alive: timeout=N.
var hyperAgent = &Kind{
	Idle:    &IdleSetting{Option: "pool_idle_timeout"},
	Name:    "hyper",
	Usage:   "hyper[:pool_idle_timeout=D,retry_canceled_requests=true|false,pool_max_idle_per_host=N]",
	Help:    "hyper 0.14's Client (the seed's; builder defaults), one per lane, built from Debian's crates",
	Missing: func() string { return cargo.Missing(hyperPackages, "hyper-0.14*") },
	Version: func() string {
		c := cargo.Crate("hyper-0.14*")
		if c == "" {
			return "hyper 0.14 not installed"
		}
		return c + " (Debian's crate, built on first use)"
	},
	Command: buildHyperAgent,
	Options: func(o *pool.Options) (Settings, error) {
		set := Settings{Canonical: "hyper"}
		var parts []string
		hasIdle := o.Has("pool_idle_timeout")
		idle, err := o.Duration("pool_idle_timeout", 0, false)
		if err != nil {
			return set, err
		}
		if hasIdle {
			set.Args = append(set.Args, "--pool-idle-timeout-ns", strconv.FormatInt(idle.Nanoseconds(), 10))
			parts = append(parts, "pool_idle_timeout="+idle.String())
		}
		if v, ok := o.String("retry_canceled_requests"); ok {
			if v != "true" && v != "false" {
				return set, fmt.Errorf("retry_canceled_requests: %q: want true or false", v)
			}
			set.Args = append(set.Args, "--retry-canceled-requests", v)
			parts = append(parts, "retry_canceled_requests="+v)
		}
		if hasMax := o.Has("pool_max_idle_per_host"); hasMax {
			n, err := o.Int("pool_max_idle_per_host", 0, 0, 1<<20)
			if err != nil {
				return set, err
			}
			set.Args = append(set.Args, "--pool-max-idle-per-host", strconv.Itoa(n))
			parts = append(parts, "pool_max_idle_per_host="+strconv.Itoa(n))
		}
		if len(parts) > 0 {
			set.Canonical += ":" + joinComma(parts)
		}
		if idle > 0 {
			set.Behave = func(b *pool.Behaviour) { b.MaxIdle = idle }
		}
		return set, nil
	},
	Behaviour: pool.Behaviour{Watch: true},
}

func init() { Register(hyperAgent) }

func joinComma(ps []string) string {
	var b bytes.Buffer
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p)
	}
	return b.String()
}

// buildHyperAgent compiles the agent (once; cached by its sources' hash) and says the
// hyper version Cargo.lock resolved.
func buildHyperAgent() ([]string, error) {
	bin, err := hyperProject.Build()
	if err != nil {
		return nil, fmt.Errorf("the hyper agent: %w", err)
	}
	return []string{bin, "--hyper-version", hyperProject.Locked("hyper")}, nil
}
