package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/idlerace/idlerace/results"
)

// killMatrix is small enough for 20 kills and resumes: 4 cells of 200ms, 2 at a time.
// The test is of the store, not of the race, so no request may meet an idle close: a
// constant 100/s on a shared pool reuses each connection within ~10ms, far inside T = 1s.
// (With a sweep at T = 60ms, a loaded machine that stalled a fresh connection past T
// between dial and write failed every prime of a cell, and the run ended with "no
// request succeeded", exit 3: the machine, not the store.)
const killMatrix = `idle_timeout: 1s
seed: 7
duration: 200ms
parallel: 2
strategies: ["timeout-margin:margin=30ms", read-probe]
skews: [none, "offset:-5ms"]
loads: ["constant:rate=100/s"]
`

const (
	killCells = 4
	killRuns  = 20
)

// SIGKILL at a random point leaves nothing to clean up: unlike SIGINT, the process gets
// no chance to mark the run partial, so the run directory must be readable as each
// write left it. 20 times, at a seeded point (after a seeded number of finished cells,
// or of none, plus a seeded sub-delay up to about a wave of cells): summary.json parses,
// every cell it lists has a complete .hlog, no temp file is listed as a cell, `idlerace
// report` reads the directory, and --resume completes it to the cells of a run that was
// never killed. Replay a failure with IDLERACE_KILL_SEED.
func TestKilledRunIsReadableAndResumes(t *testing.T) {
	tmp := t.TempDir()
	mf := filepath.Join(tmp, "m.yaml")
	if err := os.WriteFile(mf, []byte(killMatrix), 0o644); err != nil {
		t.Fatal(err)
	}
	full := filepath.Join(tmp, "full")
	if out, err := idlerace("run", "-f", mf, "--out", full, "-q", "--no-report").CombinedOutput(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, out)
	}
	want := cellIDs(t, full)
	if len(want) != killCells {
		t.Fatalf("uninterrupted run has %d cells, want %d", len(want), killCells)
	}

	rng := rand.New(rand.NewPCG(testSeed(t, "IDLERACE_KILL_SEED"), 0))
	var recovered, killed, finished atomic.Int32
	// The kills run -parallel (GOMAXPROCS) at a time: each waits mostly on its child.
	t.Run("group", func(t *testing.T) {
		for i := 1; i <= killRuns; i++ {
			afterCells := rng.IntN(killCells) // 0: right after the run directory appears
			subDelay := time.Duration(rng.IntN(250)) * time.Millisecond
			if afterCells == 0 && rng.IntN(2) == 0 {
				subDelay = 0 // as soon as the directory exists: the first writes still going on
			}
			t.Run(fmt.Sprintf("kill%02d", i), func(t *testing.T) {
				t.Parallel()
				t.Logf("SIGKILL after %d cells + %s", afterCells, subDelay)
				if killAndRecover(t, tmp, mf, i, afterCells, subDelay, want) {
					killed.Add(1)
				} else {
					finished.Add(1)
				}
				if !t.Failed() {
					recovered.Add(1)
				}
			})
		}
	})
	t.Logf("kill -9: %d/%d runs recovered (%d killed, %d finished before the kill)", recovered.Load(), killRuns, killed.Load(), finished.Load())
	if recovered.Load() != killRuns {
		t.Fail()
	}
}

// killAndRecover is one kill: run, SIGKILL, check the directory, report it, resume it.
// It reports whether SIGKILL ended the run (false: the run finished first).
func killAndRecover(t *testing.T, tmp, mf string, i, afterCells int, subDelay time.Duration, want []string) bool {
	t.Helper()
	dir := filepath.Join(tmp, fmt.Sprintf("run%02d", i))
	wasKilled := killRun(t, mf, dir, afterCells, subDelay)
	checkKilledRun(t, dir, want)
	// report reads a copy of the directory as the kill left it while --resume
	// completes the original, both at once.
	snap := filepath.Join(tmp, fmt.Sprintf("snap%02d", i))
	copyDir(t, dir, snap)
	var wg sync.WaitGroup
	var reportOut []byte
	var reportErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		reportOut, reportErr = idlerace("report", snap).CombinedOutput()
	}()
	resumeOut, resumeErr := idlerace("run", "--resume", dir, "-q", "--no-report").CombinedOutput()
	wg.Wait()
	if reportErr != nil {
		t.Errorf("idlerace report on the killed run: %v\n%s", reportErr, reportOut)
	} else if _, err := os.Stat(filepath.Join(snap, "report.html")); err != nil {
		t.Errorf("idlerace report exited 0 but: %v", err)
	}
	if resumeErr != nil {
		t.Fatalf("resume: %v\n%s", resumeErr, resumeOut)
	}
	man, err := results.ReadManifest(filepath.Join(dir, "manifest.json"))
	if err != nil || man.State != "complete" || man.CellsDone != killCells {
		t.Fatalf("after resume: manifest %+v, %v", man, err)
	}
	if got := cellIDs(t, dir); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("resumed run has cells %v, the uninterrupted one %v", got, want)
	}
	if left := tempFiles(t, dir); len(left) > 0 {
		t.Errorf("after resume, temp files remain: %v", left)
	}
	return wasKilled
}

