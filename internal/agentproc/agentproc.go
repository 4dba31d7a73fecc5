// Package agentproc finds client agents' processes by their working directory (every
// agent runs in a private directory named after agent.DirPrefix), for the checks that
// no agent outlives its cell or idlerace.
package agentproc

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/idlerace/idlerace/attack/agent"
)

// Children lists, as "PID CWD", the agent processes whose parent is parent (other
// processes on the machine may run agents of their own).
func Children(parent int) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if cwd, ok := agentDir(e.Name()); ok && ppid(e.Name()) == parent {
			out = append(out, e.Name()+" "+cwd)
		}
	}
	return out
}

// Alive says whether the process pid (a "PID" or "PID CWD" from Children) is still an
// agent: it exits, or its pid is reused by something else.
func Alive(pid string) bool {
	pid, _, _ = strings.Cut(pid, " ")
	_, ok := agentDir(pid)
	return ok
}

func agentDir(pid string) (string, bool) {
	cwd, err := os.Readlink(filepath.Join("/proc", pid, "cwd"))
	return cwd, err == nil && strings.HasPrefix(filepath.Base(cwd), agent.DirPrefix)
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
