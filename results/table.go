package results

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// tableHeader names RenderTable's columns. RESET% and 95% CI are the caller-visible
// stale failure rate and its Wilson interval (n/a where the cell did not measure the
// race: Cell.NotMeasured); REUSED is the requests sent on a reused connection, which a
// race needs; PRED% is the model's prediction of the
// same; WINDOWms is the race window the cell measured (Cell.WindowMS); SRV UNREAD is the server's idle closes that found request bytes unread (the
// race seen from the server); UNMATCHED is client stale failures the server cannot
// explain.
var tableHeader = []string{
	"STRATEGY", "SKEW", "LOAD", "REQS", "REUSED", "STALE", "RESET%", "95% CI", "PRED%",
	"WINDOWms", "RETRIES", "CONN/1k", "P50ms", "P99ms", "SRV UNREAD", "UNMATCHED",
}

// RenderTable writes cells to w as a plain-text table aligned with text/tabwriter, no
// colours, one row per cell in the order given, under a header row. Rates are percent
// with one decimal ("33.4"), the interval as "31.2–35.6", connections per 1,000
// requests with one decimal, the window and latencies in milliseconds with two decimals.
func RenderTable(w io.Writer, cells []Cell) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	row := make([]string, 0, len(tableHeader))
	var err error // the first write error; tabwriter does not keep it for Flush
	writeRow := func(fields []string) {
		if err == nil {
			_, err = io.WriteString(tw, strings.Join(fields, "\t")+"\n")
		}
	}
	// PROXY, UPSTREAM and LATENCY are shown only when they vary (PROXY also when any
	// cell has one), after SKEW.
	varies := func(f func(*Cell) string) bool {
		for i := range cells {
			if f(&cells[i]) != f(&cells[0]) {
				return true
			}
		}
		return false
	}
	showProxy := varies(func(c *Cell) string { return c.Proxy }) || (len(cells) > 0 && cells[0].Proxy != "")
	showUp := varies(func(c *Cell) string { return c.Upstream })
	showLat := varies(func(c *Cell) string { return c.Latency })
	header := append([]string{}, tableHeader[:2]...)
	if showProxy {
		header = append(header, "PROXY")
	}
	if showUp {
		header = append(header, "UPSTREAM")
	}
	if showLat {
		header = append(header, "LATENCY")
	}
	header = append(header, tableHeader[2:]...)
	writeRow(header)
	for i := range cells {
		c := &cells[i]
		row = append(row[:0], tableText(c.Strategy), tableText(c.Skew))
		if showProxy {
			row = append(row, tableText(cmp.Or(c.Proxy, "none")))
		}
		if showUp {
			row = append(row, tableText(c.Upstream))
		}
		if showLat {
			row = append(row, tableText(c.Latency))
		}
		unread, unmatched := fmt.Sprint(c.Server.ClosesWithUnread), fmt.Sprint(c.Server.UnmatchedFailures)
		if c.Upstream == "external" && c.Server.View != "wire" {
			unread, unmatched = "-", "-" // a server idlerace did not start, and not seen on the wire
		}
		if c.Server.UnmatchedFailures < 0 {
			unmatched = "-" // no view of the server's closes (server.view says why)
		}
		row = append(row,
			tableText(c.Load),
			fmt.Sprint(c.Requests),
			fmt.Sprint(c.Reused),
			fmt.Sprint(c.Stale),
			resetText(c),
			ciText(c),
			percent(c.PredictedResetRate),
			fmt.Sprintf("%.2f", c.WindowMS),
			fmt.Sprint(c.Retries),
			fmt.Sprintf("%.1f", c.ConnsPer1k),
			millis(c.LatencyUS.P50),
			millis(c.LatencyUS.P99),
			unread,
			unmatched,
		)
		writeRow(row)
	}
	if err != nil {
		return err
	}
	return tw.Flush()
}

// RenderJSON writes s to w exactly as WriteSummary stores it: indented JSON with a
// trailing newline, an empty schema filled in as Schema.
func RenderJSON(w io.Writer, s *Summary) error {
	data, err := encodeSummary(s)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

// percent formats a fraction as a percentage with one decimal: 0.3344 -> "33.4".
func percent(fraction float64) string { return fmt.Sprintf("%.1f", fraction*100) }

// ciText is a cell's reset-rate interval, n/a with its rate.
func ciText(c *Cell) string {
	if c.NotMeasured != "" {
		return "n/a"
	}
	return percent(c.ResetRateCI95[0]) + "–" + percent(c.ResetRateCI95[1])
}

// resetText is a cell's reset rate, or n/a where it did not measure the race (a 0.0
// there would read "safe").
func resetText(c *Cell) string {
	if c.NotMeasured != "" {
		return "n/a"
	}
	return percent(c.ResetRate)
}

// millis formats microseconds as milliseconds with two decimals: 1234 -> "1.23".
func millis(us int64) string { return fmt.Sprintf("%.2f", float64(us)/1000) }

// tableText keeps a spec string on one table cell: tabs and line breaks would split
// it into columns or rows. An empty string shows as "-".
func tableText(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '\t', '\n', '\r', '\v', '\f':
			return ' '
		}
		return r
	}, s)
}
