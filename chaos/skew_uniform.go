package chaos

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// uniformSkew draws s uniformly from [-w, +w] (in whole nanoseconds): timer slack and
// scheduling jitter of a server that checks idleness on a coarse tick.
type uniformSkew struct {
	width time.Duration // w > 0
}

const uniformUsage = "uniform:±D (also uniform:D, uniform:+-D; e.g. uniform:±10ms)"

func init() {
	RegisterSkew("uniform", uniformUsage, func(arg string) (Skew, error) {
		a := strings.TrimSpace(arg)
		if b, ok := strings.CutPrefix(a, "±"); ok {
			a = b
		} else if b, ok := strings.CutPrefix(a, "+-"); ok {
			a = b
		}
		if a == "" {
			return nil, errors.New("uniform needs a width (uniform:±D, e.g. uniform:±10ms)")
		}
		w, err := parseSkewDuration(a)
		if err != nil {
			return nil, fmt.Errorf("width: %w (uniform:±D, e.g. uniform:±10ms)", err)
		}
		if w <= 0 {
			return nil, errors.New("width must be > 0 (uniform:±D, e.g. uniform:±10ms)")
		}
		return uniformSkew{width: w}, nil
	})
}

func (u uniformSkew) Draw(rng *rand.Rand, _ float64) time.Duration {
	return time.Duration(rng.Int64N(2*int64(u.width)+1)) - u.width
}

func (u uniformSkew) CDF(x time.Duration) float64 { return uniformCDF(x, -u.width, u.width) }
func (u uniformSkew) String() string              { return "uniform:±" + u.width.String() }
