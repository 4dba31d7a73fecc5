package chaos

import "time"

// Restart closes every connection of the server at once, every D from its start: a
// deploy or a config reload that drops connections (FIN on each; RST where a request
// was waiting unread). The listener stays open, as a graceful restart hands it on.
// Requests in progress when it fires were executed but their responses are lost: the
// one place a blind retry executes a request twice.
type Restart struct {
	Every time.Duration `json:"every"` // >= MinFaultPeriod
}

const restartUsage = "restart:every=D (close all connections at once every D, e.g. restart:every=2s)"

func init() {
	RegisterFault("restart", restartUsage, func(arg string) (Fault, error) {
		o, err := faultOptions(arg)
		if err != nil {
			return nil, err
		}
		d, err := faultDuration(o, "every", MinFaultPeriod)
		if err != nil {
			return nil, err
		}
		if err := o.Unused(); err != nil {
			return nil, err
		}
		return Restart{Every: d}, nil
	})
}

func (f Restart) String() string { return "restart:every=" + f.Every.String() }
