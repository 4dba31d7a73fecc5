package real

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"

	"github.com/idlerace/idlerace/upstreams"
)

// launchAttempts bounds retries when a port picked free was taken before the server
// bound it.
const launchAttempts = 3

// Launcher says how to start one real server of a kind.
type Launcher struct {
	Kind string
	Addr string // Config.Addr, resolved by ListenAddr
	// InUse is what the server says when its port is taken ("EADDRINUSE"): a port picked
	// free may be taken by someone else before the server binds it, and then Launch tries
	// again on another.
	InUse   string
	Version string // the server's version when known before it starts (nginx -v)
	// Prepare writes the server's files into its private directory dir and says how to
	// run it, listening on addr and answering token on its Spec.ReadyPath. Launch fills in
	// the Spec's Kind, Dir, Addr and ReadyToken; an error is an *upstreams.StartError.
	Prepare func(dir string, addr Addr, token string) (Spec, error)
	// Ready, when set, reads the readiness answer of a started server; an error stops it
	// and is an *upstreams.StartError.
	Ready func(body []byte) error
	// BeforeStop and AfterStop, when set, run in Close just before and just after the
	// server is stopped: a last read of the counters it keeps, of the logs it wrote.
	BeforeStop, AfterStop func()
}

// Server is a running real server as a kind embeds it: where it listens, its private
// directory, its process and its version. Through it the kind implements Kind, Version,
// URL, Dir, Pid, Closes and Close; Launch starts it.
type Server struct {
	kind    string
	version string
	addr    Addr
	dir     string
	proc    *Process
	stopCtx func() bool

	beforeStop, afterStop func()
	closeOnce             sync.Once
	closeErr              error
}

// Launch starts the server l describes into s: it resolves the address, makes the private
// directory, lets l.Prepare write the server's files, starts the server and waits until
// it answers, and arranges for Close when ctx is done. It tries again on a fresh port
// when the server lost one picked free to a race; on failure it leaves nothing behind.
func Launch(ctx context.Context, s *Server, l Launcher) error {
	s.kind, s.version = l.Kind, l.Version
	s.beforeStop, s.afterStop = l.BeforeStop, l.AfterStop
	for attempt := 1; ; attempt++ {
		err := s.launch(ctx, l)
		if err == nil {
			break
		}
		if attempt == launchAttempts || !s.addr.Auto || !strings.Contains(err.Error(), l.InUse) {
			return err
		}
	}
	s.stopCtx = context.AfterFunc(ctx, func() { s.Close() })
	return nil
}

// launch makes one attempt on a fresh port; on failure s holds only the address tried.
func (s *Server) launch(ctx context.Context, l Launcher) error {
	var err error
	if s.addr, err = ListenAddr(l.Addr); err != nil {
		return err
	}
	token := Token()
	if s.dir, err = NewDir(l.Kind); err != nil {
		return err
	}
	sp, err := l.Prepare(s.dir, s.addr, token)
	if err != nil {
		os.RemoveAll(s.dir)
		return &upstreams.StartError{Err: err}
	}
	sp.Kind, sp.Dir, sp.Addr, sp.ReadyToken = l.Kind, s.dir, s.addr, token
	var body []byte
	if s.proc, body, err = Start(ctx, sp); err != nil {
		os.RemoveAll(s.dir)
		return err
	}
	if l.Ready != nil {
		if err := l.Ready(body); err != nil {
			s.proc.Stop()
			os.RemoveAll(s.dir)
			return &upstreams.StartError{Err: err}
		}
	}
	return nil
}

// Kind returns the kind's name.
func (s *Server) Kind() string { return s.kind }

// Version returns the server's own name for itself.
func (s *Server) Version() string { return s.version }

// URL returns "http://127.0.0.1:PORT".
func (s *Server) URL() string { return s.addr.URL() }

// Dir is the server's private directory (removed on Close).
func (s *Server) Dir() string { return s.dir }

// Pid is the server's main process id, also its process group id.
func (s *Server) Pid() int { return s.proc.Pid() }

// Proc is the server's process, for kinds that ask it for their counters.
func (s *Server) Proc() *Process { return s.proc }

// Closes returns nil: a real server does not say when it closes a connection.
func (s *Server) Closes() []upstreams.CloseRecord { return nil }

// Close stops the server (SIGTERM to its process group, SIGKILL after a grace period),
// with the kind's last reads just before and after (Launcher.BeforeStop, AfterStop), and
// removes its directory. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.stopCtx()
		if s.beforeStop != nil {
			s.beforeStop()
		}
		err := s.proc.Stop()
		if s.afterStop != nil {
			s.afterStop()
		}
		s.closeErr = errors.Join(err, os.RemoveAll(s.dir))
	})
	return s.closeErr
}
