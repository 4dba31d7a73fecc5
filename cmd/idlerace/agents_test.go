package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// agentPIDs lists the processes that parent started whose working directory is a
// client agent's private directory (idlerace-node-agent-*).
func agentPIDs(parent int) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if isAgent(e.Name()) && ppid(e.Name()) == parent {
			out = append(out, e.Name())
		}
	}
	return out
}

func isAgent(pid string) bool {
	cwd, err := os.Readlink(filepath.Join("/proc", pid, "cwd"))
	return err == nil && strings.Contains(cwd, "/idlerace-node-agent-")
}

// ppid is pid's parent, from /proc/PID/stat (the field after the command's ")").
func ppid(pid string) int {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return -1
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(fields[1])
	return n
}

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
			for agents = agentPIDs(cmd.Process.Pid); len(agents) == 0; agents = agentPIDs(cmd.Process.Pid) {
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
				for isAgent(pid) {
					if time.Now().After(deadline.Add(time.Minute)) {
						t.Fatalf("after %v, agent process %s is left", sig, pid)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
}
