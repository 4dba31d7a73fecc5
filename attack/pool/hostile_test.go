package pool_test

import (
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/upstreams/hostile"
)

func roundTrip(tr http.RoundTripper, url string) error {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"idlerace":true}`))
	if err != nil {
		return err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

// A 2 MiB header block fails at the limit: the pool reads at most MaxResponseHeaderBytes
// of it. Measured: parsing the whole block allocates about 1.3 MiB a request; with a
// 64 KiB limit the pool stays under 512 KiB.
func TestHugeResponseHeaderFailsAtTheLimitWithoutReadingIt(t *testing.T) {
	srv := hostile.Start(t, "huge-header", hostile.Options{})
	const limit = 64 << 10
	tr := pool.New(mustParse(t, "blind"), pool.Config{MaxResponseHeaderBytes: limit})
	defer tr.CloseIdleConnections()
	const n = 10
	// One request first: the server builds its 2 MiB response once, in this process.
	if err := roundTrip(tr, srv.URL()); !errors.Is(err, pool.ErrResponseHeaderTooLarge) {
		t.Fatalf("%v, want ErrResponseHeaderTooLarge", err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		err := roundTrip(tr, srv.URL())
		var pe *pool.Error
		if !errors.As(err, &pe) || pe.Class != pool.Other || pe.Stale() || !errors.Is(err, pool.ErrResponseHeaderTooLarge) {
			t.Fatalf("request %d: %v, want a non-stale other wrapping ErrResponseHeaderTooLarge", i, err)
		}
	}
	runtime.ReadMemStats(&after)
	if perReq := (after.TotalAlloc - before.TotalAlloc) / n; perReq > 8*limit {
		t.Fatalf("allocated %d KiB a request for a %d KiB header limit", perReq>>10, limit>>10)
	}
	if st := tr.Stats(); st.NewConns != n+1 || st.Reused != 0 {
		t.Fatalf("stats %+v: a failed connection must not be reused", st)
	}
}

// The default limit is net/http's DefaultMaxHeaderBytes, 1 MiB: under the kit's 2 MiB.
func TestDefaultHeaderLimitRejectsTheKitsHugeHeader(t *testing.T) {
	if pool.DefaultMaxResponseHeaderBytes != 1<<20 || hostile.DefaultHeaderBytes <= pool.DefaultMaxResponseHeaderBytes {
		t.Fatalf("limit %d, kit header %d", pool.DefaultMaxResponseHeaderBytes, hostile.DefaultHeaderBytes)
	}
	srv := hostile.Start(t, "huge-header", hostile.Options{})
	tr := pool.New(mustParse(t, "blind"), pool.Config{})
	defer tr.CloseIdleConnections()
	if err := roundTrip(tr, srv.URL()); !errors.Is(err, pool.ErrResponseHeaderTooLarge) {
		t.Fatalf("%v, want ErrResponseHeaderTooLarge", err)
	}
}

// "100 Continue" is not the answer: the pool reads on, and the close that follows is
// not counted as an idle-close EOF, because the server had begun to answer.
func TestCloseAfter100ContinueIsOtherNotEOF(t *testing.T) {
	srv := hostile.Start(t, "continue-then-close", hostile.Options{})
	tr := pool.New(mustParse(t, "blind"), pool.Config{})
	defer tr.CloseIdleConnections()
	for i := 0; i < 3; i++ {
		err := roundTrip(tr, srv.URL())
		if c := pool.Classify(err, true); c != pool.Other {
			t.Fatalf("request %d: class %q (%v), want other", i, c, err)
		}
	}
	if st := tr.Stats(); st.Reused != 0 {
		t.Fatalf("stats %+v: the connection after a 100 must not go back to the pool", st)
	}
}

// A response trickled slower than the request timeout fails as timeout, even though
// the parser was handed a partial status line.
func TestTrickledResponseTimesOut(t *testing.T) {
	srv := hostile.Start(t, "trickle", hostile.Options{Interval: 20 * time.Millisecond})
	for _, spec := range []string{"blind", "stdlib"} {
		tr := pool.New(mustParse(t, spec), pool.Config{RequestTimeout: 100 * time.Millisecond})
		err := roundTrip(tr, srv.URL())
		tr.CloseIdleConnections()
		if c := pool.Classify(err, true); c != pool.Timeout {
			t.Fatalf("%s: class %q (%v), want timeout", spec, c, err)
		}
	}
}
