package pool_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
)

// BenchmarkKeepAliveRoundTrip measures one POST round trip on a kept-alive loopback
// connection through each transport. Compare with benchstat as ratios:
//
//	go test -run '^$' -bench KeepAliveRoundTrip -count 10 ./attack/pool > rt.txt
//	go tool -modfile=tools/go.mod benchstat -col /strategy rt.txt
//
// shows blind against the stdlib row (net/http.Transport) and read-probe against blind.
func BenchmarkKeepAliveRoundTrip(b *testing.B) {
	srv := newTestServer(b, "")
	for _, spec := range []string{"stdlib", "blind", "read-probe", "watch"} {
		b.Run("strategy="+spec, func(b *testing.B) {
			tr := pool.New(mustParse(b, spec), pool.Config{IdleTimeout: time.Hour})
			defer tr.CloseIdleConnections()
			url := srv.url()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("payload"))
				resp, err := tr.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			b.StopTimer()
			if st := tr.Stats(); st.NewConns != 1 {
				b.Fatalf("%s dialled %d connections, want 1", spec, st.NewConns)
			}
		})
	}
}

// BenchmarkProbe measures the read probe alone on a live idle connection: one
// non-blocking recv(MSG_PEEK).
func BenchmarkProbe(b *testing.B) {
	srv := newTestServer(b, "")
	tr := pool.New(mustParse(b, "blind"), pool.Config{})
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, srv.url(), nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c := pool.IdleConnForTest(tr)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := pool.ProbeForTest(c); err != nil {
			b.Fatal(err)
		}
	}
}
