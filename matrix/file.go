package matrix

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/hops"
	"github.com/idlerace/idlerace/results"
)

// File is a parsed matrix file. Its axes multiply into cells; Include and Exclude edit
// the product with the semantics of a GitHub Actions matrix.
type File struct {
	Path        string
	IdleTimeout time.Duration
	Method      string
	// Request is the request block's path, headers and body (its method is Method).
	Request Request
	Seed    uint64
	Repeats int
	// Duration, when set, is given to every load that does not set its own.
	Duration   time.Duration
	Parallel   int
	Strategies []string
	Upstreams  []string
	Skews      []string
	Latencies  []string
	Loads      []string
	// Proxies are the hops between the load and the upstream ("none": no hop).
	Proxies []string
	// Methods, when set, is an axis of request methods in place of Method: each
	// combination runs with each (GET and POST of one proxy are two cells).
	Methods []string
	Include []Entry
	Exclude []Entry
	// Raw is the file's bytes, stored in the run directory as matrix.yaml.
	Raw []byte
}

// Entry is one include or exclude item: axis values (strategy, upstream, skew, latency,
// load) and, for include, per-cell settings (idle_timeout, method).
type Entry struct {
	Line   int
	Values map[string]string
}

// singular names an axis list's values as include, exclude and Canonical name them.
var singular = map[string]string{"strategies": "strategy", "upstreams": "upstream", "skews": "skew", "latencies": "latency", "loads": "load", "proxies": "proxy", "methods": "method"}

var fileFields = []string{"idle_timeout", "method", "request", "seed", "repeats", "duration", "parallel",
	"strategies", "upstreams", "skews", "latencies", "loads", "proxies", "methods", "include", "exclude"}

// FileError is a problem in a matrix file: FILE:LINE: field: what is wrong (what is
// accepted). It is bad input.
type FileError = results.FileError

// ReadFile reads and checks a matrix file.
func ReadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, bad(fmt.Errorf("%s: %v", path, unwrapPathErr(err)))
	}
	return ParseFile(path, data)
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// ParseFile parses a matrix file's bytes; path names it in errors.
func ParseFile(path string, data []byte) (*File, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := yamlErrorLine(err)
		return nil, bad(&FileError{Path: path, Line: line, Field: "yaml", Msg: msg})
	}
	f := &File{Path: path, Raw: data, IdleTimeout: DefaultIdleTimeout, Method: "POST", Seed: 1, Repeats: 1, Parallel: 0}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, bad(&FileError{Path: path, Line: 1, Field: "file", Msg: "empty (want a mapping with strategies, skews, loads, ...)"})
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, bad(&FileError{Path: path, Line: root.Line, Field: "file", Msg: "not a mapping (want keys such as strategies: [blind, watch])"})
	}
	p := &fileParser{path: path}
	seen := map[string]bool{}
	var requestMethod *yaml.Node // request.method, refused beside a top-level method
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			return nil, p.errf(k, k.Value, "given twice (want each field once)")
		}
		seen[k.Value] = true
		var err error
		switch k.Value {
		case "idle_timeout":
			f.IdleTimeout, err = p.duration(v, k.Value, false)
		case "duration":
			f.Duration, err = p.duration(v, k.Value, false)
		case "method":
			if seen["methods"] {
				return nil, p.errf(k, k.Value, "given with methods too (want one of them)")
			}
			f.Method, err = p.method(v)
		case "request":
			requestMethod, err = p.request(v, f)
		case "seed":
			var n int
			n, err = p.integer(v, k.Value, 0, 1<<53)
			f.Seed = uint64(n)
		case "repeats":
			f.Repeats, err = p.integer(v, k.Value, 1, 1000)
		case "parallel":
			f.Parallel, err = p.integer(v, k.Value, 1, 256)
		case "strategies":
			f.Strategies, err = p.specs(v, k.Value, checkStrategy)
		case "upstreams":
			f.Upstreams, err = p.specs(v, k.Value, checkUpstream)
		case "skews":
			f.Skews, err = p.specs(v, k.Value, checkSkew)
		case "latencies":
			f.Latencies, err = p.specs(v, k.Value, checkLatency)
		case "loads":
			f.Loads, err = p.specs(v, k.Value, checkLoad)
		case "proxies":
			f.Proxies, err = p.specs(v, k.Value, checkProxy)
		case "methods":
			if seen["method"] {
				return nil, p.errf(k, k.Value, "given with method too (want one of them)")
			}
			f.Methods, err = p.specs(v, k.Value, checkMethod)
		case "include":
			f.Include, err = p.entries(v, k.Value, true)
		case "exclude":
			f.Exclude, err = p.entries(v, k.Value, false)
		default:
			return nil, p.errf(k, k.Value, "unknown field (known: "+strings.Join(fileFields, ", ")+")")
		}
		if err != nil {
			return nil, err
		}
	}
	if requestMethod != nil && seen["method"] {
		return nil, p.errf(requestMethod, "request.method", "given with the top-level method too (want one of them)")
	}
	if len(f.Strategies) == 0 && len(f.Include) == 0 {
		return nil, bad(&FileError{Path: path, Line: root.Line, Field: "strategies", Msg: "missing (want a list of strategy specs, e.g. [blind, read-probe])"})
	}
	if len(f.Upstreams) == 0 {
		f.Upstreams = []string{"builtin"}
	}
	if len(f.Skews) == 0 {
		f.Skews = []string{"none"}
	}
	if len(f.Latencies) == 0 {
		f.Latencies = []string{"0"}
	}
	if len(f.Loads) == 0 {
		f.Loads = []string{DefaultLoad}
	}
	if len(f.Proxies) == 0 {
		f.Proxies = []string{hops.None}
	}
	if _, err := f.Cells(); err != nil {
		return nil, err
	}
	return f, nil
}

