package results

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// dirNames lists dir's entries, to catch temp files left behind.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFileAtomicWritesContentAndMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "summary.json")

	if err := WriteFileAtomic(path, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, []byte("second, longer\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "second, longer\n" {
		t.Errorf("content = %q, want %q", got, "second, longer\n")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o640 {
		t.Errorf("mode = %o, want 640 (exactly, whatever the umask)", mode)
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "summary.json" {
		t.Errorf("directory holds %q, want only summary.json", names)
	}
}

func TestWriteFileAtomicWritesEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty")
	if err := WriteFileAtomic(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 0 {
		t.Fatalf("stat = %v, %v; want an empty file", fi, err)
	}
}

func TestWriteFileAtomicFailsInMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", "summary.json")
	err := WriteFileAtomic(path, []byte("x"), 0o644)
	if err == nil {
		t.Fatal("no error writing into a directory that does not exist")
	}
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q: want ErrNotExist naming %s", err, path)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file exists after a failed write: %v", err)
	}
}

func TestWriteFileAtomicRemovesTempFileWhenRenameFails(t *testing.T) {
	dir := t.TempDir()
	// A non-empty directory where the file should go: everything succeeds up to the
	// rename, which fails.
	path := filepath.Join(dir, "summary.json")
	if err := os.MkdirAll(filepath.Join(path, "inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	err := WriteFileAtomic(path, []byte("x"), 0o644)
	if err == nil {
		t.Fatal("no error renaming over a non-empty directory")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "summary.json" {
		t.Errorf("directory holds %q after the failed write, want only summary.json", names)
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		t.Errorf("the directory in the way was disturbed: %v, %v", fi, err)
	}
}

func TestWriteFileAtomicConcurrentWritersNeverTearTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cell.hlog")

	// Each version is large enough that a non-atomic write would be seen half-done,
	// and made of one repeated byte so a torn mix is easy to spot.
	const writers, writesEach, size = 4, 25, 256 << 10
	versions := make(map[string]bool)
	payload := func(w, i int) []byte {
		return bytes.Repeat([]byte{byte('A' + (w*writesEach+i)%58)}, size+w*writesEach+i)
	}
	initial := payload(0, 0)
	if err := WriteFileAtomic(path, initial, 0o644); err != nil {
		t.Fatal(err)
	}
	for w := range writers {
		for i := range writesEach {
			versions[string(payload(w, i))] = true
		}
	}

	var stop atomic.Bool
	var readers sync.WaitGroup
	var reads atomic.Int64
	readErr := make(chan error, 2)
	for range 2 {
		readers.Go(func() {
			for !stop.Load() {
				got, err := os.ReadFile(path)
				if err != nil {
					readErr <- fmt.Errorf("read during writes: %w", err)
					return
				}
				if !versions[string(got)] {
					readErr <- fmt.Errorf("read a torn file of %d bytes; every version written has at least %d", len(got), size)
					return
				}
				reads.Add(1)
			}
		})
	}

	var writersWG sync.WaitGroup
	writeErr := make(chan error, writers)
	for w := range writers {
		writersWG.Go(func() {
			for i := range writesEach {
				if err := WriteFileAtomic(path, payload(w, i), 0o644); err != nil {
					writeErr <- err
					return
				}
			}
		})
	}
	writersWG.Wait()
	stop.Store(true)
	readers.Wait()
	close(readErr)
	close(writeErr)
	for err := range writeErr {
		t.Error(err)
	}
	for err := range readErr {
		t.Error(err)
	}
	if reads.Load() == 0 {
		t.Error("readers never read the file; the test proved nothing")
	}

	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !versions[string(got)] {
		t.Errorf("final file (%d bytes) is none of the versions written", len(got))
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("directory holds %q after the writes, want only cell.hlog", names)
	}
}
