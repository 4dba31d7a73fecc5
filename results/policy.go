package results

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Policy is a gate file: rules that a run must pass, alone (absolute rules) or against
// a baseline run (regression rules).
type Policy struct {
	Path string
	// Alpha is the family-wise significance level of each regression rule: its cells are
	// tested together with Holm's correction, so that two runs of the same build do not
	// fail the gate by chance. Default 0.01.
	Alpha float64
	Rules []Rule
}

// Rule is one check. Absolute rules set Max and/or Min; regression rules set
// MaxIncrease and need a baseline.
type Rule struct {
	Line   int
	Name   string
	Metric string
	// Where limits the rule to cells whose fields (strategy, upstream, skew, latency,
	// load, proxy: "none" for a cell without one) equal these values.
	Where map[string]string
	Max   *float64
	Min   *float64
	// MaxIncrease is how far the metric may rise over the baseline before the rise
	// counts, relative (IncreaseRelative, "10%") or absolute ("0.01", "0").
	MaxIncrease      *float64
	IncreaseRelative bool
}

// Metrics a rule can name, with how a cell gives each.
var Metrics = map[string]func(c Cell) float64{
	"reset_rate":         func(c Cell) float64 { return c.ResetRate },
	"conns_per_1k":       func(c Cell) float64 { return c.ConnsPer1k },
	"retries_per_1k":     func(c Cell) float64 { return per1k(c.Retries, c.Requests) },
	"p50":                func(c Cell) float64 { return float64(c.LatencyUS.P50) },
	"p90":                func(c Cell) float64 { return float64(c.LatencyUS.P90) },
	"p99":                func(c Cell) float64 { return float64(c.LatencyUS.P99) },
	"p999":               func(c Cell) float64 { return float64(c.LatencyUS.P999) },
	"max":                func(c Cell) float64 { return float64(c.LatencyUS.Max) },
	"unmatched_failures": func(c Cell) float64 { return float64(c.Server.UnmatchedFailures) },
	"duplicates":         func(c Cell) float64 { return float64(c.Server.Duplicates) },
}

func per1k(k, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(k) * 1000 / float64(n)
}

func metricNames() string {
	return "reset_rate, conns_per_1k, retries_per_1k, p50, p90, p99, p999, max (latency in µs), unmatched_failures, duplicates"
}

var whereKeys = []string{"strategy", "upstream", "skew", "latency", "load", "proxy"}

