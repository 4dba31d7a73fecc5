package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/goleak"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/matrix"
	"github.com/idlerace/idlerace/matrix/metrics"
	"github.com/idlerace/idlerace/results"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func prepare(t *testing.T, strategy string) *matrix.Prepared {
	t.Helper()
	p, err := matrix.Prepare(matrix.CellSpec{
		Strategy: strategy, Skew: "none", Latency: "0",
		Load: "sweep:lanes=8,duration=3s", IdleTimeout: 40 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rec builds a record whose latency (from its intended send time) is d.
func rec(d time.Duration, f func(r *attack.Record)) attack.Record {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := attack.Record{Intended: t0, Start: t0, End: t0.Add(d), Gap: -1, Attempts: 1, Code: 200}
	if f != nil {
		f(&r)
	}
	return r
}

func fail(class pool.Class, reused bool) func(r *attack.Record) {
	return func(r *attack.Record) {
		r.Code, r.Err, r.Class, r.Reused = 0, errors.New(string(class)), class, reused
		r.Stale = class.Stale(reused)
	}
}

func reused(r *attack.Record) { r.Reused = true }

// serve starts m on loopback and returns its scrape URL.
func serve(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addr, err := m.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("Serve returned %q, want the bound 127.0.0.1 address", addr)
	}
	return "http://" + addr + metrics.Path
}

// scrape fetches url with the given Accept header and returns the response.
func scrape(t *testing.T, url, accept string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d", url, resp.StatusCode)
	}
	return resp
}

// scrapeText fetches url in the text format and parses it.
func scrapeText(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp := scrape(t, url, "text/plain")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q, want text/plain", ct)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return fams
}

// series finds the one series of family name whose labels are exactly want.
func series(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("%s: not exposed", name)
	}
	var found []*dto.Metric
	for _, m := range f.Metric {
		if len(m.Label) != len(want) {
			continue
		}
		ok := true
		for _, l := range m.Label {
			if v, has := want[l.GetName()]; !has || v != l.GetValue() {
				ok = false
			}
		}
		if ok {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s%v: %d series, want 1", name, want, len(found))
	}
	return found[0]
}

func cellLabels(p *matrix.Prepared, extra ...string) map[string]string {
	l := map[string]string{
		"strategy": p.Strategy.String(), "skew": p.Skew.String(), "upstream": p.Upstream.String(),
		"latency": p.Latency.String(), "load": p.Load.String(),
	}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return l
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return math.NaN()
}

func TestScrapeCountsObservedRequestsExactly(t *testing.T) {
	m := metrics.New()
	url := serve(t, m)
	blind, probe := prepare(t, "blind"), prepare(t, "read-probe")

	m.SetCellsTotal(2)
	m.CellStarted(blind)
	m.CellStarted(probe)

	// The blind cell's requests go through a real recorder, wired as matrix.Run wires
	// it, so that the metrics can be checked against the recorder's own counts.
	rc := attack.NewRecorder(blind.ID(), nil)
	rc.Observer = m.Observer(blind)
	for _, r := range []attack.Record{
		rec(time.Millisecond, func(r *attack.Record) { r.Prime = true }),                  // new connection
		rec(time.Millisecond, func(r *attack.Record) { r.Prime = true; r.Reused = true }), // reused
		rec(150*time.Microsecond, reused),
		rec(3*time.Millisecond, nil), // new connection
		rec(700*time.Microsecond, fail(pool.ResetRead, true)),
		rec(1500*time.Microsecond, fail(pool.EOF, true)),
		rec(40*time.Millisecond, fail(pool.ResetWrite, false)),              // new connection, not stale
		rec(12*time.Second, fail(pool.Timeout, true)),                       // beyond the last bucket
		rec(60*time.Millisecond, func(r *attack.Record) { r.Attempts = 2 }), // retried on a new connection
		rec(200*time.Microsecond, func(r *attack.Record) { // dial refused: no connection at all
			fail(pool.Other, false)(r)
			r.Attempts = 0
		}),
		rec(8*time.Millisecond, func(r *attack.Record) {
			r.Reused, r.Code, r.Err, r.Class = true, 503, errors.New("status 503"), pool.Other
		}),
	} {
		rc.Add(r)
	}
	probeObs := m.Observer(probe)
	r := rec(5*time.Millisecond, reused)
	probeObs.Observe(&r)

	m.CellDone(results.Cell{
		Strategy: blind.Strategy.String(), Skew: blind.Skew.String(), Upstream: blind.Upstream.String(),
		Latency: blind.Latency.String(), Load: blind.Load.String(),
		ResetRate: 2.0 / 9, PredictedResetRate: 0.2,
	})

	fams := scrapeText(t, url)
	b := cellLabels(blind)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"idlerace_requests_total", b, 9},
		{"idlerace_primes_total", b, 2},
		{"idlerace_new_connections_total", b, 4},
		{"idlerace_retries_total", b, 1},
		{"idlerace_failures_total", cellLabels(blind, "class", "reset_write"), 1},
		{"idlerace_failures_total", cellLabels(blind, "class", "reset_read"), 1},
		{"idlerace_failures_total", cellLabels(blind, "class", "eof"), 1},
		{"idlerace_failures_total", cellLabels(blind, "class", "timeout"), 1},
		{"idlerace_failures_total", cellLabels(blind, "class", "other"), 2},
		{"idlerace_stale_failures_total", cellLabels(blind, "class", "reset_write"), 0},
		{"idlerace_stale_failures_total", cellLabels(blind, "class", "reset_read"), 1},
		{"idlerace_stale_failures_total", cellLabels(blind, "class", "eof"), 1},
		{"idlerace_requests_total", cellLabels(probe), 1},
		{"idlerace_new_connections_total", cellLabels(probe), 0},
		{"idlerace_primes_total", cellLabels(probe), 0},
		{"idlerace_retries_total", cellLabels(probe), 0},
		{"idlerace_failures_total", cellLabels(probe, "class", "timeout"), 0},
		{"idlerace_stale_failures_total", cellLabels(probe, "class", "eof"), 0},
		{"idlerace_cells_planned", map[string]string{}, 2},
		{"idlerace_cells_running", map[string]string{}, 1},
		{"idlerace_cells_done_total", map[string]string{}, 1},
		{"idlerace_cell_reset_ratio", b, 2.0 / 9},
		{"idlerace_cell_predicted_reset_ratio", b, 0.2},
	}
	for _, c := range checks {
		if got := value(series(t, fams, c.name, c.labels)); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	// The metrics agree with the recorder that counted the same records.
	recorded := map[string]float64{
		"requests": float64(rc.Requests), "primes": float64(rc.Primes), "retries": float64(rc.Retries),
		"stale":  float64(rc.Stale),
		"failed": float64(rc.Failures.ResetWrite + rc.Failures.ResetRead + rc.Failures.EOF + rc.Failures.Timeout + rc.Failures.Other),
	}
	scraped := map[string]float64{
		"requests": value(series(t, fams, "idlerace_requests_total", b)),
		"primes":   value(series(t, fams, "idlerace_primes_total", b)),
		"retries":  value(series(t, fams, "idlerace_retries_total", b)),
		"stale":    sum(fams["idlerace_stale_failures_total"], blind.Strategy.String()),
		"failed":   sum(fams["idlerace_failures_total"], blind.Strategy.String()),
	}
	for k, v := range recorded {
		if scraped[k] != v {
			t.Errorf("%s: metrics say %v, the recorder %v", k, scraped[k], v)
		}
	}

	// Bounded labels: one series per class and cell, and nothing else.
	for name, want := range map[string]int{
		"idlerace_failures_total": 2 * len(pool.Classes), "idlerace_stale_failures_total": 2 * 4, // reset_write, reset_read, eof, bad_gateway
		"idlerace_requests_total": 2, "idlerace_cell_reset_ratio": 1,
	} {
		if got := len(fams[name].Metric); got != want {
			t.Errorf("%s: %d series, want %d", name, got, want)
		}
	}

	h := series(t, fams, "idlerace_request_duration_seconds", b).Histogram
	if h == nil {
		t.Fatal("idlerace_request_duration_seconds: not a histogram")
	}
	// Cumulative counts of 150µs, 200µs, 700µs, 1.5ms, 3ms, 8ms, 40ms, 60ms and 12s; a
	// request on a bound counts in that bound's bucket.
	wantBuckets := map[float64]uint64{
		0.0001: 0, 0.0002: 2, 0.0005: 2, 0.001: 3, 0.002: 4, 0.005: 5, 0.01: 6, 0.02: 6,
		0.05: 7, 0.1: 8, 0.2: 8, 0.5: 8, 1: 8, 2: 8, 5: 8, 10: 8, math.Inf(1): 9,
	}
	if len(h.Bucket) != len(wantBuckets) {
		t.Errorf("%d buckets, want %d", len(h.Bucket), len(wantBuckets))
	}
	for _, bk := range h.Bucket {
		if want, ok := wantBuckets[bk.GetUpperBound()]; !ok || bk.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v: %d, want %d (known bound: %v)", bk.GetUpperBound(), bk.GetCumulativeCount(), want, ok)
		}
	}
	if h.GetSampleCount() != 9 {
		t.Errorf("_count %d, want 9", h.GetSampleCount())
	}
	wantSum := 0.00015 + 0.0002 + 0.0007 + 0.0015 + 0.003 + 0.008 + 0.04 + 0.06 + 12
	if math.Abs(h.GetSampleSum()-wantSum) > 1e-9 {
		t.Errorf("_sum %v, want %v", h.GetSampleSum(), wantSum)
	}
	if ph := series(t, fams, "idlerace_request_duration_seconds", cellLabels(probe)).Histogram; ph.GetSampleCount() != 1 || ph.GetSampleSum() != 0.005 {
		t.Errorf("read-probe histogram: count %d sum %v, want 1 and 0.005", ph.GetSampleCount(), ph.GetSampleSum())
	}

	// Every registered family has series now, so Names must list exactly what is served.
	var served []string
	for name := range fams {
		served = append(served, name)
	}
	sort.Strings(served)
	if got := m.Names(); fmt.Sprint(got) != fmt.Sprint(served) {
		t.Errorf("Names() = %v\nserved    %v", got, served)
	}
	for _, n := range served {
		if !strings.HasPrefix(n, "idlerace_") || fams[n].GetHelp() == "" {
			t.Errorf("%s: want the idlerace_ prefix and a help text (%q)", n, fams[n].GetHelp())
		}
	}

	mfs := make([]*dto.MetricFamily, 0, len(fams))
	for _, f := range fams {
		mfs = append(mfs, f)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func sum(f *dto.MetricFamily, strategy string) float64 {
	var s float64
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "strategy" && l.GetValue() == strategy {
				s += value(m)
			}
		}
	}
	return s
}

