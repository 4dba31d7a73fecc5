package results

import (
	"fmt"
	"io"
	"strings"
)

// WriteGateMarkdown writes the gate result for $GITHUB_STEP_SUMMARY: the verdict, the
// failed checks with their values and p-values, then what could not be checked.
func WriteGateMarkdown(w io.Writer, g *GateResult) error {
	var b strings.Builder
	verdict := "passed"
	if !g.Passed() {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "## idlerace gate %s\n\n", verdict)
	fmt.Fprintf(&b, "%d checks, %d failed (policy `%s`, alpha %g).\n\n", len(g.Checks), g.Failed, g.Policy, g.Alpha)
	if g.Failed > 0 {
		b.WriteString("| rule | cell | metric | base | new | limit | p |\n|---|---|---|---|---|---|---|\n")
		for _, c := range g.Checks {
			if c.Pass {
				continue
			}
			base, p := "", ""
			if c.Kind == "regression" {
				base, p = num(c.Base), fmt.Sprintf("%.3g", c.P)
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s | %s | %s |\n", mdEscape(c.Rule), mdEscape(c.Cell), c.Metric, base, num(c.New), num(c.Limit), p)
		}
		b.WriteString("\n")
	}
	if len(g.Notes) > 0 {
		b.WriteString("Not checked:\n\n")
		for _, n := range g.Notes {
			fmt.Fprintf(&b, "- %s\n", mdEscape(n))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteCompareMarkdown writes a comparison as a GitHub-flavoured Markdown table.
func WriteCompareMarkdown(w io.Writer, c *Comparison) error {
	var b strings.Builder
	fmt.Fprintf(&b, "| strategy | skew | upstream | reset base | reset new | p | p99 base ms | p99 new ms | p | conns/1k base | conns/1k new | verdict |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range c.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.3g | %.2f | %.2f | %.3g | %.1f | %.1f | %s |\n",
			mdEscape(r.Strategy), mdEscape(r.Skew), mdEscape(r.Upstream),
			ratePct(r.Base), ratePct(r.New), r.ResetP,
			r.Base.MedianP99()/1000, r.New.MedianP99()/1000, r.P99P,
			r.Base.ConnsPer1k, r.New.ConnsPer1k, verdictMark(r.Verdict))
	}
	for _, k := range c.OnlyBase {
		fmt.Fprintf(&b, "\nOnly in base: `%s`\n", mdEscape(k))
	}
	for _, k := range c.OnlyNew {
		fmt.Fprintf(&b, "\nOnly in new: `%s`\n", mdEscape(k))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ratePct(s Side) string {
	return fmt.Sprintf("%.1f%% (%.1f–%.1f)", 100*s.ResetRate, 100*s.CI95[0], 100*s.CI95[1])
}

func verdictMark(v string) string {
	switch v {
	case Worse:
		return "**worse**"
	case Better:
		return "better"
	}
	return "same"
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
