package builtin

import (
	"fmt"
	"time"

	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/upstreams"
)

// faultPlan is Config.Faults as the server applies them. A fault is a typed struct in
// package chaos; this is the one place that turns each into server behaviour:
//
//	close-after:n=N       handle: the Nth response goes out without Connection: close,
//	                      then serve closes (FIN; RST if a request is already waiting)
//	restart:every=D       restartLoop: every D, kill every connection ("restart")
//	silent-death:after=N  serve: after the Nth response, wait for Close; no read, write
//	                      or close until then
//	rst                   closeMode = rst for idle closes
//	slow-close:delay=D    idleClose: at due, stop reading; close D later
//
// When close-after and silent-death count the same response, close-after wins: the
// connection closes. slow-close keeps CloseRecord.Due at T+s (when reading stopped:
// from then on a request is lost) and its delay counts as lateness (Stats.CloseLate*),
// since the FIN does land that late.
type faultPlan struct {
	closeAfter     int
	restartEvery   time.Duration
	silentAfter    int
	rst            bool
	slowCloseDelay time.Duration
}

// planFaults checks that the builtin server can inject every fault and collects them.
// Config.Validate has already refused nil faults and repeats.
func planFaults(faults []chaos.Fault) (faultPlan, error) {
	var p faultPlan
	for i, f := range faults {
		switch f := f.(type) {
		case chaos.CloseAfter:
			p.closeAfter = f.N
		case chaos.Restart:
			p.restartEvery = f.Every
		case chaos.SilentDeath:
			p.silentAfter = f.After
		case chaos.RST:
			p.rst = true
		case chaos.SlowClose:
			p.slowCloseDelay = f.Delay
		default:
			return faultPlan{}, fmt.Errorf("upstream config: Faults[%d] %q: the builtin upstream cannot inject it (%T)", i, f.String(), f)
		}
	}
	switch {
	case p.closeAfter < 0, p.silentAfter < 0:
		return faultPlan{}, fmt.Errorf("upstream config: Faults: counts must be >= 1, got close-after %d, silent-death %d", p.closeAfter, p.silentAfter)
	case p.restartEvery < 0, p.restartEvery > 0 && p.restartEvery < chaos.MinFaultPeriod:
		return faultPlan{}, fmt.Errorf("upstream config: Faults: restart every %v: must be >= %v", p.restartEvery, chaos.MinFaultPeriod)
	case p.slowCloseDelay < 0:
		return faultPlan{}, fmt.Errorf("upstream config: Faults: slow-close delay %v: must be > 0", p.slowCloseDelay)
	}
	return p, nil
}

// restartLoop is the restart fault: every period it closes all connections at once, as
// a restarting server does, and records each as "restart". The listener stays open.
func (s *Server) restartLoop(period time.Duration) {
	defer s.wg.Done()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-tick.C:
		}
		s.mu.Lock()
		open := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			open = append(open, c)
		}
		s.mu.Unlock()
		killed := 0
		for _, c := range open {
			if s.kill(c, upstreams.ReasonRestart) {
				killed++
			}
		}
		if s.afterRestart != nil {
			s.afterRestart(killed)
		}
	}
}
