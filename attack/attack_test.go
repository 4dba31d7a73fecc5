package attack_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"go.uber.org/goleak"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/attack/pool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ids counts executions per Idlerace-Request-Id.
type ids struct {
	mu sync.Mutex
	n  map[string]int
}

func server(t *testing.T, idle time.Duration) (*httptest.Server, *ids) {
	seen := &ids{n: map[string]int{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		seen.mu.Lock()
		seen.n[r.Header.Get(attack.RequestIDHeader)]++
		seen.mu.Unlock()
		_, _ = w.Write([]byte("ok"))
	}))
	srv.Config.IdleTimeout = idle
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, seen
}

func env(t *testing.T, url, strategy string, idle time.Duration) *attack.Env {
	s, err := pool.Parse(strategy)
	if err != nil {
		t.Fatal(err)
	}
	return &attack.Env{
		Target: url, Body: []byte("x"), IdleTimeout: idle, RunID: "t", Seed: 7,
		NewTransport: func() pool.Transport { return pool.New(s, pool.Config{IdleTimeout: idle}) },
	}
}

func load(t *testing.T, spec string) attack.Load {
	l, err := attack.ParseLoad(spec)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// The sweep visits the whole window [T-w, T+w] evenly, every measured request follows a
// response on its lane's connection by its gap, and each request id reaches the server
// once. Evenness is a property of the gaps the sweep asks for (each request's intended
// send time less its lane's previous response end), which no scheduler moves; a loaded
// machine delivers some gaps later (beside a busy flake hunt, 9 of 96 measured gaps fell
// in the first quarter), so of the delivered gaps the test asserts only that none is
// shorter than asked (a timer never fires early).
func TestSweepCoversTheGapWindowEvenly(t *testing.T) {
	const T = 40 * time.Millisecond
	srv, seen := server(t, time.Hour) // the server never closes: nothing fails
	e := env(t, srv.URL, "blind", T)
	rec := attack.NewRecorder("sweep", nil)
	asked := &intendedGaps{lastEnd: map[int]time.Time{}}
	rec.Observer = asked
	// Bounded by a count, not a clock: 96 requests whatever the machine's speed (the
	// duration only catches a hang).
	if err := attack.Run(context.Background(), load(t, "sweep:lanes=8,width=10ms,duration=1m,requests=96"), e, rec); err != nil {
		t.Fatal(err)
	}
	if rec.Requests != 96 || rec.OK != rec.Requests || rec.Primes != 8 {
		t.Fatalf("requests %d ok %d primes %d", rec.Requests, rec.OK, rec.Primes)
	}
	var quart [4]int64
	asked.mu.Lock()
	for _, g := range asked.gaps {
		if g < 30*time.Millisecond || g >= 50*time.Millisecond {
			t.Errorf("asked for gap %s, outside [T-w, T+w) = [30ms, 50ms)", g)
			continue
		}
		quart[(g-30*time.Millisecond)*4/(20*time.Millisecond)]++
	}
	n := int64(len(asked.gaps))
	asked.mu.Unlock()
	t.Logf("asked gaps per quarter of [30ms, 50ms): %v of %d", quart, n)
	if n != rec.Requests {
		t.Fatalf("%d gaps asked for %d measured requests", n, rec.Requests)
	}
	for k, q := range quart {
		if q < n/8 {
			t.Errorf("quarter %d of the window was asked for %d of %d gaps: %v", k, q, n, quart)
		}
	}
	for b := range rec.Gaps.Buckets() {
		if b.Gap < 30*time.Millisecond {
			t.Fatalf("delivered gap %s shorter than T-w = 30ms", b.Gap)
		}
	}
	if st := e.Stats(); st.NewConns != 8 {
		t.Errorf("new conns %d, want one per lane", st.NewConns)
	}
	seen.mu.Lock()
	defer seen.mu.Unlock()
	if int64(len(seen.n)) != rec.Requests+rec.Primes {
		t.Errorf("server saw %d ids, want %d", len(seen.n), rec.Requests+rec.Primes)
	}
	for id, n := range seen.n {
		if n != 1 {
			t.Fatalf("id %s executed %d times", id, n)
		}
	}
}

// focus=D draws every gap from [c-D, c+D] around the server's located close c
// (Env.LocatedClose), not around T: no gap lands below c-D (a timer never fires early).
func TestSweepFocusAimsAtTheLocatedClose(t *testing.T) {
	const T = 40 * time.Millisecond
	srv, _ := server(t, time.Hour) // the server never closes: nothing fails
	e := env(t, srv.URL, "blind", T)
	e.LocatedClose = 55 * time.Millisecond // e.g. a server that closes 15 ms after its timeout
	rec := attack.NewRecorder("sweep", nil)
	asked := &intendedGaps{lastEnd: map[int]time.Time{}}
	rec.Observer = asked
	if err := attack.Run(context.Background(), load(t, "sweep:lanes=8,focus=2ms,requests=64,duration=1m"), e, rec); err != nil {
		t.Fatal(err)
	}
	for b := range rec.Gaps.Buckets() {
		if b.Gap < 53*time.Millisecond {
			t.Fatalf("delivered gap %s below c-D = 53ms", b.Gap)
		}
	}
	// Every gap asked for lies in [53ms, 57ms] (a sweep that ignored focus would ask
	// around T = 40ms); the scheduler delivers some later, which says nothing of focus.
	asked.mu.Lock()
	defer asked.mu.Unlock()
	if len(asked.gaps) != 64 {
		t.Fatalf("%d gaps asked for, want 64", len(asked.gaps))
	}
	for _, g := range asked.gaps {
		if g < 53*time.Millisecond || g > 57*time.Millisecond {
			t.Fatalf("asked for gap %s, outside c±2ms = [53ms, 57ms]", g)
		}
	}
}

// Against a server that closes idle connections at T, a blind sweep fails for the gaps
// beyond T, re-primes its lane after each failure, and every failure is stale. The rate is
// about half (the far half of the window) and moves with the machine's load: a late
// server close saves some, a late lane timer loses more; the bound only rules out a
// blind pool that does not fail, or fails everywhere. A failure's gap is the pool's idle
// age, counted from when the client read the response, which a busy client does later
// than the server's idle period began; so failures come at gaps beyond T on the median,
// not each one.
func TestSweepBlindFailsPastTheServerTimeout(t *testing.T) {
	const T = 40 * time.Millisecond
	srv, _ := server(t, T)
	e := env(t, srv.URL, "blind", T)
	rec := attack.NewRecorder("sweep", nil)
	if err := attack.Run(context.Background(), load(t, "sweep:lanes=8,width=10ms,requests=96,duration=1m"), e, rec); err != nil {
		t.Fatal(err)
	}
	rate := float64(rec.Stale) / float64(rec.Requests)
	if rate < 0.15 || rate > 0.85 {
		t.Fatalf("stale rate %.2f over %d requests, want about 0.5", rate, rec.Requests)
	}
	if rec.Primes != 8+rec.Stale {
		t.Fatalf("primes %d, want one per lane plus one per failure (%d)", rec.Primes, rec.Stale)
	}
	var gaps []time.Duration
	for _, f := range rec.StaleFailures {
		if !f.Reused {
			t.Fatalf("stale failure at gap %s on a fresh connection (idle %s, class %s)", f.Gap, f.IdleAge, f.Class)
		}
		gaps = append(gaps, f.Gap)
	}
	slices.Sort(gaps)
	if len(gaps) == 0 || gaps[len(gaps)/2] < T {
		t.Fatalf("stale failures at gaps %v: want them past the server's timeout T=%v on the median", gaps, T)
	}
}

// constant paces requests at vegeta's constant rate; latency counts from the intended
// send time, so the histogram holds every request.
func TestConstantKeepsItsRate(t *testing.T) {
	srv, _ := server(t, time.Hour)
	e := env(t, srv.URL, "blind", 100*time.Millisecond)
	var buf bytes.Buffer
	rec := attack.NewRecorder("constant", vegeta.NewCSVEncoder(&buf))
	if err := attack.Run(context.Background(), load(t, "constant:rate=200/s,duration=500ms"), e, rec); err != nil {
		t.Fatal(err)
	}
	// vegeta's pacer: hit k is due at k intervals (5ms), and none is due after 500ms. A
	// stalled pacer catches up on the hits already due and stops at the duration, so
	// the count is at most 100 and the intended times are exactly the schedule.
	if rec.Requests > 100 || rec.Requests < 50 {
		t.Fatalf("%d requests at 200/s for 500ms, want 100 (at most, and a stall costs only the last few)", rec.Requests)
	}
	if rec.Latency.TotalCount() != rec.Requests {
		t.Fatalf("histogram holds %d of %d", rec.Latency.TotalCount(), rec.Requests)
	}
	// The vegeta results decode with vegeta's own decoder.
	dec := vegeta.NewCSVDecoder(&buf)
	var n int64
	var intended []time.Time
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err != nil {
			break
		}
		if r.Code != 200 || r.Method != "POST" || !strings.HasPrefix(r.URL, "http://127.0.0.1") || r.Latency <= 0 {
			t.Fatalf("result %+v", r)
		}
		intended = append(intended, r.Timestamp)
		n++
	}
	if n != rec.Requests {
		t.Fatalf("decoded %d results, want %d", n, rec.Requests)
	}
	// The rate itself: the intended send times are the pacer's schedule, one every 5ms
	// with none skipped, however late the requests really went out.
	slices.SortFunc(intended, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(intended); i++ {
		if d := intended[i].Sub(intended[i-1]); d != 5*time.Millisecond {
			t.Fatalf("intended send times %d and %d are %v apart, want 5ms (200/s)", i-1, i, d)
		}
	}
}

// requests=N ends a constant load after N requests, long before its duration.
func TestConstantStopsAfterItsRequests(t *testing.T) {
	srv, _ := server(t, time.Hour)
	e := env(t, srv.URL, "blind", 100*time.Millisecond)
	rec := attack.NewRecorder("constant", nil)
	l := load(t, "constant:rate=1000/s,duration=1h,requests=50")
	if l.String() != "constant:rate=1000/s,duration=1h0m0s,workers=64,requests=50" {
		t.Fatalf("canonical spec %s", l)
	}
	if err := attack.Run(context.Background(), l, e, rec); err != nil {
		t.Fatal(err)
	}
	if rec.Requests != 50 || rec.OK != 50 {
		t.Fatalf("requests %d ok %d, want 50", rec.Requests, rec.OK)
	}
}

func TestLullSharesAPoolAcrossBursts(t *testing.T) {
	srv, _ := server(t, time.Hour)
	e := env(t, srv.URL, "blind", 30*time.Millisecond)
	rec := attack.NewRecorder("lull", nil)
	if err := attack.Run(context.Background(), load(t, "lull:burst=4,lulls=5"), e, rec); err != nil {
		t.Fatal(err)
	}
	if rec.Requests != 20 || rec.Primes != 4 || rec.OK != 20 {
		t.Fatalf("requests %d primes %d ok %d", rec.Requests, rec.Primes, rec.OK)
	}
	if st := e.Stats(); st.NewConns > 8 || rec.Gaps.Len() < 16 {
		t.Fatalf("new conns %d, exposed %d: the bursts should reuse the pool", st.NewConns, rec.Gaps.Len())
	}
}

func TestStopEndsTheLoadPromptly(t *testing.T) {
	srv, _ := server(t, time.Hour)
	e := env(t, srv.URL, "blind", 50*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	rec := attack.NewRecorder("sweep", nil)
	done := make(chan error)
	go func() { done <- attack.Run(ctx, load(t, "sweep:lanes=4,duration=1h"), e, rec) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the load did not stop within 5s of cancel")
	}
}

func TestParseLoadRejectsBadSpecs(t *testing.T) {
	for spec, want := range map[string]string{
		"swep":                      `unknown load "swep"`,
		"sweep:lanes=0":             "lanes",
		"sweep:duration=-1s":        "duration: must be > 0",
		"sweep:width=abc":           `width: invalid duration "abc"`,
		"sweep:width=1ms,focus=1ms": "width and focus both given",
		"sweep:focus=0s":            "focus: must be > 0",
		"sweep:lane=3":              `unknown option "lane"`,
		"constant:rate=fast":        "rate",
		"constant:rate=1000000/s":   "at most 100000/s",
		"lull:burst=0":              "burst",
	} {
		if _, err := attack.ParseLoad(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseLoad(%q) = %v, want %q", spec, err, want)
		}
	}
	for spec, canon := range map[string]string{
		"sweep":                    "sweep:lanes=32,duration=2s",
		"sweep:lanes=8,width=10ms": "sweep:lanes=8,width=10ms,duration=2s",
		"constant:rate=600/1m":     "constant:rate=10/s,duration=5s,workers=64",
		"lull":                     "lull:burst=8,lulls=20,duration=30s",
	} {
		l, err := attack.ParseLoad(spec)
		if err != nil || l.String() != canon {
			t.Errorf("ParseLoad(%q) = %v %v, want %s", spec, l, err, canon)
		}
	}
}

func TestSweepPeriodsScaleWithT(t *testing.T) {
	l := load(t, "sweep:lanes=4,periods=10")
	if d := l.Duration(200 * time.Millisecond); d != 2*time.Second {
		t.Fatalf("periods=10 at T=200ms: %s", d)
	}
	if _, err := attack.ParseLoad("sweep:duration=1s,periods=3"); err == nil || !strings.Contains(err.Error(), "choose one") {
		t.Fatalf("duration and periods together: %v", err)
	}
}

// A request that a strategy retried was exposed to the race on its first connection:
// the shared-pool loads count its gap from there, so the model sees it.
func TestRetriedRequestsKeepTheirExposure(t *testing.T) {
	srv, _ := server(t, 10*time.Millisecond) // closes every connection idle past 10ms
	e := env(t, srv.URL, "retry-only", 40*time.Millisecond)
	rec := attack.NewRecorder("lull", nil)
	if err := attack.Run(context.Background(), load(t, "lull:burst=2,lulls=4"), e, rec); err != nil {
		t.Fatal(err)
	}
	var retried int64
	for b := range rec.Gaps.Buckets() {
		retried += b.Retried
	}
	// Each of the 4 bursts finds at least one idle connection (every earlier one went back
	// to the pool), dead after the lull, so at least 4 retries. Usually all 8 requests
	// are exposed; but when a busy machine ran the priming burst's two requests one after
	// the other, they shared one connection, and the next burst's second request dials
	// (unexposed). What the test is for holds either way: every retried request counts as
	// exposed, on its first connection.
	if rec.Requests != 8 || rec.Retries < 4 || retried != rec.Retries || rec.Unexposed+rec.Gaps.Len() != rec.Requests {
		t.Fatalf("requests %d, retries %d, unexposed %d, exposed-and-retried %d", rec.Requests, rec.Retries, rec.Unexposed, retried)
	}
}

// intendedGaps records, per measured request, the gap the load asked for: its intended
// send time less the end of the previous response on its connection (one per lane).
type intendedGaps struct {
	mu      sync.Mutex
	lastEnd map[int]time.Time
	gaps    []time.Duration
}

func (o *intendedGaps) Observe(r *attack.Record) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if prev, ok := o.lastEnd[r.LocalPort]; ok && !r.Prime {
		o.gaps = append(o.gaps, r.Intended.Sub(prev))
	}
	o.lastEnd[r.LocalPort] = r.End
}
