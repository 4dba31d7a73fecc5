package main

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/idlerace/idlerace/internal/agentproc"
)

// A client agent dies with idlerace, however idlerace dies: SIGINT ends the cell and the
// agent with it; SIGKILL gives idlerace no chance, and the parent-death signal kills the
// agent. Each waits for the agent to appear, then for it to be gone (a deadline only
// catches a hang).
func TestAgentsDieWithIdlerace(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("IDLERACE_REQUIRE_REAL") == "1" {
			t.Fatal("node is not installed (apt-get install nodejs)")
		}
		t.Skip("skipped: node is not installed (apt-get install nodejs)")
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := idlerace("run", "--strategy", "node-agent", "--skew", "none", "--idle-timeout", "1s",
				"--load", "sweep:lanes=4,duration=1m", "--out", "-", "-q")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			deadline := time.Now().Add(time.Minute)
			var agents []string
			for agents = agentproc.Children(cmd.Process.Pid); len(agents) == 0; agents = agentproc.Children(cmd.Process.Pid) {
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					t.Fatal("no agent process appeared within a minute")
				}
				time.Sleep(20 * time.Millisecond)
			}
			_ = cmd.Process.Signal(sig)
			select {
			case <-done:
			case <-time.After(time.Minute):
				_ = cmd.Process.Kill()
				t.Fatalf("idlerace did not exit within a minute of %v", sig)
			}
			// The agents this idlerace started (by pid, reparented once it died) go too.
			for _, pid := range agents {
				for agentproc.Alive(pid) {
					if time.Now().After(deadline.Add(time.Minute)) {
						t.Fatalf("after %v, agent process %s is left", sig, pid)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
}
