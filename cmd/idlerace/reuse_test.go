package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/idlerace/idlerace/results"
	"github.com/idlerace/idlerace/upstreams"
	"github.com/idlerace/idlerace/upstreams/builtin"
)

// Against a server that closes after every response nothing is reused, so nothing can
// race: the cell says so (a finding, RESET% n/a, not_measured in the JSON) instead of a
// reset rate of 0 that reads "safe"; the same server without the limit is measured.
func TestAttackWithoutReuseSaysTheRaceWasNotMeasured(t *testing.T) {
	// Bounded by its count; the duration only catches a hang.
	load := "sweep:lanes=8,width=100ms,duration=1m,requests=80"
	for _, tc := range []struct {
		maxRequests int
		measured    bool
	}{{1, false}, {0, true}} {
		s, err := builtin.Start(context.Background(), upstreams.Config{IdleTimeout: 200 * time.Millisecond, MaxRequests: tc.maxRequests})
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"attack", "--target", s.URL() + "/", "--strategy", "blind", "--idle-timeout", "200ms", "--load", load}
		code, out, stderr := run(t, append(args, "--format", "json")...)
		if code != 0 {
			s.Close()
			t.Fatalf("max requests %d: exit %d: %s", tc.maxRequests, code, stderr)
		}
		var sum results.Summary
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			s.Close()
			t.Fatal(err)
		}
		c := sum.Cells[0]
		if c.Status.S2xx != c.OK || c.Requests != 80 {
			t.Errorf("max requests %d: status %+v of %d requests (%d ok): want 80 requests, every answer 2xx", tc.maxRequests, c.Status, c.Requests, c.OK)
		}
		if tc.maxRequests == 1 {
			if c.ClosingResponses != c.Status.Total() {
				t.Errorf("closing responses %d of %d: want every one", c.ClosingResponses, c.Status.Total())
			}
		} else if c.ClosingResponses != 0 || c.Reused == 0 {
			t.Errorf("keep-alive server: %d closing responses, %d reused", c.ClosingResponses, c.Reused)
		}
		if got := c.NotMeasured == ""; got != tc.measured {
			t.Errorf("max requests %d: reused %d, closing responses %d, not_measured %q: want measured %v", tc.maxRequests, c.Reused, c.ClosingResponses, c.NotMeasured, tc.measured)
		}
		if tc.measured {
			s.Close()
			continue
		}
		if c.Reused != 0 {
			t.Errorf("reused %d against a server that closes after every response", c.Reused)
		}
		code, out, stderr = run(t, args...)
		s.Close()
		if code != 0 {
			t.Fatalf("table: exit %d: %s", code, stderr)
		}
		if !strings.Contains(out+stderr, "did not measure the race") || !strings.Contains(out, " n/a ") {
			t.Errorf("stdout:\n%s\nstderr:\n%s\nwant the finding and RESET%% n/a", out, stderr)
		}
	}
}
