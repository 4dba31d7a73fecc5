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

// Total is the responses counted.
func (s StatusClasses) Total() int64 { return s.S2xx + s.S3xx + s.S4xx + s.S5xx }

// minVerdict is how many requests a cell needs before it can say the race went
// unmeasured.
const minVerdict = 10

// ReuseVerdict says why a cell did not measure the race, "" when it did or cannot tell
// (fewer than minVerdict requests): at least half its responses ended their connection
// (Connection: close), so nothing was reused and nothing could race; or at least half
// its requests were answered 4xx or 5xx, which is not the service the cell measures. A
// reset rate of 0 there would read "safe". The signals are the server's own words, not
// where the client believed the close to be: a server that closes idle connections
// sooner than T is a measurement (its failures say so), not a verdict.
func ReuseVerdict(requests, closing int64, status StatusClasses) string {
	if requests < minVerdict {
		return ""
	}
	if n := status.Total(); n >= minVerdict && 2*closing >= n {
		return fmt.Sprintf("%d of %d responses said Connection: close: the server closes after every response, so no connection could be reused and nothing raced; the race was not measured", closing, n)
	}
	if bad := status.S4xx + status.S5xx; 2*bad >= requests {
		return fmt.Sprintf("%d of %d requests were answered with errors (4xx %d, 5xx %d): the race was not measured", bad, requests, status.S4xx, status.S5xx)
	}
	return ""
}
