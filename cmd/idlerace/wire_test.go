package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/gopacket/pcapgo"

	"github.com/idlerace/idlerace/results"
)

// run --pcap leaves each cell's capture beside its histogram, named in the summary, and
// holding the segments the cell's wire view counted.
func TestRunPCAPWritesEachCellsCapture(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: capturing needs CAP_NET_RAW (run as root)")
	}
	dir := filepath.Join(t.TempDir(), "run")
	code, _, stderr := run(t, "run", "--strategy", "blind", "--skew", "offset:-50ms", "--idle-timeout", "200ms",
		"--load", "sweep:lanes=4,periods=2", "--out", dir, "--pcap", "--no-report", "-q")
	if code != 0 {
		t.Fatalf("run --pcap: exit %d: %s", code, stderr)
	}
	sum, err := results.ReadSummary(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range sum.Cells {
		if c.PCAP == "" || c.Server.Wire == nil {
			t.Fatalf("cell %s: pcap %q, wire %+v: want both", c.ID, c.PCAP, c.Server.Wire)
		}
		f, err := os.Open(filepath.Join(dir, c.PCAP))
		if err != nil {
			t.Fatal(err)
		}
		r, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", c.PCAP, err)
		}
		n := int64(0)
		for {
			if _, _, err := r.ReadPacketData(); err != nil {
				break
			}
			n++
		}
		f.Close()
		if n == 0 || n != c.Server.Wire.Segments {
			t.Errorf("%s holds %d segments, the cell's wire view counted %d", c.PCAP, n, c.Server.Wire.Segments)
		}
	}
}

// Without CAP_NET_RAW there is no wire view, and the cell says why rather than showing
// numbers it does not have: attack --target, run as nobody.
func TestWithoutCapNetRawTheViewSaysWhy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to run a child as nobody")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	// The test binary, where nobody may run it.
	binDir, err := os.MkdirTemp("", "idlerace-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(binDir)
	bin := filepath.Join(binDir, "idlerace")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "attack", "--target", srv.URL+"/", "--idle-timeout", "1s",
		"--load", "constant:rate=20/s,duration=300ms", "--format", "json")
	cmd.Env = append(os.Environ(), "IDLERACE_AS_MAIN=1", "HOME=/tmp")
	cmd.Dir = "/tmp"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("attack as nobody: %v: %s", err, stderr.String())
	}
	var sum results.Summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || len(sum.Cells) != 1 {
		t.Fatalf("attack --format json: %v, %d cells: %s", err, len(sum.Cells), stdout.String())
	}
	s := sum.Cells[0].Server
	if s.View != "none (not root: no packet capture)" || s.Wire != nil || s.UnmatchedFailures != -1 {
		t.Errorf("as nobody: server.view %q, wire %+v, unmatched %d: want none with the reason, no wire numbers, -1", s.View, s.Wire, s.UnmatchedFailures)
	}
}
