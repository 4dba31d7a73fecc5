package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/idlerace/idlerace/upstreams"
	"github.com/idlerace/idlerace/upstreams/builtin"
	"github.com/idlerace/idlerace/upstreams/probe"
)

// probe against the builtin: the close found, each strategy's window measured by real
// cells (blind loses every gap past the close, so it has stale failures), and a safe
// setting for every client kind with an idle option; the same as a table.
func TestProbeReportsTheServerAndSafeSettings(t *testing.T) {
	s, err := builtin.Start(context.Background(), upstreams.Config{IdleTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	code, out, stderr := run(t, "probe", "--target", s.URL()+"/", "--max-timeout", "5s", "--max-requests", "10", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var search, windows int
	if _, err := fmt.Sscanf(stderr, "probe "+s.URL()+"/: search at most %d requests", &search); err != nil {
		t.Errorf("stderr %q: want the search's bounds printed first (%v)", stderr, err)
	}
	if i := strings.Index(stderr, "probe: race windows at T = "); i < 0 {
		t.Errorf("stderr %q: want the windows' bounds printed before they run", stderr)
	} else if _, err := fmt.Sscanf(stderr[i+strings.Index(stderr[i:], "at most "):], "at most %d requests", &windows); err != nil {
		t.Errorf("windows' bounds in %q: %v", stderr[i:], err)
	}
	var res probe.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if res.RequestsSent > int64(search+windows) {
		t.Errorf("sent %d requests, bounds printed %d + %d", res.RequestsSent, search, windows)
	}
	if res.IdleTimeoutMS == nil || res.CloseMode != "fin" {
		t.Fatalf("idle %+v, mode %q", res.IdleTimeoutMS, res.CloseMode)
	}
	for _, st := range []string{"blind", "watch", "read-probe"} {
		if w, ok := res.WindowMS[st]; !ok || w.Requests == 0 {
			t.Errorf("window of %s: %+v, want a measured cell", st, w)
		}
	}
	if res.WindowMS["blind"].Stale == 0 {
		t.Errorf("blind window %+v: want stale failures past the close", res.WindowMS["blind"])
	}
	specs := map[string]string{}
	for _, r := range res.Recommendations {
		specs[r.Client] = r.Spec
		if !strings.Contains(r.Arithmetic, "earliest close") {
			t.Errorf("%s: arithmetic %q", r.Client, r.Arithmetic)
		}
	}
	if !strings.HasPrefix(specs["hyper"], "hyper:pool_idle_timeout=") || !strings.HasPrefix(specs["timeout-margin"], "timeout-margin:margin=") {
		t.Errorf("recommended specs %v", specs)
	}
	code, out, stderr = run(t, "probe", "--target", s.URL()+"/", "--max-timeout", "5s", "--max-requests", "10", "--windows=false", "-q")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"idle timeout", "close mode    fin", "safe settings:", "hyper:pool_idle_timeout="} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}
