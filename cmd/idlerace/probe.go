package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/matrix"
	"github.com/idlerace/idlerace/recommend"
	"github.com/idlerace/idlerace/upstreams/probe"
)

func newProbeCmd() *cobra.Command {
	var (
		cfg             probe.Config
		format          string
		windows, quiet  bool
		maxTimeout, rto time.Duration
		rf              requestFlags
	)
	cmd := &cobra.Command{
		Use:   "probe --target URL|--targets FILE",
		Short: "Learn a server's real keep-alive behaviour and which client settings are safe",
		Long: `Find when a server really closes an idle keep-alive connection (p50 and p99 of the
close, from connections watched as they idle), whether its Keep-Alive header says so,
whether it closes by FIN, by RST or silently, how many requests it serves on one
connection, what a request written just after the close gets, and the race window of a
blind, a watching and a read-probing client at it. Then, for Go's net/http, idlerace's
timeout-margin and every client kind, the longest idle timeout that is safe, with its
arithmetic.

Its requests are written as with attack (--method, -H, --body, --body-file); with
--targets FILE it sends the file's first target only (its method, URL, headers and
body) and ignores the rest, in the race windows too. The probe is bounded in requests and time (both printed before it starts).
Targets outside loopback need --allow-remote.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			req, err := rf.resolve(cmd)
			if err != nil {
				return err
			}
			cfg.Target = req.URL
			cfg.Method, cfg.Header, cfg.Body = req.first()
			if err := checkTarget(cfg.Target, cfg.AllowRemote); err != nil {
				return err
			}
			if maxTimeout <= 0 {
				return badInput("--max-timeout %v: want at least 100ms", maxTimeout)
			}
			if rto <= 0 {
				return badInput("--response-timeout %v: want > 0", rto)
			}
			cfg.MaxTimeout, cfg.ResponseTimeout = maxTimeout, rto
			cfg.UserAgent = attack.UserAgent
			if err := cfg.Prepare(); err != nil {
				return badInput("%v", err)
			}
			stderr := cmd.ErrOrStderr()
			if quiet {
				stderr = io.Discard
			}
			reqs, took := cfg.Bounds()
			windows = windows && !cfg.AllowRemote
			then := ""
			if windows {
				wr, wt := matrix.WindowBoundsBefore(cfg.MaxTimeout)
				then = fmt.Sprintf("; then the race windows, at most %d requests and %v (--windows=false skips them)", wr, wt.Round(time.Second))
			}
			fmt.Fprintf(stderr, "probe %s: search at most %d requests and %v (--max-timeout %v)%s\n", cfg.Target, reqs, took.Round(time.Second), cfg.MaxTimeout, then)
			bar := newPhaseBar(stderr)
			defer bar.end()
			step := bar.phase
			cfg.Progress = step
			res, err := probe.Run(cmd.Context(), &cfg)
			bar.end()
			if err != nil {
				return fmt.Errorf("probe %s: %w", cfg.Target, err)
			}
			if plan, ok := matrix.PlanWindows(res); windows && ok {
				wr, wt := plan.Bounds()
				fmt.Fprintf(stderr, "probe: race windows at T = %v ± %v: at most %d requests and %v\n", plan.T, plan.Width, wr, wt.Round(time.Millisecond))
				start := time.Now()
				if err := matrix.ProbeWindows(cmd.Context(), res, cfg.Method, cfg.Header, cfg.Body, step); err != nil {
					return fmt.Errorf("probe %s: %w", cfg.Target, err)
				}
				bar.end()
				res.TookMS += float64(time.Since(start)) / float64(time.Millisecond)
			}
			if res.IdleTimeoutMS != nil {
				res.Recommendations = recommend.For(*res.IdleTimeoutMS, res.RTTMS, 0)
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			return writeProbe(cmd.OutOrStdout(), res)
		},
	}
	f := cmd.Flags()
	rf.add(cmd, "GET", "probe sends the first target only")
	f.IntVar(&cfg.Conns, "conns", probe.DefaultConns, "connections watched at once for the close's distribution (2..1024)")
	f.IntVar(&cfg.MaxRequests, "max-requests", probe.DefaultMaxRequests, "requests sent back to back on one connection to find the server's per-connection limit (2..100000)")
	f.DurationVar(&maxTimeout, "max-timeout", probe.DefaultMaxTimeout, "longest idle timeout searched for (at least 100ms)")
	f.DurationVar(&rto, "response-timeout", probe.DefaultResponseTimeout, "how long a request may go unanswered before the connection counts as dead (silent)")
	f.BoolVar(&windows, "windows", true, "measure each strategy's race window at the server with a fine sweep around the close (loopback only)")
	f.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow a target outside loopback")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress on stderr")
	f.StringVar(&format, "format", "table", "output: table or json")
	return cmd
}

// writeProbe prints a probe as a short report: what the server does, then what to set.
func writeProbe(w io.Writer, r *probe.Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "probe\t%s (%d requests, %.1f s)\n", r.Target, r.RequestsSent, r.TookMS/1000)
	if c := r.IdleTimeoutMS; c != nil {
		fmt.Fprintf(tw, "idle timeout\tp50 %s  p99 %s  (min %s, max %s; median 95%% CI %s–%s; %s, %d samples)\n",
			recommend.MS(c.P50), recommend.MS(c.P99), recommend.MS(c.Min), recommend.MS(c.Max), recommend.MS(c.P50CI95[0]), recommend.MS(c.P50CI95[1]), c.Method, c.Samples)
	} else {
		fmt.Fprintf(tw, "idle timeout\tnone within %s\n", recommend.MS(r.MaxTimeoutMS))
	}
	mode := r.CloseMode
	if r.LateRequest != "" {
		mode += "; a request written after the close gets: " + r.LateRequest
	}
	fmt.Fprintf(tw, "close mode\t%s\n", mode)
	ka := r.KeepAlive
	if ka == "" {
		ka = "(no Keep-Alive header)"
	} else {
		ka = "Keep-Alive: " + ka
	}
	fmt.Fprintf(tw, "advertised\t%s: %s\n", ka, r.Advertised)
	if r.MaxRequests != nil {
		fmt.Fprintf(tw, "max requests\t%d per connection (%s)\n", *r.MaxRequests, r.MaxRequestsMode)
	} else {
		fmt.Fprintf(tw, "max requests\tnone within %d\n", r.MaxRequestsTried)
	}
	fmt.Fprintf(tw, "rtt\t%s\n", recommend.MS(r.RTTMS))
	if len(r.WindowMS) > 0 {
		var parts []string
		for _, s := range matrix.WindowStrategies {
			if win, ok := r.WindowMS[s]; ok {
				parts = append(parts, fmt.Sprintf("%s %s (model %s; %d/%d stale)", s, recommend.MS(win.MeasuredMS), recommend.MS(win.ModelMS), win.Stale, win.Requests))
			}
		}
		fmt.Fprintf(tw, "race window\t%s\n", strings.Join(parts, " · "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Recommendations) > 0 {
		fmt.Fprintf(w, "\nsafe settings: %s\n", r.Recommendations[0].Arithmetic)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT\tSETTING\tPRED RESET%\t+CONN/1k\tSPEC")
		for _, rec := range r.Recommendations {
			pred, extra := "-", "-"
			if rec.ValueMS > 0 {
				pred, extra = fmt.Sprintf("%.1f", 100*rec.PredictedResetRate), fmt.Sprintf("%.1f", rec.ExtraConnsPer1k)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", rec.Client, rec.Setting, pred, extra, rec.Spec)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w, "PRED RESET%: the model's stale rate for a request idle up to the setting; +CONN/1k: the new connections it costs per 1,000 requests idle evenly up to the close, beyond an exact client's")
	}
	if len(r.Findings) > 0 {
		fmt.Fprintln(w, "\nfindings")
		for _, f := range r.Findings {
			fmt.Fprintf(w, "  - %s\n", f)
		}
	}
	return nil
}
