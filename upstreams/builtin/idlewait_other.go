//go:build !linux

package builtin

import "time"

// idleWaiter is Linux's (epoll_pwait2); elsewhere the server waits on read deadlines.
type idleWaiter struct{}

func newIdleWaiter(func(*conn, time.Time) bool) *idleWaiter { return nil }

func (*idleWaiter) wait(*conn, time.Time, <-chan struct{}, <-chan struct{}) (verdict, bool) {
	return 0, false
}
func (*idleWaiter) run()  {}
func (*idleWaiter) stop() {}