// yamlErrorLine pulls "line N" out of a YAML syntax error.
func yamlErrorLine(err error) (int, string) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, tail, ok := strings.Cut(rest, ":"); ok {
			if line, err := strconv.Atoi(n); err == nil {
				return line, strings.TrimSpace(tail) + " (want YAML)"
			}
		}
	}
	if te, ok := err.(*yaml.TypeError); ok && len(te.Errors) > 0 {
		return 1, te.Errors[0]
	}
	return 1, msg + " (want YAML)"
}

type fileParser struct{ path string }

func (p *fileParser) errf(n *yaml.Node, field, msg string) error {
	return bad(&FileError{Path: p.path, Line: n.Line, Field: field, Msg: msg})
}

func (p *fileParser) scalar(n *yaml.Node, field, want string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", p.errf(n, field, "not a single value (want "+want+")")
	}
	return n.Value, nil
}

func (p *fileParser) duration(n *yaml.Node, field string, allowZero bool) (time.Duration, error) {
	s, err := p.scalar(n, field, "a duration such as 100ms or 5s")
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, p.errf(n, field, fmt.Sprintf("%q is not a duration (want a duration such as 100ms or 5s)", s))
	}
	if d < 0 || (d == 0 && !allowZero) {
		return 0, p.errf(n, field, fmt.Sprintf("%s must be > 0 (want a duration such as 100ms or 5s)", s))
	}
	return d, nil
}

func (p *fileParser) integer(n *yaml.Node, field string, min, max int) (int, error) {
	want := fmt.Sprintf("a whole number from %d to %d", min, max)
	s, err := p.scalar(n, field, want)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < min || v > max {
		return 0, p.errf(n, field, fmt.Sprintf("%q is out of range (want %s)", s, want))
	}
	return v, nil
}

var methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

