//go:build linux

package builtin

import (
	"container/heap"
	"encoding/binary"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/idlerace/idlerace/internal/hrwait"
)

// idleWaiter holds every idle connection of one server in a single epoll set and closes
// each at its due from one goroutine, waking in epoll_pwait2(2) with the kernel's
// hrtimer precision (timer slack, 50µs by default).
//
// Why one waiter and not a wait per connection: the Go netpoller rounds every timer wait
// to whole milliseconds of epoll_wait, and a connection that waits its last stretch in
// ppoll(2) on its own thread holds a P in a system call until sysmon takes it back. With
// hundreds of connections idle at once on 2 cores, those stuck Ps delayed the wake-ups
// themselves: in BenchmarkIdleCloseAccuracy at 512 connections, a fifth of the waits
// woke from their early deadline already past due, and closes landed 1.6–16 ms late at
// p99. Here one thread sleeps for all of them and closes at due without handing over to
// the connection's goroutine, whose wake-up would be one more scheduling delay.
type idleWaiter struct {
	epfd, evfd int
	closeAt    func(c *conn, stopped time.Time) bool // the server's idle close; false: the conn's goroutine closes

	mu      sync.Mutex // the heap and the map; never held over a system call
	due     dueHeap
	byID    map[int32]*waitEntry
	nextID  int32
	running bool // run began: it releases the descriptors, else stop does
	stopped bool
	boosted bool // run's thread got nice -20

	// beforeRegister, set by a test before run, is called between a wait's entry and
	// its epoll registration.
	beforeRegister func()

	// fdMu guards released: the descriptors are closed and their numbers may name other
	// files now. Readers (epoll_ctl, the eventfd's write) share it, so that no
	// connection holds the waiter up over a system call.
	fdMu     sync.RWMutex
	released bool
}

type waitEntry struct {
	c       *conn
	due     time.Time
	id      int32
	index   int // in dueHeap
	verdict chan verdict
}

// evID is the epoll data of the eventfd that wakes the waiter; connections get 1 and up.
const evID = 0

// newIdleWaiter returns nil where the kernel cannot (no epoll_pwait2 before Linux 5.11):
// the server then waits on read deadlines, a millisecond less precise.
func newIdleWaiter(closeAt func(*conn, time.Time) bool) *idleWaiter {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil
	}
	w := &idleWaiter{epfd: epfd, evfd: evfd, closeAt: closeAt, byID: map[int32]*waitEntry{}}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: evID}
	var events [1]unix.EpollEvent
	if unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev) != nil || w.pwait(events[:], 0) < 0 {
		w.release()
		return nil
	}
	return w
}

func (w *idleWaiter) release() {
	w.fdMu.Lock()
	defer w.fdMu.Unlock()
	if !w.released {
		w.released = true
		unix.Close(w.evfd)
		unix.Close(w.epfd)
	}
}

// ctl is epoll_ctl on the waiter's set, refused once the set is closed (its number may
// be another server's set by then).
func (w *idleWaiter) ctl(op, fd int, ev *unix.EpollEvent) error {
	w.fdMu.RLock()
	defer w.fdMu.RUnlock()
	if w.released {
		return unix.EBADF
	}
	return unix.EpollCtl(w.epfd, op, fd, ev)
}

// pwait is hrwait.Pwait2 on the waiter's set.
func (w *idleWaiter) pwait(events []unix.EpollEvent, timeout time.Duration) int {
	return hrwait.Pwait2(w.epfd, events, timeout)
}

// poke wakes the waiter to look at the heap again.
func (w *idleWaiter) poke() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	w.fdMu.RLock()
	defer w.fdMu.RUnlock()
	if !w.released {
		unix.Write(w.evfd, one[:])
	}
}

