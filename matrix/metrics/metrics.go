package metrics

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/matrix"
	"github.com/idlerace/idlerace/results"
)

// Namespace prefixes every metric name.
const Namespace = "idlerace"

// cellLabels name a cell by its canonical specs, in this order everywhere.
var cellLabels = []string{"strategy", "skew", "upstream", "latency", "load"}

// staleClasses are the failure classes a closed socket produces: on a reused connection
// they are the keep-alive race; bad_gateway is the race lost behind a reverse proxy.
var staleClasses = []pool.Class{pool.ResetWrite, pool.ResetRead, pool.EOF, pool.BadGateway}

// LatencyBuckets are the classic histogram bounds of idlerace_request_duration_seconds,
// in seconds: 1-2-5 steps from 100µs to 10s, so that a loopback request and a request
// stuck behind a retry or a timeout both land in a bucket that names their magnitude.
var LatencyBuckets = []float64{
	0.0001, 0.0002, 0.0005,
	0.001, 0.002, 0.005,
	0.01, 0.02, 0.05,
	0.1, 0.2, 0.5,
	1, 2, 5,
	10,
}

// Metrics are the live metrics of one matrix run, on their own registry.
type Metrics struct {
	reg   *prometheus.Registry
	names []string

	requests, retries, newConns, primes *prometheus.CounterVec
	failures, stale                     *prometheus.CounterVec
	latency                             *prometheus.HistogramVec

	cellsPlanned, cellsRunning prometheus.Gauge
	cellsDone                  prometheus.Counter
	resetRatio, predictedRatio *prometheus.GaugeVec
}

// New returns the metrics of a run, registered on a fresh registry.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	classLabels := append([]string{"class"}, cellLabels...)

	m.requests = counterVec(m, "requests_total",
		"Measured requests finished (ok or failed), primes excluded; the summary's requests.", cellLabels)
	m.failures = counterVec(m, "failures_total",
		"Measured requests that failed, by class (reset_write, reset_read, eof, timeout, bad_gateway, other), stale or not; primes excluded.", classLabels)
	m.stale = counterVec(m, "stale_failures_total",
		"Measured requests that lost the keep-alive race: reset_write, reset_read or eof on a reused connection, or bad_gateway behind a reverse proxy, as the caller saw them (a failure a retry hid is not one).", classLabels)
	m.retries = counterVec(m, "retries_total",
		"Extra attempts strategies made to hide a failure from the caller (attempts beyond the first of each measured request).", cellLabels)
	m.newConns = counterVec(m, "new_connections_total",
		"Requests, primes included, whose final attempt went on a connection that was not reused (one dialled for it).", cellLabels)
	m.primes = counterVec(m, "primes_total",
		"Requests sent only to (re)open a lane's connection; not part of idlerace_requests_total.", cellLabels)

	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace,
		Name:      "request_duration_seconds",
		Help:      "Latency of measured requests from their intended send time to the end of the response (no coordinated omission), primes excluded.",
		Buckets:   LatencyBuckets,
		// A Prometheus that ingests native histograms gets ~10% wide buckets instead of
		// the classic ones; the dashboard's quantile queries read either.
		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}, cellLabels)
	m.register(m.latency, "request_duration_seconds")

	m.cellsPlanned = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "cells_planned",
		Help: "Cells this run is to measure (cells a resumed run already had are not counted).",
	})
	m.register(m.cellsPlanned, "cells_planned")
	m.cellsRunning = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "cells_running",
		Help: "Cells being measured now: started and neither finished nor abandoned.",
	})
	m.register(m.cellsRunning, "cells_running")
	m.cellsDone = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "cells_done_total",
		Help: "Cells this run finished and wrote.",
	})
	m.register(m.cellsDone, "cells_done_total")

	m.resetRatio = gaugeVec(m, "cell_reset_ratio",
		"Stale failures per measured request (0..1) of the last finished cell with these labels; summary.json's reset_rate.", cellLabels)
	m.predictedRatio = gaugeVec(m, "cell_predicted_reset_ratio",
		"The model's predicted stale failures per request (0..1) for the last finished cell with these labels; summary.json's predicted_reset_rate.", cellLabels)

	sort.Strings(m.names)
	return m
}

