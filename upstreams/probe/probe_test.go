package probe

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/upstreams"
	"github.com/idlerace/idlerace/upstreams/builtin"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startBuiltin(t *testing.T, cfg upstreams.Config, faults ...string) string {
	t.Helper()
	for _, f := range faults {
		fl, err := chaos.ParseFault(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Faults = append(cfg.Faults, fl)
	}
	s, err := builtin.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.URL() + "/"
}

func run(t *testing.T, target string, tweak ...func(*Config)) *Result {
	t.Helper()
	c := &Config{Target: target, MaxTimeout: 5 * time.Second, MaxRequests: 20}
	for _, f := range tweak {
		f(c)
	}
	if err := c.Prepare(); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	reqs, _ := c.Bounds()
	if res.RequestsSent > int64(reqs) {
		t.Errorf("sent %d requests, bound %d", res.RequestsSent, reqs)
	}
	return res
}

// The builtin closes idle connections at T by FIN: the probe finds T from watched
// closes (never before T: a sample is the close's arrival minus the response's), the
// FIN, the RST a late request gets, and no per-connection limit.
func TestProbeFindsTheBuiltinsIdleClose(t *testing.T) {
	const T = 150 * time.Millisecond
	res := run(t, startBuiltin(t, upstreams.Config{IdleTimeout: T}))
	c := res.IdleTimeoutMS
	if c == nil || c.Method != "watched" || c.Samples < DefaultConns/2 {
		t.Fatalf("idle timeout %+v, want watched closes", c)
	}
	// Below: a close is never seen before it is sent. Above: only a hang.
	if c.Min < ms(T)*0.99 || c.P50 > 10*ms(T) {
		t.Errorf("close p50 %.3f ms, min %.3f ms: want after T = %v", c.P50, c.Min, T)
	}
	if !(c.P50CI95[0] <= c.P50 && c.P50 <= c.P50CI95[1]) {
		t.Errorf("median %.3f outside its interval %v", c.P50, c.P50CI95)
	}
	if res.CloseMode != "fin" || res.LateRequest != "rst" {
		t.Errorf("close mode %q, late request %q: want fin, rst", res.CloseMode, res.LateRequest)
	}
	if res.MaxRequests != nil {
		t.Errorf("max requests %d (%s), want none within %d", *res.MaxRequests, res.MaxRequestsMode, res.MaxRequestsTried)
	}
	if res.AdvertisedTimeoutS == nil || *res.AdvertisedTimeoutS != T.Seconds() {
		t.Errorf("advertised %v from %q, want %v", res.AdvertisedTimeoutS, res.KeepAlive, T.Seconds())
	}
}

func TestProbeSeesAnRSTClose(t *testing.T) {
	res := run(t, startBuiltin(t, upstreams.Config{IdleTimeout: 100 * time.Millisecond, Close: chaos.CloseRST}))
	if res.CloseMode != "rst" || res.IdleTimeoutMS == nil {
		t.Fatalf("close mode %q (%+v), want rst", res.CloseMode, res.IdleTimeoutMS)
	}
	if !hasFinding(res, "RST, not a FIN") {
		t.Errorf("findings %q: want the RST said", res.Findings)
	}
}

// A Keep-Alive header that says 10 s for a 100 ms timeout is found out.
func TestProbeCatchesALyingKeepAlive(t *testing.T) {
	res := run(t, startBuiltin(t, upstreams.Config{IdleTimeout: 100 * time.Millisecond, Advertise: 10 * time.Second}))
	if res.AdvertisedTimeoutS == nil || *res.AdvertisedTimeoutS != 10 || res.Advertised != "disagrees" {
		t.Fatalf("advertised %v: %q, want timeout=10 that disagrees", res.AdvertisedTimeoutS, res.Advertised)
	}
	if !hasFinding(res, "timeout=10 but closes idle connections at") || !hasFinding(res, "earlier") {
		t.Errorf("findings %q", res.Findings)
	}
}

func TestProbeCountsRequestsPerConnection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    upstreams.Config
		fault  []string
		n      int
		modes  string
		silent bool
	}{
		{"announced", upstreams.Config{IdleTimeout: 100 * time.Millisecond, MaxRequests: 5}, nil, 5, "announced", false},
		{"close-after", upstreams.Config{IdleTimeout: 100 * time.Millisecond}, []string{"close-after:n=3"}, 3, "fin rst", false},
		{"silent-death", upstreams.Config{IdleTimeout: 100 * time.Millisecond}, []string{"silent-death:after=3"}, 3, "silent", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, startBuiltin(t, tc.cfg, tc.fault...), func(c *Config) { c.ResponseTimeout = time.Second })
			if res.MaxRequests == nil || *res.MaxRequests != tc.n || !strings.Contains(tc.modes, res.MaxRequestsMode) {
				t.Fatalf("max requests %v (%q), want %d (%s)", res.MaxRequests, res.MaxRequestsMode, tc.n, tc.modes)
			}
			if tc.silent != hasFinding(res, "stops answering after 3 requests") {
				t.Errorf("findings %q", res.Findings)
			}
			// The idle close is still found: each search connection sends two requests.
			if res.IdleTimeoutMS == nil || res.CloseMode != "fin" {
				t.Errorf("idle timeout %+v, close mode %q: want the FIN at T", res.IdleTimeoutMS, res.CloseMode)
			}
		})
	}
}

