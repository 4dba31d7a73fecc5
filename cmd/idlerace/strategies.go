package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/attack/agent"
	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/hops"
)

func newStrategiesCmd() *cobra.Command {
	var (
		all    bool
		check  bool
		format string
	)
	cmd := &cobra.Command{
		Use:   "strategies",
		Short: "List every pool strategy, one line each (with --all: skew models, loads and proxies too)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if check {
				return checkKinds(cmd, format)
			}
			if format == "json" {
				out := map[string]any{"strategies": pool.Strategies()}
				if all {
					out["skews"], out["loads"] = chaos.SkewModels(), attack.Loads()
					var proxies []map[string]any
					for _, k := range hops.List() {
						proxies = append(proxies, map[string]any{"name": k.Name, "usage": k.Usage(), "options": k.Options, "summary": k.Summary})
					}
					out["proxies"] = proxies
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, s := range pool.Strategies() {
				help := s.Help
				if v, ok := agent.Installed(s.Name); ok {
					help += " [client kind: " + v + "]"
				}
				fmt.Fprintf(w, "%s\t%s\n", s.Usage, help)
			}
			if all {
				fmt.Fprintln(w, "\nSKEW MODELS\t")
				for _, m := range chaos.SkewModels() {
					fmt.Fprintf(w, "%s\t\n", m.Usage)
				}
				fmt.Fprintln(w, "\nLOADS\t")
				for _, l := range attack.Loads() {
					fmt.Fprintf(w, "%s\t%s\n", l.Usage, l.Help)
				}
				fmt.Fprintln(w, "\nPROXIES (--proxy, a matrix's proxies:)\t")
				for _, k := range hops.List() {
					fmt.Fprintf(w, "%s\t%s\n", k.Usage(), k.Summary)
				}
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also list skew models, load shapes and proxy kinds")
	cmd.Flags().BoolVar(&check, "check", false, "start each client kind's agent once (building it if need be) and say how long that took; exit 3 if one does not start")
	cmd.Flags().StringVar(&format, "format", "table", "output: table or json")
	return cmd
}

// checkKinds starts every client kind's agent once, one after another, and prints what
// each took to build and start, or why it did not.
func checkKinds(cmd *cobra.Command, format string) error {
	var all []agent.Checked
	var broken []string
	w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	if format == "table" {
		fmt.Fprintln(w, "KIND\tBUILD\tSTART\tLIBRARY")
	}
	for _, name := range agent.Kinds() {
		c := agent.Check(name)
		all = append(all, c)
		if c.Err != "" {
			broken = append(broken, name)
		}
		if format == "table" {
			what := c.Library
			if c.Err != "" {
				what = "did not start: " + c.Err
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", name, roundDur(c.Build), roundDur(c.Start), what)
		}
	}
	if format == "json" {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"client_kinds": all}); err != nil {
			return err
		}
	} else if err := w.Flush(); err != nil {
		return err
	}
	if len(broken) > 0 {
		return fmt.Errorf("client kinds that did not start: %s", strings.Join(broken, ", "))
	}
	return nil
}

func roundDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return "<1ms"
	case d < 10*time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
