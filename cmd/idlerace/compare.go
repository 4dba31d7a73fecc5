package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/idlerace/idlerace/dashboards/report"

	"github.com/idlerace/idlerace/results"
)

func newCompareCmd() *cobra.Command {
	var (
		format, reportDir string
		alpha             float64
		fail              bool
	)
	cmd := &cobra.Command{
		Use:   "compare BASE NEW",
		Short: "Compare two runs cell by cell: reset rates with intervals and a test of the difference",
		Long: `For every cell the two runs share (repeats pooled), print each run's reset rate with
its 95% interval and the p-value of the difference (chi-square), p50/p99 with a
Mann-Whitney test over the repeats (as benchstat), new connections per 1,000 requests,
and a verdict: better, worse or same at --alpha. --fail-on-worse exits 1 when any cell is
significantly worse.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return badInput("compare takes two run directories, BASE and NEW; got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" && format != "markdown" {
				return badInput("--format %q: want table, markdown or json", format)
			}
			if alpha <= 0 || alpha >= 0.5 {
				return badInput("--alpha %g: want a significance level between 0 and 0.5", alpha)
			}
			base, err := readRun(args[0])
			if err != nil {
				return err
			}
			next, err := readRun(args[1])
			if err != nil {
				return err
			}
			if reportDir != "" {
				paths, err := report.WriteCompare(args[0], args[1], reportDir)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "report: %s (both runs side by side)\n", paths.HTML)
			}
			c := results.Compare(base, next, alpha)
			w := cmd.OutOrStdout()
			switch format {
			case "json":
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				err = enc.Encode(c)
			case "markdown":
				err = results.WriteCompareMarkdown(w, c)
			default:
				err = results.RenderCompareTable(w, c)
			}
			if err != nil {
				return err
			}
			if fail && c.Worse() {
				return failed("a cell is significantly worse (see the verdict column)")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output: table, markdown or json")
	cmd.Flags().Float64Var(&alpha, "alpha", 0.05, "significance level of each test")
	cmd.Flags().BoolVar(&fail, "fail-on-worse", false, "exit 1 when any cell is significantly worse")
	cmd.Flags().StringVar(&reportDir, "report", "", "also write report.html, report.md and chart PNGs with both runs side by side into this directory")
	return cmd
}