func TestProbeStopsAtAServerThatNeverReuses(t *testing.T) {
	res := run(t, startBuiltin(t, upstreams.Config{IdleTimeout: 100 * time.Millisecond, MaxRequests: 1}))
	if res.MaxRequests == nil || *res.MaxRequests != 1 || res.CloseMode != "none" || res.IdleTimeoutMS != nil {
		t.Fatalf("max requests %v, close mode %q, idle %+v: want 1, none, nil", res.MaxRequests, res.CloseMode, res.IdleTimeoutMS)
	}
	if !hasFinding(res, "nothing is ever reused") {
		t.Errorf("findings %q", res.Findings)
	}
}

// A middlebox that forgets idle connections says nothing: it stops answering them.
// The probe sees no close while watching, so it brackets the edge by bisection.
func TestProbeBisectsASilentServer(t *testing.T) {
	const T = 300 * time.Millisecond
	target := silentServer(t, T)
	res := run(t, target, func(c *Config) { c.ResponseTimeout = 500 * time.Millisecond })
	c := res.IdleTimeoutMS
	if res.CloseMode != "silent" || c == nil || c.Method != "bisection" {
		t.Fatalf("close mode %q, idle %+v: want silent by bisection", res.CloseMode, c)
	}
	// Answered gaps were at most T as the server saw them; a gap that went unanswered
	// only needed the client's delays to reach T.
	if c.Min > ms(T)*1.01 || c.Max < ms(T)/2 || c.Min > c.Max {
		t.Errorf("bracket [%.2f, %.2f] ms, want around T = %v", c.Min, c.Max, T)
	}
	if !hasFinding(res, "silently") {
		t.Errorf("findings %q", res.Findings)
	}
}

func TestPrepareNamesTheBadField(t *testing.T) {
	for _, tc := range []struct {
		c    *Config
		want string
	}{
		{&Config{Target: "ftp://x"}, "target"},
		{&Config{Target: "http://10.1.2.3:80/"}, "--allow-remote"},
		{&Config{Target: "http://127.0.0.1:1/", Conns: 1}, "conns 1"},
		{&Config{Target: "http://127.0.0.1:1/", MaxRequests: 1}, "max-requests 1"},
		{&Config{Target: "http://127.0.0.1:1/", MaxTimeout: time.Millisecond}, "max-timeout 1ms"},
		{&Config{Target: "http://127.0.0.1:1/", ResponseTimeout: -1}, "response-timeout"},
	} {
		if err := tc.c.Prepare(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to name %q", tc.c.Target, err, tc.want)
		}
	}
}

func TestMedianRanksCoverTheMedian(t *testing.T) {
	// n = 16: X(4)..X(13) (1-based) covers the median with 97.9%; X(5)..X(12) would not
	// reach 95%.
	if j, k := medianRanks(16); j != 3 || k != 12 {
		t.Errorf("medianRanks(16) = %d, %d; want 3, 12", j, k)
	}
	if j, k := medianRanks(4); j != 0 || k != 3 {
		t.Errorf("medianRanks(4) = %d, %d; want the extremes", j, k)
	}
}

func hasFinding(r *Result, sub string) bool {
	for _, f := range r.Findings {
		if strings.Contains(f, sub) {
			return true
		}
	}
	return false
}

// silentServer answers each request on a connection unless the connection was idle
// longer than t, after which it never answers it again (and never closes it until the
// test ends).
func silentServer(t *testing.T, idle time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, nc)
			mu.Unlock()
			wg.Go(func() {
				br := bufio.NewReader(nc)
				var last time.Time
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if !last.IsZero() && time.Since(last) > idle {
						_, _ = br.Discard(br.Buffered())
						_, _ = nc.Read(make([]byte, 1)) // hold it until the test ends
						return
					}
					req.Body.Close()
					_, _ = nc.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
					last = time.Now()
				}
			})
		}
	})
	return "http://" + ln.Addr().String() + "/"
}

// Headers given to the probe reach the server on every request it sends, a Host among
// them (net/http writes req.Host, not a Host in the header map).
func TestProbeSendsItsHeadersAndHost(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := &http.Server{IdleTimeout: 200 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Host+" "+r.Header.Get("X-Tenant")]++
		mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	res := run(t, "http://"+ln.Addr().String()+"/", func(c *Config) {
		c.Header = http.Header{"Host": {"orders.example"}, "X-Tenant": {"7"}}
	})
	if res.IdleTimeoutMS == nil {
		t.Fatalf("no close found: %+v", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen["orders.example 7"] == 0 {
		t.Errorf("the server saw %v, want every request with Host orders.example and X-Tenant 7", seen)
	}
}
