package real

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/idlerace/idlerace/upstreams"
)

// serveOn stands in for the server Launch starts: it listens on addr (the port Launch
// picked) and answers every GET with answer(connections accepted so far, this one
// included). It stops at cleanup.
func serveOn(t *testing.T, addr Addr, answer func(accepted int64) string) error {
	ln, err := net.Listen("tcp", addr.HostPort())
	if err != nil {
		return err
	}
	var accepted atomic.Int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, answer(accepted.Load()))
		}),
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				accepted.Add(1)
			}
		},
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return nil
}

// sh is the Spec of a shell running script in the server's directory.
func sh(t *testing.T, script string) Spec {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	return Spec{Path: "/bin/sh", Package: "Debian package dash", Args: []string{"-c", script}, ReadyPath: "/ready"}
}

func assertNoDir(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory %s still there (stat: %v)", dir, err)
	}
}

func TestLaunchRetriesAPortLostToARace(t *testing.T) {
	var dirs []string
	var s Server
	err := Launch(context.Background(), &s, Launcher{
		Kind:    "sh",
		InUse:   "EADDRINUSE",
		Version: "sh/1",
		Prepare: func(dir string, addr Addr, token string) (Spec, error) {
			dirs = append(dirs, dir)
			if len(dirs) == 1 {
				return sh(t, "echo 'listen EADDRINUSE: address already in use' >&2; exit 1"), nil
			}
			if err := serveOn(t, addr, func(int64) string { return token }); err != nil {
				return Spec{}, err
			}
			return sh(t, "exec sleep 30"), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 2 {
		t.Fatalf("%d attempts, want 2 (the first lost its port)", len(dirs))
	}
	assertNoDir(t, dirs[0])
	if s.Kind() != "sh" || s.Version() != "sh/1" || s.Dir() != dirs[1] || s.Closes() != nil || !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("server kind %q version %q dir %q (want %q) closes %v url %q", s.Kind(), s.Version(), s.Dir(), dirs[1], s.Closes(), s.URL())
	}
	pid := s.Pid()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	waitGone(t, pid)
	assertNoDir(t, dirs[1])
}

func TestLaunchFailuresLeaveNothingBehind(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T) (Spec, error)
		ready   func([]byte) error
		want    string
	}{
		{"prepare fails", func(*testing.T) (Spec, error) { return Spec{}, errors.New("disk full") },
			nil, "could not start: disk full"},
		{"server exits", func(t *testing.T) (Spec, error) { return sh(t, "echo 'bad flag' >&2; exit 2"), nil },
			nil, "could not start: sh exited before it was ready; log tail: bad flag"},
		{"ready refuses", nil, func([]byte) error { return errors.New("not JSON") },
			"could not start: not JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dirs []string
			var s Server
			err := Launch(context.Background(), &s, Launcher{
				Kind:  "sh",
				InUse: "EADDRINUSE",
				Prepare: func(dir string, addr Addr, token string) (Spec, error) {
					dirs = append(dirs, dir)
					if tc.prepare != nil {
						return tc.prepare(t)
					}
					if err := serveOn(t, addr, func(int64) string { return token }); err != nil {
						return Spec{}, err
					}
					return sh(t, "exec sleep 30"), nil
				},
				Ready: tc.ready,
			})
			if !errors.Is(err, upstreams.ErrStart) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("Launch: %v, want ErrStart %q...", err, tc.want)
			}
			if len(dirs) != 1 {
				t.Errorf("%d attempts, want 1: only a lost port is tried again", len(dirs))
			}
			assertNoDir(t, dirs[0])
			if s.proc != nil { // started, then refused by Ready
				waitGone(t, s.proc.Pid())
			}
		})
	}
}

func TestCloseRunsTheKindsReadsAroundTheStopOnce(t *testing.T) {
	var events []string
	var s Server
	state := func(when string) func() {
		return func() {
			select {
			case <-s.Proc().Exited():
				events = append(events, when+": exited")
			default:
				events = append(events, when+": running")
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	err := Launch(ctx, &s, Launcher{
		Kind:  "sh",
		InUse: "EADDRINUSE",
		Prepare: func(dir string, addr Addr, token string) (Spec, error) {
			if err := serveOn(t, addr, func(int64) string { return token }); err != nil {
				return Spec{}, err
			}
			return sh(t, "exec sleep 30"), nil
		},
		BeforeStop: state("before"),
		AfterStop:  state("after"),
	})
	if err != nil {
		t.Fatal(err)
	}
	pid, dir := s.Pid(), s.Dir()
	cancel()
	s.Close() // waits for the Close the cancel started
	s.Close()
	if got := strings.Join(events, ", "); got != "before: running, after: exited" {
		t.Errorf("hooks saw %q, want before: running, after: exited (once each)", got)
	}
	waitGone(t, pid)
	assertNoDir(t, dir)
}

func TestAppStatsAreTheScriptsLessOwnPolls(t *testing.T) {
	for _, tc := range []struct {
		ownConnsCounted         bool
		wantAccepted, wantFinal int64
	}{
		// Accepted by the script: the readiness poll, the client, the Stats poll (3),
		// then Close's last poll (4); idlerace's own are all but the client.
		{true, 1, 1},
		{false, 3, 4},
	} {
		t.Run(fmt.Sprintf("OwnConnsCounted=%v", tc.ownConnsCounted), func(t *testing.T) {
			var a App
			var hostPort string
			err := StartApp(context.Background(), &a, Launcher{
				Kind:  "app",
				InUse: "EADDRINUSE",
				Prepare: func(dir string, addr Addr, token string) (Spec, error) {
					hostPort = addr.HostPort()
					err := serveOn(t, addr, func(accepted int64) string {
						return fmt.Sprintf(`{"token":%q,"version":"app/1","accepted":%d,"executed":7}`, token, accepted)
					})
					if err != nil {
						return Spec{}, err
					}
					sp := sh(t, "")
					sp.Args = []string{"app.sh"} // the script StartApp wrote
					return sp, nil
				},
			}, AppScript{Name: "app.sh", Body: []byte("exec sleep 30\n"), StatsPath: "/_idlerace/stats", OwnConnsCounted: tc.ownConnsCounted})
			if err != nil {
				t.Fatal(err)
			}
			if a.Version() != "app/1" {
				t.Errorf("Version() = %q, want app/1 from the first stats answer", a.Version())
			}
			var client atomic.Int64
			if _, err := getOnce(context.Background(), hostPort, "/", &client); err != nil {
				t.Fatal(err)
			}
			if st := a.Stats(); st.Accepted != tc.wantAccepted || st.Executed != 7 {
				t.Errorf("Stats() = %+v, want %d accepted, 7 executed", st, tc.wantAccepted)
			}
			pid, dir := a.Pid(), a.Dir()
			if err := a.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if st := a.Stats(); st.Accepted != tc.wantFinal || st.Executed != 7 {
				t.Errorf("Stats() after Close = %+v, want the counts Close read: %d accepted, 7 executed", st, tc.wantFinal)
			}
			waitGone(t, pid)
			assertNoDir(t, dir)
		})
	}
}