func (p *fileParser) method(n *yaml.Node) (string, error) {
	s, err := p.scalar(n, "method", "an HTTP method")
	if err != nil {
		return "", err
	}
	for _, m := range methods {
		if strings.EqualFold(s, m) {
			return m, nil
		}
	}
	return "", p.errf(n, "method", fmt.Sprintf("%q is not a method (want one of %s)", s, strings.Join(methods, ", ")))
}

// specs reads a list of spec strings, checking each with check.
func (p *fileParser) specs(n *yaml.Node, field string, check func(string) error) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, field, "want a list (e.g. "+field+": [a, b])")
	}
	if len(n.Content) == 0 {
		return nil, p.errf(n, field, "empty list (want at least one value)")
	}
	var out []string
	seen := map[string]string{}
	for i, item := range n.Content {
		name := fmt.Sprintf("%s[%d]", field, i)
		s, err := p.scalar(item, name, "a spec string")
		if err != nil {
			return nil, err
		}
		if err := check(s); err != nil {
			return nil, p.errf(item, name, err.Error())
		}
		// Compared in canonical form: "retry-only" and "retry-only:max=1" are one value.
		key := canonical(singular[field], s)
		if first, dup := seen[key]; dup {
			return nil, p.errf(item, name, fmt.Sprintf("%q is the same as %q (want each value once)", s, first))
		}
		seen[key] = s
		out = append(out, s)
	}
	return out, nil
}

// entries reads include or exclude: a list of mappings from singular axis keys (and, for
// include, idle_timeout and method) to values.
func (p *fileParser) entries(n *yaml.Node, field string, include bool) ([]Entry, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, field, "want a list of mappings (e.g. - {strategy: blind, skew: none})")
	}
	known := []string{"strategy", "upstream", "skew", "latency", "load", "proxy", "method"}
	if include {
		known = append(known, "idle_timeout")
	}
	checks := map[string]func(string) error{
		"strategy": checkStrategy, "upstream": checkUpstream, "skew": checkSkew, "latency": checkLatency, "load": checkLoad,
		"proxy": checkProxy,
	}
	var out []Entry
	for i, item := range n.Content {
		name := fmt.Sprintf("%s[%d]", field, i)
		if item.Kind != yaml.MappingNode || len(item.Content) == 0 {
			return nil, p.errf(item, name, "not a mapping (want e.g. {strategy: blind, skew: none})")
		}
		e := Entry{Line: item.Line, Values: map[string]string{}}
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], item.Content[j+1]
			key := name + "." + k.Value
			ok := false
			for _, kn := range known {
				ok = ok || kn == k.Value
			}
			if !ok {
				return nil, p.errf(k, key, "unknown key (known: "+strings.Join(known, ", ")+")")
			}
			s, err := p.scalar(v, key, "a string")
			if err != nil {
				return nil, err
			}
			switch k.Value {
			case "idle_timeout":
				if _, err := p.duration(v, key, false); err != nil {
					return nil, err
				}
			case "method":
				if s, err = p.method(v); err != nil {
					return nil, err
				}
			default:
				if err := checks[k.Value](s); err != nil {
					return nil, p.errf(v, key, err.Error())
				}
			}
			e.Values[k.Value] = s
		}
		out = append(out, e)
	}
	return out, nil
}

// The checks reuse each part's own parser, so a file accepts exactly what the CLI does.
func checkStrategy(s string) error { _, err := parseStrategy(s); return err }
func checkUpstream(s string) error { _, err := ParseUpstream(s); return err }
func checkSkew(s string) error     { _, err := parseSkew(s); return err }
func checkLatency(s string) error  { _, err := chaos.ParseLatency(s); return err }
func checkLoad(s string) error     { _, err := parseLoad(s); return err }
func checkProxy(s string) error    { _, err := hops.Parse(s); return err }

func checkMethod(s string) error {
	for _, m := range methods {
		if s == m {
			return nil
		}
	}
	return fmt.Errorf("%q is not a method (want one of %s, in capitals)", s, strings.Join(methods, ", "))
}
