package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
)

var (
	//go:embed hyper/Cargo.toml
	hyperCargoToml []byte
	//go:embed hyper/src/main.rs
	hyperMainRs []byte
)

// hyperCargoConfig builds offline against the crates Debian installs: crates.io is
// replaced by the directory source of librust-*-dev.
const hyperCargoConfig = `[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "/usr/share/cargo/registry"

[net]
offline = true
`

const (
	debianCargo    = "/usr/bin/cargo"
	debianRegistry = "/usr/share/cargo/registry"
	hyperPackages  = "cargo rustc librust-hyper-dev librust-tokio-dev librust-serde-json-dev librust-libc-dev"
	hyperBuildCap  = 10 * time.Minute
)

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
	Idle:  &IdleSetting{Option: "pool_idle_timeout"},
	Name:  "hyper",
	Usage: "hyper[:pool_idle_timeout=D,retry_canceled_requests=true|false,pool_max_idle_per_host=N]",
	Help:  "hyper 0.14's Client (the seed's; builder defaults), one per lane, built from Debian's crates",
	Missing: func() string {
		if _, err := os.Stat(debianCargo); err != nil {
			return "no Debian cargo: apt-get install " + hyperPackages
		}
		if m, _ := filepath.Glob(filepath.Join(debianRegistry, "hyper-0.14*")); len(m) == 0 {
			return "no hyper 0.14 crate in " + debianRegistry + ": apt-get install " + hyperPackages
		}
		return ""
	},
	Version: func() string {
		m, _ := filepath.Glob(filepath.Join(debianRegistry, "hyper-0.14*"))
		if len(m) == 0 {
			return "hyper 0.14 not installed"
		}
		return filepath.Base(m[len(m)-1]) + " (Debian's crate, built on first use)"
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

var hyperBuild struct {
	sync.Mutex
	argv []string
}

// buildHyperAgent compiles the agent with Debian's cargo, offline, into a cache
// directory named by the sources' hash, once: later cells and runs reuse the binary.
func buildHyperAgent() ([]string, error) {
	hyperBuild.Lock()
	defer hyperBuild.Unlock()
	if hyperBuild.argv != nil {
		return hyperBuild.argv, nil
	}
	h := sha256.New()
	h.Write(hyperCargoToml)
	h.Write(hyperMainRs)
	h.Write([]byte(hyperCargoConfig))
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "idlerace", "hyper-agent-"+hex.EncodeToString(h.Sum(nil))[:16])
	bin := filepath.Join(dir, "target", "release", "idlerace-hyper-agent")
	if _, err := os.Stat(bin); err != nil {
		if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Join(dir, ".cargo"), 0o755); err != nil {
			return nil, err
		}
		for name, data := range map[string][]byte{"Cargo.toml": hyperCargoToml, "src/main.rs": hyperMainRs, ".cargo/config.toml": []byte(hyperCargoConfig)} {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				return nil, err
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), hyperBuildCap)
		defer cancel()
		cmd := exec.CommandContext(ctx, debianCargo, "build", "--release", "--offline", "--quiet")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CARGO_HOME="+filepath.Join(dir, "cargo-home"), "CARGO_TERM_COLOR=never")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		fmt.Fprintf(os.Stderr, "idlerace: building the hyper agent with Debian's cargo (once, into %s)\n", dir)
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("building the hyper agent: %v: %s", err, lastBytes(out.Bytes(), 2000))
		}
	}
	argv := []string{bin, "--hyper-version", lockedVersion(filepath.Join(dir, "Cargo.lock"), "hyper")}
	hyperBuild.argv = argv
	return argv, nil
}

// lockedVersion is the version of crate name in a Cargo.lock.
func lockedVersion(lock, name string) string {
	b, err := os.ReadFile(lock)
	if err != nil {
		return "unknown"
	}
	m := regexp.MustCompile(`name = "` + regexp.QuoteMeta(name) + `"\nversion = "([^"]+)"`).FindSubmatch(b)
	if m == nil {
		return "unknown"
	}
	return string(m[1])
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}