// killRun starts `idlerace run` into dir and sends SIGKILL once afterCells cells have
// finished (0: once the run directory exists) and subDelay has passed. It reports
// whether the signal ended the process (false: the run finished first).
func killRun(t *testing.T, mf, dir string, afterCells int, subDelay time.Duration) bool {
	t.Helper()
	cmd := idlerace("run", "-f", mf, "--out", dir, "--no-report")
	cmd.Stdout = io.Discard
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Without a terminal, run prints one "[done/total] ..." line per finished cell.
	var stderr bytes.Buffer
	cellDone := make(chan struct{}, killCells+1)
	eof := make(chan struct{})
	go func() {
		defer close(eof)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "[") {
				select {
				case cellDone <- struct{}{}:
				default:
				}
			}
		}
	}()
	exited := false
	if afterCells == 0 {
		// The run directory appears whole (results.CreateDirAtomic): its existence is
		// the event "the run has begun".
		for !exited {
			if _, err := os.Stat(dir); err == nil {
				break
			}
			select {
			case <-eof:
				exited = true
			case <-time.After(time.Millisecond):
			}
		}
	}
	for n := 0; n < afterCells && !exited; {
		select {
		case <-cellDone:
			n++
		case <-eof:
			exited = true
		}
	}
	if !exited {
		select {
		case <-time.After(subDelay):
		case <-eof:
		}
	}
	_ = cmd.Process.Kill()
	<-eof
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		t.Logf("the run finished before the kill (after %d cells + %s)", afterCells, subDelay)
		return false
	case errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL:
		return true
	default:
		t.Fatalf("run: %v (want SIGKILL or exit 0)\n%s", err, stderr.String())
		return false
	}
}

// checkKilledRun checks a run directory as SIGKILL left it.
func checkKilledRun(t *testing.T, dir string, want []string) {
	t.Helper()
	s, err := results.ReadSummary(filepath.Join(dir, "summary.json"))
	if err != nil {
		t.Fatalf("summary.json after SIGKILL: %v", err)
	}
	known := map[string]bool{}
	for _, id := range want {
		known[id] = true
	}
	seen := map[string]bool{}
	for _, c := range s.Cells {
		if !known[c.ID] || seen[c.ID] || c.Hlog != filepath.Join("cells", c.ID+".hlog") {
			t.Fatalf("summary.json lists cell %q (hlog %q): not one of the matrix's cells %v, or twice", c.ID, c.Hlog, want)
		}
		seen[c.ID] = true
	}
	got := cellIDs(t, dir) // every listed .hlog reads back complete
	if s.State != "partial" && !(s.State == "complete" && len(got) == len(want)) {
		t.Fatalf("summary.json state %q with %d of %d cells", s.State, len(got), len(want))
	}
	// The manifest is written just after the summary: at most the last cell behind it.
	man, err := results.ReadManifest(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatalf("manifest.json after SIGKILL: %v", err)
	}
	if man.CellsDone != len(got) && man.CellsDone != len(got)-1 {
		t.Fatalf("manifest says %d cells done, summary.json lists %d", man.CellsDone, len(got))
	}
	t.Logf("killed with %d of %d cells in summary.json; temp files left: %v", len(got), len(want), tempFiles(t, dir))
}

// tempFiles lists the atomic writer's temp files under dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), ".tmp-") {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