// A Prometheus that negotiates protobuf gets the latency as a native histogram too.
func TestProtobufScrapeCarriesNativeHistogram(t *testing.T) {
	m := metrics.New()
	url := serve(t, m)
	p := prepare(t, "blind")
	o := m.Observer(p)
	for _, d := range []time.Duration{100 * time.Microsecond, 1 * time.Millisecond, 1100 * time.Microsecond, 3 * time.Second} {
		r := rec(d, nil)
		o.Observe(&r)
	}
	resp := scrape(t, url, "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	format := expfmt.ResponseFormat(resp.Header)
	if format.FormatType() != expfmt.TypeProtoDelim {
		t.Fatalf("Content-Type %q, want delimited protobuf", resp.Header.Get("Content-Type"))
	}
	dec := expfmt.NewDecoder(resp.Body, format)
	for {
		var f dto.MetricFamily
		if err := dec.Decode(&f); err == io.EOF {
			t.Fatal("idlerace_request_duration_seconds: not in the protobuf scrape")
		} else if err != nil {
			t.Fatal(err)
		}
		if f.GetName() != "idlerace_request_duration_seconds" {
			continue
		}
		h := f.Metric[0].Histogram
		if h.Schema == nil || h.GetSchema() < 3 {
			t.Fatalf("schema %v, want >= 3 (bucket factor <= 1.1)", h.Schema)
		}
		var n uint64
		var c int64
		for _, d := range h.PositiveDelta {
			c += d
			n += uint64(c)
		}
		if n != 4 || h.GetSampleCount() != 4 {
			t.Errorf("native buckets hold %d observations, count %d; want 4", n, h.GetSampleCount())
		}
		if len(h.Bucket) != len(metrics.LatencyBuckets) {
			t.Errorf("%d classic buckets beside the native ones, want %d", len(h.Bucket), len(metrics.LatencyBuckets))
		}
		return
	}
}

func TestServeRefusesAddressesOffLoopback(t *testing.T) {
	m := metrics.New()
	for _, addr := range []string{"0.0.0.0:0", ":0", ":9464", "[::]:0", "192.0.2.1:0", "10.1.2.3:9464", "example.com:0", "127.0.0.1", "localhost.example.com:0"} {
		got, err := m.Serve(context.Background(), addr)
		if err == nil {
			t.Errorf("Serve(%q) bound %s, want a refusal", addr, got)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", addr)) {
			t.Errorf("Serve(%q): error %q does not name the address", addr, err)
		}
	}
}

func TestServeAcceptsLoopbackAndStopsWithItsContext(t *testing.T) {
	m := metrics.New()
	for _, tc := range []struct{ addr, prefix string }{
		{"127.0.0.1:0", "127.0.0.1:"},
		{"127.0.0.2:0", "127.0.0.2:"},
		{"localhost:0", "127.0.0.1:"},
		{"[::1]:0", "[::1]:"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		bound, err := m.Serve(ctx, tc.addr)
		if err != nil {
			cancel()
			if tc.addr == "[::1]:0" && errors.Is(err, syscall.EADDRNOTAVAIL) {
				t.Logf("no IPv6 loopback here: %v", err)
				continue
			}
			t.Errorf("Serve(%q): %v", tc.addr, err)
			continue
		}
		if !strings.HasPrefix(bound, tc.prefix) {
			t.Errorf("Serve(%q) bound %s, want %s...", tc.addr, bound, tc.prefix)
		}
		if fams := scrapeText(t, "http://"+bound+metrics.Path); fams["idlerace_cells_running"] == nil {
			t.Errorf("%s: no idlerace_cells_running in the scrape", bound)
		}
		cancel()
		deadline := time.Now().Add(5 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", bound, time.Second)
			if err != nil {
				break
			}
			_ = c.Close()
			if time.Now().After(deadline) {
				t.Fatalf("%s still accepts connections 5s after its context ended", bound)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Serve(ctx, "127.0.0.1:0"); err == nil {
		t.Error("Serve with an ended context listened")
	}
}

func TestRunFinishedClearsCellsThatNeverFinished(t *testing.T) {
	m := metrics.New()
	url := serve(t, m)
	p := prepare(t, "blind")
	m.CellStarted(p)
	m.CellStarted(p)
	if got := value(series(t, scrapeText(t, url), "idlerace_cells_running", map[string]string{})); got != 2 {
		t.Fatalf("cells_running %v, want 2", got)
	}
	m.RunFinished()
	if got := value(series(t, scrapeText(t, url), "idlerace_cells_running", map[string]string{})); got != 0 {
		t.Fatalf("cells_running after RunFinished %v, want 0", got)
	}
}
