package pool

// blind reuses any idle connection without looking. It is the worst case, and what a
// pool looks like whose close notification lags behind the request (a client that only
// learns of the FIN when its next write fails). Window left open: every request whose
// gap g passes the server's close, g + d > T + s.
type blind struct{}

func init() {
	Register("blind", "blind", "reuse any idle connection without looking (the worst case)",
		func(*Options) (Strategy, error) { return blind{}, nil })
}

func (blind) String() string { return "blind" }

func (blind) Model(*Behaviour) {}
