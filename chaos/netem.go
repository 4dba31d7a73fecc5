package chaos

import (
	"errors"
	"strconv"
	"sync"
	"time"
)

// Netns is a private network namespace whose loopback carries kernel netem latency: the
// netem path of a Latency. Servers listen on 127.0.0.1 inside it and clients dial inside
// it, so every packet crosses the namespace's lo once per direction and is delayed once
// by netem each way:
//
//	client socket --lo, netem: d--> server socket      (both sockets created in the namespace)
//	client socket <--lo, netem: d-- server socket
//
// Unlike the delay proxy, netem delays the TCP handshake too (a new connection costs a
// round trip), and each segment independently. Jitter J is netem's uniform jitter
// around D+J/2, i.e. per packet in [D, D+J]; netem may reorder jittered segments, which
// TCP puts back in order (with some retransmission noise).
//
// Only a process with CAP_SYS_ADMIN (root) can make one. The namespace is named
// idlerace-PID-N, so that CleanupStale can remove those a crashed run left behind.
type Netns struct {
	// Name is the namespace's name under /var/run/netns, as `ip netns` knows it.
	Name string

	closeOnce sync.Once
	closeErr  error
}

// ErrNetemUnavailable is matched (errors.Is) by NewNetemNamespace's errors when netem
// cannot be had here at all: not root, no netem in the kernel, no iproute2, not Linux.
// A caller may fall back to the delay proxy; the error's text says so.
var ErrNetemUnavailable = errors.New("netem latency unavailable")

// netemUnavailable is an error with an exact message that matches ErrNetemUnavailable.
type netemUnavailable struct{ msg string }

func (e *netemUnavailable) Error() string        { return e.msg }
func (e *netemUnavailable) Is(target error) bool { return target == ErrNetemUnavailable }

// netemProxyHint is the latency spec a user can use instead: the same delay and jitter
// through the delay proxy.
func netemProxyHint(delay, jitter time.Duration) string {
	return "use the delay proxy: latency " + Latency{Delay: delay, Jitter: jitter}.String()
}

// netemArgs is the netem part of `tc qdisc add dev lo root netem ...` for a one-way delay
// plus jitter added uniformly in [0, jitter]: netem draws uniformly in mean±jitter, so
// the mean is delay+jitter/2 and netem's jitter jitter/2.
func netemArgs(delay, jitter time.Duration) []string {
	if jitter <= 0 {
		return []string{"delay", tcTime(delay)}
	}
	return []string{"delay", tcTime(delay + jitter/2), tcTime(jitter / 2)}
}

// tcTime formats d in tc's syntax, in microseconds ("2000us", "0.5us"): every iproute2
// since the netem qdisc exists reads that.
func tcTime(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', -1, 64) + "us"
}

func checkNetemDurations(delay, jitter time.Duration) error {
	if delay < 0 || jitter < 0 || delay > MaxLatency || jitter > MaxLatency {
		return errors.New("netem latency: delay " + delay.String() + ", jitter " + jitter.String() +
			": want each within 0.." + MaxLatency.String())
	}
	return nil
}
