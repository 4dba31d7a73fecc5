//go:build !linux

package ptimer

import (
	"context"
	"time"
)

// waker is Linux's (epoll_pwait2); elsewhere SleepUntil uses Go timers.
type waker struct{}

func theWaker() *waker { return nil }

func (*waker) sleepUntil(context.Context, time.Time) bool { return false }
