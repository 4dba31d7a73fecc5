package matrix

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

// empiricalSkew is the skew a real server showed when idlerace measured its closes
// before the cell: each sample is when a connection's FIN arrived after its response,
// minus the T the client believes. The model uses it as the skew distribution, so a
// server that closes late (Node adds a second to keepAliveTimeout) or jitters (nginx's
// millisecond timers) is predicted as it behaves, not as it is configured.
type empiricalSkew struct {
	samples []time.Duration // sorted
	// cum[i] is the weight of samples[:i+1]; nil when every sample weighs 1.
	cum []float64
}

func newEmpiricalSkew(closes []time.Duration, believed time.Duration) *empiricalSkew {
	s := make([]time.Duration, len(closes))
	for i, c := range closes {
		s[i] = c - believed
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return &empiricalSkew{samples: s}
}

// minSurvival bounds the weight cellClosesSkew gives a close: a timer longer than all
// but 5% of the gaps is counted 20 times, not more, so that a handful of long closes
// cannot swing the model.
const minSurvival = 0.05

// cellClosesSkew is the skew of the idle closes a cell's server made under the cell's
// own load (issue 9: the closes measured beforehand on 16 idle connections missed what
// the load does to a real server's timers). A close is only seen when the client's gap
// outlasted the server's timer, so long timers are under-represented in proportion to
// how few gaps exceed them: each close of idle period x weighs 1/S(x), S the fraction of
// the cell's exposed gaps longer than x (inverse probability weighting, S >= 5%). A
// client gap g is g + lag in the server's clock (clientLags: read and write lag).
func cellClosesSkew(idle []time.Duration, gaps func(yield func(time.Duration, int64) bool), lag, believed time.Duration) *empiricalSkew {
	type bucket struct {
		gap time.Duration
		n   int64
	}
	var gs []bucket
	var total int64
	for g, n := range gaps {
		gs = append(gs, bucket{g + lag, n})
		total += n
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].gap < gs[j].gap })
	e := newEmpiricalSkew(idle, believed)
	e.cum = make([]float64, len(e.samples))
	sum, j := 0.0, 0
	var below int64 // gaps at or below the current sample
	for i, s := range e.samples {
		x := s + believed
		for j < len(gs) && gs[j].gap <= x {
			below += gs[j].n
			j++
		}
		surv := 1.0
		if total > 0 {
			surv = max(float64(total-below)/float64(total), minSurvival)
		}
		sum += 1 / surv
		e.cum[i] = sum
	}
	return e
}

// weightUpTo is the weight of the first n samples.
func (e *empiricalSkew) weightUpTo(n int) float64 {
	if n == 0 {
		return 0
	}
	if e.cum == nil {
		return float64(n)
	}
	return e.cum[n-1]
}

// Draw picks a measured sample; the model never draws, but the interface asks for it.
func (e *empiricalSkew) Draw(rng *rand.Rand, _ float64) time.Duration {
	if len(e.samples) == 0 {
		return 0
	}
	if e.cum == nil {
		return e.samples[rng.IntN(len(e.samples))]
	}
	w := rng.Float64() * e.cum[len(e.cum)-1]
	return e.samples[min(sort.SearchFloat64s(e.cum, w), len(e.samples)-1)]
}

// CDF is the fraction of samples at or below x.
func (e *empiricalSkew) CDF(x time.Duration) float64 {
	if len(e.samples) == 0 {
		if x >= 0 {
			return 1
		}
		return 0
	}
	n := sort.Search(len(e.samples), func(i int) bool { return e.samples[i] > x })
	return e.weightUpTo(n) / e.weightUpTo(len(e.samples))
}

func (e *empiricalSkew) String() string {
	if len(e.samples) == 0 {
		return "measured:none"
	}
	return fmt.Sprintf("measured:%s..%s", e.samples[0], e.samples[len(e.samples)-1])
}
