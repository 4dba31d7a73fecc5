package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/matrix"
)

// Version and Commit are set by the Makefile's -ldflags.
var (
	Version = "dev"
	Commit  = ""
)

// Exit codes (DESIGN.md): 0 ok, 1 a gate or comparison failed, 2 bad input, 3 the run
// itself broke, 130 interrupted.
const (
	exitOK          = 0
	exitFailed      = 1
	exitBadInput    = 2
	exitRunBroke    = 3
	exitInterrupted = 130
)

// usageError is bad input: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func badInput(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "idlerace",
		Short: "Measure how HTTP/1.1 pool strategies lose the keep-alive reuse race",
		Long: `idlerace reproduces the race in which a client reuses a pooled keep-alive connection
just as the server closes it for idleness, and measures how often each pool strategy
loses it and what each costs in latency and new connections.`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       Version,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newRunCmd(), newAttackCmd(), newUpstreamCmd(), newStrategiesCmd(), newCompareCmd(), newGateCmd(), newMergeCmd(), newK8sCmd(), newProbeCmd(), newExportCmd(), newReportCmd())
	return root
}

// execute runs the CLI and maps errors to exit codes, printing one line on stderr.
func execute(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	attack.UserAgent = "idlerace/" + Version
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "idlerace: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	var ue usageError
	var bi *matrix.BadInput
	var fe failedError
	switch {
	case errors.As(err, &fe):
		return exitFailed
	case errors.As(err, &ue), errors.As(err, &bi), isCobraUsage(err):
		return exitBadInput
	case ctx.Err() != nil:
		return exitInterrupted
	default:
		return exitRunBroke
	}
}

// failedError is a comparison or gate that ran and failed: exit code 1.
type failedError struct{ msg string }

func (e failedError) Error() string { return e.msg }

func failed(format string, args ...any) error { return failedError{fmt.Sprintf(format, args...)} }

// isCobraUsage recognises cobra's own argument errors, which it does not type.
func isCobraUsage(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.Contains(msg, "accepts ") ||
		strings.HasPrefix(msg, "unknown flag") || strings.HasPrefix(msg, "required flag")
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return badInput("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// checkFormat accepts the --format values every verb shares.
func checkFormat(f string) error {
	if f != "table" && f != "json" {
		return badInput("--format %q: want table or json", f)
	}
	return nil
}
