package chaos

import "time"

// SlowClose stops reading a connection at its idle deadline but closes it only D later:
// a server whose idle sweeper runs behind its timeout check (an event loop busy
// elsewhere, a reaper on a coarse tick). Requests that arrive in between are accepted
// by the kernel and never read; the close then finds them unread and sends RST. To a
// client the window in which a reused connection fails grows by D, and nothing warns
// it during that window.
type SlowClose struct {
	Delay time.Duration `json:"delay"` // > 0
}

const slowCloseUsage = "slow-close:delay=D (stop reading at the idle deadline, close D later, e.g. slow-close:delay=20ms)"

func init() {
	RegisterFault("slow-close", slowCloseUsage, func(arg string) (Fault, error) {
		o, err := faultOptions(arg)
		if err != nil {
			return nil, err
		}
		d, err := faultDuration(o, "delay", time.Nanosecond)
		if err != nil {
			return nil, err
		}
		if err := o.Unused(); err != nil {
			return nil, err
		}
		return SlowClose{Delay: d}, nil
	})
}

func (f SlowClose) String() string { return "slow-close:delay=" + f.Delay.String() }
