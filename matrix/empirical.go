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
}

func newEmpiricalSkew(closes []time.Duration, believed time.Duration) *empiricalSkew {
	s := make([]time.Duration, len(closes))
	for i, c := range closes {
		s[i] = c - believed
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return &empiricalSkew{samples: s}
}

// Draw picks a measured sample; the model never draws, but the interface asks for it.
func (e *empiricalSkew) Draw(rng *rand.Rand, _ float64) time.Duration {
	if len(e.samples) == 0 {
		return 0
	}
	return e.samples[rng.IntN(len(e.samples))]
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
	return float64(n) / float64(len(e.samples))
}

func (e *empiricalSkew) String() string {
	if len(e.samples) == 0 {
		return "measured:none"
	}
	return fmt.Sprintf("measured:%s..%s", e.samples[0], e.samples[len(e.samples)-1])
}
