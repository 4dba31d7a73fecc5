package ptimer

import (
	"context"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// goleak also checks that the waker's goroutine ends once no wait is held.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// 64 sleeps with dues in random order all return true, none before its due: the kernel's
// timer never fires early, and the heap hands each wait its own due.
func TestSleepUntilReturnsNoEarlierThanItsDue(t *testing.T) {
	start := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := 0; i < 64; i++ {
		due := start.Add(time.Duration(rng.Int64N(int64(20 * time.Millisecond))))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !SleepUntil(context.Background(), due) {
				errs <- "returned false without a cancelled context"
			} else if now := time.Now(); now.Before(due) {
				errs <- "woke " + due.Sub(now).String() + " before its due"
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// A cancelled context ends the wait at once with false, also for the earliest due the
// thread is sleeping towards (it must look again and, with nothing left, end: goleak).
func TestSleepUntilEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool)
	go func() { done <- SleepUntil(ctx, time.Now().Add(time.Hour)) }()
	// A second, later wait stays held: the first's removal must not fire it.
	later, cancelLater := context.WithCancel(context.Background())
	laterDone := make(chan bool)
	go func() { laterDone <- SleepUntil(later, time.Now().Add(2*time.Hour)) }()
	cancel()
	if <-done {
		t.Fatal("SleepUntil reported its due reached after its context was cancelled")
	}
	select {
	case <-laterDone:
		t.Fatal("the later wait returned when only the earlier one was cancelled")
	default:
	}
	cancelLater()
	if <-laterDone {
		t.Fatal("SleepUntil reported its due reached after its context was cancelled")
	}
}

// A due already past returns at once, whatever the context; a cancelled one false.
func TestSleepUntilPastDue(t *testing.T) {
	if !SleepUntil(context.Background(), time.Now().Add(-time.Millisecond)) {
		t.Error("a past due: false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if SleepUntil(ctx, time.Now().Add(-time.Millisecond)) {
		t.Error("a past due with a cancelled context: true")
	}
}

// BenchmarkSleepLateness: how late N concurrent sleeps (dues spread over 10 ms) return
// past their due, through SleepUntil and through a Go timer. Reports p50, p99 and max in
// µs; compare runs with benchstat.
func BenchmarkSleepLateness(b *testing.B) {
	for _, n := range []int{1, 64, 256} {
		for _, kind := range []struct {
			name  string
			sleep func(context.Context, time.Time) bool
		}{{"ptimer", SleepUntil}, {"gotimer", GoSleepUntil}} {
			b.Run(kind.name+"/n="+itoa(n), func(b *testing.B) {
				var late []time.Duration
				var mu sync.Mutex
				for i := 0; i < b.N; i++ {
					start := time.Now().Add(time.Millisecond)
					var wg sync.WaitGroup
					for k := 0; k < n; k++ {
						due := start.Add(time.Duration(k) * 10 * time.Millisecond / time.Duration(n))
						wg.Add(1)
						go func() {
							defer wg.Done()
							kind.sleep(context.Background(), due)
							d := time.Since(due)
							mu.Lock()
							late = append(late, d)
							mu.Unlock()
						}()
					}
					wg.Wait()
				}
				sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
				q := func(p float64) float64 { return float64(late[int(p*float64(len(late)-1))]) / 1e3 }
				b.ReportMetric(q(0.5), "p50-µs")
				b.ReportMetric(q(0.99), "p99-µs")
				b.ReportMetric(q(1), "max-µs")
			})
		}
	}
}

func itoa(n int) string {
	s := ""
	for ; n > 0 || s == ""; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

// GoSleepUntil reaches its time, and a cancelled context ends it with false.
func TestGoSleepUntil(t *testing.T) {
	due := time.Now().Add(time.Millisecond)
	if !GoSleepUntil(context.Background(), due) || time.Now().Before(due) {
		t.Error("GoSleepUntil returned before its time or false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if GoSleepUntil(ctx, time.Now().Add(time.Hour)) {
		t.Error("a cancelled context: true")
	}
}
