package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/idlerace/idlerace/matrix"
	"github.com/idlerace/idlerace/results"
)

func newGateCmd() *cobra.Command {
	var baseline, policyPath, junit, summary, format string
	cmd := &cobra.Command{
		Use:   "gate NEW --policy gate.yaml [--baseline BASE]",
		Short: "Check a run against a policy: absolute limits and regressions against a baseline",
		Long: `Apply the policy's rules to the run NEW. Absolute rules (max, min) check NEW alone.
Regression rules (max_increase) compare NEW with --baseline and fail only when the rise is
both beyond the threshold and statistically significant (Holm-corrected over the rule's
cells at the policy's alpha), so that two runs of the same build do not fail the gate.
Exit 0 pass, 1 fail, 2 bad input. --junit writes JUnit XML (one testcase per rule and
cell), --summary writes Markdown for $GITHUB_STEP_SUMMARY.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return badInput("gate takes one run directory, NEW; got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return badInput("--format %q: want table or json", format)
			}
			if policyPath == "" {
				return badInput("--policy is required (a gate policy file; see examples/gate.yaml)")
			}
			policy, err := results.ReadPolicy(policyPath)
			if err != nil {
				return badInput("%v", err)
			}
			policy.Canonicalize(matrix.Canonical)
			run, err := readRun(args[0])
			if err != nil {
				return err
			}
			var base *results.Summary
			if baseline != "" {
				if base, err = readRun(baseline); err != nil {
					return err
				}
			}
			g := results.Gate(policy, run, base)
			if junit != "" {
				var buf bytes.Buffer
				if err := results.WriteJUnit(&buf, g); err != nil {
					return err
				}
				if err := results.WriteFileAtomic(junit, buf.Bytes(), 0o644); err != nil {
					return badInput("--junit %s: %v", junit, err)
				}
			}
			if summary != "" {
				var buf bytes.Buffer
				if err := results.WriteGateMarkdown(&buf, g); err != nil {
					return err
				}
				if err := appendOrWrite(summary, buf.Bytes()); err != nil {
					return badInput("--summary %s: %v", summary, err)
				}
			}
			w := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if err := enc.Encode(g); err != nil {
					return err
				}
			} else {
				for _, c := range g.Checks {
					mark := "ok  "
					if !c.Pass {
						mark = "FAIL"
					}
					fmt.Fprintf(w, "%s %s\n", mark, c.Message)
				}
				for _, n := range g.Notes {
					fmt.Fprintf(w, "note %s\n", n)
				}
				fmt.Fprintf(w, "%d checks, %d failed\n", len(g.Checks), g.Failed)
			}
			if !g.Passed() {
				for _, c := range g.Checks {
					if !c.Pass {
						return failed("gate failed: %s%s", c.Message, more(g.Failed-1))
					}
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&policyPath, "policy", "", "gate policy file (YAML; see examples/gate.yaml and schemas/gate.schema.json)")
	f.StringVar(&baseline, "baseline", "", "baseline run directory for regression rules")
	f.StringVar(&junit, "junit", "", "write JUnit XML here")
	f.StringVar(&summary, "summary", "", "append Markdown here (e.g. $GITHUB_STEP_SUMMARY)")
	f.StringVar(&format, "format", "table", "output: table or json")
	return cmd
}

func more(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf(" (and %d more)", n)
}
