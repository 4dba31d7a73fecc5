//go:build soak

package matrix_test

// The soak test (issue 8, "Long runs"), run by `make soak`, never by `make test`: constant
// load at SOAK_RATE requests/s (default 2000) for SOAK_DURATION (default 10m) through
// every strategy of the default matrix against the builtin upstream with idle timeout
// SOAK_IDLE_TIMEOUT (default 1s). It fails if a process's RSS, open fds or goroutines grow
// by more than SOAK_MAX_GROWTH (default 5%) from the first tenth of the run to the last
// (minute 1 to minute 10).
//
// The load has SOAK_WORKERS workers (default 8; 2,000/s at ~1 ms needs 2): with the
// constant load's default 64, every stall of the 2 shared cores let a pool open up to 64
// connections, which the strategies that keep dead connections idle (blind) hold until
// they reuse them; open fds then swung between 32 and 138 within a minute, ~15 KiB of RSS
// each, and minute 10 caught a higher swing than minute 1 in most strategies. That is
// the pool's working set following the machine, bounded by its workers, not a leak: with
// it capped, what grows is what the harness keeps. Capped, no connection idles for T
// either, so the builtin closes each connection after 100 requests (max-requests=100,
// with Connection: close): 20 new connections a second, 12,000 in the run, through
// every per-connection path (dial, accept, the server's close record, the close matcher).
//
// One child process per strategy (this test binary again, running TestSoakChild), all at
// once: seven strategies in sequence would take 70 minutes; in parallel the soak takes
// the run's duration and each process's numbers are its strategy's alone (its pool, its
// load, its own builtin upstream, which runs in-process as it does in `idlerace run`).
// Each child samples itself SOAK_SAMPLES times (default 60: every 10 s of 10 minutes):
// VmRSS from /proc/self/status, the entries of /proc/self/fd, runtime.NumGoroutine.
//
// A minute's value in the table is the median of its samples (six at the defaults;
// minute 1 leaves out its first 20 s, the warm-up). A metric fails when it grew from minute
// 1 to minute 10 by more than the limit and its whole band moved up (see grew): the pool's
// swing between a few and 64 connections is not a leak. Everything binds loopback; every
// child is bounded by the load's duration and killed at twice it plus a minute.
//
// For finding what grows: SOAK_STRATEGIES (comma-separated, e.g. "blind,stdlib") runs only
// those strategies; SOAK_PROFILE_DIR makes each child write a heap profile after a GC at
// the end of minute 1 and of the run (<strategy>.heap1.pprof, <strategy>.heap10.pprof), to
// compare with `go tool pprof -base`. The table's HEAP columns are the live heap the last
// GC marked (runtime/metrics /gc/heap/live:bytes): the retained memory RSS is made of.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idlerace/idlerace/matrix"
)

const (
	soakChildEnv = "IDLERACE_SOAK_CHILD" // the strategy a child process runs
	sampleTag    = "soak-sample "
	cellTag      = "soak-cell "
)

type soakConfig struct {
	duration, idleTimeout time.Duration
	rate, workers         int
	samples               int
	maxGrowth             float64
}

