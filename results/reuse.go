package results

import "fmt"

// StatusClasses counts responses by status class. Informational (1xx) responses are
// not final and not counted; a request without a response counts nowhere.
type StatusClasses struct {
	S2xx int64 `json:"2xx"`
	S3xx int64 `json:"3xx"`
	S4xx int64 `json:"4xx"`
	S5xx int64 `json:"5xx"`
}

// Add counts one response with status code.
func (s *StatusClasses) Add(code int) {
	switch code / 100 {
	case 2:
		s.S2xx++
	case 3:
		s.S3xx++
	case 4:
		s.S4xx++
	case 5:
		s.S5xx++
	}
}

// minReuseChances is how many requests that should have reused a connection a cell
// needs before it can say the race went unmeasured.
const minReuseChances = 10

// ReuseVerdict says why a cell did not measure the race, "" when it did or cannot
// tell: among at least minReuseChances requests whose gap was short enough that any
// strategy reuses its connection (below ms, in milliseconds), fewer than half did. A
// reset rate of 0 there says nothing about the race: the server closed after every
// response, or answered with errors.
func ReuseVerdict(chances, reused int64, belowMS float64, status StatusClasses) string {
	if chances < minReuseChances || 2*reused >= chances {
		return ""
	}
	why := "the server closed the connection after each response"
	if bad := status.S4xx + status.S5xx; bad > 0 {
		why = fmt.Sprintf("%s, or answered errors (4xx %d, 5xx %d)", why, status.S4xx, status.S5xx)
	}
	return fmt.Sprintf("only %d of %d requests idle less than %.1f ms reused a connection: %s; the race was not measured",
		reused, chances, belowMS, why)
}
