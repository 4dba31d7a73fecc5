package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/attack/agent"
	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/chaos"
)

func newStrategiesCmd() *cobra.Command {
	var (
		all    bool
		format string
	)
	cmd := &cobra.Command{
		Use:   "strategies",
		Short: "List every pool strategy, one line each (with --all: skew models and loads too)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if format == "json" {
				out := map[string]any{"strategies": pool.Strategies()}
				if all {
					out["skews"], out["loads"] = chaos.SkewModels(), attack.Loads()
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
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also list skew models and load shapes")
	cmd.Flags().StringVar(&format, "format", "table", "output: table or json")
	return cmd
}
