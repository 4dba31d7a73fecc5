package results

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// CreateDirAtomic makes dir appear with everything fill writes into it, at once, so a
// crash (SIGKILL, power loss) leaves either no dir or one that fill completed: never a
// run directory with a matrix.yaml and no summary.json, which neither --resume nor
// report could read. fill writes into a fresh temp directory beside dir
// (".<base>.tmp-*"), which is then fsynced and renamed to dir; an existing empty dir
// (an --out made beforehand with mktemp -d) is removed just before. A crash during fill
// leaves only that hidden temp directory beside dir.
//
// If dir exists and is not empty (a run being resumed), or cannot be replaced (--out .),
// fill writes into dir in place, each file atomically by itself. On an error from fill the temp directory is removed.
func CreateDirAtomic(dir string, fill func(dir string) error) (err error) {
	if entries, rerr := os.ReadDir(dir); rerr == nil && len(entries) > 0 {
		return fill(dir)
	} else if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return fmt.Errorf("run directory: %w", rerr)
	}
	parent, base := filepath.Split(filepath.Clean(dir))
	if parent == "" {
		parent = "."
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	stage, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return fmt.Errorf("run directory: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(stage)
		}
	}()
	if err := os.Chmod(stage, 0o755); err != nil { // MkdirTemp makes it 0700
		return fmt.Errorf("run directory: %w", err)
	}
	if err := fill(stage); err != nil {
		return err
	}
	if err := syncDir(stage); err != nil {
		return fmt.Errorf("run directory: fsync %s: %w", stage, err)
	}
	if err := os.Rename(stage, dir); err != nil {
		// os.Rename will not replace a directory, even an empty one. Remove fails unless
		// dir is still empty; for a moment there is no dir, which is also whole. Where
		// dir cannot be removed (it is ".", or something appeared in it), fill it in place.
		if rerr := os.Remove(dir); rerr != nil {
			os.RemoveAll(stage)
			return fill(dir)
		}
		if err := os.Rename(stage, dir); err != nil {
			return fmt.Errorf("run directory: %w", err)
		}
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("run directory: fsync %s: %w", parent, err)
	}
	return nil
}

// isTempName reports whether name is one of WriteFileAtomic's temp files
// (".<base>.tmp-<random>").
func isTempName(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

// RemoveTemps removes the temp files WriteFileAtomic leaves in dir and in its cells/
// subdirectory when the process is killed between creating one and renaming it. Call
// it only on a run directory no other process is writing. It returns the names it
// removed, relative to dir.
func RemoveTemps(dir string) ([]string, error) {
	var removed []string
	for _, sub := range []string{"", "cells"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return removed, err
		}
		for _, e := range entries {
			if e.Type().IsRegular() && isTempName(e.Name()) {
				rel := filepath.Join(sub, e.Name())
				if err := os.Remove(filepath.Join(dir, rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return removed, err
				}
				removed = append(removed, rel)
			}
		}
	}
	return removed, nil
}
