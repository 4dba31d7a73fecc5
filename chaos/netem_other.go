//go:build !linux

package chaos

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"time"
)

// NewNetemNamespace fails here: netem and named network namespaces are Linux's. The
// error matches ErrNetemUnavailable and names the delay-proxy spec to use instead.
func NewNetemNamespace(ctx context.Context, delay, jitter time.Duration) (*Netns, error) {
	if err := checkNetemDurations(delay, jitter); err != nil {
		return nil, err
	}
	return nil, &netemUnavailable{"netem latency needs Linux (" + netemProxyHint(delay, jitter) + ")"}
}

var errNoNetns = errors.New("network namespaces need Linux")

// Listen fails: there is no namespace outside Linux.
func (n *Netns) Listen(network, addr string) (net.Listener, error) { return nil, errNoNetns }

// DialContext fails: there is no namespace outside Linux.
func (n *Netns) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return nil, errNoNetns
}

// Command returns a command that fails to start: there is no namespace outside Linux.
func (n *Netns) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Err = errNoNetns
	return cmd
}

// Close does nothing.
// Do cannot enter a namespace here.
func (n *Netns) Do(f func()) error { return errNoNetns }

func (n *Netns) Close() error { return nil }

// CleanupStale does nothing: no namespaces outside Linux.
func CleanupStale() error { return nil }
