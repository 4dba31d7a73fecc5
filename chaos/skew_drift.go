package chaos

import (
	"errors"
	"math/rand/v2"
	"time"
)

// driftSkew moves s linearly from `from` at the start of the run to `to` at its end: a
// server whose effective timeout creeps as it loads up (timer wheels falling behind,
// a config reload halfway). Over a run its CDF is that of uniform between from and to.
type driftSkew struct {
	from, to time.Duration
}

const driftUsage = "drift:from=D,to=D (from defaults to 0; e.g. drift:from=0,to=-20ms)"

func init() {
	RegisterSkew("drift", driftUsage, func(arg string) (Skew, error) {
		p, err := parseSkewParams(arg, driftUsage, "from", "to")
		if err != nil {
			return nil, err
		}
		to, ok := p["to"]
		if !ok {
			return nil, errors.New("to is required (" + driftUsage + ")")
		}
		return driftSkew{from: p["from"], to: to}, nil
	})
}

func (d driftSkew) Draw(_ *rand.Rand, progress float64) time.Duration {
	return d.from + time.Duration(clampProgress(progress)*float64(d.to-d.from))
}

func (d driftSkew) CDF(x time.Duration) float64 {
	lo, hi := min(d.from, d.to), max(d.from, d.to)
	if lo == hi {
		return stepCDF(x, lo)
	}
	return uniformCDF(x, lo, hi)
}

func (d driftSkew) String() string {
	return "drift:from=" + d.from.String() + ",to=" + d.to.String()
}
