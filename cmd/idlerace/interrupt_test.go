package main

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/idlerace/idlerace/results"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// smallMatrix is 6 cells of 400ms, 2 at a time, for the store's tests: no request meets
// an idle close (constant 100/s reuses connections within ~10ms of T = 1s), so a loaded
// machine cannot fail every request of a cell and end the run with exit 3.
const smallMatrix = `idle_timeout: 1s
seed: 5
duration: 400ms
parallel: 2
strategies: [blind, read-probe, "timeout-margin:margin=10ms"]
skews: [none, "offset:-5ms"]
loads: ["constant:rate=100/s"]
`

// idlerace runs the CLI in a child process (the test binary itself, see TestMain).
func idlerace(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "IDLERACE_AS_MAIN=1")
	return cmd
}

func cellIDs(t *testing.T, dir string) []string {
	t.Helper()
	s, err := results.ReadSummary(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range s.Cells {
		ids = append(ids, c.ID)
		h, err := results.ReadHlog(filepath.Join(dir, c.Hlog))
		if err != nil || h.TotalCount() != c.Requests {
			t.Fatalf("%s: cell %s: hlog %v, err %v", dir, c.ID, h, err)
		}
	}
	sort.Strings(ids)
	return ids
}

// SIGINT at a random point: the process exits 130, every finished cell is readable, the
// manifest says partial, and --resume completes the same set of cells as a run that was
// never interrupted.
func TestInterruptedRunResumesToTheSameCells(t *testing.T) {
	tmp := t.TempDir()
	mf := filepath.Join(tmp, "m.yaml")
	if err := os.WriteFile(mf, []byte(smallMatrix), 0o644); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(tmp, "full")
	if out, err := idlerace("run", "-f", mf, "--out", full, "-q", "--results", full+".gob").CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	want := cellIDs(t, full)
	resultsMatchCells(t, full, full+".gob")
	if len(want) != 6 {
		t.Fatalf("uninterrupted run has %d cells, want 6", len(want))
	}

	part := filepath.Join(tmp, "part")
	cmd := idlerace("run", "-f", mf, "--out", part, "-q", "--results", part+".gob")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// SIGINT a seeded delay after the run began (its directory appears whole, long after
	// the signal handler is in place) and before the last of its 3 waves of 400ms cells
	// can finish. Counting from the child's start instead, a start slowed by a loaded
	// machine let SIGINT kill the process before it handled the signal. The delay is
	// seeded so a failure can be replayed (IDLERACE_INTERRUPT_SEED).
	rng := rand.New(rand.NewPCG(testSeed(t, "IDLERACE_INTERRUPT_SEED"), 0))
	delay := time.Duration(100+rng.IntN(900)) * time.Millisecond
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		if _, err := os.Stat(part); err == nil {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("run exited before its run directory appeared: %v\n%s", err, stderr.String())
		case <-time.After(time.Millisecond):
		}
	}
	time.Sleep(delay)
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := <-exited
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 130 {
		t.Fatalf("after SIGINT %s into the run: %v (want exit 130)\n%s", delay, err, stderr.String())
	}
	man, err := results.ReadManifest(filepath.Join(part, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := cellIDs(t, part)
	if man.State != "partial" || man.CellsDone != len(got) || len(got) >= 6 {
		t.Fatalf("interrupted at %s: manifest %s with %d done, %d cells on disk", delay, man.State, man.CellsDone, len(got))
	}
	t.Logf("SIGINT %s after the run began left %d of 6 cells", delay, len(got))
	// The cell cut short is in neither the summary nor --results.
	resultsMatchCells(t, part, part+".gob")

	if out, err := idlerace("run", "--resume", part, "-q").CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	man, err = results.ReadManifest(filepath.Join(part, "manifest.json"))
	if err != nil || man.State != "complete" {
		t.Fatalf("after resume: %+v %v", man, err)
	}
	resumed := cellIDs(t, part)
	if len(resumed) != len(want) {
		t.Fatalf("resumed run has %v, uninterrupted %v", resumed, want)
	}
	for i := range want {
		if resumed[i] != want[i] {
			t.Fatalf("resumed run has %v, uninterrupted %v", resumed, want)
		}
	}
}

// testSeed returns the seed for a test's random choices: $env if set (to replay a
// failure), else a fresh one. Either way it is logged with the line that replays it.
func testSeed(t *testing.T, env string) uint64 {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want a whole number", env, v)
		}
		t.Logf("seed %d (from %s)", seed, env)
		return seed
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (replay with %s=%d)", seed, env, seed)
	return seed
}

// resultsMatchCells checks that the --results file holds exactly the requests of the
// cells the run directory's summary reports, no more (an abandoned cell) and no fewer.
func resultsMatchCells(t *testing.T, dir, resultsPath string) {
	t.Helper()
	s, err := results.ReadSummary(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, c := range s.Cells {
		want += c.Requests
	}
	f, err := os.Open(resultsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := vegeta.NewDecoder(f)
	var got int64
	for {
		var r vegeta.Result
		if err := dec.Decode(&r); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("%s: result %d: %v", resultsPath, got+1, err)
		}
		got++
	}
	if got != want {
		t.Fatalf("%s holds %d results; the %d cells of %s account for %d requests", resultsPath, got, len(s.Cells), dir, want)
	}
}
