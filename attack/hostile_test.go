package attack_test

import (
	"context"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"testing"
	"time"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/results"
	"github.com/idlerace/idlerace/upstreams/hostile"
)

// Every hostile server's failures get the kind's expected class, never count as the
// keep-alive race, and do not stop the load: every burst after a failure is still sent
// and recorded, each request on a connection of its own. Afterwards no file descriptor and no
// retained memory is left behind (goleak, in TestMain, checks the goroutines).
func TestHostileUpstreamsAreClassifiedAndTheLoadGoesOn(t *testing.T) {
	const requests = 10
	for _, k := range hostile.Kinds() {
		for _, strategy := range []string{"blind", "read-probe+retry-only", "stdlib"} {
			t.Run(k.Name+"/"+strategy, func(t *testing.T) {
				fds, heap := openFDs(t), liveHeap()
				// A trickle 50 times faster than the kit's 1 byte/s still takes 800ms for
				// its 40 bytes: far past the 150ms request timeout.
				srv, err := hostile.New(k.Name, hostile.Options{Interval: 20 * time.Millisecond})
				if err != nil {
					t.Fatal(err)
				}
				s, err := pool.Parse(strategy)
				if err != nil {
					t.Fatal(err)
				}
				// The kinds meant to time out get a short timeout so the test is quick; the
				// others a long one, so that a slow machine (the race detector parsing a
				// megabyte of headers) cannot turn their failure into a timeout.
				timeout := 5 * time.Second
				if slices.Contains(k.Expect, "timeout") {
					timeout = 150 * time.Millisecond
				}
				e := &attack.Env{Target: srv.URL(), Body: []byte(`{"idlerace":true}`), IdleTimeout: 10 * time.Millisecond, RunID: "h",
					NewTransport: func() pool.Transport {
						return pool.New(s, pool.Config{IdleTimeout: time.Second, RequestTimeout: timeout})
					}}
				rec := attack.NewRecorder("lull", nil)
				// Bursts of 2 on a shared pool, 10ms apart: a priming burst, then 5
				// measured ones, whatever the server does to each.
				if err := attack.Run(context.Background(), load(t, "lull:burst=2,lulls=5"), e, rec); err != nil {
					t.Fatal(err)
				}
				srv.Close()

				got := classes(rec.Failures, rec.OK)
				t.Logf("%s: %v over %d requests, %d connections", k.Name, got, rec.Requests, srv.Accepted())
				if rec.Requests != requests {
					t.Fatalf("%d requests recorded, want %d: the load must go on", rec.Requests, requests)
				}
				want := k.Expect
				for class, n := range got {
					if n > 0 && !slices.Contains(want, class) {
						t.Errorf("%d requests classified %q, want only %q", n, class, want)
					}
				}
				if rec.Stale != 0 {
					t.Errorf("%d failures counted as the keep-alive race", rec.Stale)
				}
				// A failed connection is never reused: each request dialled its own (the
				// retry strategy adds none: nothing here is stale).
				if acc := srv.Accepted(); acc < rec.Requests {
					t.Errorf("server accepted %d connections for %d requests", acc, rec.Requests)
				}
				waitFor(t, "file descriptors back to the count before the server started", func() bool { return openFDs(t) <= fds })
				// A leak of what the huge-header server sends (2 MiB a request) would
				// keep 20 MiB; nothing here should keep more than a few hundred KiB.
				if grew := liveHeap() - heap; grew > 4<<20 {
					t.Errorf("live heap grew by %d KiB", grew>>10)
				}
			})
		}
	}
}

// classes counts a recorder's outcomes by class name, "" for success.
func classes(f results.Failures, ok int64) map[string]int64 {
	m := map[string]int64{"": ok, "reset_write": f.ResetWrite, "reset_read": f.ResetRead, "eof": f.EOF, "timeout": f.Timeout, "other": f.Other}
	for k, n := range m {
		if n == 0 {
			delete(m, k)
		}
	}
	return m
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// liveHeap is the bytes of live heap objects after a full collection.
func liveHeap() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// waitFor waits for cond, an event the code under test causes (net/http closes its
// connections from its own goroutines), and fails the test if it never comes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("waited 5s for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
