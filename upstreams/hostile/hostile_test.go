package hostile_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/idlerace/idlerace/upstreams/hostile"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Close ends every connection's goroutine at once, the ones waiting on a trickle or on a
// client that never leaves included (goleak checks that none is left).
func TestCloseEndsSlowAndSilentServersWithClientsAttached(t *testing.T) {
	for _, name := range []string{"trickle", "never-answers"} {
		srv, err := hostile.New(name, hostile.Options{Interval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(srv.URL(), "http://"), "/"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		for srv.Accepted() == 0 {
			time.Sleep(time.Millisecond)
		}
		srv.Close() // returns only when every goroutine has ended
		// The server closed the client's connection: the client reads EOF, not a byte.
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || strings.Contains(err.Error(), "timeout") {
			t.Fatalf("%s: read %d bytes, %v after Close; want the connection closed", name, n, err)
		}
		c.Close()
	}
}

func TestEveryKindListensOnLoopbackAndSaysWhatToExpect(t *testing.T) {
	ks := hostile.Kinds()
	if len(ks) != 9 {
		t.Fatalf("%d kinds, want 9", len(ks))
	}
	for _, k := range ks {
		if k.Help == "" || len(k.Expect) == 0 {
			t.Errorf("%s: help %q, expect %v", k.Name, k.Help, k.Expect)
		}
		s := hostile.Start(t, k.Name, hostile.Options{})
		if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
			t.Errorf("%s listens at %s", k.Name, s.URL())
		}
	}
	if _, err := hostile.New("polite", hostile.Options{}); err == nil || !strings.Contains(err.Error(), "known:") {
		t.Fatalf("unknown kind: %v", err)
	}
}
