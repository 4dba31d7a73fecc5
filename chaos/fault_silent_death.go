package chaos

import "strconv"

// SilentDeath stops a connection after its Nth response: the server neither reads nor
// writes on it again and never closes it until it shuts down, so no FIN or RST ever
// reaches the client (a hung worker, a host that vanished behind a NAT or load balancer
// that forgot the flow). The client's next request is accepted by the kernel and then
// waits for a response that never comes: only a client timeout ends it.
type SilentDeath struct {
	After int `json:"after"` // responses before the connection goes silent, >= 1
}

const silentDeathUsage = "silent-death:after=N (after the Nth response, stop reading and writing; never close until shutdown)"

func init() {
	RegisterFault("silent-death", silentDeathUsage, func(arg string) (Fault, error) {
		o, err := faultOptions(arg)
		if err != nil {
			return nil, err
		}
		n, err := faultCount(o, "after")
		if err != nil {
			return nil, err
		}
		if err := o.Unused(); err != nil {
			return nil, err
		}
		return SilentDeath{After: n}, nil
	})
}

func (f SilentDeath) String() string { return "silent-death:after=" + strconv.Itoa(f.After) }
