package results

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A watcher that looks at every step of fill sees the directory absent or whole, never
// half-made: what a SIGKILL between two of fill's writes would leave.
func TestCreateDirAtomicDirAppearsWhole(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "run")
	files := []string{"matrix.yaml", "summary.json", "manifest.json"}
	look := func(step string) {
		names, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(names) != len(files)+1 {
			t.Errorf("%s: %s exists with %d entries, want none or all %d", step, dir, len(names), len(files)+1)
		}
	}
	err := CreateDirAtomic(dir, func(d string) error {
		look("before fill")
		if err := os.Mkdir(filepath.Join(d, "cells"), 0o755); err != nil {
			return err
		}
		for _, f := range files {
			look("before " + f)
			if err := WriteFileAtomic(filepath.Join(d, f), []byte(f), filePerm); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	look("after")
	got := dirNames(t, dir)
	if want := []string{"cells", "manifest.json", "matrix.yaml", "summary.json"}; !slices.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
	if names := dirNames(t, parent); !slices.Equal(names, []string{"run"}) {
		t.Errorf("beside the run directory: %q, want only run (no temp directory)", names)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("run directory mode %v (err %v), want 755", fi.Mode().Perm(), err)
	}
}

// An --out made beforehand and still empty (mktemp -d) is replaced the same way.
func TestCreateDirAtomicReplacesAnEmptyDir(t *testing.T) {
	dir := t.TempDir()
	err := CreateDirAtomic(dir, func(d string) error {
		if d == dir {
			t.Errorf("fill got %s itself, want a temp directory beside it", d)
		}
		return WriteFileAtomic(filepath.Join(d, "summary.json"), []byte("{}"), filePerm)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"summary.json"}) {
		t.Errorf("%s holds %q", dir, got)
	}
}

// A directory that already holds a run (--resume) is filled in place: what it held stays.
func TestCreateDirAtomicFillsANonEmptyDirInPlace(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "old.hlog"), nil, filePerm); err != nil {
		t.Fatal(err)
	}
	err := CreateDirAtomic(dir, func(d string) error {
		if d != dir {
			t.Errorf("fill got %s, want %s itself", d, dir)
		}
		return WriteFileAtomic(filepath.Join(d, "summary.json"), []byte("{}"), filePerm)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"old.hlog", "summary.json"}) {
		t.Errorf("%s holds %q", dir, got)
	}
}

// When fill fails, neither the run directory nor the temp directory is left.
func TestCreateDirAtomicLeavesNothingWhenFillFails(t *testing.T) {
	parent := t.TempDir()
	boom := errors.New("boom")
	err := CreateDirAtomic(filepath.Join(parent, "run"), func(d string) error {
		if err := os.WriteFile(filepath.Join(d, "matrix.yaml"), nil, filePerm); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want fill's", err)
	}
	if names := dirNames(t, parent); len(names) != 0 {
		t.Errorf("left behind: %q", names)
	}
}

// RemoveTemps removes exactly the temp files a killed WriteFileAtomic leaves, in the
// run directory and in cells/, and nothing else.
func TestRemoveTempsRemovesOnlyAtomicWriterLeftovers(t *testing.T) {
	dir := t.TempDir()
	cells := filepath.Join(dir, "cells")
	if err := os.Mkdir(cells, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := []string{"summary.json", "matrix.yaml", filepath.Join("cells", "a.hlog"), filepath.Join("cells", "b.tmp-ish.hlog")}
	for _, k := range keep {
		if err := os.WriteFile(filepath.Join(dir, k), nil, filePerm); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for _, p := range []struct{ dir, base string }{{dir, "summary.json"}, {cells, "a.hlog"}} {
		f, err := os.CreateTemp(p.dir, "."+p.base+".tmp-*") // WriteFileAtomic's pattern
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		rel, _ := filepath.Rel(dir, f.Name())
		want = append(want, rel)
	}
	removed, err := RemoveTemps(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, want) {
		t.Errorf("removed %q, want %q", removed, want)
	}
	for _, k := range keep {
		if _, err := os.Stat(filepath.Join(dir, k)); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	if got := dirNames(t, cells); !slices.Equal(got, []string{"a.hlog", "b.tmp-ish.hlog"}) {
		t.Errorf("cells/ holds %q", got)
	}
	if removed, err := RemoveTemps(filepath.Join(dir, "absent")); err != nil || len(removed) != 0 {
		t.Errorf("absent directory: removed %q, err %v; want nothing, no error", removed, err)
	}
}
