package report

import (
	"bytes"
	"fmt"
	"math"
	"strings"

	"github.com/idlerace/idlerace/results"
)

// renderMarkdown writes report.md: GitHub-flavoured Markdown short enough for a pull
// request comment or $GITHUB_STEP_SUMMARY. A heading, the banner as a warning alert,
// one line of environment, the run's findings, a table of reset rate per strategy (rows) and condition
// (columns) with each strategy's cost, the Pareto fronts, the disagreements with the
// model, and the full cell table folded in a <details>.
func (v *view) renderMarkdown(charts []string) []byte {
	var b bytes.Buffer
	s := &v.run.summary
	fmt.Fprintf(&b, "## idlerace report: %d cells, %s\n\n", len(s.Cells), stateText(s.State))
	if len(v.run.notices) > 0 {
		b.WriteString("> [!WARNING]\n")
		for i, n := range v.run.notices {
			if i > 0 {
				b.WriteString(">\n")
			}
			fmt.Fprintf(&b, "> %s\n", mdText(n))
		}
		b.WriteString("\n")
	}
	env := []string{"idlerace " + orDash(s.Tool.Version)}
	if s.Tool.Commit != "" {
		env[0] += " (" + s.Tool.Commit + ")"
	}
	env = append(env, orDash(s.Tool.Go), orDash(s.Tool.OS)+"/"+orDash(s.Tool.Arch), cpus(s.Tool)+" CPUs")
	if w := when(s); w != "" {
		env = append(env, "started "+w)
	}
	if c := v.constant(); c != "" {
		env = append(env, c)
	}
	fmt.Fprintf(&b, "%s\n\n", mdText(strings.Join(env, " · ")))

	if fs := results.Findings(s.Cells); len(fs) > 0 {
		b.WriteString("### Findings\n\n")
		mdRow(&b, []string{"upstream", "what", "measured", "expected"})
		b.WriteString("|:--|:--|:--|:--|\n")
		for _, f := range fs {
			mdRow(&b, []string{f.Upstream, f.What, f.Measured, f.Expected})
		}
		b.WriteString("\n")
	}

	if len(v.strategies) > 0 {
		b.WriteString("### Reset rate: measured (model)\n\n")
		head := []string{"strategy"}
		align := []string{":--"}
		for _, k := range v.combos {
			head = append(head, v.label(k, " · "))
			align = append(align, "--:")
		}
		head = append(head, "conns/1k", "p99 ms", "Pareto front")
		align = append(align, "--:", "--:", ":--")
		mdRow(&b, head)
		b.WriteString("|" + strings.Join(align, "|") + "|\n")
		for _, st := range v.strategies {
			fields := []string{st}
			for _, k := range v.combos {
				t := v.byCombo[k][st]
				if t == nil || t.requests == 0 {
					fields = append(fields, "–")
					continue
				}
				f := fmt.Sprintf("%s (%s)", pct(t.resetRate()), pct(t.predictedRate()))
				if math.Abs(t.resetRate()-t.predictedRate()) > DisagreementThreshold {
					f = "**" + f + "** ⚠"
				}
				fields = append(fields, f)
			}
			t := v.byStrategy[st]
			fields = append(fields, num(t.connsPer1k(), "%.0f"), num(t.p99US()/1000, "%.2f"), v.fronts(st))
			mdRow(&b, fields)
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "Pareto front (no other strategy has both a lower reset rate and a lower cost): new connections: %s; p99: %s.\n\n",
			mdText(listOrNone(v.frontList(v.frontConns))), mdText(listOrNone(v.frontList(v.frontP99))))
	}

	fmt.Fprintf(&b, "### Disagreements with the model (|measured − model| > %g pp)\n\n", 100*DisagreementThreshold)
	if len(v.disagree) == 0 {
		fmt.Fprintf(&b, "None: every cell is within %g percentage points of the model.\n\n", 100*DisagreementThreshold)
	} else {
		mdRow(&b, []string{"strategy", "condition", "requests", "measured (95% CI)", "model", "Δ pp", "unmatched"})
		b.WriteString("|:--|:--|--:|--:|--:|--:|--:|\n")
		for _, i := range v.disagree {
			c := &s.Cells[i]
			mdRow(&b, []string{
				c.Strategy, cellCondition(c), fmt.Sprint(c.Requests),
				fmt.Sprintf("%s (%s)", pct(c.ResetRate), ci(c.ResetRateCI95)), pct(c.PredictedResetRate),
				deltaPP(c), fmt.Sprint(c.Server.UnmatchedFailures),
			})
		}
		b.WriteString("\n")
	}

	b.WriteString("### Safe client settings, from this run's closes\n\n")
	if safe := safeSettings(s.Cells); len(safe) == 0 {
		b.WriteString("None: no server was seen closing enough idle connections (that needs a view of its closes, and a strategy that lets connections idle that long).\n\n")
	} else {
		fmt.Fprintf(&b, "<details><summary>%s: the longest idle timeout each client can keep, below the earliest close seen</summary>\n\n", plural(len(safe), "server"))
		for _, ss := range safe {
			fmt.Fprintf(&b, "**%s**: %s. Safe idle limit: %s.\n\n", mdText(ss.Server), mdText(ss.Closes), mdText(ss.Arithmetic))
			mdRow(&b, []string{"client", "setting", "model reset", "+conns/1k", "spec"})
			b.WriteString("|:--|:--|--:|--:|:--|\n")
			for _, r := range ss.Rows {
				mdRow(&b, []string{r.Client, r.Setting, r.Model, r.Conns, r.Spec})
			}
			b.WriteString("\n")
		}
		b.WriteString("</details>\n\n")
	}

	if len(s.Cells) > 0 {
		cols, rows := v.cellTable()
		fmt.Fprintf(&b, "<details><summary>All %d cells</summary>\n\n", len(s.Cells))
		head := make([]string, len(cols))
		align := make([]string, len(cols))
		for i, c := range cols {
			head[i] = c.Name
			align[i] = "--:"
			if c.Left {
				align[i] = ":--"
			}
		}
		mdRow(&b, head)
		b.WriteString("|" + strings.Join(align, "|") + "|\n")
		for _, r := range rows {
			fields := make([]string, len(r.Fields))
			for i, f := range r.Fields {
				fields[i] = f.Text
			}
			mdRow(&b, fields)
		}
		b.WriteString("\n</details>\n\n")
	}
	if len(charts) > 0 {
		fmt.Fprintf(&b, "Charts: report.html (self-contained), %s.\n", strings.Join(charts, ", "))
	}
	return b.Bytes()
}

// mdRow writes one table row, each field made safe for a table cell.
func mdRow(b *bytes.Buffer, fields []string) {
	for i := range fields {
		fields[i] = strings.ReplaceAll(mdText(fields[i]), "|", `\|`)
	}
	b.WriteString("| " + strings.Join(fields, " | ") + " |\n")
}

// mdText keeps text from a summary from being read as HTML or breaking a line.
func mdText(s string) string {
	return strings.NewReplacer("<", "&lt;", ">", "&gt;", "\n", " ", "\r", " ").Replace(s)
}

func num(x float64, format string) string {
	if math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf(format, x)
}

func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}
