// Package cargo builds the small Rust programs idlerace runs (the hyper client agent,
// the hyper reverse proxy) with Debian's cargo, offline, against the crates Debian
// installs in /usr/share/cargo/registry, once per source: the binary is cached in a
// directory named by the sources' hash, so a later cell or run does not rebuild.
package cargo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"
)

const (
	// Binary is Debian's cargo; Registry is where Debian's librust-*-dev put their crates.
	Binary   = "/usr/bin/cargo"
	Registry = "/usr/share/cargo/registry"
	// BuildCap bounds one build.
	BuildCap = 10 * time.Minute
)

// config replaces crates.io by the directory source of librust-*-dev.
const config = `[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "/usr/share/cargo/registry"

[net]
offline = true
`

// Project is one Rust program: its Cargo.toml, its sources, and the binary it builds.
type Project struct {
	// Name is the binary's name (the package's name in Cargo.toml).
	Name string
	// Files maps a path in the project ("Cargo.toml", "src/main.rs") to its contents.
	Files map[string][]byte
	// Log, when set, is told once that a build starts (it takes a while).
	Log io.Writer

	mu  sync.Mutex
	bin string
	dir string
}

// Missing says what to install when Debian's cargo or a crate matching each of crates
// ("hyper-0.14*") is absent, or "" when nothing is.
func Missing(packages string, crates ...string) string {
	if _, err := os.Stat(Binary); err != nil {
		return "no Debian cargo: apt-get install " + packages
	}
	for _, c := range crates {
		if m, _ := filepath.Glob(filepath.Join(Registry, c)); len(m) == 0 {
			return "no " + c + " crate in " + Registry + ": apt-get install " + packages
		}
	}
	return ""
}

// Crate is the newest installed crate directory matching glob ("hyper-0.14*"), e.g.
// "hyper-0.14.19", or "".
func Crate(glob string) string {
	m, _ := filepath.Glob(filepath.Join(Registry, glob))
	if len(m) == 0 {
		return ""
	}
	slices.Sort(m)
	return filepath.Base(m[len(m)-1])
}

// Build compiles the project, once per process and once per source on the machine, and
// returns the binary's path.
func (p *Project) Build() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bin != "" {
		return p.bin, nil
	}
	h := sha256.New()
	names := make([]string, 0, len(p.Files))
	for n := range p.Files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(p.Files[n]))
		h.Write(p.Files[n])
	}
	h.Write([]byte(config))
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "idlerace", p.Name+"-"+hex.EncodeToString(h.Sum(nil))[:16])
	bin := filepath.Join(dir, "target", "release", p.Name)
	if _, err := os.Stat(bin); err != nil {
		if err := p.build(dir); err != nil {
			return "", err
		}
	}
	p.bin, p.dir = bin, dir
	return bin, nil
}

func (p *Project) build(dir string) error {
	files := map[string][]byte{".cargo/config.toml": []byte(config)}
	for n, b := range p.Files {
		files[n] = b
	}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), BuildCap)
	defer cancel()
	cmd := exec.CommandContext(ctx, Binary, "build", "--release", "--offline", "--quiet")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CARGO_HOME="+filepath.Join(dir, "cargo-home"), "CARGO_TERM_COLOR=never")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if p.Log != nil {
		fmt.Fprintf(p.Log, "idlerace: building %s with Debian's cargo (once, into %s)\n", p.Name, dir)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building %s: %v: %s", p.Name, err, lastBytes(out.Bytes(), 2000))
	}
	return nil
}

// Locked is the version of crate name in the built project's Cargo.lock ("unknown" when
// it cannot say); call it after Build.
func (p *Project) Locked(name string) string {
	p.mu.Lock()
	dir := p.dir
	p.mu.Unlock()
	b, err := os.ReadFile(filepath.Join(dir, "Cargo.lock"))
	if err != nil {
		return "unknown"
	}
	m := regexp.MustCompile(`name = "` + regexp.QuoteMeta(name) + `"\nversion = "([^"]+)"`).FindSubmatch(b)
	if m == nil {
		return "unknown"
	}
	return string(m[1])
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}
