package main

import (
	"github.com/spf13/cobra"

	"github.com/idlerace/idlerace/results"
)

func newExportCmd() *cobra.Command {
	var benchfmt bool
	cmd := &cobra.Command{
		Use:   "export --benchfmt RUN",
		Short: "Write a run in the Go benchmark format, for benchstat old.txt new.txt",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return badInput("export takes one run directory; got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if !benchfmt {
				return badInput("export needs a format: --benchfmt (the Go benchmark format)")
			}
			s, err := readRun(args[0])
			if err != nil {
				return err
			}
			return results.WriteBenchfmt(cmd.OutOrStdout(), s)
		},
	}
	cmd.Flags().BoolVar(&benchfmt, "benchfmt", false, "the Go benchmark format (one line per cell; requests are the iterations)")
	return cmd
}
