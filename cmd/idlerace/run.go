package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/idlerace/idlerace/matrix"
	"github.com/idlerace/idlerace/results"
)

func newRunCmd() *cobra.Command {
	var (
		format, out, resultsPath, resultsFormat, load, method string
		strategies, skews                                     []string
		idleTimeout                                           time.Duration
		seed                                                  uint64
		quiet                                                 bool
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run a benchmark matrix (with no flags: the embedded default)",
		Long: `Run every strategy against every skew on the builtin upstream and print one row per
cell: measured reset rate with its 95% interval beside the model's prediction, retries,
new connections per 1,000 requests, latency, and the server's view of the same cell.

With no flags this is the embedded default: T = 100ms, skews none, offset:-5ms and
uniform:±10ms, every strategy, the sweep load. It takes about 35 s on 2 cores.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			specs := matrix.Default()
			if cmd.Flags().Changed("strategy") || cmd.Flags().Changed("skew") || cmd.Flags().Changed("load") ||
				cmd.Flags().Changed("idle-timeout") || cmd.Flags().Changed("method") || cmd.Flags().Changed("seed") {
				specs = nil
				for _, sk := range skews {
					for _, st := range strategies {
						specs = append(specs, matrix.CellSpec{
							Strategy: st, Upstream: "builtin", Skew: sk, Latency: "0", Load: load,
							IdleTimeout: idleTimeout, Method: strings.ToUpper(method), Seed: seed,
						})
					}
				}
			}
			for _, s := range specs {
				if _, err := matrix.Prepare(s); err != nil {
					return err
				}
			}
			if out == "" {
				out = filepath.Join("idlerace-runs", time.Now().UTC().Format("20060102T150405Z"))
			}
			if out == "-" {
				out = ""
			}
			rf, err := openResults(resultsPath, resultsFormat)
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			sum, runErr := matrix.Run(cmd.Context(), specs, matrix.RunOptions{
				OutDir:  out,
				Results: rf.encoder(),
				Build:   matrix.Build{Version: Version, Commit: Commit},
				OnCell: func(i, n int, c results.Cell) {
					if !quiet {
						fmt.Fprintf(stderr, "[%d/%d] %-30s %-14s reset %5.1f%% (model %5.1f%%) in %.1fs\n",
							i+1, n, c.Strategy, c.Skew, 100*c.ResetRate, 100*c.PredictedResetRate, c.DurationMS/1000)
					}
				},
			})
			if err := rf.commit(); err != nil && runErr == nil {
				runErr = err
			}
			if sum != nil && len(sum.Cells) > 0 {
				if err := writeSummary(cmd.OutOrStdout(), format, sum); err != nil {
					return err
				}
				if out != "" {
					fmt.Fprintf(stderr, "run directory: %s (summary.json, cells/*.hlog; state %s)\n", out, sum.State)
				}
			}
			return runErr
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "table", "output: table or json (the summary.json schema)")
	f.StringVar(&out, "out", "", "run directory (default idlerace-runs/<UTC timestamp>; - for none)")
	f.StringVar(&resultsPath, "results", "", "also write every request as vegeta results to this file (read it with vegeta report / plot)")
	f.StringVar(&resultsFormat, "results-format", "", "encoding of --results: gob, csv or json (default: by extension, else gob)")
	f.StringSliceVar(&strategies, "strategy", matrix.DefaultStrategies, "strategy specs, one cell row each (see idlerace strategies)")
	f.StringSliceVar(&skews, "skew", matrix.DefaultSkews, "skew specs: none, offset:D, uniform:±D, normal:sd=D, drift:from=D,to=D")
	f.StringVar(&load, "load", matrix.DefaultLoad, "load spec: sweep[:lanes=N,width=D,duration=D], lull[:...], constant[:rate=R/s,duration=D]")
	f.DurationVar(&idleTimeout, "idle-timeout", matrix.DefaultIdleTimeout, "T: the builtin upstream's idle timeout, as the client believes it")
	f.StringVar(&method, "method", "POST", "request method (POST keeps net/http from replaying on its own)")
	f.Uint64Var(&seed, "seed", 1, "seed for the skew draws and the lull shape")
	f.BoolVarP(&quiet, "quiet", "q", false, "no per-cell progress lines on stderr")
	return cmd
}
