package agent

import (
	_ "embed"
	"os/exec"
	"strings"
)

// python is Debian's interpreter: its python3-requests (-httpx, -pycurl, -aiohttp) is
// what the kinds test, not whatever python3 comes first on PATH.
const python = "/usr/bin/python3"

//go:embed python/idlerace_agent.py
var pythonShared []byte

// pythonFiles are a Python agent's files: its script beside the module
// the agents import (the protocol's loop and lanes for the threaded ones, the options).
func pythonFiles(agent []byte) map[string][]byte {
	return map[string][]byte{"agent.py": agent, "idlerace_agent.py": pythonShared}
}

// pythonMissing says what to install when Debian's python3 cannot import module.
func pythonMissing(module, pkg string) func() string {
	return func() string {
		if err := exec.Command(python, "-c", "import "+module).Run(); err != nil {
			return "Debian's python3 cannot import " + module + ": apt-get install " + pkg
		}
		return ""
	}
}

// pythonVersion runs script (which prints the library's versions) in Debian's python3.
func pythonVersion(script string) func() string {
	return func() string {
		out, err := exec.Command(python, "-c", script).Output()
		if err != nil {
			return "python3: " + err.Error()
		}
		return strings.TrimSpace(string(out))
	}
}
