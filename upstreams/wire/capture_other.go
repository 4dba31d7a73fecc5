//go:build !linux || !cgo

package wire

import (
	"fmt"
	"runtime"
)

type capturer struct{}

// Start cannot capture on this build: the capture is Linux's AF_PACKET through cgo.
func Start(opts Options) (*Capture, error) {
	return nil, fmt.Errorf("%w: capture needs Linux and a build with cgo (this is %s/%s)", ErrUnavailable, runtime.GOOS, runtime.GOARCH)
}

func (c *capturer) stop() (Stats, error) { return Stats{}, nil }
