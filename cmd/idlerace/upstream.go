package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/upstreams"
	_ "github.com/idlerace/idlerace/upstreams/builtin"
	_ "github.com/idlerace/idlerace/upstreams/gonet"
)

func newUpstreamCmd() *cobra.Command {
	var (
		cfg                                upstreams.Config
		skew, closeMode, advertise, format string
		kind                               string
		faults                             []string
		duration                           time.Duration
	)
	cmd := &cobra.Command{
		Use:   "upstream",
		Short: "Run the builtin upstream (or another kind) standalone, until interrupted or --duration",
		Long: `Serve HTTP/1.1 on loopback, closing every idle connection at exactly T+s with s drawn
from the skew model, with the faults given (--fault, repeatable: close-after:n=3,
silent-death:after=3, ...). GET /_idlerace/stats answers its counters as JSON; they are
also printed when it stops. --kind gonet serves the same with Go's net/http server.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			var err error
			if cfg.IdleTimeout <= 0 {
				return badInput("--idle-timeout %s: must be > 0", cfg.IdleTimeout)
			}
			if cfg.Skew, err = chaos.ParseSkew(skew); err != nil {
				return badInput("--skew: %v", err)
			}
			mode, err := chaos.ParseCloseMode(closeMode)
			if err != nil {
				return badInput("--close: %v", err)
			}
			cfg.Close = mode
			for _, f := range faults {
				ft, err := chaos.ParseFault(f)
				if err != nil {
					return badInput("--fault %q: %v", f, err)
				}
				cfg.Faults = append(cfg.Faults, ft)
			}
			if !slices.Contains(upstreams.Kinds(), kind) {
				return badInput("--kind %q: want one of %s", kind, strings.Join(upstreams.Kinds(), ", "))
			}
			switch advertise {
			case "", "auto":
			case "off", "none":
				cfg.Advertise = -1
			default:
				d, err := time.ParseDuration(advertise)
				if err != nil || d <= 0 {
					return badInput("--advertise %q: want a duration > 0, auto (= T) or off", advertise)
				}
				cfg.Advertise = d
			}
			if duration < 0 {
				return badInput("--duration %s: must be >= 0 (0: until interrupted)", duration)
			}
			if cfg.RunDuration == 0 {
				cfg.RunDuration = duration
			}
			if err := upstreams.CheckLoopback(cfg.Addr); err != nil {
				return badInput("--addr: %v", err)
			}
			if err := cfg.Validate(); err != nil {
				return badInput("%v", err)
			}
			up, err := upstreams.Start(cmd.Context(), kind, cfg)
			if err != nil {
				return err
			}
			fs := ""
			for _, f := range cfg.Faults {
				fs += ", fault " + f.String()
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s upstream on %s (T=%s, skew %s, close %s%s)\n", kind, up.URL(), cfg.IdleTimeout, cfg.Skew, mode, fs)
			ctx := cmd.Context()
			if duration > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(duration):
				}
			} else {
				<-ctx.Done()
			}
			if err := up.Close(); err != nil {
				return err
			}
			st := up.Stats()
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "accepted %d, idle closes %d (with unread request %d), executed %d, duplicates %d, close lateness p50 %dµs p99 %dµs max %dµs\n",
				st.Accepted, st.IdleCloses, st.ClosesWithUnread, st.Executed, st.Duplicates, st.CloseLateP50US, st.CloseLateP99US, st.CloseLateMaxUS)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "listen address (loopback only)")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", 5*time.Second, "T: close connections idle for T+s")
	f.StringVar(&skew, "skew", "none", "skew model for s")
	f.StringVar(&kind, "kind", "builtin", "upstream kind (builtin, gonet; a real server kind if installed)")
	f.StringArrayVar(&faults, "fault", nil, "a fault to inject, repeatable (close-after:n=N, silent-death:after=N, rst, slow-close, restart)")
	f.StringVar(&closeMode, "close", "fin", "close with fin or rst")
	f.StringVar(&advertise, "advertise", "auto", "Keep-Alive: timeout=N to send: auto (= T), off, or a duration (may differ from T)")
	f.IntVar(&cfg.MaxRequests, "max-requests", 0, "close after this many requests per connection (0: unlimited)")
	f.IntVar(&cfg.ResponseBytes, "response-bytes", 2, "response body size")
	f.DurationVar(&cfg.ServiceTime, "service-time", 0, "time to spend on each request")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed for the skew draws")
	f.DurationVar(&duration, "duration", 0, "stop after this long (0: until interrupted)")
	f.StringVar(&format, "format", "table", "stats output: table or json")
	return cmd
}
