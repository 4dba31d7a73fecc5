// Package reporttest builds synthetic run directories for the tests of the report
// package and of the commands that call it: a summary.json and one .hlog per cell, with
// numbers shaped like a real run's (a blind pool's step at g = T + s - d, a watching
// pool's window around it, a margin's extra connections, a retry's latency tail), drawn
// from a seeded generator so the same Options always give the same files.
//
// It writes through the results package, so a synthetic directory is exactly what
// results.ReadSummary and results.ReadHlog accept. It knows nothing of pools or
// upstreams: the model here is the one-line window of DESIGN.md, not the matrix's.
package reporttest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/idlerace/idlerace/results"
)

// Options describes a synthetic run. The cells are every combination of Strategies,
// Skews and Latencies on one upstream, in that nesting order (strategy innermost, as
// the default matrix orders them).
type Options struct {
	// Strategies, Skews and Latencies span the matrix. Strategies are recognised by
	// their base name (blind, watch, read-probe, timeout-margin, hint-margin,
	// retry-only, stdlib); any other name behaves like read-probe.
	Strategies []string
	Skews      []string // none, offset:±D, uniform:±D, normal:sd=D
	Latencies  []string // a duration: "0", "1ms"
	Upstream   string   // default "builtin"

	// IdleTimeout is T (default 100ms).
	IdleTimeout time.Duration
	// ExposedPerBin is how many requests land in each 1%-of-T bin of the race curve
	// (default 20); Unexposed is how many more per cell never meet the race (default
	// 300).
	ExposedPerBin int
	Unexposed     int
	// Seed makes the draws reproducible.
	Seed uint64

	// State is the summary's state (default "complete").
	State string
	// SlowWatchSkew makes the watch strategy's cells with this skew measure as if its
	// background reader noticed the close 10% of T late, where the model assumes
	// 0.5%: a disagreement between measurement and model, as a real client with a slow
	// notify path would show.
	SlowWatchSkew string
	// NoHlog leaves out the .hlog files (the summary still names them).
	NoHlog bool
}

// Fifty returns the options of a 50-cell run: five strategies, five skews, two
// latencies, with one disagreement (watch under uniform:±10ms).
func Fifty() Options {
	return Options{
		Strategies:    []string{"blind", "watch", "read-probe", "timeout-margin:margin=20ms", "retry-only:max=1,methods=all"},
		Skews:         []string{"none", "offset:-5ms", "offset:5ms", "uniform:±10ms", "normal:sd=3ms"},
		Latencies:     []string{"0", "1ms"},
		Seed:          50,
		SlowWatchSkew: "uniform:±10ms",
	}
}

// Small returns the options of a 6-cell run, for golden files.
func Small() Options {
	return Options{
		Strategies:    []string{"blind", "watch", "timeout-margin:margin=20ms"},
		Skews:         []string{"none", "offset:-5ms"},
		Latencies:     []string{"0"},
		Seed:          6,
		SlowWatchSkew: "offset:-5ms",
	}
}

// Start is the synthetic run's start time, fixed so that output is reproducible.
var Start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// WriteRun writes the synthetic run o describes into dir (created if missing):
// dir/summary.json and dir/cells/<id>.hlog. It returns the summary as written.
func WriteRun(dir string, o Options) (*results.Summary, error) {
	o = o.withDefaults()
	if err := os.MkdirAll(filepath.Join(dir, "cells"), 0o755); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	s := &results.Summary{
		Tool: results.Tool{
			// Fixed, not this process's, so that reports of the same Options are the same
			// bytes on every machine.
			Version: "synthetic", Commit: "0000000", Go: "go1.26.0", OS: "linux", Arch: "amd64", CPUs: 2,
		},
		Started: Start,
		State:   o.State,
	}
	at := Start
	for _, lat := range o.Latencies {
		for _, skew := range o.Skews {
			for _, strat := range o.Strategies {
				c, h, err := cell(rng, o, strat, skew, lat)
				if err != nil {
					return nil, err
				}
				if !o.NoHlog {
					if err := results.WriteHlog(filepath.Join(dir, c.Hlog), at, "cell", h); err != nil {
						return nil, err
					}
				}
				at = at.Add(time.Duration(c.DurationMS * float64(time.Millisecond)))
				s.Cells = append(s.Cells, c)
			}
		}
	}
	s.Finished = at
	if err := results.WriteSummary(filepath.Join(dir, "summary.json"), s); err != nil {
		return nil, err
	}
	return s, nil
}

