package agent

import (
	_ "embed"
	"os/exec"
	"strings"
)

//go:embed js/idlerace_agent.js
var jsShared []byte

// jsFiles are a Node agent's files: its script beside the module every Node agent
// requires (the protocol's loop, the clock).
func jsFiles(agent []byte) map[string][]byte {
	return map[string][]byte{"agent.js": agent, "idlerace_agent.js": jsShared}
}

// nodeMissing says what to install when node is not on PATH.
func nodeMissing() string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node is not on PATH: apt-get install nodejs"
	}
	return ""
}

// nodeVersion runs script (which prints the versions) in node.
func nodeVersion(script string) func() string {
	return func() string {
		out, err := exec.Command("node", "-p", script).Output()
		if err != nil {
			return "node: " + err.Error()
		}
		return strings.TrimSpace(string(out))
	}
}
