package pool

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
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
		MaxIdleConnsPerHost:    cfg.MaxIdle,
		MaxIdleConns:           0,
		DisableCompression:     true,
		ResponseHeaderTimeout:  cfg.RequestTimeout,
		MaxResponseHeaderBytes: cfg.MaxResponseHeaderBytes,
		ForceAttemptHTTP2:      false,
	}
	t.timeout = cfg.RequestTimeout
	return t
}

type stdTransport struct {
	*http.Transport
	timeout  time.Duration
	newConns atomic.Int64
}

// RoundTrip bounds the whole exchange, body included, by Config.RequestTimeout, as
// http.Client.Timeout does: ResponseHeaderTimeout alone lets a trickled body hold the
// request for ever.
func (t *stdTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), t.timeout)
	resp, err := t.Transport.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody releases the request's timeout when the caller is done with the body.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

func (t *stdTransport) Stats() Stats { return Stats{NewConns: t.newConns.Load()} }
