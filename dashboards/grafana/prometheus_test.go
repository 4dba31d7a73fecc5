package grafana_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/idlerace/idlerace/matrix"
	"github.com/idlerace/idlerace/matrix/metrics"
	"github.com/idlerace/idlerace/results"
)

// prometheusBin is Debian's Prometheus (package prometheus).
const prometheusBin = "/usr/bin/prometheus"

// prometheus is a real Prometheus server on loopback, scraping one target every second.
type prometheus struct {
	name, addr, logPath string
	cmd                 *exec.Cmd
	exited              chan struct{}
	client              *http.Client
}

// startPrometheus starts Prometheus in a temporary directory with a generated config
// that scrapes target; extra flags are added to its command line.
func startPrometheus(t *testing.T, name, target string, extra ...string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: idlerace
    metrics_path: %s
    static_configs:
      - targets: [%q]
`, metrics.Path, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken before Prometheus binds it
		addr := freeLoopbackPort(t)
		p := &prometheus{
			name: name, addr: addr, logPath: filepath.Join(dir, fmt.Sprintf("prometheus-%d.log", attempt)),
			exited: make(chan struct{}),
			client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		}
		logFile, err := os.Create(p.logPath)
		if err != nil {
			t.Fatal(err)
		}
		args := append([]string{
			"--config.file=" + cfgPath,
			"--storage.tsdb.path=" + filepath.Join(dir, fmt.Sprintf("data-%d", attempt)),
			"--web.listen-address=" + addr,
			"--log.level=info",
		}, extra...)
		p.cmd = exec.Command(prometheusBin, args...)
		p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
		if err := p.cmd.Start(); err != nil {
			_ = logFile.Close()
			t.Fatalf("starting %s: %v", prometheusBin, err)
		}
		go func() { _ = p.cmd.Wait(); _ = logFile.Close(); close(p.exited) }()
		t.Cleanup(p.stop(t))
		if lastErr = p.waitReady(30 * time.Second); lastErr == nil {
			t.Logf("%s: %s listening on %s (%s)", name, prometheusBin, addr, strings.Join(extra, " "))
			return p
		}
		p.stop(t)()
		if !strings.Contains(p.log(), "address already in use") {
			break
		}
	}
	t.Fatalf("%s: %v", name, lastErr)
	return nil
}

func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func (p *prometheus) log() string {
	b, _ := os.ReadFile(p.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

func (p *prometheus) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("exited before it was ready: %v\n%s", p.cmd.ProcessState, p.log())
		default:
		}
		resp, err := p.client.Get("http://" + p.addr + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s\n%s", limit, p.log())
}

// stop ends Prometheus with SIGTERM, as a service manager would, and waits for it;
// SIGKILL only if it has not exited 10 s later.
func (p *prometheus) stop(t *testing.T) func() {
	return func() {
		select {
		case <-p.exited:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: still running 10s after SIGTERM; killing it", p.name)
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
}

// sample is one element of an instant query's result.
type sample struct {
	Metric map[string]string
	Value  float64
}

// query evaluates expr now through the HTTP API.
func (p *prometheus) query(expr string) ([]sample, error) {
	resp, err := p.client.Get("http://" + p.addr + "/api/v1/query?" + url.Values{"query": {expr}}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status, Error, ErrorType string
		Data                     struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("status %d: %w", resp.StatusCode, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("%s: %s", body.ErrorType, body.Error)
	}
	parse := func(v [2]any) (float64, error) {
		s, _ := v[1].(string)
		return strconv.ParseFloat(s, 64)
	}
	switch body.Data.ResultType {
	case "vector":
		var vec []struct {
			Metric    map[string]string
			Value     *[2]any
			Histogram *[2]json.RawMessage // a native histogram sample: [time, {count, sum, buckets}]
		}
		if err := json.Unmarshal(body.Data.Result, &vec); err != nil {
			return nil, err
		}
		out := make([]sample, 0, len(vec))
		for _, s := range vec {
			if s.Histogram != nil {
				var h struct{ Count string }
				if err := json.Unmarshal(s.Histogram[1], &h); err != nil {
					return nil, err
				}
				f, err := strconv.ParseFloat(h.Count, 64)
				if err != nil {
					return nil, fmt.Errorf("histogram count %q: %w", h.Count, err)
				}
				out = append(out, sample{s.Metric, f})
				continue
			}
			if s.Value == nil {
				return nil, fmt.Errorf("a sample with neither value nor histogram: %v", s.Metric)
			}
			f, err := parse(*s.Value)
			if err != nil {
				return nil, err
			}
			out = append(out, sample{s.Metric, f})
		}
		return out, nil
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(body.Data.Result, &v); err != nil {
			return nil, err
		}
		f, err := parse(v)
		return []sample{{nil, f}}, err
	}
	return nil, fmt.Errorf("result type %q, want vector or scalar", body.Data.ResultType)
}

// scalar evaluates expr and returns its single value.
func (p *prometheus) scalar(t *testing.T, expr string) float64 {
	t.Helper()
	s, err := p.query(expr)
	if err != nil {
		t.Fatalf("%s: %s: %v", p.name, expr, err)
	}
	if len(s) != 1 {
		t.Fatalf("%s: %s: %d samples, want 1", p.name, expr, len(s))
	}
	return s[0].Value
}

// waitFor polls expr until it returns a sample, bounded by limit.
func (p *prometheus) waitFor(t *testing.T, expr string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		s, err := p.query(expr)
		if err == nil && len(s) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s: no data after %s (last error %v)\n%s", p.name, expr, limit, err, p.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A person runs a matrix with --metrics-addr, points Prometheus at it and opens the
// dashboard: every query of every panel shows data, and the numbers are the run's.
func TestDashboardQueriesShowALiveRunInPrometheus(t *testing.T) {
	if _, err := os.Stat(prometheusBin); err != nil {
		if os.Getenv("IDLERACE_REQUIRE_REAL") == "1" {
			t.Fatalf("IDLERACE_REQUIRE_REAL=1 but %s is missing (%v): install the Debian package prometheus", prometheusBin, err)
		}
		t.Skipf("%s is missing: install the Debian package prometheus (or set IDLERACE_REQUIRE_REAL=1 to fail instead)", prometheusBin)
	}
	d := load(t)
	qs := queries(t, d)

	m := metrics.New()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	target, err := m.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// One Prometheus as most run it, one that ingests native histograms (it scrapes
	// protobuf and keeps no classic buckets): the latency queries must work for both.
	proms := []*prometheus{
		startPrometheus(t, "prometheus (classic histograms)", target),
		startPrometheus(t, "prometheus (native histograms)", target, "--enable-feature=native-histograms"),
	}
	for _, p := range proms {
		p.waitFor(t, `up{job="idlerace"} == 1`, 20*time.Second)
	}

	specs := []matrix.CellSpec{
		{Strategy: "blind", Skew: "none", Latency: "0", Load: "sweep:lanes=8,duration=3s", IdleTimeout: 40 * time.Millisecond, Seed: 1},
		{Strategy: "read-probe", Skew: "none", Latency: "0", Load: "sweep:lanes=8,duration=3s", IdleTimeout: 40 * time.Millisecond, Seed: 1},
	}
	runStarted := time.Now()
	sum, err := matrix.Run(ctx, specs, matrix.RunOptions{
		Parallel:    2,
		OnStart:     func(toRun, total int) { m.SetCellsTotal(toRun) },
		OnCellStart: m.CellStarted,
		Observer:    m.Observer,
		OnCell:      func(done, total int, c results.Cell) { m.CellDone(c) },
	})
	m.RunFinished()
	if err != nil {
		t.Fatalf("matrix run: %v", err)
	}
	if len(sum.Cells) != 2 {
		t.Fatalf("%d cells measured, want 2", len(sum.Cells))
	}
	t.Logf("run took %s", time.Since(runStarted).Round(time.Millisecond))
	for _, p := range proms {
		// Wait until Prometheus scraped the finished run, and a few times more.
		p.waitFor(t, `idlerace_cells_done_total == 2 and idlerace_cells_running == 0`, 15*time.Second)
		p.waitFor(t, `count_over_time((idlerace_cells_done_total == 2)[1m:1s]) >= 3`, 15*time.Second)
	}

	// The queries' range covers the whole run, so that rates and quantiles are over its
	// requests rather than over the quiet seconds after it.
	rangeInterval := fmt.Sprintf("%ds", int(time.Since(runStarted).Seconds())+3)
	vars := variables(d, rangeInterval)
	for _, p := range proms {
		withData := 0
		for _, q := range qs {
			expr, err := substitute(q.Expr, vars)
			if err != nil {
				t.Errorf("%s: %v", q.Where, err)
				continue
			}
			s, err := p.query(expr)
			if err != nil {
				t.Errorf("%s: %s: %s: %v", p.name, q.Where, expr, err)
				continue
			}
			finite := 0
			for _, x := range s {
				if !math.IsNaN(x.Value) && !math.IsInf(x.Value, 0) {
					finite++
				}
				if q.Label != "" && x.Metric[q.Label] == "" {
					t.Errorf("%s: %s: a sample without label %s: %v", p.name, q.Where, q.Label, x.Metric)
				}
			}
			if finite == 0 {
				t.Errorf("%s: %s: no finite data (%d samples): %s", p.name, q.Where, len(s), expr)
				continue
			}
			withData++
		}
		t.Logf("%s: %d of %d dashboard queries returned data", p.name, withData, len(qs))
	}

	// The numbers Prometheus holds are the run's.
	var requests, stale, primes, retries, newConns int64
	for _, c := range sum.Cells {
		requests += c.Requests
		stale += c.Stale
		primes += c.Primes
		retries += c.Retries
		newConns += c.NewConns
	}
	t.Logf("run: %d requests, %d stale, %d primes, %d retries, %d new connections (pool)", requests, stale, primes, retries, newConns)
	for _, p := range proms {
		for expr, want := range map[string]int64{
			"sum(idlerace_requests_total)":       requests,
			"sum(idlerace_stale_failures_total)": stale,
			"sum(idlerace_primes_total)":         primes,
			"sum(idlerace_retries_total)":        retries,
			"sum(idlerace_request_duration_seconds_count) or sum(histogram_count(idlerace_request_duration_seconds))": requests,
		} {
			if got := p.scalar(t, expr); got != float64(want) {
				t.Errorf("%s: %s = %v, want %d (the summary's)", p.name, expr, got, want)
			}
		}
		// Neither strategy retries, so every dial served exactly one request that was
		// not reused: the observed count is the pool's.
		if got := p.scalar(t, "sum(idlerace_new_connections_total)"); got != float64(newConns) {
			t.Errorf("%s: %v new connections observed, want the pool's %d dials", p.name, got, newConns)
		}
		for _, c := range sum.Cells {
			for name, want := range map[string]float64{
				"idlerace_cell_reset_ratio": c.ResetRate, "idlerace_cell_predicted_reset_ratio": c.PredictedResetRate,
			} {
				expr := fmt.Sprintf("%s{strategy=%q}", name, c.Strategy)
				if got := p.scalar(t, expr); math.Abs(got-want) > 1e-12 {
					t.Errorf("%s: %s = %v, want %v", p.name, expr, got, want)
				}
			}
		}
	}
	t.Logf("blind: reset rate %.4f (predicted %.4f); read-probe: %.4f (predicted %.4f)",
		sum.Cells[0].ResetRate, sum.Cells[0].PredictedResetRate, sum.Cells[1].ResetRate, sum.Cells[1].PredictedResetRate)

	// Each Prometheus answered the latency panel from the histogram it ingests.
	native := fmt.Sprintf("sum(rate(idlerace_request_duration_seconds[%s]))", rangeInterval)
	classic := fmt.Sprintf("sum(rate(idlerace_request_duration_seconds_bucket[%s]))", rangeInterval)
	for p, want := range map[*prometheus]string{proms[0]: classic, proms[1]: native} {
		if s, err := p.query(want); err != nil || len(s) == 0 {
			t.Errorf("%s: %s: no data (%v)", p.name, want, err)
		}
	}
	if s, err := proms[1].query(classic); err == nil {
		t.Logf("%s: %d classic bucket rates beside the native histogram", proms[1].name, len(s))
	}
	if s, err := proms[0].query(native); err != nil || len(s) != 0 {
		t.Errorf("%s: %s: %v %v, want no native histogram", proms[0].name, native, s, err)
	}

	cancel()
	for _, p := range proms {
		p.stop(t)()
		if st := p.cmd.ProcessState; st == nil || !st.Exited() || st.ExitCode() != 0 {
			t.Errorf("%s: after SIGTERM: %v, want a clean exit 0\n%s", p.name, st, p.log())
		}
	}
}
