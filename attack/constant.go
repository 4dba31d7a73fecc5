package attack

import (
	"context"
	"fmt"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/idlerace/idlerace/internal/spec"
)

// constant is vegeta's open model: requests start at a constant rate (vegeta's
// ConstantPacer) whatever the responses do, on one shared pool, with at most `workers`
// in flight. Requests that wait for a worker keep their intended start time, so queueing
// shows in the latency. A request is exposed to the race when it reuses a connection;
// its gap is that connection's idle age.
type constant struct {
	rate     float64 // per second
	duration time.Duration
	workers  int
	// requests, when > 0, ends the load after that many requests even before duration:
	// a cell of exactly N requests, e.g. for a memory benchmark.
	requests uint64
}

func init() {
	RegisterLoad("constant", "constant[:rate=R/s,duration=D,workers=N,requests=N]",
		"vegeta's constant-rate open model on a shared pool (default rate=10/s, duration=5s, workers=64; requests=N stops after N)",
		func(o *spec.Options) (Load, error) {
			c := &constant{}
			var err error
			if c.rate, err = o.Rate("rate", 10); err != nil {
				return nil, err
			}
			if c.rate > 100_000 {
				return nil, fmt.Errorf("rate: at most 100000/s, got %g/s", c.rate)
			}
			if c.duration, err = o.Duration("duration", 5*time.Second, false); err != nil {
				return nil, err
			}
			if c.workers, err = o.Int("workers", 64, 1, 10_000); err != nil {
				return nil, err
			}
			n, err := o.Int("requests", 0, 0, 1_000_000_000)
			if err != nil {
				return nil, err
			}
			c.requests = uint64(n)
			return c, nil
		})
}

func (c *constant) String() string {
	s := fmt.Sprintf("constant:rate=%g/s,duration=%s,workers=%d", c.rate, c.duration, c.workers)
	if c.requests > 0 {
		s += fmt.Sprintf(",requests=%d", c.requests)
	}
	return s
}

func (c *constant) Duration(time.Duration) time.Duration { return c.duration }

func (c *constant) Run(ctx context.Context, env *Env, rec *Recorder) error {
	pacer := vegeta.ConstantPacer{Freq: int(c.rate * 1000), Per: 1000 * time.Second}
	if c.rate >= 1 && c.rate == float64(int(c.rate)) {
		pacer = vegeta.ConstantPacer{Freq: int(c.rate), Per: time.Second}
	}
	tr := env.transport()
	ticks := make(chan time.Time, 4096)
	var wg sync.WaitGroup
	for i := 0; i < c.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for intended := range ticks {
				r := env.send(ctx, tr, intended, false)
				if ctx.Err() != nil {
					continue
				}
				if r.FirstReused { // a retried request was exposed on its first connection
					r.Gap = r.FirstIdleAge
				}
				rec.Add(r)
			}
		}()
	}
	sleep := sleeperFor(c.rate)
	began := time.Now()
	interval := time.Duration(float64(time.Second) / c.rate)
	var hits uint64
loop:
	for {
		elapsed := time.Since(began)
		if elapsed > c.duration || ctx.Err() != nil {
			break
		}
		wait, stop := pacer.Pace(elapsed, hits)
		if stop || (c.requests > 0 && hits >= c.requests) {
			break
		}
		if wait > 0 {
			if !sleep(ctx, time.Now().Add(wait)) {
				break
			}
			continue
		}
		// vegeta's pacer sends hit k at (k+1) intervals from the start.
		intended := began.Add(time.Duration(hits+1) * interval)
		if intended.Sub(began) > c.duration {
			break
		}
		select {
		case ticks <- intended:
			hits++
		case <-ctx.Done():
			break loop
		}
	}
	close(ticks)
	wg.Wait()
	return nil
}