func soakConfigFromEnv(t *testing.T) soakConfig {
	c := soakConfig{duration: 10 * time.Minute, idleTimeout: time.Second, rate: 2000, workers: 8, samples: 60, maxGrowth: 0.05}
	var err error
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		if c.duration, err = time.ParseDuration(v); err != nil || c.duration < 10*time.Second {
			t.Fatalf("SOAK_DURATION=%q: want a duration of at least 10s", v)
		}
	}
	if v := os.Getenv("SOAK_IDLE_TIMEOUT"); v != "" {
		if c.idleTimeout, err = time.ParseDuration(v); err != nil || c.idleTimeout <= 0 {
			t.Fatalf("SOAK_IDLE_TIMEOUT=%q: want a duration > 0", v)
		}
	}
	if v := os.Getenv("SOAK_RATE"); v != "" {
		if c.rate, err = strconv.Atoi(v); err != nil || c.rate < 1 || c.rate > 100_000 {
			t.Fatalf("SOAK_RATE=%q: want requests/s from 1 to 100000", v)
		}
	}
	if v := os.Getenv("SOAK_WORKERS"); v != "" {
		if c.workers, err = strconv.Atoi(v); err != nil || c.workers < 1 || c.workers > 10_000 {
			t.Fatalf("SOAK_WORKERS=%q: want 1 to 10000 workers", v)
		}
	}
	if v := os.Getenv("SOAK_SAMPLES"); v != "" {
		if c.samples, err = strconv.Atoi(v); err != nil || c.samples < 20 || c.samples > 6000 {
			t.Fatalf("SOAK_SAMPLES=%q: want 20 to 6000 samples", v)
		}
	}
	if v := os.Getenv("SOAK_MAX_GROWTH"); v != "" {
		pct, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
		if err != nil || pct < 0 {
			t.Fatalf("SOAK_MAX_GROWTH=%q: want a percentage such as 5%%", v)
		}
		c.maxGrowth = pct / 100
	}
	return c
}

// soakSample is one child's view of itself.
type soakSample struct {
	AtS     float64 `json:"at_s"` // since the child started its cell
	RSSKiB  int64   `json:"rss_kib"`
	AnonKiB int64   `json:"anon_kib"` // RssAnon: RSS less the binary's file pages
	// LiveHeapKiB is the heap the last GC found live (/gc/heap/live:bytes): what the
	// process retains, without the GC's headroom or the pages the scavenger has not
	// returned yet.
	LiveHeapKiB int64 `json:"live_heap_kib"`
	FDs         int   `json:"fds"`
	Goroutines  int   `json:"goroutines"`
	// FileKiB is RssFile (the binary's pages read in so far) and Mem the runtime's own
	// account of its memory (runtime/metrics /memory/classes, KiB), for telling what an
	// RSS rise is made of: live objects, the GC's headroom, free pages not yet returned,
	// stacks, metadata.
	FileKiB int64            `json:"file_kib"`
	Mem     map[string]int64 `json:"mem_kib"`
}

// soakCell is what a child's cell measured.
type soakCell struct {
	Requests   int64   `json:"requests"`
	OK         int64   `json:"ok"`
	Stale      int64   `json:"stale"`
	NewConns   int64   `json:"new_conns"`
	P99US      int64   `json:"p99_us"`
	DurationMS float64 `json:"duration_ms"`
}

// soakStrategies are the default matrix's strategies, each once.
// SOAK_STRATEGIES, when set, keeps only the strategies it names.
func soakStrategies(t *testing.T) []string {
	var out []string
	for _, c := range matrix.Default() {
		if !slices.Contains(out, c.Strategy) {
			out = append(out, c.Strategy)
		}
	}
	if v := os.Getenv("SOAK_STRATEGIES"); v != "" {
		want := strings.Split(v, ",")
		for _, w := range want {
			if !slices.Contains(out, w) {
				t.Fatalf("SOAK_STRATEGIES=%q: %q is not a strategy of the default matrix (%s)", v, w, strings.Join(out, ", "))
			}
		}
		out = slices.DeleteFunc(out, func(s string) bool { return !slices.Contains(want, s) })
	}
	return out
}

