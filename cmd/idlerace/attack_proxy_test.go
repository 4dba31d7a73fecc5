package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/idlerace/idlerace/internal/realtest"
	"github.com/idlerace/idlerace/results"
	"github.com/idlerace/idlerace/upstreams"
	"github.com/idlerace/idlerace/upstreams/builtin"
)

// `attack --proxy` puts a reverse proxy between the load and a target idlerace did not
// start, as a cell's proxies axis does: every request (and the lane's prime) goes
// through nginx on the load's one connection, the target executes what was answered,
// and the cell carries nginx's own account.
func TestAttackThroughAProxy(t *testing.T) {
	realtest.Require(t, "nginx (/usr/sbin/nginx)", "nginx", realtest.Executable("/usr/sbin/nginx"))
	s, err := builtin.Start(context.Background(), upstreams.Config{IdleTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Bounded by its count; the duration only catches a hang.
	code, out, stderr := run(t, "attack", "--target", s.URL()+"/", "--proxy", "nginx", "--strategy", "blind", "--idle-timeout", "200ms",
		"--load", "sweep:lanes=1,width=20ms,duration=1m,requests=16", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var sum results.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	c := sum.Cells[0]
	if c.Proxy != "nginx" || c.Hop == nil || c.Hop.Kind != "nginx" || c.Hop.Version == "" {
		t.Fatalf("proxy %q, hop %+v: want nginx's own account", c.Proxy, c.Hop)
	}
	if c.Requests != 16 || c.Hop.Requests != c.Requests+c.Primes || c.NewConns != 1 {
		t.Errorf("%d requests and %d primes on %d connections, nginx answered %d: want every one through it, on one connection", c.Requests, c.Primes, c.NewConns, c.Hop.Requests)
	}
	if st := s.Stats(); st.Executed < c.OK+c.Primes {
		t.Errorf("the target executed %d requests, the load got %d answers and %d primes through nginx: want each executed there", st.Executed, c.OK, c.Primes)
	}
}
