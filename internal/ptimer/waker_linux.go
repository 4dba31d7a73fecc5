//go:build linux

package ptimer

import (
	"container/heap"
	"context"
	"encoding/binary"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/idlerace/idlerace/internal/hrwait"
)

// waker is the process's one precise sleeper: a goroutine that sleeps in epoll_pwait2
// until the earliest due and wakes the goroutines waiting for it. One sleeper for every
// wait, not a system call per wait: hundreds of lanes each blocking its own thread would
// hold the process's Ps in system calls until sysmon took them back (the builtin's idle
// waiter measured that). The goroutine runs only while waits are held, so none outlives
// them.
//
// Why it yields after waking a lane rather than sleeping on its own locked thread at
// nice -20, as the builtin's waiter does: a goroutine it makes ready goes to its P, and a
// locked thread that then blocks in the system call leaves it there until another thread
// is woken to steal it, or sysmon retakes the P. Yielding runs the lane on this thread
// at once. BenchmarkSleepLateness, 256 sleepers: p50 0.12 ms, p99 0.68–0.84 ms locked;
// 0.06 ms and 0.15–0.17 ms yielding.
type waker struct {
	epfd, evfd int

	mu      sync.Mutex // never held over a system call
	due     dueHeap
	running bool
}

type entry struct {
	due   time.Time
	index int // in dueHeap; -1 once fired or removed
	fired chan struct{}
}

var theWaker = sync.OnceValue(newWaker)

// newWaker returns nil where the kernel cannot (no epoll_pwait2 before Linux 5.11).
// Its descriptors live as long as the process.
func newWaker() *waker {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	var events [1]unix.EpollEvent
	if unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev) != nil || hrwait.Pwait2(epfd, events[:], 0) < 0 {
		unix.Close(evfd)
		unix.Close(epfd)
		return nil
	}
	return &waker{epfd: epfd, evfd: evfd}
}

func (w *waker) sleepUntil(ctx context.Context, t time.Time) bool {
	e := &entry{due: t, fired: make(chan struct{})}
	w.mu.Lock()
	heap.Push(&w.due, e)
	first, start := w.due[0] == e, !w.running
	w.running = true
	w.mu.Unlock()
	switch {
	case start:
		go w.run()
	case first:
		w.poke()
	}
	select {
	case <-e.fired:
		return true
	case <-ctx.Done():
	}
	w.mu.Lock()
	removed := e.index >= 0
	head := removed && e.index == 0
	if removed {
		heap.Remove(&w.due, e.index)
		e.index = -1
	}
	w.mu.Unlock()
	if head {
		// The thread sleeps towards this due: let it look again, and end if none is left.
		w.poke()
	}
	return false
}

// poke wakes the thread to look at the heap again.
func (w *waker) poke() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	unix.Write(w.evfd, one[:])
}

// run fires every due in order until none is left, yielding after each batch so that
// the goroutines it readied run before it sleeps again.
func (w *waker) run() {
	events := make([]unix.EpollEvent, 1)
	var drain [8]byte
	for {
		w.mu.Lock()
		now := time.Now()
		fired := 0
		for len(w.due) > 0 && !w.due[0].due.After(now) {
			e := heap.Pop(&w.due).(*entry)
			e.index = -1
			close(e.fired)
			fired++
		}
		if fired > 0 {
			w.mu.Unlock()
			runtime.Gosched()
			continue
		}
		if len(w.due) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		timeout := w.due[0].due.Sub(now)
		w.mu.Unlock()
		if n := hrwait.Pwait2(w.epfd, events, timeout); n < 0 {
			// Not seen on Linux ≥ 5.11 (probed at start): hand what is left to Go
			// timers rather than spin or wake anyone early.
			w.fallBack()
			return
		} else if n > 0 {
			unix.Read(w.evfd, drain[:])
		}
	}
}

// fallBack fires every held wait from a Go timer and ends the thread's part.
func (w *waker) fallBack() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.due {
		time.AfterFunc(time.Until(e.due), func() { close(e.fired) })
		e.index = -1
	}
	w.due, w.running = nil, false
}

// dueHeap orders the waits by due.
type dueHeap []*entry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *dueHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
