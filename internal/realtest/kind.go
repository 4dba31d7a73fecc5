package realtest

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/idlerace/idlerace/upstreams"
)

// StartFunc is a kind's Start.
type StartFunc[S io.Closer] func(ctx context.Context, cfg upstreams.Config) (S, error)

// Process is a started real server as the checks below see it.
type Process interface {
	URL() string
	Pid() int
	Dir() string
	Close() error
}

// Start starts a server with cfg, failing the test if it does not start, and closes it
// at cleanup.
func Start[S io.Closer](t testing.TB, start StartFunc[S], cfg upstreams.Config) S {
	t.Helper()
	s, err := start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// AssertCancelStops starts a server with a context, makes one request on a connection
// and cancels the context: the server must end that connection (with EOF, or with a
// reset too when resetOK) and, closed, leave no process and no directory behind.
func AssertCancelStops[S Process](t testing.TB, start func(ctx context.Context) (S, error), resetOK bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := Dial(t, s.URL())
	c.RoundTrip("/")
	cancel()
	err = c.ReadEnd()
	switch {
	case resetOK && err != io.EOF && !errors.Is(err, syscall.ECONNRESET):
		t.Errorf("after cancel: %v, want the connection ended", err)
	case !resetOK && err != io.EOF:
		t.Errorf("after cancel: %v, want EOF", err)
	}
	s.Close()
	AssertGone(t, s.Pid(), s.Dir())
}

// AssertBinaryMissing points *binary at path, which must not exist, for the test, and
// checks that starting kind fails with an ErrStart that names path and where the binary
// comes from (pkg: "Debian package nginx") and wraps fs.ErrNotExist.
func AssertBinaryMissing(t testing.TB, kind string, binary *string, path, pkg string) {
	t.Helper()
	old := *binary
	*binary = path
	t.Cleanup(func() { *binary = old })
	_, err := upstreams.Start(context.Background(), kind, upstreams.Config{IdleTimeout: time.Second})
	AssertStartError(t, err, `upstream "`+kind+`": could not start`, path, pkg)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %q does not wrap fs.ErrNotExist", err)
	}
}

// AssertStartFails starts a server with cfg and checks that it fails with an ErrStart
// whose one-line message holds every one of wants (AssertStartError); it logs the error.
func AssertStartFails[S io.Closer](t testing.TB, start StartFunc[S], cfg upstreams.Config, wants ...string) {
	t.Helper()
	_, err := start(context.Background(), cfg)
	AssertStartError(t, err, wants...)
	t.Log(err)
}

// AssertRefused checks that start refuses cfg with an error that begins with want: bad
// input, named, and not an ErrStart.
func AssertRefused[S io.Closer](t testing.TB, start StartFunc[S], cfg upstreams.Config, want string) {
	t.Helper()
	s, err := start(context.Background(), cfg)
	if err == nil {
		s.Close()
		t.Errorf("Start(%+v) succeeded, want %q", cfg, want)
		return
	}
	if !strings.HasPrefix(err.Error(), want) || errors.Is(err, upstreams.ErrStart) {
		t.Errorf("Start(%+v) = %q, want %q... (bad input, not ErrStart)", cfg, err, want)
	}
}
