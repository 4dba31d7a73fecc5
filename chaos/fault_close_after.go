package chaos

import "strconv"

// CloseAfter closes a connection (FIN) right after its Nth response, without sending
// `Connection: close` first: a server that drops a connection after a request budget
// without announcing it (some proxies' max-requests, a worker recycled after a response).
// The Nth request was executed and answered; a client learns of the close from the FIN,
// and a blind client only when its next request on the connection fails.
type CloseAfter struct {
	N int `json:"n"` // responses per connection, >= 1
}

const closeAfterUsage = "close-after:n=N (FIN right after the Nth response, without Connection: close)"

func init() {
	RegisterFault("close-after", closeAfterUsage, func(arg string) (Fault, error) {
		o, err := faultOptions(arg)
		if err != nil {
			return nil, err
		}
		n, err := faultCount(o, "n")
		if err != nil {
			return nil, err
		}
		if err := o.Unused(); err != nil {
			return nil, err
		}
		return CloseAfter{N: n}, nil
	})
}

func (f CloseAfter) String() string { return "close-after:n=" + strconv.Itoa(f.N) }
