package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/idlerace/idlerace/dashboards/report"
)

func newReportCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report RUN_DIR",
		Short: "Write report.html, report.md and chart PNGs for a run directory",
		Long: `Read a run directory (summary.json and cells/*.hlog, as idlerace run --out writes it)
and write into it, or into --out:

  report.html   one self-contained page that works offline: the race curve, a reset-rate
                heatmap, HDR latency percentiles, the cost view with its Pareto front, the
                summary table, the run's settings and the cells that disagree with the model
  report.md     the compact table and the disagreements, for a pull request or
                $GITHUB_STEP_SUMMARY
  report-*.png  each chart as a picture

A partial run, or a summary of another schema, is reported under a banner that says so.
A directory with no readable summary.json is bad input (exit code 2).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return badInput("%s takes one run directory, got %d arguments", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			paths, err := report.Write(args[0], out)
			var ie *report.InputError
			if errors.As(err, &ie) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			for _, n := range paths.Notices {
				fmt.Fprintf(cmd.ErrOrStderr(), "idlerace report: warning: %s\n", n)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintln(w, paths.HTML)
			fmt.Fprintln(w, paths.Markdown)
			for _, c := range paths.Charts {
				fmt.Fprintln(w, c)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write the report into (default: RUN_DIR)")
	return cmd
}