func (o Options) withDefaults() Options {
	if o.Upstream == "" {
		o.Upstream = "builtin"
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 100 * time.Millisecond
	}
	if o.ExposedPerBin == 0 {
		o.ExposedPerBin = 20
	}
	if o.Unexposed == 0 {
		o.Unexposed = 300
	}
	if o.State == "" {
		o.State = "complete"
	}
	return o
}

// cell draws one cell: its race curve bin by bin, its counts, and its histogram.
func cell(rng *rand.Rand, o Options, strategy, skew, latency string) (results.Cell, *hdrhistogram.Histogram, error) {
	T := o.IdleTimeout.Seconds()
	lat, err := parseLatency(latency)
	if err != nil {
		return results.Cell{}, nil, err
	}
	sk, err := parseSkew(skew)
	if err != nil {
		return results.Cell{}, nil, err
	}
	d := lat.Seconds() / T // one-way latency in units of T
	base, _, _ := strings.Cut(strategy, ":")
	lag := 0.005
	measuredLag := lag
	if base == "watch" && skew == o.SlowWatchSkew {
		measuredLag = 0.10
	}

	// fails is the probability that a request written at gap g (in units of T) meets a
	// closed socket the strategy did not notice, for a notify lag of lag.
	fails := func(g, lag float64) float64 {
		switch base {
		case "blind", "retry-only":
			return sk.below(g + d - 1)
		case "watch", "stdlib":
			return sk.between(g-d-lag-1, g+d-1)
		case "timeout-margin", "hint-margin":
			return 0 // the connection was dropped at T - 20ms, before any skew here
		default: // read-probe and anything unknown: the window without the lag
			return sk.between(g-d-0.002-1, g+d-1)
		}
	}

	c := results.Cell{
		Strategy: strategy, Upstream: o.Upstream, Skew: skew, Latency: latency,
		Load:          "sweep:lanes=64,duration=1.5s",
		IdleTimeoutMS: float64(o.IdleTimeout.Milliseconds()),
	}
	c.ID = results.CellID(c.Strategy, c.Upstream, c.Skew, c.Latency, c.Load, c.Repeat)
	c.Hlog = "cells/" + c.ID + ".hlog"

	var predicted float64
	var hidden int64 // failures a retry replayed
	for b := 0; b < 50; b++ {
		g := 0.755 + 0.01*float64(b)
		n := int64(o.ExposedPerBin/2 + rng.IntN(o.ExposedPerBin+1))
		p := fails(g, lag)
		k := binomial(rng, n, fails(g, measuredLag))
		pt := results.CurvePoint{GapOverT: math.Round(g*1000) / 1000, Requests: n, Predicted: p}
		if base == "retry-only" {
			pt.Retried = k
			hidden += k
			pt.Predicted = 0
		} else {
			pt.Stale = k
			predicted += p * float64(n)
		}
		c.Curve = append(c.Curve, pt)
		c.Requests += n
		c.Stale += pt.Stale
	}
	c.Requests += int64(o.Unexposed)
	c.OK = c.Requests - c.Stale
	c.Failures.EOF = c.Stale * 3 / 4
	c.Failures.ResetRead = c.Stale - c.Failures.EOF
	c.Retries = hidden
	c.PredictedResetRate = predicted / float64(c.Requests)
	if base == "retry-only" {
		c.PredictedRetryRate = float64(hidden) / float64(c.Requests)
	}
	// Connections: one per lane to start, one per stale failure (the lane reopens), one
	// per retry, and for the margins one per idle period that crossed T - m.
	c.NewConns = 64 + c.Stale + hidden
	if base == "timeout-margin" || base == "hint-margin" {
		c.NewConns = c.Requests*98/100 + int64(rng.IntN(5))
		c.Discards = c.NewConns - 64
	}
	c.Primes = c.NewConns
	c.Finish()

	h := results.NewLatencyHistogram()
	median := 600.0 + 2e6*lat.Seconds() // µs: loopback service time plus a round trip
	for i := int64(0); i < c.Requests; i++ {
		us := median * math.Exp(0.45*rng.NormFloat64())
		if c.NewConns > 0 && rng.Float64() < float64(c.NewConns)/float64(c.Requests) {
			us += 150 // a TCP handshake
		}
		if i < hidden {
			us += 2*median + 400 // the failed attempt, then the replay on a new connection
		}
		results.RecordLatency(h, time.Duration(us*float64(time.Microsecond)))
	}
	c.LatencyUS = results.LatencyFrom(h)
	c.Server = results.Server{
		Accepted: c.NewConns, IdleCloses: c.Stale + hidden + c.Requests/20,
		Executed: c.Requests + c.Primes, CloseLateUS: results.LatencyUS{P50: 110, P99: 640, Max: 1800},
	}
	if base != "timeout-margin" && base != "hint-margin" { // the margins close first: the server sees no idle close
		// Idle periods as the server saw them: T + s, plus its timer's lateness.
		tms := float64(o.IdleTimeout) / float64(time.Millisecond)
		at := func(sq float64, lateMS float64) float64 { return math.Round((tms*(1+sq)+lateMS)*1000) / 1000 }
		c.Server.IdleCloseMS = &results.CloseSpread{
			Min: at(sk.quantile(0), 0.05), P50: at(sk.quantile(0.5), 0.11), P99: at(sk.quantile(0.99), 0.64), Max: at(sk.quantile(1), 1.8),
			Samples: c.Server.IdleCloses,
		}
	}
	c.DurationMS = 1500 + float64(rng.IntN(20))
	return c, h, nil
}

