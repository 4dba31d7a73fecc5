package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/idlerace/idlerace/results"
)

const shardMatrix = `idle_timeout: 20ms
strategies: [blind, watch, read-probe, retry-only, stdlib]
skews: [none]
loads: ["sweep:lanes=2,requests=8,duration=30s"]
`

// A matrix run as 3 shards and merged is the unsharded run's matrix: the same cell IDs
// in the same order, each cell exactly its shard's (histogram merged, not averaged);
// each shard's run directory says which shard of which matrix it is. A missing shard
// leaves the merge partial and named, exit 1; a shard given twice, or one of another
// matrix, is refused with exit 2.
func TestShardsMergeIntoTheWholeMatrix(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "m.yaml")
	if err := os.WriteFile(file, []byte(shardMatrix), 0o644); err != nil {
		t.Fatal(err)
	}
	runDir := func(name string, args ...string) string {
		out := filepath.Join(dir, name)
		code, _, errOut := run(t, append([]string{"run", "-f", file, "--out", out, "-q", "--no-report"}, args...)...)
		if code != 0 {
			t.Fatalf("run %s: exit %d: %s", name, code, errOut)
		}
		return out
	}
	whole := runDir("whole")
	// The shards as a pod of the Indexed Job runs them: separate processes, one after
	// another, each told only JOB_COMPLETION_INDEX and the count.
	var shards []string
	for i := range 3 {
		out := filepath.Join(dir, fmt.Sprintf("shard%d", i))
		cmd := idlerace("run", "-f", file, "--shards", "3", "--out", out, "-q", "--no-report")
		cmd.Env = append(cmd.Env, fmt.Sprintf("JOB_COMPLETION_INDEX=%d", i))
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("shard %d: %v: %s", i, err, b)
		}
		shards = append(shards, out)
	}
	for i, d := range shards {
		m, err := results.ReadManifest(filepath.Join(d, "manifest.json"))
		if err != nil {
			t.Fatal(err)
		}
		if m.Shard == nil || m.Shard.Index != i || m.Shard.Count != 3 || len(m.Shard.MatrixSHA256) != 64 {
			t.Errorf("%s: manifest shard %+v, want %d/3 with the matrix's hash", d, m.Shard, i)
		}
	}
	ids := func(s *results.Summary) []string {
		var out []string
		for _, c := range s.Cells {
			out = append(out, c.ID)
		}
		return out
	}
	wholeSum, err := results.ReadSummary(filepath.Join(whole, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	merged := filepath.Join(dir, "merged")
	// Given in any order.
	if code, _, errOut := run(t, "merge", merged, shards[2], shards[0], shards[1]); code != 0 {
		t.Fatalf("merge: exit %d: %s", code, errOut)
	}
	mergedSum, err := results.ReadSummary(filepath.Join(merged, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(mergedSum), ids(wholeSum); !slices.Equal(got, want) || mergedSum.State != "complete" {
		t.Fatalf("merged cells %v (%s), want the unsharded run's %v", got, mergedSum.State, want)
	}
	for _, d := range shards {
		s, _ := results.ReadSummary(filepath.Join(d, "summary.json"))
		for _, c := range s.Cells {
			m := mergedSum.Cells[slices.Index(ids(mergedSum), c.ID)]
			if m.Requests != c.Requests || m.Stale != c.Stale || m.LatencyUS != c.LatencyUS {
				t.Errorf("cell %s: merged %d requests, %d stale, latency %+v; its shard had %d, %d, %+v", c.ID, m.Requests, m.Stale, m.LatencyUS, c.Requests, c.Stale, c.LatencyUS)
			}
		}
	}

	code, _, errOut := run(t, "merge", filepath.Join(dir, "partial"), shards[0], shards[2])
	if code != 1 || !strings.Contains(errOut, "missing shards 1 of 3") || strings.Count(strings.TrimSpace(errOut), "\n") > 1 {
		t.Errorf("merge without shard 1: exit %d, %q: want 1 (incomplete) and the missing shard named", code, errOut)
	}
	if p, _ := results.ReadSummary(filepath.Join(dir, "partial", "summary.json")); p == nil || p.State != "partial" {
		t.Errorf("a merge missing a shard is %v, want partial", p)
	}
	if code, _, errOut := run(t, "merge", filepath.Join(dir, "dup"), shards[0], shards[0], shards[1]); code != 2 || !strings.Contains(errOut, "shard 0/3 is given twice") {
		t.Errorf("a shard twice: exit %d, %q: want 2", code, errOut)
	}
	if code, _, errOut := run(t, "merge", filepath.Join(dir, "mixed"), shards[0], whole); code != 2 || !strings.Contains(errOut, "is a shard and") {
		t.Errorf("a shard and a whole run: exit %d, %q: want 2", code, errOut)
	}
	other := filepath.Join(dir, "other.yaml")
	_ = os.WriteFile(other, []byte(strings.Replace(shardMatrix, "requests=8", "requests=6", 1)), 0o644)
	otherShard := filepath.Join(dir, "other1")
	if code, _, errOut := run(t, "run", "-f", other, "--shard", "1/3", "--out", otherShard, "-q", "--no-report"); code != 0 {
		t.Fatalf("other matrix's shard: exit %d: %s", code, errOut)
	}
	if code, _, errOut := run(t, "merge", filepath.Join(dir, "foreign"), shards[0], otherShard, shards[2]); code != 2 || !strings.Contains(errOut, "of another matrix") {
		t.Errorf("a shard of another matrix: exit %d, %q: want 2", code, errOut)
	}
}

// A pod of a Kubernetes Indexed Job finds its shard in JOB_COMPLETION_INDEX.
func TestShardFromJobCompletionIndex(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "m.yaml")
	_ = os.WriteFile(file, []byte(shardMatrix), 0o644)
	t.Setenv("JOB_COMPLETION_INDEX", "2")
	out := filepath.Join(dir, "pod2")
	if code, _, errOut := run(t, "run", "-f", file, "--shards", "3", "--out", out, "-q", "--no-report"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	m, err := results.ReadManifest(filepath.Join(out, "manifest.json"))
	if err != nil || m.Shard == nil || m.Shard.Index != 2 || m.CellsTotal != 1 {
		t.Fatalf("manifest %+v (%v): want shard 2/3 of one cell", m, err)
	}
	t.Setenv("JOB_COMPLETION_INDEX", "3")
	if code, _, errOut := run(t, "run", "-f", file, "--shards", "3", "--out", "-"); code != 2 || !strings.Contains(errOut, "JOB_COMPLETION_INDEX=3 with 3 shards") {
		t.Errorf("index 3 of 3: exit %d, %q: want 2", code, errOut)
	}
}

// idlerace k8s prints the shards' objects for a matrix file, named after it, and refuses
// more shards than cells or no image, with exit 2.
func TestK8sPrintsTheShardsJob(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "Real Clients.yaml")
	_ = os.WriteFile(file, []byte(shardMatrix), 0o644)
	code, out, errOut := run(t, "k8s", "-f", file, "--shards", "5", "--image", "idlerace:test")
	if code != 0 || !strings.Contains(out, "name: idlerace-real-clients-shards") || !strings.Contains(out, "completionMode: Indexed") {
		t.Fatalf("exit %d (%s):\n%s", code, errOut, out)
	}
	if code, out, _ := run(t, "k8s", "-f", file, "--shards", "5", "--image", "idlerace:test", "--merge"); code != 0 || !strings.Contains(out, "/runs/shard-4") {
		t.Errorf("--merge: exit %d:\n%s", code, out)
	}
	if code, _, errOut := run(t, "k8s", "-f", file, "--shards", "6", "--image", "idlerace:test"); code != 2 || !strings.Contains(errOut, "the matrix has 5 cells") {
		t.Errorf("6 shards of 5 cells: exit %d, %q", code, errOut)
	}
	if code, _, errOut := run(t, "k8s", "-f", file, "--shards", "2"); code != 2 || !strings.Contains(errOut, "--image") {
		t.Errorf("no image: exit %d, %q", code, errOut)
	}
}