func TestSoak(t *testing.T) {
	if os.Getenv(soakChildEnv) != "" {
		t.Skip("a soak child runs TestSoakChild only")
	}
	cfg := soakConfigFromEnv(t)
	strategies := soakStrategies(t)
	t.Logf("soak: %d strategies at once, each constant %d/s with %d workers for %s, T=%s, %d samples, max growth %.1f%%; %d CPUs",
		len(strategies), cfg.rate, cfg.workers, cfg.duration, cfg.idleTimeout, cfg.samples, 100*cfg.maxGrowth, runtime.NumCPU())
	ctx, cancel := context.WithTimeout(context.Background(), 2*cfg.duration+time.Minute)
	defer cancel()

	type result struct {
		strategy string
		samples  []soakSample
		cell     *soakCell
		err      error
		stderr   strings.Builder
	}
	res := make([]*result, len(strategies))
	var wg sync.WaitGroup
	for i, s := range strategies {
		r := &result{strategy: s}
		res[i] = r
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSoakChild$", "-test.count=1", "-test.timeout=0")
		cmd.Env = append(os.Environ(), soakChildEnv+"="+s)
		cmd.Stderr = &r.stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("%s: starting the child: %v", s, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			var tail []string // the child's other output, for a failure
			for sc.Scan() {
				line := sc.Text()
				switch {
				case strings.HasPrefix(line, sampleTag):
					var smp soakSample
					if err := json.Unmarshal([]byte(strings.TrimPrefix(line, sampleTag)), &smp); err == nil {
						r.samples = append(r.samples, smp)
					}
				case strings.HasPrefix(line, cellTag):
					r.cell = &soakCell{}
					if err := json.Unmarshal([]byte(strings.TrimPrefix(line, cellTag)), r.cell); err != nil {
						r.cell = nil
					}
				default:
					tail = append(tail, line)
					if len(tail) > 20 {
						tail = tail[1:]
					}
				}
			}
			if err := cmd.Wait(); err != nil {
				r.err = fmt.Errorf("%v; stdout: %s; stderr: %s", err, strings.Join(tail, " | "), lastLines(r.stderr.String(), 20))
			}
		}()
	}
	wg.Wait()
	if dir := os.Getenv("SOAK_SAMPLES_DIR"); dir != "" {
		for _, r := range res {
			b, _ := json.Marshal(r.samples)
			_ = os.WriteFile(fmt.Sprintf("%s/%s.json", dir, fileName(r.strategy)), b, 0o644)
		}
	}

	// The table: each metric at minutes 1, 5 and 10 (tenths of the run), per strategy.
	tenth := cfg.duration / 10
	fmt.Printf("\nsoak: constant %d/s for %s per strategy, T=%s, all %d at once on %d CPUs; median of each minute's samples\n",
		cfg.rate, cfg.duration, cfg.idleTimeout, len(strategies), runtime.NumCPU())
	fmt.Printf("%-28s %8s %8s %8s  %7s %7s  %6s %6s %6s  %5s %5s %5s  %9s %8s %7s %6s\n", "STRATEGY",
		"RSS@1", "RSS@5", "RSS@10", "HEAP@1", "HEAP@10", "FD@1", "FD@5", "FD@10", "GR@1", "GR@5", "GR@10", "REQUESTS", "REQ/S", "STALE", "CONNS")
	var failures []string
	for _, r := range res {
		if r.err != nil {
			t.Errorf("%s: the child failed: %v", r.strategy, r.err)
			continue
		}
		if r.cell == nil {
			t.Errorf("%s: the child reported no cell", r.strategy)
			continue
		}
		// window returns a metric's samples in minute m of 10; minute 1 leaves out its
		// first third (the start's burst of connections, the heap finding its size).
		window := func(minute int, metric func(soakSample) float64) []float64 {
			from, to := tenth*time.Duration(minute-1), tenth*time.Duration(minute)
			if minute == 1 {
				from = tenth / 3
			}
			var vs []float64
			for _, s := range r.samples {
				if at := time.Duration(s.AtS * float64(time.Second)); at > from && at <= to {
					vs = append(vs, metric(s))
				}
			}
			if len(vs) == 0 {
				t.Errorf("%s: no samples in minute %d of 10 (%d samples in all)", r.strategy, minute, len(r.samples))
			}
			return vs
		}
		rss := func(s soakSample) float64 { return float64(s.RSSKiB) / 1024 }
		fds := func(s soakSample) float64 { return float64(s.FDs) }
		grs := func(s soakSample) float64 { return float64(s.Goroutines) }
		var row [3][3]float64
		for i, m := range []func(soakSample) float64{rss, fds, grs} {
			for j, minute := range []int{1, 5, 10} {
				row[i][j] = median(window(minute, m))
			}
		}
		heap := func(s soakSample) float64 { return float64(s.LiveHeapKiB) / 1024 }
		c := r.cell
		fmt.Printf("%-28s %7.1fM %7.1fM %7.1fM  %6.2fM %6.2fM  %6.0f %6.0f %6.0f  %5.0f %5.0f %5.0f  %9d %8.0f %7d %6d\n", r.strategy,
			row[0][0], row[0][1], row[0][2], median(window(1, heap)), median(window(10, heap)),
			row[1][0], row[1][1], row[1][2], row[2][0], row[2][1], row[2][2],
			c.Requests, float64(c.Requests)/(c.DurationMS/1000), c.Stale, c.NewConns)
		for i, name := range []string{"RSS (MiB)", "open fds", "goroutines"} {
			m := []func(soakSample) float64{rss, fds, grs}[i]
			first, last := window(1, m), window(10, m)
			if grew(first, last, cfg.maxGrowth) {
				failures = append(failures, fmt.Sprintf("soak: FAIL %s: %s grew %.1f%% from minute 1 to minute 10 (median %.1f -> %.1f, range %.1f..%.1f -> %.1f..%.1f; at most %.1f%%)",
					r.strategy, name, 100*(median(last)/median(first)-1), median(first), median(last),
					slices.Min(first), slices.Max(first), slices.Min(last), slices.Max(last), 100*cfg.maxGrowth))
			}
		}
		if c.Requests < int64(float64(cfg.rate)*cfg.duration.Seconds()*0.9) {
			t.Logf("%s: %d requests, %.0f%% of the %d/s asked: the machine did not keep up", r.strategy, c.Requests,
				100*float64(c.Requests)/(float64(cfg.rate)*cfg.duration.Seconds()), cfg.rate)
		}
	}
	for _, f := range failures {
		fmt.Println(f)
		t.Error(f)
	}
	if len(failures) == 0 && !t.Failed() {
		fmt.Printf("soak: ok: no strategy's RSS, fds or goroutines grew more than %.1f%% from minute 1 to minute 10\n", 100*cfg.maxGrowth)
	}
}

