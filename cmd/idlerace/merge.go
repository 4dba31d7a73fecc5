package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/idlerace/idlerace/results"
)

func newMergeCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "merge OUT DIR...",
		Short: "Combine run directories into one (HDR histograms merge exactly)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return badInput("merge takes an output directory and at least one run directory; got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			for _, d := range args[1:] {
				if _, err := readRun(d); err != nil {
					return err
				}
			}
			sum, err := results.MergeRuns(args[0], args[1:])
			if err != nil {
				return err
			}
			if err := writeSummary(cmd.OutOrStdout(), format, sum); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "merged %d runs into %s (%d cells, state %s)\n", len(args)-1, args[0], len(sum.Cells), sum.State)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output: table or json")
	return cmd
}
