package chaos

import (
	"errors"
	"math/rand/v2"
	"time"
)

// noneSkew closes exactly at T: the server keeps the timeout the client believes in.
type noneSkew struct{}

func init() {
	RegisterSkew("none", "none (close exactly at T)", func(arg string) (Skew, error) {
		if arg != "" {
			return nil, errors.New(`none takes no argument (none)`)
		}
		return noneSkew{}, nil
	})
}

func (noneSkew) Draw(*rand.Rand, float64) time.Duration { return 0 }
func (noneSkew) CDF(x time.Duration) float64            { return stepCDF(x, 0) }
func (noneSkew) String() string                         { return "none" }
