package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/idlerace/idlerace/dashboards/report"
	"github.com/idlerace/idlerace/hops"
	"github.com/idlerace/idlerace/matrix"
	"github.com/idlerace/idlerace/matrix/metrics"
	"github.com/idlerace/idlerace/results"
)

func newRunCmd() *cobra.Command {
	var (
		file, format, out, resume, resultsPath, resultsFormat, load, method, metricsAddr, wireMode, shardSpec string
		strategies, upstreams, skews, latencies, proxies                                                      []string
		idleTimeout, timeout                                                                                  time.Duration
		seed                                                                                                  uint64
		parallel, shards                                                                                      int
		quiet, noReport, pcap                                                                                 bool
	)
	cmd := &cobra.Command{
		Use:   "run [-f matrix.yaml]",
		Short: "Run a benchmark matrix (with no flags: the embedded default)",
		Long: `Run every strategy against every skew on the builtin upstream and print one row per
cell: measured reset rate with its 95% interval beside the model's prediction, retries,
new connections per 1,000 requests, latency, and the server's view of the same cell.

With no flags this is the embedded default: T = 100ms, skews none, offset:-5ms and
uniform:±10ms, every strategy, the sweep load (about 35 s on 2 cores). -f runs a matrix
file (see examples/ and schemas/matrix.schema.json). Each finished cell is written to the
run directory at once; SIGINT or SIGTERM abandons the cells in flight, marks the run
partial and exits 130; --resume DIR runs only the cells it lacks.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if err := checkTimeout(timeout); err != nil {
				return err
			}
			if parallel < 0 || parallel > 256 {
				return badInput("--parallel %d: want 1 to 256 (0: the matrix file's or the default, %d)", parallel, matrix.DefaultParallel)
			}
			var (
				specs     []matrix.CellSpec
				yamlBytes []byte
				done      []results.Cell
				par       = matrix.DefaultParallel
				resumed   *results.Shard
			)
			if resume != "" {
				if file != "" {
					return badInput("--resume %s: the matrix comes from the run directory; drop -f", resume)
				}
				file = filepath.Join(resume, "matrix.yaml")
				sum, err := results.ReadSummary(filepath.Join(resume, "summary.json"))
				if err != nil {
					return badInput("--resume %s: %v", resume, err)
				}
				done = sum.Cells
				out = resume
				if man, err := results.ReadManifest(filepath.Join(resume, "manifest.json")); err == nil {
					resumed = man.Shard
				}
			}
			switch {
			case file != "":
				f, err := matrix.ReadFile(file)
				if err != nil {
					return err
				}
				if specs, err = f.Cells(); err != nil {
					return err
				}
				yamlBytes = f.Stored()
				if f.Parallel > 0 {
					par = f.Parallel
				}
			case changed(cmd, "strategy", "upstream", "skew", "latency", "load", "idle-timeout", "method", "seed", "proxy"):
				// The flags' defaults are the default matrix's axes: --upstream alone runs
				// the default matrix against another server.
				for _, px := range proxies {
					for _, up := range upstreams {
						for _, lat := range latencies {
							for _, sk := range skews {
								for _, st := range strategies {
									specs = append(specs, matrix.CellSpec{
										Strategy: st, Upstream: up, Skew: sk, Latency: lat, Load: load, Proxy: px,
										IdleTimeout: idleTimeout, Method: strings.ToUpper(method), Seed: seed,
									})
								}
							}
						}
					}
				}
				yamlBytes = matrix.FlagsYAML(strategies, upstreams, skews, latencies, proxies, load, idleTimeout, strings.ToUpper(method), seed)
			default:
				specs = matrix.Default()
				yamlBytes = matrix.DefaultYAML
			}
			if parallel > 0 {
				par = parallel
			}
			shard, err := pickShard(shardSpec, shards, resumed)
			if err != nil {
				return err
			}
			var shardRecord *results.Shard
			if shard != nil && resume != "" && resumed == nil {
				return badInput("--resume %s: the run directory is a whole matrix, not a shard: drop the shard", resume)
			}
			if shard != nil {
				shardRecord = shard.Record(yamlBytes)
				if resumed != nil && resumed.MatrixSHA256 != shardRecord.MatrixSHA256 {
					return badInput("--resume %s: its matrix.yaml is not the matrix its shard was cut from", resume)
				}
				specs = shard.Select(specs)
				if len(specs) == 0 {
					return badInput("shard %d/%d of a matrix of fewer cells than shards has none: use fewer shards", shard.Index, shard.Count)
				}
			}
			for i := range specs {
				specs[i].RequestTimeout = timeout
				specs[i].Wire = wireMode
			}
			for _, s := range specs {
				if _, err := matrix.Prepare(s); err != nil {
					return err
				}
			}
			if out == "" {
				out = filepath.Join("idlerace-runs", time.Now().UTC().Format("20060102T150405Z"))
			}
			if pcap && wireMode == matrix.WireOff {
				return usageError{errors.New("--pcap writes the capture that --wire off turns off: drop one")}
			}
			if out == "-" {
				if pcap {
					return usageError{errors.New("--pcap writes cells/<id>.pcap into the run directory: it needs one (drop --out -)")}
				}
				out = ""
			}
			rf, err := openResults(resultsPath, resultsFormat)
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			prog := newProgress(stderr, quiet)
			opts := matrix.RunOptions{
				OutDir:      out,
				MatrixYAML:  yamlBytes,
				Results:     rf.encoder(),
				Parallel:    par,
				Done:        done,
				OnStart:     prog.start,
				OnCellStart: prog.cellStart,
				OnCell:      prog.cellDone,
				Build:       matrix.Build{Version: Version, Commit: Commit},
				Args:        os.Args[1:],
				PCAP:        pcap,
				Shard:       shardRecord,
			}
			var live *metrics.Metrics
			if metricsAddr != "" {
				live = metrics.New()
				addr, err := live.Serve(cmd.Context(), metricsAddr)
				if err != nil {
					rf.abort()
					return badInput("--metrics-addr: %v", err)
				}
				fmt.Fprintf(stderr, "metrics: http://%s%s\n", addr, metrics.Path)
				opts.OnStart = func(toRun, total int) { live.SetCellsTotal(toRun); prog.start(toRun, total) }
				opts.OnCellStart = func(p *matrix.Prepared) { live.CellStarted(p); prog.cellStart(p) }
				opts.OnCell = func(done, total int, c results.Cell) { live.CellDone(c); prog.cellDone(done, total, c) }
				opts.Observer = live.Observer
			}
			sum, runErr := matrix.Run(cmd.Context(), specs, opts)
			if live != nil {
				live.RunFinished()
			}
			prog.finish()
			if err := rf.commit(); err != nil && runErr == nil {
				runErr = err
			}
			if sum != nil && len(sum.Cells) > 0 {
				if err := writeSummary(cmd.OutOrStdout(), format, sum); err != nil {
					return err
				}
			}
			if sum != nil && out != "" {
				fmt.Fprintf(stderr, "run directory: %s (summary.json, manifest.json, matrix.yaml, cells/*.hlog; state %s)\n", out, sum.State)
				if !noReport && len(sum.Cells) > 0 {
					paths, err := report.Write(out, "")
					if err != nil && runErr == nil {
						runErr = err
					} else if err == nil {
						fmt.Fprintf(stderr, "report: %s (and %s, %d charts as PNG)\n", paths.HTML, filepath.Base(paths.Markdown), len(paths.Charts))
					}
				}
			}
			if errors.Is(runErr, matrix.ErrInterrupted) {
				return fmt.Errorf("interrupted: %d cells finished and written; resume with: idlerace run --resume %s: %w", len(sum.Cells), out, runErr)
			}
			return runErr
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "matrix file (YAML; see examples/ and schemas/matrix.schema.json)")
	f.StringVar(&resume, "resume", "", "run only the cells a partial run directory lacks")
	f.IntVar(&parallel, "parallel", 0, fmt.Sprintf("cells to run at once (default: the matrix file's parallel, else %d)", matrix.DefaultParallel))
	f.StringVar(&format, "format", "table", "output: table or json (the summary.json schema)")
	f.StringVar(&out, "out", "", "run directory (default idlerace-runs/<UTC timestamp>; - for none)")
	f.StringVar(&resultsPath, "results", "", "also write every request as vegeta results to this file (read it with vegeta report / plot)")
	f.StringVar(&resultsFormat, "results-format", "", "encoding of --results: gob, csv or json (default: by extension, else gob)")
	f.StringSliceVar(&strategies, "strategy", matrix.DefaultStrategies, "strategy specs, one cell row each (see idlerace strategies)")
	f.StringSliceVar(&proxies, "proxy", []string{"none"}, "reverse proxies between the load and the upstream, one cell row each: "+proxyUsage())
	f.StringSliceVar(&upstreams, "upstream", []string{"builtin"}, "upstream specs, one cell row each: builtin[:...], gonet, nginx, uvicorn, node (see idlerace upstream --help)")
	f.StringSliceVar(&skews, "skew", matrix.DefaultSkews, "skew specs: none, offset:D, uniform:±D, normal:sd=D, drift:from=D,to=D")
	f.StringSliceVar(&latencies, "latency", []string{"0"}, "latency paths: 0 (loopback), 2ms or 2ms+500us (delay proxy), netem:2ms (kernel netem, root)")
	f.StringVar(&load, "load", matrix.DefaultLoad, "load spec: sweep[:lanes=N,width=D,duration=D], lull[:...], constant[:rate=R/s,duration=D]")
	f.DurationVar(&idleTimeout, "idle-timeout", matrix.DefaultIdleTimeout, "T: the builtin upstream's idle timeout, as the client believes it")
	f.StringVar(&method, "method", "POST", "request method (POST keeps net/http from replaying on its own)")
	f.Uint64Var(&seed, "seed", 1, "seed for the skew draws and the lull shape")
	addTimeoutFlag(cmd, &timeout)
	addWireFlag(cmd, &wireMode)
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress on stderr")
	f.StringVar(&metricsAddr, "metrics-addr", "", "serve live Prometheus metrics at http://ADDR/metrics while the run goes on (loopback, e.g. 127.0.0.1:9464)")
	f.BoolVar(&pcap, "pcap", false, "also write each cell's capture of the server's TCP segments (headers only) as cells/<id>.pcap, for Wireshark")
	f.StringVar(&shardSpec, "shard", "", "run only shard I/N of the matrix: the cells whose index is I mod N (0 <= I < N); join the shards with idlerace merge")
	f.IntVar(&shards, "shards", 0, "the shard count, with the index from JOB_COMPLETION_INDEX (a pod of a Kubernetes Indexed Job); IDLERACE_SHARDS also gives it")
	f.BoolVar(&noReport, "no-report", false, "do not write report.html, report.md and the chart PNGs into the run directory")
	return cmd
}

func changed(cmd *cobra.Command, names ...string) bool {
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			return true
		}
	}
	return false
}

// pickShard is the shard to run: --shard I/N, else JOB_COMPLETION_INDEX with --shards
// or IDLERACE_SHARDS, else the shard a resumed run directory is (nil: the whole matrix).
func pickShard(spec string, count int, resumed *results.Shard) (*matrix.Shard, error) {
	var sh matrix.Shard
	switch {
	case spec != "":
		if count > 0 {
			return nil, badInput("--shard %s and --shards %d: give one (--shards takes the index from JOB_COMPLETION_INDEX)", spec, count)
		}
		var err error
		if sh, err = matrix.ParseShard(spec); err != nil {
			return nil, err
		}
	default:
		env, ok, err := matrix.ShardFromEnv(count)
		if err != nil {
			return nil, err
		}
		switch {
		case ok:
			sh = env
		case resumed != nil:
			sh = matrix.Shard{Index: resumed.Index, Count: resumed.Count}
		default:
			return nil, nil
		}
	}
	if resumed != nil && (resumed.Index != sh.Index || resumed.Count != sh.Count) {
		return nil, badInput("shard %d/%d: the run directory being resumed is shard %d/%d", sh.Index, sh.Count, resumed.Index, resumed.Count)
	}
	return &sh, nil
}

// proxyUsage lists the proxy kinds as they registered, with their options: none, nginx[:…].
func proxyUsage() string {
	out := []string{hops.None}
	for _, k := range hops.List() {
		out = append(out, k.Usage())
	}
	return strings.Join(out, ", ")
}
