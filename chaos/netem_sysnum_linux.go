//go:build linux && !amd64 && !386

package chaos

import "syscall"

// sysSetns is setns(2) (see netem_sysnum_linux_amd64.go for the architectures where
// package syscall lacks it).
const sysSetns = syscall.SYS_SETNS
