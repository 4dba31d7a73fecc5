//go:build linux

package real

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

var (
	sigTerm os.Signal = syscall.SIGTERM
	sigKill os.Signal = syscall.SIGKILL
)

// sysProcAttr puts the server in a process group of its own, so that its workers can be
// signalled together, and has the kernel send it death (SIGKILL when nil) when the
// thread that started it dies (Pdeathsig follows the thread, not the process: see
// launch).
func sysProcAttr(death os.Signal) *syscall.SysProcAttr {
	sig := syscall.SIGKILL
	if death != nil {
		sig = death.(syscall.Signal)
	}
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: sig}
}

func signalGroup(pgid int, sig os.Signal) error {
	return syscall.Kill(-pgid, sig.(syscall.Signal))
}

// waitExited blocks until process pid exits, without reaping it (waitid WNOWAIT).
func waitExited(pid int) {
	const (
		pPID    = 1
		wExited = 4
		wNoWait = 0x1000000
	)
	var info [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), wExited|wNoWait, 0, 0)
		if errno != syscall.EINTR {
			return
		}
	}
}

// launch starts p.cmd from a goroutine locked to its OS thread, which then waits there
// for the server to exit. Pdeathsig fires when the *thread* that forked the child dies,
// and the Go runtime ends a thread when a goroutine exits while locked to it; keeping
// the forking thread locked and blocked in waitid until the server exits means it dies
// only with this process. The wait does not reap the server (WNOWAIT): until Stop reaps
// it, its pid, and so its process group id, cannot be reused.
func (p *Process) launch() error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := p.cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = p.cmd.Process.Pid
		started <- nil
		waitExited(p.pid)
		close(p.exited)
	}()
	return <-started
}

func (p *Process) reap() error { return p.cmd.Wait() }

func killedBySignal(ee *exec.ExitError) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// GroupMembers lists the live processes whose process group is pgid (from /proc).
// Zombies are dead, waiting only for their parent (or init) to reap them, and are not
// listed.
func GroupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) >= 3 && f[0] != "Z" && f[0] != "X" {
			if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
				out = append(out, pid)
			}
		}
	}
	return out
}

// waitGroupGone waits (bounded) until no live process is left in group pgid.
func waitGroupGone(pgid int, bound time.Duration) {
	for deadline := time.Now().Add(bound); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if len(GroupMembers(pgid)) == 0 {
			return
		}
	}
}
