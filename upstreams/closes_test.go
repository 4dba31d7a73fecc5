package upstreams

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawServer answers one GET per connection with resp, then, after closeAfter (< 0:
// never, until the test ends), closes the connection.
func rawServer(t *testing.T, resp string, closeAfter time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() { close(done); ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer nc.Close()
				if _, err := http.ReadRequest(bufio.NewReader(nc)); err != nil {
					return
				}
				io.WriteString(nc, resp)
				if closeAfter < 0 {
					<-done
					return
				}
				select {
				case <-time.After(closeAfter):
				case <-done:
				}
			})
		}
	})
	return "http://" + ln.Addr().String()
}

const okResponse = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

func TestMeasureClosesTimesEachClose(t *testing.T) {
	const after = 30 * time.Millisecond
	url := rawServer(t, okResponse, after)
	samples, err := MeasureCloses(context.Background(), url, 8, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 8 {
		t.Fatalf("%d samples, want 8", len(samples))
	}
	// time.After never fires early, so no sample is shorter than after; a loaded machine
	// makes some late, so "about after" is asserted on the median: it is the close that
	// was timed, not the 5s wait.
	for i, d := range samples {
		if d < after {
			t.Errorf("sample %d = %v, before the server's close at %v", i, d, after)
		}
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	if p50 := sorted[len(sorted)/2]; p50 > after+250*time.Millisecond {
		t.Errorf("median sample %v, want about %v (all: %v)", p50, after, samples)
	}
}

func TestMeasureClosesReportsConnectionsWithoutSample(t *testing.T) {
	t.Run("never closed", func(t *testing.T) {
		url := rawServer(t, okResponse, -1)
		samples, err := MeasureCloses(context.Background(), url, 3, 100*time.Millisecond)
		if len(samples) != 0 || err == nil || !strings.Contains(err.Error(), "3 of 3 connections gave no sample") ||
			!strings.Contains(err.Error(), "no close within 100ms of the response") {
			t.Errorf("MeasureCloses = %v, %v; want no samples and an error naming the wait", samples, err)
		}
	})
	t.Run("connection close", func(t *testing.T) {
		url := rawServer(t, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 0)
		_, err := MeasureCloses(context.Background(), url, 1, time.Second)
		if err == nil || !strings.Contains(err.Error(), "Connection: close: not an idle close") {
			t.Errorf("err = %v, want the announced close refused", err)
		}
	})
	t.Run("bytes after the response", func(t *testing.T) {
		url := rawServer(t, okResponse+"junk", 10*time.Millisecond)
		_, err := MeasureCloses(context.Background(), url, 1, time.Second)
		if err == nil || !strings.Contains(err.Error(), "unexpected bytes after the response") {
			t.Errorf("err = %v, want the extra bytes named", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		url := rawServer(t, okResponse, -1)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := MeasureCloses(ctx, url, 2, 10*time.Second)
		// Promptly: at the context's end, not when the 10s wait ran out.
		if err == nil || !strings.Contains(err.Error(), "context deadline exceeded") || time.Since(start) >= 10*time.Second {
			t.Errorf("err = %v after %v, want the context's error before the 10s wait", err, time.Since(start))
		}
	})
}

func TestMeasureClosesRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		url  string
		n    int
		wait time.Duration
		want string
	}{
		{"http://10.0.0.1:80", 1, time.Second, `MeasureCloses: url: "10.0.0.1:80": not a loopback address`},
		{"http://127.0.0.1", 1, time.Second, `MeasureCloses: url "http://127.0.0.1": needs a port`},
		{"https://127.0.0.1:1", 1, time.Second, `MeasureCloses: url "https://127.0.0.1:1": scheme must be http`},
		{"http://127.0.0.1:1", 0, time.Second, "MeasureCloses: n must be within [1, 1024], got 0"},
		{"http://127.0.0.1:1", 1, 0, "MeasureCloses: wait must be > 0, got 0s"},
	} {
		_, err := MeasureCloses(context.Background(), tc.url, tc.n, tc.wait)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("MeasureCloses(%q, %d, %v) = %v, want %q", tc.url, tc.n, tc.wait, err, tc.want)
		}
	}
}

func TestStartErrorIsOneLineAndUnwraps(t *testing.T) {
	cause := errors.New("nginx exited before it was ready")
	err := error(&StartError{Err: cause, Tail: []string{"nginx: [emerg] bind() failed", "still could not bind()"}})
	if want := "could not start: nginx exited before it was ready; log tail: nginx: [emerg] bind() failed | still could not bind()"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err, want)
	}
	if !errors.Is(err, ErrStart) || !errors.Is(err, cause) {
		t.Error("StartError does not unwrap to ErrStart and its cause")
	}
	if got := (&StartError{Err: context.Canceled}).Error(); got != "could not start: context canceled; log tail: (empty)" {
		t.Errorf("Error() without tail = %q", got)
	}
}