// skew is the distribution of s in units of T; below(x) is P(s < x) and between(lo,
// hi) is P(lo < s < hi).
type skew struct {
	kind  string  // fixed, uniform, normal
	a, sd float64 // fixed offset or uniform half-width; normal standard deviation
}

func (s skew) below(x float64) float64 {
	switch s.kind {
	case "uniform":
		return math.Min(1, math.Max(0, (x+s.a)/(2*s.a)))
	case "normal":
		return 0.5 * math.Erfc(-x/(s.sd*math.Sqrt2))
	default:
		if x > s.a {
			return 1
		}
		return 0
	}
}

// quantile is s's q quantile in units of T; a normal one is cut at ±3 sd.
func (s skew) quantile(q float64) float64 {
	switch s.kind {
	case "uniform":
		return -s.a + 2*s.a*q
	case "normal":
		return math.Max(-3, math.Min(3, math.Sqrt2*math.Erfinv(2*q-1))) * s.sd
	default:
		return s.a
	}
}

func (s skew) between(lo, hi float64) float64 { return math.Max(0, s.below(hi)-s.below(lo)) }

// parseSkew reads the skew specs Options documents, in units of T = 100ms.
func parseSkew(spec string) (skew, error) {
	name, arg, _ := strings.Cut(spec, ":")
	dur := func(v string) (float64, error) {
		v = strings.TrimPrefix(strings.TrimPrefix(v, "sd="), "±")
		d, err := time.ParseDuration(v)
		return d.Seconds() / 0.1, err
	}
	switch name {
	case "none":
		return skew{kind: "fixed"}, nil
	case "offset", "uniform", "normal":
		v, err := dur(arg)
		if err != nil {
			return skew{}, fmt.Errorf("reporttest: skew %q: %w", spec, err)
		}
		switch name {
		case "offset":
			return skew{kind: "fixed", a: v}, nil
		case "uniform":
			return skew{kind: "uniform", a: math.Abs(v)}, nil
		}
		return skew{kind: "normal", sd: v}, nil
	}
	return skew{}, fmt.Errorf("reporttest: skew %q: want none, offset:D, uniform:±D or normal:sd=D", spec)
}

func parseLatency(spec string) (time.Duration, error) {
	if spec == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(spec)
	if err != nil {
		return 0, fmt.Errorf("reporttest: latency %q: %w", spec, err)
	}
	return d, nil
}

// binomial draws from Binomial(n, p) by n Bernoulli trials (n is small here).
func binomial(rng *rand.Rand, n int64, p float64) int64 {
	var k int64
	for range n {
		if rng.Float64() < p {
			k++
		}
	}
	return k
}