// TestSoakChild is one strategy's process of TestSoak: it runs the cell and samples
// itself, printing each sample and then the cell as one tagged JSON line.
func TestSoakChild(t *testing.T) {
	strategy := os.Getenv(soakChildEnv)
	if strategy == "" {
		t.Skip("run by TestSoak in a child process")
	}
	cfg := soakConfigFromEnv(t)
	p, err := matrix.Prepare(matrix.CellSpec{
		Strategy: strategy, Upstream: "builtin:max-requests=100", Skew: "none", Latency: "0",
		Load:        fmt.Sprintf("constant:rate=%d/s,duration=%s,workers=%d", cfg.rate, cfg.duration, cfg.workers),
		IdleTimeout: cfg.idleTimeout, Method: "POST", Seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	profileDir := os.Getenv("SOAK_PROFILE_DIR")
	if profileDir != "" {
		// Every 4 KiB allocated is sampled (the default, 512 KiB, sees nothing of a 2 MiB
		// heap). Minute 10's profile is taken inside it, while the cell still holds what
		// it grew: RunCell's outcome keeps none of it.
		runtime.MemProfileRate = 4096
		t1 := time.AfterFunc(cfg.duration/10, func() { writeHeapProfile(t, profileDir, strategy, 1) })
		t10 := time.AfterFunc(cfg.duration*19/20, func() { writeHeapProfile(t, profileDir, strategy, 10) })
		defer t1.Stop()
		defer t10.Stop()
	}
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		every := cfg.duration / time.Duration(cfg.samples)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			s, err := sampleSelf()
			if err != nil {
				t.Error(err)
				return
			}
			s.AtS = time.Since(began).Seconds()
			b, _ := json.Marshal(s)
			fmt.Println(sampleTag + string(b))
		}
	}()
	out, err := matrix.RunCell(context.Background(), p, nil)
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	c := out.Cell
	b, _ := json.Marshal(soakCell{Requests: c.Requests, OK: c.OK, Stale: c.Stale, NewConns: c.NewConns, P99US: c.LatencyUS.P99, DurationMS: c.DurationMS})
	fmt.Println(cellTag + string(b))
}

