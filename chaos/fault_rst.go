package chaos

import "errors"

// RST makes idle closes abortive (SO_LINGER 0: RST instead of FIN), as CloseMode rst
// does; either one is enough. A client's next read or write on the connection fails at
// once with ECONNRESET, and a watching client sees the reset instead of EOF.
type RST struct{}

const rstUsage = "rst (idle closes send RST instead of FIN; same as close mode rst)"

func init() {
	RegisterFault("rst", rstUsage, func(arg string) (Fault, error) {
		if arg != "" {
			return nil, errors.New("rst takes no argument")
		}
		return RST{}, nil
	})
}

func (RST) String() string { return "rst" }
