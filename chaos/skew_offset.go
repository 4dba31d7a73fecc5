package chaos

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// offsetSkew closes every idle connection at T+d: a server whose real timeout differs
// from the one the client was told (a proxy in front with a shorter timeout, a stale
// config value).
type offsetSkew struct {
	offset time.Duration
}

const offsetUsage = "offset:D (signed, e.g. offset:-5ms)"

func init() {
	RegisterSkew("offset", offsetUsage, func(arg string) (Skew, error) {
		if arg == "" {
			return nil, errors.New("offset needs a duration (" + offsetUsage + ")")
		}
		d, err := parseSkewDuration(arg)
		if err != nil {
			return nil, fmt.Errorf("%w (%s)", err, offsetUsage)
		}
		return offsetSkew{offset: d}, nil
	})
}

func (o offsetSkew) Draw(*rand.Rand, float64) time.Duration { return o.offset }
func (o offsetSkew) CDF(x time.Duration) float64            { return stepCDF(x, o.offset) }
func (o offsetSkew) String() string                         { return "offset:" + o.offset.String() }