// writeHeapProfile writes the heap profile of minute m after a GC, so that its inuse
// numbers are what is live now.
func writeHeapProfile(t *testing.T, dir, strategy string, m int) {
	runtime.GC()
	f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s.heap%d.pprof", fileName(strategy), m)))
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Error(err)
	}
}

func fileName(strategy string) string {
	return strings.NewReplacer(":", "_", "=", "-").Replace(strategy)
}

// sampleSelf reads this process's resident set, open file descriptors and goroutines.
func sampleSelf() (soakSample, error) {
	var s soakSample
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return s, fmt.Errorf("soak: %w (the soak test needs Linux's /proc)", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			s.RSSKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			s.AnonKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			s.FileKiB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return s, fmt.Errorf("soak: %w", err)
	}
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	for _, d := range metrics.All() {
		if strings.HasPrefix(d.Name, "/memory/classes/") || d.Name == "/gc/heap/goal:bytes" {
			live = append(live, metrics.Sample{Name: d.Name})
		}
	}
	metrics.Read(live)
	if live[0].Value.Kind() == metrics.KindUint64 {
		s.LiveHeapKiB = int64(live[0].Value.Uint64() / 1024)
	}
	s.Mem = map[string]int64{}
	for _, m := range live[1:] {
		if m.Value.Kind() == metrics.KindUint64 {
			name := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(m.Name, "/memory/classes/"), "/gc/heap/"), ":bytes")
			s.Mem[name] = int64(m.Value.Uint64() / 1024)
		}
	}
	s.FDs = len(fds) - 1                      // less the one ReadDir itself had open
	s.Goroutines = runtime.NumGoroutine() - 1 // less the sampler
	return s, nil
}

// grew reports whether a metric grew from the first window's samples to the last's: its
// median by more than maxGrowth, and its whole band, the last window's lowest sample above
// the first window's highest. The second half is what tells a leak from the pool's swing:
// on 2 cores shared by seven loads the pool goes from a few connections to all 64 workers'
// and back between two samples (open fds 28..138 within one minute, 2 fds and 1-2
// goroutines a connection; RSS ±1 MiB with the garbage in flight), so a minute's median
// moves with whichever it caught more often, while a leak lifts every later sample.
func grew(first, last []float64, maxGrowth float64) bool {
	if len(first) == 0 || len(last) == 0 {
		return false
	}
	return median(last) > median(first)*(1+maxGrowth) && slices.Min(last) > slices.Max(first)
}

func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// The growth rule fails a leak and passes the pool's swing.
func TestSoakGrowthRuleTellsALeakFromTheSwing(t *testing.T) {
	swing := [][]float64{{138, 86, 138, 50, 138, 138}, {42, 138, 60, 138, 138, 138}}     // open fds, minute 1 and 10
	leak := [][]float64{{20.1, 20.4, 19.9, 20.3}, {21.6, 21.9, 21.5, 21.8, 21.7, 22.0}}  // RSS MiB, +7.5%
	small := [][]float64{{20.1, 20.4, 19.9, 20.3}, {20.5, 20.9, 20.6, 20.8, 20.7, 21.0}} // RSS MiB, +3%
	if grew(swing[0], swing[1], 0.05) {
		t.Error("the swing of the pool between 20 and 64 connections counted as growth")
	}
	if !grew(leak[0], leak[1], 0.05) {
		t.Error("RSS 20.2 -> 21.75 MiB, every sample above minute 1's, did not count as growth")
	}
	if grew(small[0], small[1], 0.05) {
		t.Error("3% growth counted as more than 5%")
	}
}
