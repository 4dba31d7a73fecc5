package attack

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/idlerace/idlerace/results"
)

// ReadTargets reads a file of targets in vegeta's http format (what `vegeta attack
// -format=http` reads): a "METHOD URL" line, "Name: value" header lines, an optional
// "@path" body line; targets apart by blank lines, "#" comments. It is parsed by
// vegeta's own NewHTTPTargeter, one blank-line-separated block at a time, so that an
// error names its line; a relative @path is relative to the targets file (vegeta's
// is relative to its working directory). Every URL must be an http:// URL of the first
// target's server: one attack measures one server's idle close. A target without a
// body line has a nil Body; header names come back canonical.
func ReadTargets(path string) ([]Request, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("--targets %s: %v (want a file of targets in vegeta's http format)", path, err)
	}
	lines := strings.Split(string(data), "\n")
	var out []Request
	var server string
	for start := 0; start < len(lines); start++ {
		if strings.TrimSpace(lines[start]) == "" {
			continue
		}
		end := start
		for end < len(lines) && strings.TrimSpace(lines[end]) != "" {
			end++
		}
		b := block{path: path, first: start + 1, lines: lines[start:end]}
		reqs, err := b.read(&server)
		if err != nil {
			return nil, err
		}
		out = append(out, reqs...)
		start = end
	}
	if len(out) == 0 {
		return nil, &results.FileError{Path: path, Line: 1, Field: "targets", Msg: "none (want lines such as GET http://127.0.0.1:8080/, vegeta's http format)"}
	}
	return out, nil
}

// block is one run of lines without a blank one: a target or, in vegeta's format,
// several whose request lines follow one another.
type block struct {
	path  string
	first int // the line number of lines[0]
	lines []string
}

func (b *block) errf(i int, field, format string, args ...any) error {
	return &results.FileError{Path: b.path, Line: b.first + i, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// read parses the block with vegeta's targeter and checks what it returns; server is
// the scheme and host every target must share ("" until the first).
func (b *block) read(server *string) ([]Request, error) {
	dir := filepath.Dir(b.path)
	src := make([]string, len(b.lines))
	for i, l := range b.lines {
		src[i] = l
		if at, ok := strings.CutPrefix(strings.TrimSpace(l), "@"); ok && !filepath.IsAbs(at) {
			src[i] = "@" + filepath.Join(dir, at)
		}
	}
	tgts, err := vegeta.ReadAllTargets(vegeta.NewHTTPTargeter(strings.NewReader(strings.Join(src, "\n")), nil, nil))
	if errors.Is(err, vegeta.ErrNoTargets) {
		return nil, nil // comments only
	}
	if err != nil {
		return nil, b.vegetaError(src, err)
	}
	var out []Request
	at := 0 // where the next target's request line is searched from
	for _, t := range tgts {
		i := b.find(at, func(l string) bool { return l == t.Method+" "+t.URL })
		at = i + 1
		u, err := url.Parse(t.URL)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, b.errf(i, "url", "%q: want an http:// URL with a host, e.g. http://127.0.0.1:8080/path", t.URL)
		}
		if s := u.Scheme + "://" + u.Host; *server == "" {
			*server = s
		} else if s != *server {
			return nil, b.errf(i, "url", "%q is not on %s, the first target's server (want every target on one server: an attack measures one server's idle close)", t.URL, *server)
		}
		h := http.Header{}
		for name, vs := range t.Header {
			for _, v := range vs {
				if err := CheckHeader(name, v); err != nil {
					j := b.find(i, func(l string) bool {
						n, _, _ := strings.Cut(l, ":")
						return strings.EqualFold(strings.TrimSpace(n), name)
					})
					return nil, b.errf(j, "header", "%v", err)
				}
				h.Add(name, v)
			}
		}
		out = append(out, Request{Method: t.Method, URL: t.URL, Header: h, Body: t.Body})
	}
	return out, nil
}

// find is the index of the first line from from on (trimmed) that match says is the
// one; the block's first line when none is.
func (b *block) find(from int, match func(string) bool) int {
	for i := from; i < len(b.lines); i++ {
		if match(strings.TrimSpace(b.lines[i])) {
			return i
		}
	}
	return 0
}

// vegetaError turns the targeter's error ("bad method: get") into one naming its line
// and what is accepted. src is the block as vegeta read it.
func (b *block) vegetaError(src []string, err error) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "bad method: "); ok {
		i := b.find(0, func(l string) bool { return strings.HasPrefix(l, rest+" ") || l == rest })
		return b.errf(i, "target", "%q: want METHOD URL, the method in capitals (e.g. GET http://127.0.0.1:8080/path)", b.lines[i])
	}
	if rest, ok := strings.CutPrefix(msg, "bad target: "); ok {
		i := b.find(0, func(l string) bool { return l == rest })
		return b.errf(i, "target", "%q: want METHOD URL (e.g. GET http://127.0.0.1:8080/path)", rest)
	}
	if rest, ok := strings.CutPrefix(msg, "bad URL: "); ok {
		u, why, _ := strings.Cut(rest, ", ")
		i := b.find(0, func(l string) bool { return strings.HasSuffix(l, " "+u) })
		return b.errf(i, "url", "%q: %s (want an http:// URL, e.g. http://127.0.0.1:8080/path)", u, why)
	}
	if rest, ok := strings.CutPrefix(msg, "bad header: "); ok {
		i := b.find(0, func(l string) bool { return l == rest })
		return b.errf(i, "header", "%q: want Name: value", rest)
	}
	if _, ok := strings.CutPrefix(msg, "bad body: "); ok {
		for i, l := range src {
			if at, ok := strings.CutPrefix(strings.TrimSpace(l), "@"); ok {
				if _, err := os.Stat(at); err != nil {
					var pe *os.PathError
					if errors.As(err, &pe) {
						err = pe.Err
					}
					return b.errf(i, "@body", "%s: %v (want a file, relative to the targets file)", at, err)
				}
			}
		}
	}
	return b.errf(0, "target", "%v (want vegeta's http format: METHOD URL, headers, @body)", err)
}
