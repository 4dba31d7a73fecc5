package upstreams

import (
	"errors"
	"strings"
)

// ErrStart is wrapped by every error of a server that could not start: its binary is
// missing, its port is taken, it refused its configuration, it exited or never became
// ready. Test with errors.Is(err, upstreams.ErrStart). A config the kind itself refuses
// before starting anything (Config.Validate, a field the kind cannot honour) is bad
// input, not ErrStart.
var ErrStart = errors.New("could not start")

// TailLines is how many lines of a server's own log a StartError carries.
const TailLines = 10

// StartError is a server that could not start, with the end of what it said about it.
type StartError struct {
	Err  error    // what went wrong, e.g. "exited with status 1 before it was ready"
	Tail []string // the last lines of the server's stderr and error log, oldest first
}

// Error is one line: "could not start: ERR; log tail: LINE | LINE | ...".
func (e *StartError) Error() string {
	var b strings.Builder
	b.WriteString(ErrStart.Error())
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if len(e.Tail) > 0 {
		b.WriteString("; log tail: ")
		b.WriteString(strings.Join(e.Tail, " | "))
	} else {
		b.WriteString("; log tail: (empty)")
	}
	return b.String()
}

// Unwrap lets errors.Is match both ErrStart and the cause (fs.ErrNotExist for a missing
// binary, context.Canceled, ...).
func (e *StartError) Unwrap() []error { return []error{ErrStart, e.Err} }
