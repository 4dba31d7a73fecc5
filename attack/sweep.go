package attack

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/internal/spec"
)

// sweep runs L lanes, each with a transport of its own holding one connection. After
// every response a lane waits an idle gap g and sends the next request on the same
// connection; the gaps sweep [T-w, T+w] in a low-discrepancy order (golden-ratio steps,
// offset per lane), so every gap in the window is visited evenly whatever the duration.
// When a request fails, the connection is gone: the lane sends a priming request on a
// new connection at once (counted as a prime, not a request), so that every measured
// request follows a response on its connection by exactly its gap.
type sweep struct {
	lanes int
	width time.Duration // 0: T/4
	// focus, when set, draws the gaps from [c-focus, c+focus] around the server's
	// located close c (Env.LocatedClose) instead of around T: the race window is a few ms wide,
	// so a ±T/4 sweep at T = 5s lands in it about once in 400 requests.
	focus    time.Duration
	duration time.Duration
	// periods, when set, makes the duration that many idle timeouts, so one spec serves
	// servers with a 100ms and a 5s timeout alike.
	periods  int
	requests int
}

func init() {
	RegisterLoad("sweep", "sweep[:lanes=N,width=D|focus=D,duration=D|periods=N,requests=N]",
		"L lanes, one connection each; the idle gap sweeps [T-width, T+width] (default lanes=32, width=T/4, duration=2s; periods=N: N*T); focus=D sweeps [c-D, c+D] around the server's measured close c",
		func(o *spec.Options) (Load, error) {
			s := &sweep{}
			var err error
			if s.lanes, err = o.Int("lanes", 32, 1, 4096); err != nil {
				return nil, err
			}
			both := o.Has("width") && o.Has("focus")
			if s.width, err = o.Duration("width", 0, false); err != nil {
				return nil, err
			}
			if s.focus, err = o.Duration("focus", 0, false); err != nil {
				return nil, err
			}
			if both {
				return nil, fmt.Errorf("width and focus both given: choose one (focus=D sweeps ±D around the measured close)")
			}
			hasDuration := o.Has("duration")
			if s.duration, err = o.Duration("duration", 2*time.Second, false); err != nil {
				return nil, err
			}
			if s.periods, err = o.Int("periods", 0, 1, 100_000); err != nil {
				return nil, err
			}
			if hasDuration && s.periods > 0 {
				return nil, fmt.Errorf("duration and periods both given: choose one")
			}
			if s.requests, err = o.Int("requests", 1_000_000, 1, 100_000_000); err != nil {
				return nil, err
			}
			return s, nil
		})
}

func (s *sweep) String() string {
	w := ""
	if s.width > 0 {
		w = fmt.Sprintf(",width=%s", s.width)
	}
	if s.focus > 0 {
		w = fmt.Sprintf(",focus=%s", s.focus)
	}
	r := ""
	if s.requests != 1_000_000 {
		r = fmt.Sprintf(",requests=%d", s.requests)
	}
	if s.periods > 0 {
		return fmt.Sprintf("sweep:lanes=%d%s,periods=%d%s", s.lanes, w, s.periods, r)
	}
	return fmt.Sprintf("sweep:lanes=%d%s,duration=%s%s", s.lanes, w, s.duration, r)
}

func (s *sweep) Duration(idleTimeout time.Duration) time.Duration {
	if s.periods > 0 {
		return time.Duration(s.periods) * idleTimeout
	}
	return s.duration
}

// Window returns the gap range [lo, hi] for idle timeout t and the server's located
// close c (0: not located, t stands in): [t-width, t+width], or with focus
// [c-focus, c+focus].
func (s *sweep) Window(t, c time.Duration) (lo, hi time.Duration) {
	w := s.width
	if w == 0 {
		w = t / 4
	}
	lo, hi = t-w, t+w
	if s.focus > 0 {
		if c <= 0 {
			c = t
		}
		lo, hi = c-s.focus, c+s.focus
	}
	if lo < 0 {
		lo = 0
	}
	return lo, hi
}

// phi's fractional part gives the golden-ratio sequence, the most even way to visit an
// interval one point at a time.
var phi = (math.Sqrt(5) - 1) / 2

func (s *sweep) Run(ctx context.Context, env *Env, rec *Recorder) error {
	if env.IdleTimeout <= 0 {
		return fmt.Errorf("sweep needs the idle timeout T (--idle-timeout) to place its gaps")
	}
	lo, hi := s.Window(env.IdleTimeout, env.LocatedClose)
	// Each lane wakes once a gap: lanes / the mean gap a second.
	sleep := sleeperFor(float64(s.lanes) / max(((lo+hi)/2).Seconds(), 1e-3))
	start := time.Now()
	deadline := start.Add(s.Duration(env.IdleTimeout))
	var budget atomic.Int64
	budget.Store(int64(s.requests))
	var wg sync.WaitGroup
	for k := 0; k < s.lanes; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			tr := env.transport()
			// Lanes start spread over one timeout so that they do not fire in step.
			if !sleep(ctx, start.Add(time.Duration(k)*env.IdleTimeout/time.Duration(s.lanes))) {
				return
			}
			p := env.send(ctx, tr, time.Now(), true)
			if ctx.Err() != nil {
				return
			}
			rec.Add(p)
			if p.Err != nil {
				return
			}
			prevEnd := p.End
			offset := float64(k) / float64(s.lanes)
			for j := 1; ; j++ {
				frac := math.Mod(offset+phi*float64(j), 1)
				gap := lo + time.Duration(frac*float64(hi-lo))
				intended := prevEnd.Add(gap)
				if intended.After(deadline) || budget.Add(-1) < 0 {
					return
				}
				// A client kind's lane waits the gap inside its own process.
				if _, timed := tr.(pool.Timed); !timed && !sleep(ctx, intended) {
					return
				}
				r := env.send(ctx, tr, intended, false)
				if ctx.Err() != nil {
					return // stopped mid-request: not a measurement
				}
				// The pool's idle age is measured from the moment the body hit EOF; the
				// lane's own clock runs a little later and can be preempted in between.
				r.Gap = r.Start.Sub(prevEnd)
				if r.FirstReused && r.FirstIdleAge > 0 {
					r.Gap = r.FirstIdleAge
				}
				rec.Add(r)
				prevEnd = r.End
				if r.Err != nil {
					p := env.send(ctx, tr, time.Now(), true)
					if ctx.Err() != nil {
						return // stopped: a prime cut short is not a failure of the target
					}
					rec.Add(p)
					if p.Err != nil {
						return
					}
					prevEnd = p.End
				}
			}
		}(k)
	}
	wg.Wait()
	return nil
}
