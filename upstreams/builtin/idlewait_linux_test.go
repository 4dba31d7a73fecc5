//go:build linux

package builtin

import (
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/idlerace/idlerace/chaos"
)

// startWaiter runs an idle waiter whose closeAt records the order it was called in and
// answers close (true: the waiter closed it).
func startWaiter(t *testing.T, closes bool) (*idleWaiter, *[]*conn, *sync.Mutex) {
	t.Helper()
	var mu sync.Mutex
	var order []*conn
	w := newIdleWaiter(func(c *conn, stopped time.Time) bool {
		mu.Lock()
		order = append(order, c)
		mu.Unlock()
		return closes
	})
	if w == nil {
		t.Fatal("newIdleWaiter = nil: epoll_pwait2 needs Linux 5.11")
	}
	done := make(chan struct{})
	go func() { w.run(); close(done) }()
	t.Cleanup(func() { w.stop(); <-done })
	return w, &order, &mu
}

func TestIdleWaiterAnswersDueReadableAndEnd(t *testing.T) {
	for _, closes := range []bool{false, true} {
		w, _, _ := startWaiter(t, closes)
		_, server := tcpPair(t)
		due := time.Now().Add(5 * time.Millisecond)
		v, ok := w.wait(&conn{nc: server}, due, nil, nil)
		want := map[bool]verdict{false: pastDue, true: closedIdle}[closes]
		if !ok || v != want {
			t.Fatalf("silent connection, closeAt → %v: verdict %v ok %v, want %v", closes, v, ok, want)
		}
		if now := time.Now(); now.Before(due) {
			t.Errorf("answered %v before due", due.Sub(now))
		}
		w.mu.Lock()
		boosted := w.boosted
		w.mu.Unlock()
		if os.Geteuid() == 0 && !boosted {
			t.Error("as root the waiter's thread did not get nice -20")
		}
	}

	w, order, mu := startWaiter(t, true)
	client, server := tcpPair(t)
	go io.WriteString(client, "G")
	if v, ok := w.wait(&conn{nc: server}, time.Now().Add(waitBound), nil, nil); !ok || v != readable {
		t.Fatalf("after a byte: verdict %v ok %v, want readable", v, ok)
	}
	var b [1]byte
	server.Read(b[:])
	// The same connection again (the one-shot registration was removed): the FIN wakes it.
	go client.Close()
	if v, ok := w.wait(&conn{nc: server}, time.Now().Add(waitBound), nil, nil); !ok || v != readable {
		t.Fatalf("after the client's FIN: verdict %v ok %v, want readable", v, ok)
	}
	_, server2 := tcpPair(t)
	done := make(chan struct{})
	close(done)
	if v, ok := w.wait(&conn{nc: server2}, time.Now().Add(waitBound), done, nil); !ok || v != ended {
		t.Fatalf("server closing: verdict %v ok %v, want ended", v, ok)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(*order) != 0 {
		t.Errorf("closeAt called %d times for connections that were readable or ended", len(*order))
	}
}

// TestIdleWaiterClosesInDueOrder holds 64 connections whose dues are registered out of
// order: the waiter answers each no earlier than its due, in the order of the dues.
func TestIdleWaiterClosesInDueOrder(t *testing.T) {
	w, order, mu := startWaiter(t, true)
	const n = 64
	conns := make([]*conn, n)
	dues := make(map[*conn]time.Time, n)
	servers := make([]net.Conn, n)
	for i := range servers {
		_, servers[i] = tcpPair(t)
	}
	// Whether all n were held when the first due passed: only then is the order of
	// every close the order of the dues (a wait registered late, on a slow machine,
	// meets an earlier due that has already been answered).
	var allHeld bool
	w.closeAt = func(c *conn, stopped time.Time) bool {
		mu.Lock()
		defer mu.Unlock()
		if len(*order) == 0 {
			w.mu.Lock()
			allHeld = len(w.due)+1 == n
			w.mu.Unlock()
		}
		*order = append(*order, c)
		return true
	}
	base := time.Now().Add(100 * time.Millisecond)
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := range n {
		conns[i] = &conn{nc: servers[i]}
		due := base.Add(time.Duration((i*37)%n) * 100 * time.Microsecond) // a permutation
		dues[conns[i]] = due
		wg.Add(1)
		go func(c *conn) {
			defer wg.Done()
			v, ok := w.wait(c, due, nil, nil)
			if now := time.Now(); !ok || v != closedIdle || now.Before(due) {
				errs <- "a connection answered " + v.String() + " or before its due"
			}
		}(conns[i])
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(*order) != n {
		t.Fatalf("closeAt called %d times, want %d", len(*order), n)
	}
	if !allHeld {
		t.Skip("the first due passed before all 64 waits were registered: no order to check")
	}
	if !slices.IsSortedFunc(*order, func(a, b *conn) int { return dues[a].Compare(dues[b]) }) {
		t.Error("closeAt not called in the order of the dues")
	}
}

func TestIdleWaiterStoppedBeforeRunReleases(t *testing.T) {
	w := newIdleWaiter(func(*conn, time.Time) bool { return true })
	if w == nil {
		t.Fatal("newIdleWaiter = nil")
	}
	w.stop()
	w.run() // returns at once: stop came first
	_, server := tcpPair(t)
	if _, ok := w.wait(&conn{nc: server}, time.Now().Add(waitBound), nil, nil); ok {
		t.Error("wait on a stopped waiter ok = true, want false (fall back to a deadline)")
	}
}

// TestIdleWaiterAnswersAWaitItClosedBeforeRegistering: a due that passes while the wait
// registers can be closed by the waiter before epoll knows the descriptor. The wait must
// still get the waiter's answer (and with it the close to record), not fall back on a
// connection that is gone.
func TestIdleWaiterAnswersAWaitItClosedBeforeRegistering(t *testing.T) {
	closed := make(chan struct{}, 1)
	w := newIdleWaiter(func(c *conn, stopped time.Time) bool {
		c.nc.Close()
		closed <- struct{}{}
		return true
	})
	if w == nil {
		t.Fatal("newIdleWaiter = nil")
	}
	// The waiter sleeps until a poke or its next due; this wait's due has passed, so
	// one poke from here wakes it to take the entry and close it, before the wait goes
	// on to register the (now closed) descriptor.
	w.beforeRegister = func() {
		w.poke()
		<-closed
	}
	done := make(chan struct{})
	go func() { w.run(); close(done) }()
	defer func() { w.stop(); <-done }()
	_, server := tcpPair(t)
	if v, ok := w.wait(&conn{nc: server}, time.Now(), nil, nil); !ok || v != closedIdle {
		t.Fatalf("wait with its due passing: verdict %v ok %v, want closed idle", v, ok)
	}
}

// TestIdleWaiterStopsReadingWhereItLastLooked: the waiter takes epoll's events, then
// closes what is due. A request that arrives while it closes another connection (or
// while its thread is preempted doing so) is not seen until the next wait, so its
// connection is closed over it: that connection stopped reading when the waiter last
// looked, which is what closeAt is told, not the moment its own close came round.
func TestIdleWaiterStopsReadingWhereItLastLooked(t *testing.T) {
	var mu sync.Mutex
	stopped := map[*conn]time.Time{}
	entered, release := make(chan *conn, 2), make(chan struct{})
	w := newIdleWaiter(func(c *conn, at time.Time) bool {
		mu.Lock()
		first := len(stopped) == 0
		stopped[c] = at
		mu.Unlock()
		if first {
			entered <- c
			<-release
		}
		return true
	})
	if w == nil {
		t.Fatal("newIdleWaiter = nil")
	}
	done := make(chan struct{})
	go func() { w.run(); close(done) }()
	defer func() { w.stop(); <-done }()

	var conns [2]*conn
	var clients [2]net.Conn
	for i := range conns {
		var server net.Conn
		clients[i], server = tcpPair(t)
		conns[i] = &conn{nc: server}
	}
	due := time.Now().Add(100 * time.Millisecond)
	verdicts := make(chan verdict, 2)
	for _, c := range conns {
		go func() {
			v, _ := w.wait(c, due, nil, nil)
			verdicts <- v
		}()
	}
	first := <-entered
	w.mu.Lock()
	held := len(w.due) == 1 // the other wait was registered before the due passed
	w.mu.Unlock()
	other, client := conns[1], clients[1]
	if first == conns[1] {
		other, client = conns[0], clients[0]
	}
	if _, err := io.WriteString(client, "G"); err != nil {
		t.Fatal(err)
	}
	wrote := time.Now()
	for deadline := time.Now().Add(waitBound); !chaos.Unread(other.nc) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Microsecond) // until the byte is in the server's buffer
	}
	close(release)
	for range conns {
		<-verdicts
	}
	if !held {
		t.Skip("the due passed before both waits were registered: no shared pass to check")
	}
	mu.Lock()
	defer mu.Unlock()
	at, ok := stopped[other]
	if !ok {
		t.Fatal("the connection whose request came during the waiter's pass was not closed by it")
	}
	if at != stopped[first] {
		t.Errorf("closed in one pass, stopped at %v and %v: want both where the waiter looked", stopped[first], at)
	}
	if !at.Before(wrote) {
		t.Errorf("stopped %v after its request was written: it was never read", at.Sub(wrote))
	}
}
