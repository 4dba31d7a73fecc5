package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wantLine reads the "# want: ..." comment on a bad file's first line: the part of the
// error after the file's path.
func wantLine(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Scan()
	want, ok := strings.CutPrefix(s.Text(), "# want: ")
	if !ok {
		t.Fatalf("%s: first line must be # want: ...", path)
	}
	return want
}

// Every malformed matrix and policy file gets exit 2 and one line
// FILE:LINE: field: what is wrong (what is accepted), and nothing panics.
func TestMalformedFilesGiveOneLineAndExit2(t *testing.T) {
	var n int
	for _, dir := range []string{"matrix-bad", "policy-bad"} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
		for _, f := range files {
			n++
			want := f + wantLine(t, f)
			var args []string
			if dir == "matrix-bad" {
				args = []string{"run", "-f", f, "--out", "-", "-q"}
			} else {
				args = []string{"gate", "testdata", "--policy", f}
			}
			code, _, stderr := run(t, args...)
			if code != exitBadInput {
				t.Errorf("%s: exit %d, want 2 (stderr %q)", f, code, stderr)
			}
			line := strings.TrimSuffix(strings.TrimPrefix(stderr, "idlerace: "), "\n")
			if strings.Contains(line, "\n") {
				t.Errorf("%s: more than one line: %q", f, stderr)
			}
			if !strings.HasPrefix(line, want) {
				t.Errorf("%s:\n got %s\nwant %s...", f, line, want)
			}
			if !strings.Contains(line, "(") {
				t.Errorf("%s: %q does not say what is accepted", f, line)
			}
		}
	}
	if n < 25 {
		t.Fatalf("%d malformed files, want at least 25", n)
	}
}