func counterVec(m *Metrics, name, help string, labels []string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	m.register(v, name)
	return v
}

func gaugeVec(m *Metrics, name, help string, labels []string) *prometheus.GaugeVec {
	v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
	m.register(v, name)
	return v
}

func (m *Metrics) register(c prometheus.Collector, name string) {
	m.reg.MustRegister(c)
	m.names = append(m.names, Namespace+"_"+name)
}

// Names lists the metric families New registers, sorted, as Prometheus exposes them (a
// histogram's series add _bucket, _sum and _count to its name). Families without series
// yet (no cell started) are listed too, so a dashboard can be checked against them.
func (m *Metrics) Names() []string { return append([]string(nil), m.names...) }

// Registry is the registry the metrics live on, for a caller that wants to gather them
// itself or add its own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SetCellsTotal sets how many cells this run is to measure (matrix.RunOptions.OnStart's
// toRun).
func (m *Metrics) SetCellsTotal(n int) { m.cellsPlanned.Set(float64(n)) }

// CellStarted counts a cell as running (matrix.RunOptions.OnCellStart).
func (m *Metrics) CellStarted(p *matrix.Prepared) { m.cellsRunning.Inc() }

// CellDone counts a finished cell and publishes its measured and predicted reset rates
// (matrix.RunOptions.OnCell).
func (m *Metrics) CellDone(c results.Cell) {
	m.cellsRunning.Dec()
	m.cellsDone.Inc()
	lv := []string{c.Strategy, c.Skew, c.Upstream, c.Latency, c.Load}
	m.resetRatio.WithLabelValues(lv...).Set(c.ResetRate)
	m.predictedRatio.WithLabelValues(lv...).Set(c.PredictedResetRate)
}

// RunFinished sets the running cells to zero once matrix.Run returned: a cell that broke
// or was abandoned by an interrupt never reaches OnCell, and would otherwise stay
// counted as running.
func (m *Metrics) RunFinished() { m.cellsRunning.Set(0) }

// Observer returns the observer of one cell's requests (matrix.RunOptions.Observer). It
// creates the cell's series at zero, so that rates and ratios over them exist from the
// cell's first scrape, failures or not.
func (m *Metrics) Observer(p *matrix.Prepared) attack.Observer {
	lv := prometheus.Labels{
		"strategy": p.Strategy.String(),
		"skew":     p.Skew.String(),
		"upstream": p.Upstream.String(),
		"latency":  p.Latency.String(),
		"load":     p.Load.String(),
	}
	o := &observer{
		requests: m.requests.With(lv),
		retries:  m.retries.With(lv),
		newConns: m.newConns.With(lv),
		primes:   m.primes.With(lv),
		latency:  m.latency.With(lv),
		failures: map[pool.Class]prometheus.Counter{},
		stale:    map[pool.Class]prometheus.Counter{},
	}
	failures := m.failures.MustCurryWith(lv)
	for _, c := range pool.Classes {
		o.failures[c] = failures.WithLabelValues(string(c))
	}
	stale := m.stale.MustCurryWith(lv)
	for _, c := range staleClasses {
		o.stale[c] = stale.WithLabelValues(string(c))
	}
	return o
}

// observer counts one cell's requests into series resolved once, when the cell started.
type observer struct {
	requests, retries, newConns, primes prometheus.Counter
	latency                             prometheus.Observer
	failures, stale                     map[pool.Class]prometheus.Counter
}

// Observe counts r the way attack.Recorder does: primes apart, a failure by its class,
// a stale failure also as such.
func (o *observer) Observe(r *attack.Record) {
	if r.Attempts > 0 && !r.Reused {
		o.newConns.Inc()
	}
	if r.Prime {
		o.primes.Inc()
		return
	}
	o.requests.Inc()
	if r.Attempts > 1 {
		o.retries.Add(float64(r.Attempts - 1))
	}
	o.latency.Observe(max(r.Latency(), 0).Seconds())
	if r.Err == nil {
		return
	}
	c, ok := o.failures[r.Class]
	if !ok {
		c = o.failures[pool.Other]
	}
	c.Inc()
	if r.Stale {
		if s, ok := o.stale[r.Class]; ok {
			s.Inc()
		}
	}
}
