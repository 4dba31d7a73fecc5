package attack

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/idlerace/idlerace/internal/ptimer"
)

// A load that wakes seldom sleeps on ptimer, a busy one on Go timers: the T = 1 s sweep
// (48 lanes), the seed's uvicorn focus (1,024 lanes at 5 s) on ptimer; the default run
// (64 lanes at 100 ms) and 256 lanes at 100 ms on Go timers.
func TestSleeperForRate(t *testing.T) {
	name := func(f func(context.Context, time.Time) bool) uintptr { return reflect.ValueOf(f).Pointer() }
	for _, c := range []struct {
		rate    float64
		precise bool
	}{{48, true}, {1024.0 / 5, true}, {499, true}, {500, false}, {640, false}, {2560, false}} {
		got := name(sleeperFor(c.rate)) == name(ptimer.SleepUntil)
		if got != c.precise {
			t.Errorf("%g wake-ups a second: on ptimer %v, want %v", c.rate, got, c.precise)
		}
	}
}