// wait holds c until it is readable or due passed. ok is false when c could not be
// watched (no descriptor); the caller then waits on a read deadline. done and killed
// end the wait (ended: the server or a restart closed c).
func (w *idleWaiter) wait(c *conn, due time.Time, done, killed <-chan struct{}) (v verdict, ok bool) {
	sc, isSC := c.nc.(syscall.Conn)
	if !isSC {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	e := &waitEntry{c: c, due: due, verdict: make(chan verdict, 1)}
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return 0, false
	}
	w.nextID++
	if w.nextID <= evID {
		w.nextID = evID + 1
	}
	e.id = w.nextID
	w.byID[e.id] = e
	heap.Push(&w.due, e)
	first := w.due[0] == e
	w.mu.Unlock()
	if w.beforeRegister != nil {
		w.beforeRegister()
	}
	// In the map before epoll knows the descriptor, so no event finds it missing.
	var addErr error
	cerr := rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: e.id}
		addErr = w.ctl(unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if cerr != nil || addErr != nil {
		if w.remove(e) {
			return 0, false
		}
		// The waiter took it meanwhile (a due already passing) and may have closed it,
		// which is why Control failed: its answer, and with it the record, is ours.
		return <-e.verdict, true
	}
	if first {
		w.poke()
	}
	defer rc.Control(func(fd uintptr) {
		// One-shot left it registered but disarmed; a closed descriptor left epoll already.
		w.ctl(unix.EPOLL_CTL_DEL, int(fd), nil)
	})
	select {
	case v := <-e.verdict:
		return v, true
	case <-done:
	case <-killed:
	}
	if w.remove(e) {
		return ended, true
	}
	return <-e.verdict, true // the waiter took it first and is answering
}

// remove takes e out of the waiter; false when the waiter already had.
func (w *idleWaiter) remove(e *waitEntry) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byID[e.id] != e {
		return false
	}
	delete(w.byID, e.id)
	heap.Remove(&w.due, e.index)
	return true
}

// run is the waiter's goroutine, until stop.
func (w *idleWaiter) run() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return // stop came first and released the descriptors
	}
	w.running = true
	w.mu.Unlock()
	defer w.release()
	// The waiter's thread is its own, at nice -20 where the process may: when its timer
	// fires, the kernel's scheduler prefers it to the load's threads. 256 lanes at T =
	// 100ms on 2 cores, closes late at p99: 1.9–5.7 ms at nice 0, 1.8–2.9 ms at -20
	// (SCHED_FIFO: hrwait.Boost says why not). It never unlocks: when run returns the
	// thread ends with it.
	runtime.LockOSThread()
	boosted := hrwait.Boost()
	w.mu.Lock()
	w.boosted = boosted
	w.mu.Unlock()
	events := make([]unix.EpollEvent, 128)
	var drain [8]byte
	for {
		w.mu.Lock()
		if w.stopped {
			w.mu.Unlock()
			return
		}
		timeout := time.Duration(-1)
		if len(w.due) > 0 {
			timeout = max(0, time.Until(w.due[0].due))
		}
		w.mu.Unlock()
		n := w.pwait(events, timeout)
		// Reading stopped here for every connection closed below: a request that
		// arrives while the loop answers and closes (or while the thread is preempted
		// doing so, a few ms on 2 cores) is not seen until the next wait, so it meets
		// the close unread, even one that arrived before its own due.
		looked := time.Now()
		if n < 0 {
			// Not seen on Linux ≥ 5.11 (probed at start); fail the waits rather than spin.
			w.failAll()
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == evID {
				unix.Read(w.evfd, drain[:])
				continue
			}
			w.mu.Lock()
			e := w.byID[ev.Fd]
			if e != nil {
				delete(w.byID, e.id)
				heap.Remove(&w.due, e.index)
			}
			w.mu.Unlock()
			if e != nil {
				e.verdict <- readable
			}
		}
		w.closeDue(looked)
	}
}

// closeDue answers every entry whose due passed, closing it here when the server can;
// looked is when the waiter last took epoll's events, where reading stopped.
func (w *idleWaiter) closeDue(looked time.Time) {
	for {
		now := time.Now()
		w.mu.Lock()
		if len(w.due) == 0 || w.due[0].due.After(now) {
			w.mu.Unlock()
			return
		}
		e := heap.Pop(&w.due).(*waitEntry)
		delete(w.byID, e.id)
		w.mu.Unlock()
		if w.closeAt(e.c, looked) {
			e.verdict <- closedIdle
		} else {
			e.verdict <- pastDue
		}
	}
}

// failAll sends every waiting connection back to its read deadline and refuses new
// waits.
func (w *idleWaiter) failAll() {
	w.mu.Lock()
	w.stopped = true
	waiting := w.due
	w.due, w.byID = nil, map[int32]*waitEntry{}
	w.mu.Unlock()
	for _, e := range waiting {
		e.verdict <- unwatched
	}
}

// stop ends run; waits still held get no verdict and end on the server's done channel.
func (w *idleWaiter) stop() {
	w.mu.Lock()
	already, running := w.stopped, w.running
	w.stopped = true
	w.mu.Unlock()
	switch {
	case running:
		w.poke()
	case !already:
		w.release()
	}

}

// dueHeap orders waiting connections by due.
type dueHeap []*waitEntry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *dueHeap) Push(x any) {
	e := x.(*waitEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}
