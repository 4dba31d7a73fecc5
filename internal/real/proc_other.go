//go:build unix && !linux

package real

import (
	"os"
	"os/exec"
	"syscall"
	"time"
)

var (
	sigTerm os.Signal = syscall.SIGTERM
	sigKill os.Signal = syscall.SIGKILL
)

// sysProcAttr: a process group of its own; Pdeathsig exists on Linux only.
func sysProcAttr(os.Signal) *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func signalGroup(pgid int, sig os.Signal) error {
	return syscall.Kill(-pgid, sig.(syscall.Signal))
}

// launch starts p.cmd and reaps it as soon as it exits: without waitid(WNOWAIT) a later
// group kill may, rarely, reach a reused group id after the main process exited.
func (p *Process) launch() error {
	if err := p.cmd.Start(); err != nil {
		return err
	}
	p.pid = p.cmd.Process.Pid
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return nil
}

func (p *Process) reap() error { return p.waitErr }

func killedBySignal(ee *exec.ExitError) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// GroupMembers is unknown here.
func GroupMembers(int) []int { return nil }

func waitGroupGone(int, time.Duration) {}
