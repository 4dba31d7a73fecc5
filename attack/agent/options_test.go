package agent

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/idlerace/idlerace/attack/pool"
)

// The JDK's HttpClient prefers HTTP/2 and asks the first request of a new cleartext
// connection to upgrade (Upgrade: h2c), which a server that refuses it answers 400
// (uvicorn 0.17 does); java:version=HTTP_1_1 sends a plain HTTP/1.1 request.
func TestJavaVersionOptionReachesTheClient(t *testing.T) {
	if what := javaAgent.Missing(); what != "" {
		if os.Getenv("IDLERACE_REQUIRE_REAL") == "1" {
			t.Fatal(what)
		}
		t.Skipf("skipped: %s", what)
	}
	for spec, wantUpgrade := range map[string]string{"java": "h2c", "java:version=HTTP_1_1": ""} {
		t.Run(spec, func(t *testing.T) {
			s, err := pool.Parse(spec)
			if err != nil {
				t.Fatal(err)
			}
			if s.String() != spec {
				t.Errorf("canonical spec %q, want %q", s.String(), spec)
			}
			upgrades := make(chan string, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case upgrades <- r.Header.Get("Upgrade"):
				default:
				}
				_, _ = io.WriteString(w, "ok")
			}))
			defer srv.Close()
			tr := s.Parts[0].(*clientKind).NewTransport(pool.Config{RequestTimeout: 10 * time.Second}).(pool.Timed)
			defer tr.CloseIdleConnections()
			r, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
			if res := tr.SendAt(context.Background(), r, time.Time{}); res.Err != nil || res.Status != 200 {
				t.Fatalf("%+v", res)
			}
			if got := <-upgrades; got != wantUpgrade {
				t.Errorf("Upgrade: %q, want %q", got, wantUpgrade)
			}
		})
	}
	if _, err := pool.Parse("java:version=HTTP_3"); err == nil {
		t.Error("java:version=HTTP_3 parsed, want an error naming HTTP_2 and HTTP_1_1")
	}
}
