package hops

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/idlerace/idlerace/upstreams"
)

// VersionLine runs a proxy's binary with args (its version flag) and returns the first
// line it prints, for the kind to pick its version from. A missing binary, or one that
// fails, is an *upstreams.StartError naming the Debian package that provides it.
func VersionLine(ctx context.Context, binary, debianPackage string, args ...string) (string, error) {
	if _, err := os.Stat(binary); err != nil {
		return "", &upstreams.StartError{Err: fmt.Errorf("%s binary (Debian package %s): %w", filepath.Base(binary), debianPackage, err)}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
	first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err != nil {
		return "", &upstreams.StartError{Err: fmt.Errorf("%s %s: %w", binary, strings.Join(args, " "), err), Tail: []string{first}}
	}
	return first, nil
}
