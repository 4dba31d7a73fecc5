package pool

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
)

// stdlib is Go's net/http.Transport, unmodified: the reference row. Its persistConn
// readLoop watches idle connections (like watch), and it retries by itself a request that
// failed on a reused connection when the request is idempotent or nothing was written
// (shouldRetryRequest). idlerace's default method is POST so that the race stays visible.
// Window left open: watch's, for requests it will not replay.
type stdlib struct{}

func init() {
	Register("stdlib", "stdlib", "Go's net/http.Transport unmodified (watches idle connections; retries idempotent requests itself)",
		func(*Options) (Strategy, error) { return stdlib{}, nil })
}

func (stdlib) String() string { return "stdlib" }

func (stdlib) Model(b *Behaviour) {
	b.Watch = true
	b.Retries = 1
	b.IdempotentOnly = true
}

func (stdlib) NewTransport(cfg Config) Transport {
	t := &stdTransport{}
	t.Transport = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := cfg.Dial(ctx, network, addr)
			if err == nil {
				t.newConns.Add(1)
			}
			return c, err
		},
		MaxIdleConnsPerHost:   cfg.MaxIdle,
		MaxIdleConns:          0,
		DisableCompression:    true,
		ResponseHeaderTimeout: cfg.RequestTimeout,
		ForceAttemptHTTP2:     false,
	}
	return t
}

type stdTransport struct {
	*http.Transport
	newConns atomic.Int64
}

func (t *stdTransport) Stats() Stats { return Stats{NewConns: t.newConns.Load()} }
