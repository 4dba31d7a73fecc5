package pool

// watch keeps a background read on every idle connection and drops it when EOF or RST
// arrives, as Go's net/http (persistConn.readLoop) and hyper do; a checkout also asks the
// watcher what it saw. Window left open: a request that reaches the server after it
// stopped reading, from a checkout before the FIN reached the client and the runtime's
// poller took it (the request's write lag, the server's stop lead, the poller's lag).
type watch struct{}

func init() {
	Register("watch", "watch", "a background read drops an idle connection when the server's FIN arrives (Go net/http, hyper)",
		func(*Options) (Strategy, error) { return watch{}, nil })
}

func (watch) String() string { return "watch" }

func (watch) Watch() {}

func (watch) Model(b *Behaviour) { b.Watch, b.WatchAtCheckout = true, true }
