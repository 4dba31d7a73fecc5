package attack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Request is one request as a vegeta target describes it: method, URL, headers, body.
// Env.Targets holds them when the load goes round over several (attack --targets).
type Request struct {
	// Method is the request's method ("" is POST).
	Method string
	// URL supplies the path and query; the request goes to Env.Target's server (so that
	// the delay proxy and the capture see it), whatever host URL names.
	URL string
	// Header is sent beside Env.Header; a name given in both takes this one's values.
	Header http.Header
	// Body is sent as it is: nil or empty is no body and no Content-Length.
	Body []byte
}

// ParseHeader reads one header as curl's and vegeta's -H take it, "Name: value", and
// checks it as CheckHeader does.
func ParseHeader(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", errors.New(`no colon (want "Name: value", e.g. "Authorization: Bearer x")`)
	}
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if err := CheckHeader(name, value); err != nil {
		return "", "", err
	}
	return http.CanonicalHeaderKey(name), value, nil
}

// CheckHeader refuses a header a request cannot carry, and RequestIDHeader, which is
// idlerace's own: each request's id, by which a server counts executions.
func CheckHeader(name, value string) error {
	switch {
	case !httpguts.ValidHeaderFieldName(name):
		return fmt.Errorf("header name %q: not a token (want letters, digits and !#$%%&'*+-.^_`|~, e.g. X-Tenant)", name)
	case !httpguts.ValidHeaderFieldValue(value):
		return fmt.Errorf("header %s: value %q has a control character (want printable text)", name, value)
	case strings.EqualFold(name, RequestIDHeader):
		return fmt.Errorf("header %s: idlerace sets it on every request, a unique id by which the server counts executions (want another name)", RequestIDHeader)
	}
	return nil
}

// template is a request of the load made once: each request copies it.
type template struct {
	method, url, host string
	header            http.Header
	body              []byte
}

// templates are the requests the load goes round over: Targets, each on Target's
// server, or the one request that Target, Method, Header and Body describe.
func (e *Env) templates() ([]template, error) {
	e.once.Do(func() {
		if len(e.Targets) == 0 {
			e.tmpl = []template{{method: e.method(), url: e.Target, host: e.Header.Get("Host"), header: e.Header, body: e.Body}}
			return
		}
		base, err := url.Parse(e.Target)
		if err != nil {
			e.tmplErr = fmt.Errorf("target %q: %w", e.Target, err)
			return
		}
		for _, t := range e.Targets {
			u, err := url.Parse(t.URL)
			if err != nil {
				e.tmplErr = fmt.Errorf("target %q: %w", t.URL, err)
				return
			}
			on := *base
			on.Path, on.RawPath, on.RawQuery = u.Path, u.RawPath, u.RawQuery
			h := e.Header.Clone()
			if h == nil {
				h = http.Header{}
			}
			for k, vs := range t.Header {
				h[k] = vs
			}
			m := t.Method
			if m == "" {
				m = http.MethodPost
			}
			e.tmpl = append(e.tmpl, template{method: m, url: on.String(), host: h.Get("Host"), header: h, body: t.Body})
		}
	})
	return e.tmpl, e.tmplErr
}

// newRequest is request seq of the load, from the next template in turn: no body (and
// no Content-Length) when the template has none, the run's id for the server to count
// executions by, idlerace's User-Agent unless the template names its own.
func (e *Env) newRequest(ctx context.Context, seq uint64) (*http.Request, *template, error) {
	ts, err := e.templates()
	if err != nil {
		return nil, nil, err
	}
	t := &ts[(seq-1)%uint64(len(ts))]
	var body io.Reader
	if len(t.body) > 0 {
		body = bytes.NewReader(t.body)
	}
	req, err := http.NewRequestWithContext(ctx, t.method, t.url, body)
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range t.header {
		req.Header[k] = slices.Clone(vs)
	}
	if t.host != "" {
		req.Host = t.host
	}
	req.Header.Set(RequestIDHeader, e.RunID+"-"+strconv.FormatUint(seq, 10))
	if _, own := req.Header["User-Agent"]; !own { // an empty one sends none, as in Go
		req.Header.Set("User-Agent", UserAgent)
	}
	return req, t, nil
}
