package grafana_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/idlerace/idlerace/dashboards/grafana"
	"github.com/idlerace/idlerace/matrix/metrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The parts of a Grafana dashboard the tests read.
type (
	dashboard struct {
		UID           string  `json:"uid"`
		Title         string  `json:"title"`
		SchemaVersion int     `json:"schemaVersion"`
		ID            any     `json:"id"`
		Panels        []panel `json:"panels"`
		Templating    struct {
			List []variable `json:"list"`
		} `json:"templating"`
	}
	panel struct {
		ID         int         `json:"id"`
		Type       string      `json:"type"`
		Title      string      `json:"title"`
		Datasource *datasource `json:"datasource"`
		GridPos    struct{ X, Y, W, H int }
		Targets    []struct {
			RefID      string      `json:"refId"`
			Expr       string      `json:"expr"`
			Datasource *datasource `json:"datasource"`
		} `json:"targets"`
		Panels []panel `json:"panels"` // a row's panels
	}
	datasource struct{ Type, UID string }
	variable   struct {
		Name       string          `json:"name"`
		Type       string          `json:"type"`
		Query      json.RawMessage `json:"query"`
		Datasource *datasource     `json:"datasource"`
	}
)

// query is one PromQL expression of the dashboard and where it is.
type query struct {
	Where string // "panel 5 \"Failures by class\" target A" or "variable strategy"
	Expr  string
	// Label is, for a variable's label_values(metric, label), the label it lists.
	Label string
}

func load(t *testing.T) *dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(grafana.Dashboard, &d); err != nil {
		t.Fatalf("idlerace.json: %v", err)
	}
	return &d
}

var labelValues = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)

// queries lists every PromQL expression of the dashboard: each panel target's expr
// and each query variable's label_values, as the PromQL that lists the same values.
func queries(t *testing.T, d *dashboard) []query {
	t.Helper()
	var out []query
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, query{Where: fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID), Expr: tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var text string
		var obj struct{ Query string }
		if json.Unmarshal(v.Query, &text) != nil {
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				t.Fatalf("variable %s: query: %v", v.Name, err)
			}
			text = obj.Query
		}
		m := labelValues.FindStringSubmatch(strings.TrimSpace(text))
		if m == nil {
			t.Fatalf("variable %s: query %q: want label_values(metric, label)", v.Name, text)
		}
		out = append(out, query{Where: "variable " + v.Name, Expr: fmt.Sprintf("count by (%s) (%s)", m[2], m[1]), Label: m[2]})
	}
	return out
}

var templateVar = regexp.MustCompile(`\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)`)

// substitute replaces Grafana's template variables in expr by their values in vars;
// a variable vars does not have is an error naming it.
func substitute(expr string, vars map[string]string) (string, error) {
	var missing []string
	out := templateVar.ReplaceAllStringFunc(expr, func(s string) string {
		m := templateVar.FindStringSubmatch(s)
		name := m[1] + m[2] + m[3]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return s
		}
		return v
	})
	if missing != nil {
		return "", fmt.Errorf("undefined variables %v in %s", missing, expr)
	}
	return out, nil
}

// variables maps every variable of the dashboard to a value for a query: ".*" for its
// own (all values), rangeInterval for $__rate_interval and $__interval.
func variables(d *dashboard, rangeInterval string) map[string]string {
	vars := map[string]string{"__rate_interval": rangeInterval, "__interval": rangeInterval, "__range": rangeInterval}
	for _, v := range d.Templating.List {
		if v.Type == "query" || v.Type == "custom" {
			vars[v.Name] = ".*"
		}
	}
	return vars
}

var metricName = regexp.MustCompile(`\bidlerace_[a-zA-Z0-9_:]*`)

func TestDashboardIsProvisionable(t *testing.T) {
	d := load(t)
	if d.UID != "idlerace" || d.Title == "" {
		t.Errorf("uid %q title %q: want uid idlerace and a title", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want >= 36 (Grafana 9+)", d.SchemaVersion)
	}
	if d.ID != nil {
		t.Errorf("id %v: a provisioned dashboard leaves id null", d.ID)
	}
	var dsVar bool
	for _, v := range d.Templating.List {
		if v.Name == "datasource" && v.Type == "datasource" && string(v.Query) == `"prometheus"` {
			dsVar = true
		}
		if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
			t.Errorf("variable %s: datasource %v, want uid ${datasource}", v.Name, v.Datasource)
		}
	}
	if !dsVar {
		t.Error(`no "datasource" variable of type datasource, query prometheus`)
	}
	ids := map[int]bool{}
	type rect struct{ x, y, w, h int }
	var placed []rect
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %v, want prometheus ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no queries", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: target %q: want a unique refId and an expr", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q target %s: datasource %v, want uid ${datasource}", p.Title, tg.RefID, tg.Datasource)
			}
		}
		g := p.GridPos
		r := rect{g.X, g.Y, g.W, g.H}
		if r.w <= 0 || r.h <= 0 || r.x < 0 || r.x+r.w > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for _, o := range placed {
			if r.x < o.x+o.w && o.x < r.x+r.w && r.y < o.y+o.h && o.y < r.y+r.h {
				t.Errorf("panel %q: gridPos %+v overlaps %+v", p.Title, g, o)
			}
		}
		placed = append(placed, r)
	}
	for _, q := range queries(t, d) {
		if _, err := substitute(q.Expr, variables(d, "1m")); err != nil {
			t.Errorf("%s: %v", q.Where, err)
		}
	}
}

// Every metric a query names is one metrics.New registers, and every metric it
// registers is on the dashboard: a metric renamed in code fails here until the dashboard
// follows.
func TestDashboardQueriesExactlyTheRegisteredMetrics(t *testing.T) {
	d := load(t)
	registered := map[string]bool{}
	for _, n := range metrics.New().Names() {
		registered[n] = true
	}
	if len(registered) == 0 {
		t.Fatal("metrics.New registers nothing")
	}
	used := map[string]bool{}
	qs := queries(t, d)
	for _, q := range qs {
		names := metricName.FindAllString(q.Expr, -1)
		if len(names) == 0 {
			t.Errorf("%s: names no idlerace_ metric: %s", q.Where, q.Expr)
		}
		for _, n := range names {
			family := n
			if !registered[family] {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if registered[strings.TrimSuffix(n, suffix)] {
						family = strings.TrimSuffix(n, suffix)
					}
				}
			}
			if !registered[family] {
				t.Errorf("%s: %s is not registered by metrics.New (registered: %v)", q.Where, n, metrics.New().Names())
				continue
			}
			used[family] = true
		}
	}
	var unused []string
	for n := range registered {
		if !used[n] {
			unused = append(unused, n)
		}
	}
	sort.Strings(unused)
	if unused != nil {
		t.Errorf("registered but on no panel: %v", unused)
	}
	t.Logf("%d queries over %d metric families", len(qs), len(used))
}

func TestSubstituteNamesUndefinedVariables(t *testing.T) {
	vars := map[string]string{"strategy": ".*", "__rate_interval": "5s"}
	got, err := substitute(`rate(x{strategy=~"$strategy",a=~"${strategy:regex}",b=~"[[strategy]]"}[$__rate_interval])`, vars)
	if err != nil || got != `rate(x{strategy=~".*",a=~".*",b=~".*"}[5s])` {
		t.Errorf("substitute: %q, %v", got, err)
	}
	if _, err := substitute(`x{s=~"$stratgy"}`, vars); err == nil || !strings.Contains(err.Error(), "stratgy") {
		t.Errorf("an undefined variable: %v, want an error naming it", err)
	}
}
