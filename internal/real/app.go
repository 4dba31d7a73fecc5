package real

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/idlerace/idlerace/upstreams"
)

// App is a running real server whose counters live in a script idlerace ships with the
// kind (node's server.js, uvicorn's app.py): the script answers GET on its stats path
// with its counts, the readiness token and the server's version as JSON. A kind embeds
// it and so implements upstreams.Upstream; StartApp starts it.
type App struct {
	Server
	script AppScript

	mu    sync.Mutex
	stats upstreams.Stats // the last counts read from the script
}

// AppScript is the script an App runs: its file, where it answers its counts and what
// they include.
type AppScript struct {
	Name string // the file the script is written to in the server's directory: "server.js"
	Body []byte
	// StatsPath answers the counts as JSON; it is the readiness path too.
	StatsPath string
	// OwnConnsCounted: the script counts every connection it accepts, idlerace's own
	// polls among them; Stats subtracts those from Accepted.
	OwnConnsCounted bool
}

// appAnswer is the script's answer on AppScript.StatsPath.
type appAnswer struct {
	upstreams.Stats
	Token   string `json:"token"`
	Version string `json:"version"`
}

// StartApp starts the server l describes into a (Launch), with script written into its
// directory before l.Prepare runs, and waits until the script answers on its stats path;
// the first answer gives the version. Close reads the final counts before it stops the
// server.
func StartApp(ctx context.Context, a *App, l Launcher, script AppScript) error {
	a.script = script
	prepare := l.Prepare
	l.Prepare = func(dir string, addr Addr, token string) (Spec, error) {
		if err := os.WriteFile(filepath.Join(dir, script.Name), script.Body, 0o644); err != nil {
			return Spec{}, err
		}
		sp, err := prepare(dir, addr, token)
		sp.ReadyPath = script.StatsPath
		return sp, err
	}
	l.Ready = func(body []byte) error {
		var ans appAnswer
		if err := json.Unmarshal(body, &ans); err != nil {
			return fmt.Errorf("stats answer %q: %w", body, err)
		}
		a.version = ans.Version
		return nil
	}
	l.BeforeStop = a.refresh
	return Launch(ctx, &a.Server, l)
}

// Stats asks the app for its counts while it runs; after Close it returns the last ones.
func (a *App) Stats() upstreams.Stats {
	a.refresh()
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// refresh reads the app's counts, unless it has exited.
func (a *App) refresh() {
	select {
	case <-a.proc.Exited():
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := a.proc.Get(ctx, a.script.StatsPath)
	if err != nil {
		return
	}
	var ans appAnswer
	if json.Unmarshal(body, &ans) != nil {
		return
	}
	if a.script.OwnConnsCounted {
		ans.Accepted = max(ans.Accepted-a.proc.OwnConns(), 0)
	}
	a.mu.Lock()
	a.stats = ans.Stats
	a.mu.Unlock()
}
