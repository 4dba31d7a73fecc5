package pool

// watch keeps a background read on every idle connection and drops it when EOF or RST
// arrives, as Go's net/http (persistConn.readLoop) and hyper do. Window left open: a
// request written after the server closed but before the FIN reached the client and the
// watcher ran, T + s - d < g < T + s + d + notify lag.
type watch struct{}

func init() {
	Register("watch", "watch", "a background read drops an idle connection when the server's FIN arrives (Go net/http, hyper)",
		func(*Options) (Strategy, error) { return watch{}, nil })
}

func (watch) String() string { return "watch" }

func (watch) Watch() {}

func (watch) Model(b *Behaviour) { b.Watch = true }
