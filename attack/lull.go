package attack

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/idlerace/idlerace/internal/spec"
)

// lull sends bursts of concurrent requests on one shared pool, separated by idle lulls
// drawn uniformly from [T-w, T+w]: the shape of a service that wakes on a cron tick or a
// queue drain, whose pooled connections all sit idle for the same lull. A request is
// exposed to the race when it reuses a connection; its gap is that connection's idle age.
type lull struct {
	burst    int
	lulls    int
	width    time.Duration
	duration time.Duration
}

func init() {
	RegisterLoad("lull", "lull[:burst=N,lulls=N,width=D,duration=D]",
		"bursts of N concurrent requests on a shared pool, separated by lulls drawn from [T-width, T+width] (default burst=8, lulls=20)",
		func(o *spec.Options) (Load, error) {
			l := &lull{}
			var err error
			if l.burst, err = o.Int("burst", 8, 1, 1024); err != nil {
				return nil, err
			}
			if l.lulls, err = o.Int("lulls", 20, 1, 100_000); err != nil {
				return nil, err
			}
			if l.width, err = o.Duration("width", 0, false); err != nil {
				return nil, err
			}
			if l.duration, err = o.Duration("duration", 30*time.Second, false); err != nil {
				return nil, err
			}
			return l, nil
		})
}

func (l *lull) String() string {
	w := ""
	if l.width > 0 {
		w = fmt.Sprintf(",width=%s", l.width)
	}
	return fmt.Sprintf("lull:burst=%d,lulls=%d%s,duration=%s", l.burst, l.lulls, w, l.duration)
}

func (l *lull) Duration(time.Duration) time.Duration { return l.duration }

func (l *lull) Run(ctx context.Context, env *Env, rec *Recorder) error {
	if env.IdleTimeout <= 0 {
		return fmt.Errorf("lull needs the idle timeout T (--idle-timeout) to place its lulls")
	}
	w := l.width
	if w == 0 {
		w = env.IdleTimeout / 4
	}
	lo := max(env.IdleTimeout-w, 0)
	hi := env.IdleTimeout + w
	rng := rand.New(rand.NewPCG(env.Seed, 0x6c756c6c))
	deadline := time.Now().Add(l.duration)
	tr := env.transport()

	fire := func(intended time.Time, prime bool) time.Time {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var last time.Time
		for i := 0; i < l.burst; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := env.send(ctx, tr, intended, prime)
				if ctx.Err() != nil {
					return
				}
				if r.FirstReused { // a retried request was exposed on its first connection
					r.Gap = r.FirstIdleAge
				}
				rec.Add(r)
				mu.Lock()
				if r.End.After(last) {
					last = r.End
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		return last
	}
	end := fire(time.Now(), true)
	for i := 0; i < l.lulls && !end.IsZero(); i++ {
		gap := lo + time.Duration(rng.Float64()*float64(hi-lo))
		intended := end.Add(gap)
		if intended.After(deadline) || !sleepUntil(ctx, intended) {
			break
		}
		end = fire(intended, false)
	}
	return nil
}
