package metrics

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Path is where Serve answers scrapes.
const Path = "/metrics"

// shutdownGrace bounds how long Serve waits for a scrape in progress once its context
// ended.
const shutdownGrace = 2 * time.Second

// Handler serves the registry in whichever exposition format the scraper asks for (text,
// or protobuf for a Prometheus that ingests native histograms).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Serve listens on addr and serves the metrics at /metrics until ctx ends; it returns the
// address it bound (addr may ask for port 0). addr must be on loopback (127.0.0.0/8, ::1
// or localhost): the metrics name the run's matrix, and a benchmark has no business
// listening on the network.
func (m *Metrics) Serve(ctx context.Context, addr string) (string, error) {
	listenAddr, err := loopback(addr)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("metrics address %q: %w", addr, err)
	}
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return "", fmt.Errorf("metrics address %q: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln) // returns http.ErrServerClosed once shut down
	}()
	go func() {
		select {
		case <-ctx.Done():
		case <-served:
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			_ = srv.Close()
		}
		<-served
	}()
	return ln.Addr().String(), nil
}

// loopback checks that addr is host:port with a loopback host and returns the address to
// listen on. localhost is taken as 127.0.0.1 rather than resolved, so that no resolver
// configuration can turn it into another interface.
func loopback(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("metrics address %q: %v (want host:port on loopback, such as 127.0.0.1:9464)", addr, err)
	}
	if host == "localhost" {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		what := fmt.Sprintf("host %q is not a loopback address", host)
		if host == "" {
			what = "no host means every interface"
		}
		return "", fmt.Errorf("metrics address %q: %s (use 127.0.0.1, ::1 or localhost)", addr, what)
	}
	return addr, nil
}
