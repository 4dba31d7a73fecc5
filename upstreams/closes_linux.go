//go:build linux

package upstreams

import (
	"context"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// stampConn reads with recvmsg(2) and keeps the kernel's receive timestamp
// (SO_TIMESTAMPNS, CLOCK_REALTIME) of the last bytes read. If the socket cannot give
// timestamps it falls back to the time the read returned.
type stampConn struct {
	net.Conn
	rc      syscall.RawConn // nil: plain reads
	last    time.Time
	stamped bool // last came from the kernel
}

func newStampConn(nc net.Conn) *stampConn {
	c := &stampConn{Conn: nc}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	var optErr error
	if err := rc.Control(func(fd uintptr) {
		optErr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil || optErr != nil {
		return c
	}
	c.rc = rc
	return c
}

func (c *stampConn) Read(p []byte) (int, error) {
	if c.rc == nil {
		n, err := c.Conn.Read(p)
		if n > 0 {
			c.last = time.Now()
		}
		return n, err
	}
	var (
		n, oobn int
		recvErr error
		oob     [64]byte
	)
	err := c.rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, recvErr = syscall.Recvmsg(int(fd), p, oob[:], 0)
		return recvErr != syscall.EAGAIN
	})
	if err == nil {
		err = recvErr
	}
	if err != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: wrapSyscall(err)}
	}
	if n == 0 {
		return 0, io.EOF
	}
	if at, ok := rxTimestamp(oob[:oobn]); ok {
		c.last, c.stamped = at, true
	} else {
		c.last, c.stamped = time.Now(), false
	}
	return n, nil
}

func wrapSyscall(err error) error {
	if errno, ok := err.(syscall.Errno); ok {
		return os.NewSyscallError("recvmsg", errno)
	}
	return err
}

// enableRxTimestamps makes sure the kernel stamps received TCP segments before
// MeasureCloses sends anything. Linux turns receive timestamping on globally through a
// static key that is flipped asynchronously (a work item) when the first socket asks
// for it, and off again when the last such socket closes; until it is on, TCP segments
// carry no timestamp. It opens a TCP connection on loopback that asks for timestamps
// and sends itself a byte until one arrives stamped (bounded by 200ms), and returns a
// func that closes it: the caller keeps it open, and so the key on, while it measures.
func enableRxTimestamps() (release func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return func() {}
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return func() {}
	}
	server, err := ln.Accept()
	if err != nil {
		client.Close()
		return func() {}
	}
	release = func() { client.Close(); server.Close() }
	sc := newStampConn(client)
	if sc.rc == nil {
		return release
	}
	var buf [16]byte
	for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); {
		if _, err := server.Write([]byte{'t'}); err != nil {
			return release
		}
		client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := sc.Read(buf[:]); err != nil {
			return release
		}
		if sc.stamped {
			return release
		}
		time.Sleep(time.Millisecond)
	}
	return release
}

// rxTimestamp finds SCM_TIMESTAMPNS in a recvmsg control buffer.
func rxTimestamp(oob []byte) (time.Time, bool) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SO_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(syscall.Timespec{})) {
			ts := *(*syscall.Timespec)(unsafe.Pointer(&m.Data[0]))
			return time.Unix(ts.Unix()), true
		}
	}
	return time.Time{}, false
}

type pollFd struct {
	fd      int32
	events  int16
	revents int16
}

const (
	pollIn    = 0x1
	pollRDHup = 0x2000
)

// closeWatcher waits for the ends of many connections on one OS thread, blocked in
// ppoll(2) over all their sockets at once, and timestamps each end when that thread
// wakes: one wake-up per close instead of a goroutine or a thread per connection, which
// under a burst of closes would queue behind each other (and behind the server's own
// threads on a small machine).
type closeWatcher struct {
	wakeR, wakeW int // a pipe: registering writes a byte so that ppoll rereads the set

	mu      sync.Mutex
	added   []*watchEntry
	stopped bool
	done    chan struct{}
}

type watchEntry struct {
	fd    int32
	until time.Time
	ended chan time.Time // receives the wake time; closed without a value on timeout or stop
}

func newCloseWatcher() *closeWatcher {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return nil
	}
	w := &closeWatcher{wakeR: p[0], wakeW: p[1], done: make(chan struct{})}
	go w.loop()
	return w
}

// stop ends the watcher; pending waits end without a time.
func (w *closeWatcher) stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.wake()
	<-w.done
	syscall.Close(w.wakeR)
	syscall.Close(w.wakeW)
}

func (w *closeWatcher) wake() { syscall.Write(w.wakeW, []byte{1}) }

// waitEnd waits until c's socket has data, the peer's FIN or an error, and returns when
// the watcher woke for it. ok is false when it could not wait or when until or ctx came
// first. c must stay open until waitEnd returns.
func (c *stampConn) waitEnd(ctx context.Context, w *closeWatcher, until time.Time) (at time.Time, ok bool) {
	if w == nil || c.rc == nil {
		return time.Time{}, false
	}
	e := &watchEntry{fd: -1, until: until, ended: make(chan time.Time, 1)}
	c.rc.Control(func(fd uintptr) { e.fd = int32(fd) })
	if e.fd < 0 {
		return time.Time{}, false
	}
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return time.Time{}, false
	}
	w.added = append(w.added, e)
	w.mu.Unlock()
	w.wake()
	select {
	case at, ok = <-e.ended:
		return at, ok
	case <-ctx.Done():
		return time.Time{}, false
	}
}

func (w *closeWatcher) loop() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(w.done)
	var (
		pending []*watchEntry
		pfds    []pollFd
		drain   [64]byte
	)
	defer func() {
		for _, e := range pending {
			close(e.ended)
		}
	}()
	for {
		w.mu.Lock()
		stopped := w.stopped
		pending = append(pending, w.added...)
		w.added = w.added[:0]
		w.mu.Unlock()
		if stopped {
			return
		}
		pfds = append(pfds[:0], pollFd{fd: int32(w.wakeR), events: pollIn})
		next := time.Now().Add(time.Second)
		for _, e := range pending {
			pfds = append(pfds, pollFd{fd: e.fd, events: pollIn | pollRDHup})
			next = minTime(next, e.until)
		}
		ts := syscall.NsecToTimespec(int64(max(time.Until(next), 0)))
		_, _, errno := syscall.Syscall6(syscall.SYS_PPOLL,
			uintptr(unsafe.Pointer(&pfds[0])), uintptr(len(pfds)), uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		now := time.Now()
		if errno != 0 && errno != syscall.EINTR {
			return // the deferred func ends every pending wait without a time
		}
		if pfds[0].revents != 0 {
			for {
				if n, _ := syscall.Read(w.wakeR, drain[:]); n <= 0 {
					break
				}
			}
		}
		kept := pending[:0]
		for i, e := range pending {
			switch {
			case errno == 0 && pfds[i+1].revents != 0:
				e.ended <- now
			case !now.Before(e.until):
				close(e.ended)
			default:
				kept = append(kept, e)
			}
		}
		clear(pending[len(kept):])
		pending = kept
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
