package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/matrix"
	"github.com/idlerace/idlerace/results"
)

func newAttackCmd() *cobra.Command {
	var (
		strategy, load, skew, latency, proxy, format, resultsPath, resultsFormat, wireMode string
		idleTimeout, timeout                                                               time.Duration
		allowRemote                                                                        bool
		rf                                                                                 requestFlags
	)
	cmd := &cobra.Command{
		Use:   "attack --target URL|--targets FILE --strategy SPEC --load SPEC --idle-timeout T",
		Short: "Run one cell against any HTTP/1.1 server",
		Long: `Send the load through one pool strategy to a server idlerace did not start, and
report the reset rate beside the model's prediction for the believed idle timeout T
(and, with --skew, a skew you expect of that server).

Requests are written as vegeta's users write them: --method, -H "Name: value",
--body or --body-file, or --targets FILE in vegeta's http format, whose targets the
load's requests go round over, each with its own method, URL, headers and body.

Targets outside loopback need --allow-remote: this is a tool for breaking connections.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if err := checkTimeout(timeout); err != nil {
				return err
			}
			req, err := rf.resolve(cmd)
			if err != nil {
				return err
			}
			target := req.URL
			p, err := matrix.Prepare(matrix.CellSpec{
				Strategy: strategy, Target: true, Skew: skew, Latency: latency, Proxy: proxy, Load: load,
				IdleTimeout: idleTimeout, Method: req.Method, Header: req.Header, Body: req.Body, Targets: req.Targets,
				Seed: 1, RequestTimeout: timeout, Wire: wireMode,
			})
			if err != nil {
				return err
			}
			if err := checkTarget(target, allowRemote); err != nil {
				return err
			}
			rf, err := openResults(resultsPath, resultsFormat)
			if err != nil {
				return err
			}
			started := time.Now().UTC()
			out, runErr := matrix.RunTarget(cmd.Context(), p, target, rf.encoder())
			if err := rf.commit(); err != nil && runErr == nil {
				runErr = err
			}
			if runErr != nil {
				return runErr
			}
			sum := &results.Summary{Schema: results.Schema, Started: started, Finished: time.Now().UTC(),
				State: "complete", Cells: []results.Cell{out.Cell}}
			sum.Tool = results.Tool{Version: Version, Commit: Commit}
			return writeSummary(cmd.OutOrStdout(), format, sum)
		},
	}
	f := cmd.Flags()
	rf.add(cmd, "POST", "the load's requests go round over them")
	f.StringVar(&strategy, "strategy", "blind", "strategy spec (see idlerace strategies)")
	f.StringVar(&load, "load", "sweep", "load spec: sweep[:lanes=N,width=D,duration=D], lull[:...], constant[:rate=R/s,duration=D]")
	f.DurationVar(&idleTimeout, "idle-timeout", 0, "T: the server's idle timeout as the client believes it (required)")
	f.StringVar(&skew, "skew", "none", "the skew the model assumes for this server")
	addTimeoutFlag(cmd, &timeout)
	addWireFlag(cmd, &wireMode)
	f.StringVar(&latency, "latency", "0", "add one-way latency with the delay proxy: 0, 2ms, 2ms+500us")
	f.StringVar(&proxy, "proxy", "none", "a reverse proxy between the load and the target, whose pool to the target is then the one under test: "+proxyUsage())
	f.StringVar(&format, "format", "table", "output: table or json")
	f.StringVar(&resultsPath, "results", "", "also write every request as vegeta results to this file")
	f.StringVar(&resultsFormat, "results-format", "", "encoding of --results: gob, csv or json (default: by extension)")
	f.BoolVar(&allowRemote, "allow-remote", false, "allow a target outside loopback")
	_ = cmd.MarkFlagRequired("idle-timeout")
	return cmd
}

// checkTarget refuses a URL that is not plain HTTP, a host outside loopback without
// --allow-remote, and a server that does not accept connections: each is bad input.
func checkTarget(target string, allowRemote bool) error {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return badInput("--target %q: want an http:// URL with a host, e.g. http://127.0.0.1:8080/", target)
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "80"
	}
	ip := net.ParseIP(host)
	loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
	if !loopback && !allowRemote {
		return badInput("--target %q: %s is not a loopback address (127.0.0.0/8, ::1, localhost); pass --allow-remote to attack it", target, host)
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 2*time.Second)
	if errors.Is(err, syscall.ECONNRESET) {
		// Something accepted and reset the connection: a server that resets, not a
		// wrong address. The attack measures it (reset_write / reset_read).
		return nil
	}
	if err != nil {
		return badInput("--target %q: %v (want a running HTTP/1.1 server)", target, unwrapOp(err))
	}
	_ = c.Close()
	return nil
}

// addTimeoutFlag declares --timeout, the per-request bound of run and attack.
// addWireFlag is --wire: which cells capture their server's segments.
func addWireFlag(cmd *cobra.Command, mode *string) {
	cmd.Flags().StringVar(mode, "wire", matrix.WireAuto, "capture the server's TCP segments on loopback (root): auto (every server but the in-process builtin, which only behind a proxy, in a sweep within 20ms of the close or with --pcap), on (every cell), off")
}

func addTimeoutFlag(cmd *cobra.Command, timeout *time.Duration) {
	cmd.Flags().DurationVar(timeout, "timeout", pool.DefaultRequestTimeout, "bound on each request, write to last response byte, like vegeta's -timeout; past it the request fails as timeout")
}

// checkTimeout refuses a --timeout that cannot bound a request.
func checkTimeout(timeout time.Duration) error {
	if timeout <= 0 {
		return badInput("--timeout %s: must be > 0 (a duration such as 1s; default %s, vegeta's)", timeout, pool.DefaultRequestTimeout)
	}
	return nil
}

func unwrapOp(err error) error {
	if oe, ok := err.(*net.OpError); ok && oe.Err != nil {
		return fmt.Errorf("%s: %w", oe.Op, oe.Err)
	}
	return err
}
