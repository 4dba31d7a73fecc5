package realtest

import (
	"errors"
	"strings"
	"testing"
)

// recorder is a testing.TB that records Skip and Fatalf instead of ending the test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Skip(args ...any)                  { r.skipped = args[0].(string) }
func (r *recorder) Fatalf(format string, args ...any) { r.failed = format }

func TestRequireSkipsOrFailsNamingThePackage(t *testing.T) {
	missing := func() error { return errors.New("stat /usr/sbin/nginx: no such file or directory") }

	t.Setenv(RequireEnv, "")
	r := &recorder{TB: t}
	Require(r, "nginx", "nginx", missing)
	if !strings.Contains(r.skipped, "install the Debian package nginx") || !strings.Contains(r.skipped, RequireEnv+"=1") || r.failed != "" {
		t.Errorf("without %s: skipped %q, failed %q; want a skip naming the package", RequireEnv, r.skipped, r.failed)
	}

	t.Setenv(RequireEnv, "1")
	r = &recorder{TB: t}
	Require(r, "nginx", "nginx", missing)
	if r.failed == "" || r.skipped != "" {
		t.Errorf("with %s=1: skipped %q, failed %q; want a failure", RequireEnv, r.skipped, r.failed)
	}

	r = &recorder{TB: t}
	Require(r, "nginx", "nginx", func() error { return nil })
	if r.failed != "" || r.skipped != "" {
		t.Errorf("present: skipped %q, failed %q; want neither", r.skipped, r.failed)
	}
}
