package matrix

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/idlerace/idlerace/attack"
)

// Request is a matrix file's request block beside its method: what every cell's
// requests carry.
//
//	request:
//	  method: PUT
//	  path: /orders?tenant=7
//	  headers: {Authorization: Bearer x, Idempotency-Key: k}
//	  body_file: order.json    # or body: '{"id": 1}'
type Request struct {
	// Path is the path and query on the cell's server ("" is "/").
	Path string
	// Header is sent beside idlerace's own headers (a User-Agent replaces idlerace's).
	Header http.Header
	// Body is every request's body; nil is attack.DefaultBody(method), empty is none.
	Body []byte
}

var requestFields = []string{"method", "path", "headers", "body", "body_file"}

// request reads the request block into f; method is its method's node, nil when it
// sets none (ParseFile refuses it beside a top-level method).
func (p *fileParser) request(n *yaml.Node, f *File) (method *yaml.Node, err error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, "request", "not a mapping (want e.g. request: {method: PUT, path: /orders, headers: {X-Tenant: \"7\"}, body: '{}'})")
	}
	var bodyKey string
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		field := "request." + k.Value
		switch k.Value {
		case "method":
			if method != nil {
				return nil, p.errf(k, field, "given twice (want each field once)")
			}
			if f.Method, err = p.method(v); err != nil {
				return nil, err
			}
			method = k
		case "path":
			s, err := p.scalar(v, field, "a path such as /orders?id=1")
			if err != nil {
				return nil, err
			}
			if u, err := url.ParseRequestURI(s); err != nil || !strings.HasPrefix(s, "/") || u.Host != "" {
				return nil, p.errf(v, field, fmt.Sprintf("%q: not a path (want a path and query starting with /, such as /orders?id=1)", s))
			}
			f.Request.Path = s
		case "headers":
			if f.Request.Header, err = p.headers(v, field); err != nil {
				return nil, err
			}
		case "body", "body_file":
			if bodyKey != "" {
				return nil, p.errf(k, field, fmt.Sprintf("given with request.%s (want one of body, body_file)", bodyKey))
			}
			bodyKey = k.Value
			s, err := p.scalar(v, field, "a string")
			if err != nil {
				return nil, err
			}
			if k.Value == "body" {
				f.Request.Body = []byte(s)
				if f.Request.Body == nil {
					f.Request.Body = []byte{} // given empty: no body, not the default
				}
				continue
			}
			path := s
			if !filepath.IsAbs(path) {
				path = filepath.Join(filepath.Dir(p.path), path)
			}
			if f.Request.Body, err = os.ReadFile(path); err != nil {
				return nil, p.errf(v, field, fmt.Sprintf("%s: %v (want a file, relative to the matrix file)", path, unwrapPathErr(err)))
			}
		default:
			return nil, p.errf(k, field, "unknown key (known: "+strings.Join(requestFields, ", ")+")")
		}
	}
	return method, nil
}

// headers reads a mapping of header names to values.
func (p *fileParser) headers(n *yaml.Node, field string) (http.Header, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, field, "not a mapping (want e.g. headers: {Authorization: Bearer x})")
	}
	h := http.Header{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key := field + "." + k.Value
		value, err := p.scalar(v, key, "a header value")
		if err != nil {
			return nil, err
		}
		if err := attack.CheckHeader(k.Value, value); err != nil {
			return nil, p.errf(k, key, err.Error())
		}
		if _, dup := h[http.CanonicalHeaderKey(k.Value)]; dup {
			return nil, p.errf(k, key, "given twice (want each header once; join values with \", \")")
		}
		h.Set(k.Value, value)
	}
	return h, nil
}

// withPath is target with its path and query replaced by path's ("" keeps target).
func withPath(target, path string) string {
	if path == "" {
		return target
	}
	u, err := url.Parse(target)
	p, perr := url.Parse(path)
	if err != nil || perr != nil {
		return target // both were checked when they were read
	}
	u.Path, u.RawPath, u.RawQuery = p.Path, p.RawPath, p.RawQuery
	return u.String()
}
