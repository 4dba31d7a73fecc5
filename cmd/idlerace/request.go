package main

import (
	"errors"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/idlerace/idlerace/attack"
)

// requestFlags say what a request is, as vegeta's and curl's users write it: --method,
// -H, --body or --body-file, or --targets (vegeta's http format) instead of --target.
type requestFlags struct {
	target, method, body, bodyFile, targets string
	headers                                 []string
}

// request is what the flags asked for: the server's URL (the first target's) and either
// one request (Method, Header, Body) or Targets to go round over.
type request struct {
	URL     string
	Method  string
	Header  http.Header
	Body    []byte // never nil once resolved: the default body is filled in
	Targets []attack.Request
}

// add declares the flags; method is --method's default, targetsUse what --targets
// does with several targets.
func (rf *requestFlags) add(cmd *cobra.Command, method, targetsUse string) {
	f := cmd.Flags()
	f.StringVar(&rf.target, "target", "", "URL of the HTTP/1.1 server, e.g. http://127.0.0.1:8080/ (this or --targets is required)")
	f.StringVar(&rf.method, "method", method, "request method (GET, HEAD, DELETE, OPTIONS and TRACE carry no body unless --body gives one; POST and PUT a 17-byte JSON one)")
	f.StringArrayVarP(&rf.headers, "header", "H", nil, `request header "Name: value" (repeatable); a User-Agent replaces idlerace's`)
	f.StringVar(&rf.body, "body", "", "request body, instead of the default (--body '' sends an empty one)")
	f.StringVar(&rf.bodyFile, "body-file", "", "read the request body from this file")
	f.StringVar(&rf.targets, "targets", "", "file of targets in vegeta's http format (METHOD URL, Name: value lines, @body-file; blank lines between), all on one server; "+targetsUse)
}

// resolve checks the flags: every problem is one line of bad input naming the flag.
func (rf *requestFlags) resolve(cmd *cobra.Command) (*request, error) {
	changed := cmd.Flags().Changed
	switch {
	case rf.target != "" && rf.targets != "":
		return nil, badInput("--target with --targets: give one (the targets file names its URLs)")
	case rf.target == "" && rf.targets == "":
		return nil, badInput(`required flag(s) "target" not set (or give --targets FILE)`)
	case changed("body") && changed("body-file"):
		return nil, badInput("--body with --body-file: give one")
	case rf.targets != "" && changed("method"):
		return nil, badInput("--method with --targets: each target names its method (drop --method)")
	}
	r := &request{URL: rf.target, Method: strings.ToUpper(rf.method), Header: http.Header{}}
	for _, h := range rf.headers {
		name, value, err := attack.ParseHeader(h)
		if err != nil {
			return nil, badInput("-H %q: %v", h, err)
		}
		r.Header.Add(name, value)
	}
	var body []byte // nil: no --body or --body-file
	switch {
	case changed("body"):
		body = []byte(rf.body)
		if body == nil {
			body = []byte{}
		}
	case changed("body-file"):
		b, err := os.ReadFile(rf.bodyFile)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, badInput("--body-file %s: %v (want a readable file)", rf.bodyFile, err)
		}
		body = b
	}
	orDefault := func(b []byte, method string) []byte {
		if b == nil {
			return attack.DefaultBody(method)
		}
		return b
	}
	if rf.targets == "" {
		r.Body = orDefault(body, r.Method)
		return r, nil
	}
	ts, err := attack.ReadTargets(rf.targets)
	if err != nil {
		return nil, usageError{err}
	}
	for i := range ts {
		if ts[i].Body == nil {
			ts[i].Body = orDefault(body, ts[i].Method)
		}
	}
	r.URL, r.Method, r.Body, r.Targets = ts[0].URL, ts[0].Method, ts[0].Body, ts
	return r, nil
}

// first is the first target as one request (what probe sends): -H and its own headers,
// its body.
func (r *request) first() (method string, header http.Header, body []byte) {
	if len(r.Targets) == 0 {
		return r.Method, r.Header, r.Body
	}
	t := r.Targets[0]
	h := r.Header.Clone()
	for k, vs := range t.Header {
		h[k] = vs
	}
	return t.Method, h, t.Body
}
