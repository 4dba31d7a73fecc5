package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/idlerace/idlerace/matrix"
	"github.com/idlerace/idlerace/results"
)

func newMergeCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "merge OUT DIR...",
		Short: "Combine run directories into one (HDR histograms merge exactly): repeats of a matrix, or its shards (run --shard)",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return badInput("merge takes an output directory and at least one run directory; got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if err := checkFormat(format); err != nil {
				return err
			}
			dirs := args[1:]
			var manifests []*results.Manifest
			for _, d := range dirs {
				if _, err := readRun(d); err != nil {
					return err
				}
				m, err := results.ReadManifest(filepath.Join(d, "manifest.json"))
				if err != nil {
					m = &results.Manifest{} // a run written without one (an older idlerace): not a shard
				}
				manifests = append(manifests, m)
			}
			opt, missing, err := shardMerge(dirs, manifests)
			if err != nil {
				return err
			}
			sum, err := results.MergeRuns(args[0], dirs, opt)
			if err != nil {
				return err
			}
			if len(missing) > 0 {
				// Written, so that what is there can be read, but not a success.
				defer func() {
					if err == nil {
						err = failed("missing shards %s of %d: the merged run is partial (%d of %d cells)",
							joinInts(missing), manifests[0].Shard.Count, len(sum.Cells), len(opt.Order))
					}
				}()
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

// shardMerge checks that dirs are all shards of one matrix or none are, and for shards
// gives the matrix's cell order (from the first shard's matrix.yaml) and the shards
// missing.
func shardMerge(dirs []string, manifests []*results.Manifest) (results.MergeOptions, []int, error) {
	sharded, missing, err := results.CheckShards(dirs, manifests)
	if err != nil || !sharded {
		return results.MergeOptions{}, nil, badInputErr(err)
	}
	raw, err := os.ReadFile(filepath.Join(dirs[0], "matrix.yaml"))
	if err != nil {
		return results.MergeOptions{}, nil, badInput("%s: a shard without its matrix.yaml: %v", dirs[0], err)
	}
	f, err := matrix.ParseFile(filepath.Join(dirs[0], "matrix.yaml"), raw)
	if err != nil {
		return results.MergeOptions{}, nil, err
	}
	specs, err := f.Cells()
	if err != nil {
		return results.MergeOptions{}, nil, err
	}
	opt := results.MergeOptions{MatrixYAML: raw}
	for _, s := range specs {
		p, err := matrix.Prepare(s)
		if err != nil {
			return results.MergeOptions{}, nil, err
		}
		opt.Order = append(opt.Order, p.ID())
	}
	return opt, missing, nil
}

func badInputErr(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}