// ReadPolicy reads and checks a gate policy file.
func ReadPolicy(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if pe, ok := err.(*os.PathError); ok {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return ParsePolicy(path, data)
}

// ParsePolicy parses a policy file's bytes; errors are *FileError.
func ParsePolicy(path string, data []byte) (*Policy, error) {
	fe := func(n *yaml.Node, field, msg string) error {
		line := 1
		if n != nil {
			line = n.Line
		}
		return &FileError{Path: path, Line: line, Field: field, Msg: msg}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 1
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if n, tail, ok := strings.Cut(rest, ":"); ok {
				if l, err := strconv.Atoi(n); err == nil {
					line, msg = l, strings.TrimSpace(tail)
				}
			}
		}
		return nil, &FileError{Path: path, Line: line, Field: "yaml", Msg: msg + " (want YAML)"}
	}
	if len(doc.Content) == 0 {
		return nil, fe(nil, "file", "empty (want alpha and rules)")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fe(root, "file", "not a mapping (want alpha: 0.01 and rules: [...])")
	}
	p := &Policy{Path: path, Alpha: 0.01}
	var rulesNode *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "alpha":
			a, err := strconv.ParseFloat(v.Value, 64)
			if v.Kind != yaml.ScalarNode || err != nil || a <= 0 || a >= 0.5 {
				return nil, fe(v, "alpha", fmt.Sprintf("%q is not a significance level (want a number between 0 and 0.5, e.g. 0.01)", v.Value))
			}
			p.Alpha = a
		case "rules":
			rulesNode = v
		default:
			return nil, fe(k, k.Value, "unknown field (known: alpha, rules)")
		}
	}
	if rulesNode == nil {
		return nil, fe(root, "rules", "missing (want a list of rules)")
	}
	if rulesNode.Kind != yaml.SequenceNode || len(rulesNode.Content) == 0 {
		return nil, fe(rulesNode, "rules", "empty or not a list (want a non-empty list of rules)")
	}
	for i, rn := range rulesNode.Content {
		name := fmt.Sprintf("rules[%d]", i)
		if rn.Kind != yaml.MappingNode {
			return nil, fe(rn, name, "not a mapping (want metric and max, min or max_increase)")
		}
		r := Rule{Line: rn.Line}
		for j := 0; j+1 < len(rn.Content); j += 2 {
			k, v := rn.Content[j], rn.Content[j+1]
			field := name + "." + k.Value
			scalar := func() (string, error) {
				if v.Kind != yaml.ScalarNode {
					return "", fe(v, field, "not a single value (want a scalar such as 0.01)")
				}
				return v.Value, nil
			}
			switch k.Value {
			case "name":
				s, err := scalar()
				if err != nil {
					return nil, err
				}
				r.Name = s
			case "metric":
				s, err := scalar()
				if err != nil {
					return nil, err
				}
				if _, ok := Metrics[s]; !ok {
					return nil, fe(v, field, fmt.Sprintf("unknown metric %q (known: %s)", s, metricNames()))
				}
				r.Metric = s
			case "max", "min":
				s, err := scalar()
				if err != nil {
					return nil, err
				}
				x, err := strconv.ParseFloat(s, 64)
				if err != nil || x < 0 {
					return nil, fe(v, field, fmt.Sprintf("%q is not a number >= 0 (want a number such as 0.001)", s))
				}
				if k.Value == "max" {
					r.Max = &x
				} else {
					r.Min = &x
				}
			case "max_increase":
				s, err := scalar()
				if err != nil {
					return nil, err
				}
				num, rel := strings.CutSuffix(strings.TrimSpace(s), "%")
				x, err := strconv.ParseFloat(num, 64)
				if err != nil || x < 0 {
					return nil, fe(v, field, fmt.Sprintf("%q is not an increase (want a percentage such as 10%% or an absolute number such as 0.01 or 0)", s))
				}
				if rel {
					x /= 100
				}
				r.MaxIncrease, r.IncreaseRelative = &x, rel
			case "where":
				if v.Kind != yaml.MappingNode || len(v.Content) == 0 {
					return nil, fe(v, field, "not a mapping (want e.g. {strategy: read-probe})")
				}
				r.Where = map[string]string{}
				for w := 0; w+1 < len(v.Content); w += 2 {
					wk, wv := v.Content[w], v.Content[w+1]
					ok := false
					for _, known := range whereKeys {
						ok = ok || known == wk.Value
					}
					if !ok {
						return nil, fe(wk, field+"."+wk.Value, "unknown key (known: "+strings.Join(whereKeys, ", ")+")")
					}
					if wv.Kind != yaml.ScalarNode || wv.Value == "" {
						return nil, fe(wv, field+"."+wk.Value, "empty (want a value such as read-probe)")
					}
					r.Where[wk.Value] = wv.Value
				}
			default:
				return nil, fe(k, field, "unknown field (known: name, metric, where, max, min, max_increase)")
			}
		}
		if r.Metric == "" {
			return nil, fe(rn, name+".metric", "missing (known: "+metricNames()+")")
		}
		if r.Max == nil && r.Min == nil && r.MaxIncrease == nil {
			return nil, fe(rn, name, "no limit (want max, min or max_increase)")
		}
		if r.Name == "" {
			r.Name = r.describe()
		}
		p.Rules = append(p.Rules, r)
	}
	return p, nil
}

// describe writes a rule the way a person would say it.
func (r Rule) describe() string {
	var parts []string
	if r.Max != nil {
		parts = append(parts, fmt.Sprintf("%s <= %g", r.Metric, *r.Max))
	}
	if r.Min != nil {
		parts = append(parts, fmt.Sprintf("%s >= %g", r.Metric, *r.Min))
	}
	if r.MaxIncrease != nil {
		if r.IncreaseRelative {
			parts = append(parts, fmt.Sprintf("%s may not rise more than %g%%", r.Metric, *r.MaxIncrease*100))
		} else if *r.MaxIncrease == 0 {
			parts = append(parts, r.Metric+" may not rise")
		} else {
			parts = append(parts, fmt.Sprintf("%s may not rise more than %g", r.Metric, *r.MaxIncrease))
		}
	}
	s := strings.Join(parts, ", ")
	if len(r.Where) > 0 {
		var w []string
		for _, k := range whereKeys {
			if v, ok := r.Where[k]; ok {
				w = append(w, k+" = "+v)
			}
		}
		s += " where " + strings.Join(w, " and ")
	}
	return s
}

// Canonicalize rewrites each rule's where-values with canon (the matrix's own spec
// parsers), so that "retry-only" matches a cell's "retry-only:max=1,methods=all".
func (p *Policy) Canonicalize(canon func(key, value string) string) {
	for i := range p.Rules {
		for k, v := range p.Rules[i].Where {
			p.Rules[i].Where[k] = canon(k, v)
		}
	}
}

// HasRegressionRules reports whether any rule needs a baseline.
func (p *Policy) HasRegressionRules() bool {
	for _, r := range p.Rules {
		if r.MaxIncrease != nil {
			return true
		}
	}
	return false
}
