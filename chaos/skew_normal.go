package chaos

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// normalSkew draws s from a normal distribution: many small independent delays (GC
// pauses, event-loop lag) added to the server's idle check.
type normalSkew struct {
	mean time.Duration
	sd   time.Duration // > 0
}

const normalUsage = "normal:sd=D[,mean=D] (e.g. normal:sd=3ms, normal:mean=-2ms,sd=3ms)"

func init() {
	RegisterSkew("normal", normalUsage, func(arg string) (Skew, error) {
		p, err := parseSkewParams(arg, normalUsage, "mean", "sd")
		if err != nil {
			return nil, err
		}
		sd, ok := p["sd"]
		if !ok {
			return nil, errors.New("sd is required (" + normalUsage + ")")
		}
		if sd <= 0 {
			return nil, fmt.Errorf("sd must be > 0, got %v (%s)", sd, normalUsage)
		}
		return normalSkew{mean: p["mean"], sd: sd}, nil
	})
}

func (n normalSkew) Draw(rng *rand.Rand, _ float64) time.Duration {
	// |NormFloat64| stays far below 1e4 and sd <= MaxSkew, so this cannot overflow.
	return n.mean + time.Duration(rng.NormFloat64()*float64(n.sd))
}

func (n normalSkew) CDF(x time.Duration) float64 {
	return 0.5 * math.Erfc(-float64(x-n.mean)/(float64(n.sd)*math.Sqrt2))
}

func (n normalSkew) String() string {
	if n.mean == 0 {
		return "normal:sd=" + n.sd.String()
	}
	return "normal:mean=" + n.mean.String() + ",sd=" + n.sd.String()
}
