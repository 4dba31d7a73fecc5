package pool_test

import (
	"testing"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
)

// adaptive-margin trusts the configured T until its watchers have seen learn closes,
// then reuses a connection idle less than what it learned and declines an older one,
// however long T says it may idle.
func TestAdaptiveMarginLearnsTheCloseFromItsWatchers(t *testing.T) {
	srv := newTestServer(t, "")
	spec := mustParse(t, "adaptive-margin:learn=2")
	tr := pool.New(spec, pool.Config{IdleTimeout: 5 * time.Second})
	t.Cleanup(tr.CloseIdleConnections)
	learner := spec.Parts[0].(interface {
		Learned() (int, time.Duration, int64, time.Duration, bool)
	})
	// Two closes, each after the connection idled 1 s (a stall of that long between two requests is what would make the back-to-back reuse below fail) (a wait for the server's turn,
	// not a bound): the watcher sees each at an idle age of 1 s or more.
	for i := 1; i <= 2; i++ {
		if _, _, _, _, ok := learner.Learned(); ok {
			t.Fatalf("learned after %d closes, want 2", i-1)
		}
		if r := do(t, tr, srv.url()); r.err != nil || r.reused {
			t.Fatalf("request %d: %+v, want success on a new connection", i, r)
		}
		time.Sleep(time.Second)
		srv.closeIdle(false)
		for deadline := time.Now().Add(5 * time.Second); tr.Stats().WatchCloses != int64(i); time.Sleep(100 * time.Microsecond) {
			if time.Now().After(deadline) {
				t.Fatalf("watch closes %d 5s after the FIN, want %d", tr.Stats().WatchCloses, i)
			}
		}
	}
	closes, limit, after, _, ok := learner.Learned()
	if !ok || closes != 2 || after != 2 {
		t.Fatalf("learned %v from %d closes after %d responses, want learned from 2 after 2", ok, closes, after)
	}
	// q05 = q50 = the first close's age (≥ 1 s), less the guard max(1 ms, 1%).
	if limit < 989*time.Millisecond {
		t.Fatalf("limit %v, want the 1 s closes less a guard of at most 1%%", limit)
	}
	if r := do(t, tr, srv.url()); r.err != nil || r.reused {
		t.Fatalf("after learning: %+v, want a new connection (the old one is closed)", r)
	}
	if r := do(t, tr, srv.url()); r.err != nil || !r.reused {
		t.Fatalf("back to back: %+v, want the connection reused (idle far less than %v)", r, limit)
	}
	time.Sleep(limit + 10*time.Millisecond) // idle past what it learned, far below T
	if r := do(t, tr, srv.url()); r.err != nil || r.reused {
		t.Fatalf("idle past the learned %v: %+v, want a new connection", limit, r)
	}
	if st := tr.Stats(); st.Discards != 1 {
		t.Fatalf("stats %+v, want the one discard past the learned close", st)
	}
	// Our own close of the idle connection wakes its watcher too: that is no sample of
	// the server's close (before, every cell's end added one at any idle age).
	tr.CloseIdleConnections()
	if n, _, _, _, _ := learner.Learned(); n != 2 {
		t.Fatalf("%d closes after closing our own idle connection, want still 2", n)
	}
}
