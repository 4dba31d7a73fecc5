//go:build !linux || !cgo

package wire

import "runtime"

type capturer struct{}

// Start cannot capture on this build: the capture is Linux's AF_PACKET through cgo.
func Start(opts Options) (*Capture, error) {
	if runtime.GOOS != "linux" {
		return nil, &unavailable{reason: "not Linux (" + runtime.GOOS + ")"}
	}
	return nil, &unavailable{reason: "built without cgo"}
}

func (c *capturer) stop() (Stats, error) { return Stats{}, nil }
