package pool

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// Class is the kind of a failed request, as the summary schema counts it.
type Class string

// The failure classes. ResetWrite, ResetRead and EOF on a reused connection are stale
// failures: the request met a connection the server had already given up on.
const (
	ResetWrite Class = "reset_write" // the write failed: RST (or EPIPE) before the request went out
	ResetRead  Class = "reset_read"  // the request went out, the read found RST
	EOF        Class = "eof"         // the connection ended before any response byte
	Timeout    Class = "timeout"     // a deadline passed
	// BadGateway is a 502, 503 or 504: through a reverse proxy, how a request its pool
	// sent into a closed upstream connection comes back.
	BadGateway Class = "bad_gateway"
	Other      Class = "other" // anything else (refused dial, malformed response, ...)
)

// Classes lists every class in the order reports show them.
var Classes = []Class{ResetWrite, ResetRead, EOF, Timeout, BadGateway, Other}

// IsBadGateway reports whether an HTTP status is a gateway's failure: 502, 503 or 504.
func IsBadGateway(code int) bool { return code == 502 || code == 503 || code == 504 }

// Stale reports whether a failure of class c on a connection that was reused is the
// keep-alive race: the three classes a closed socket produces.
func (c Class) Stale(reused bool) bool {
	return reused && (c == ResetWrite || c == ResetRead || c == EOF)
}

// Classify names the class of err. wrote says whether the request was fully written
// before err happened: a reset seen while writing and one seen while reading have
// different causes (RST already in flight versus a close that found the request unread).
func Classify(err error, wrote bool) Class {
	if err == nil {
		return ""
	}
	var pe *Error
	if errors.As(err, &pe) {
		return pe.Class
	}
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return Timeout
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) {
		if wrote {
			return ResetRead
		}
		return ResetWrite
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return EOF
	}
	// net/http.Transport reports a connection that ended before the response as
	// errServerClosedIdle, which it does not export.
	if strings.Contains(err.Error(), "server closed idle connection") {
		return EOF
	}
	return Other
}

// Error is a failed attempt, with what the pool knew about the connection it used.
type Error struct {
	Class     Class
	Reused    bool
	IdleAge   time.Duration // how long the connection sat idle before this request
	LocalPort int           // the client's port: the server's logs name the connection by it
	Op        string        // "dial", "write" or "read"
	Err       error
}

func (e *Error) Error() string {
	conn := "new connection"
	if e.Reused {
		conn = fmt.Sprintf("reused connection (idle %s)", e.IdleAge.Round(time.Microsecond))
	}
	return fmt.Sprintf("%s on %s, local port %d: %s: %v", e.Class, conn, e.LocalPort, e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Stale reports whether the error is the keep-alive race.
func (e *Error) Stale() bool { return e.Class.Stale(e.Reused) }
