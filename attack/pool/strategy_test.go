package pool_test

import (
	"strings"
	"testing"

	"github.com/idlerace/idlerace/attack/pool"
)

func TestParseCanonicalSpecs(t *testing.T) {
	for in, want := range map[string]string{
		"blind":                             "blind",
		"watch":                             "watch",
		"read-probe":                        "read-probe",
		"read-probe:after=2s":               "read-probe:after=2s",
		"timeout-margin:margin=20ms":        "timeout-margin:margin=20ms",
		"hint-margin:margin=1s":             "hint-margin:margin=1s",
		"adaptive-margin:learn=8":           "adaptive-margin",
		"adaptive-margin:learn=16":          "adaptive-margin:learn=16",
		"retry-only":                        "retry-only:max=1,methods=all",
		"read-probe+retry-only:max=1":       "read-probe+retry-only:max=1,methods=all",
		"watch + timeout-margin:margin=5ms": "watch+timeout-margin:margin=5ms",
		"stdlib":                            "stdlib",
	} {
		s, err := pool.Parse(in)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if s.String() != want {
			t.Errorf("Parse(%q) = %q, want %q", in, s, want)
		}
		again, err := pool.Parse(s.String())
		if err != nil || again.String() != want {
			t.Errorf("round trip of %q: %v %v", want, again, err)
		}
	}
}

func TestParseRejectsBadSpecs(t *testing.T) {
	for in, want := range map[string]string{
		"":                             "empty",
		"blnd":                         `unknown strategy "blnd" (known: adaptive-margin, blind, hint-margin, read-probe, retry-only, stdlib, timeout-margin, watch)`,
		"timeout-margin":               "margin is required",
		"timeout-margin:margin=-5ms":   "margin: must be > 0",
		"timeout-margin:margin=0":      "margin: must be > 0",
		"timeout-margin:margin=abc":    `margin: invalid duration "abc"`,
		"timeout-margin:marg=20ms":     `unknown option "marg" (timeout-margin:margin=D)`,
		"retry-only:max=0":             "max: want a whole number from 1 to 10",
		"adaptive-margin:learn=1":      "learn: want a whole number from 2 to 256",
		"retry-only:methods=some":      `methods: "some" is not one of all, idempotent`,
		"read-probe:after":             "want key=value",
		"read-probe:after=1s,after=2s": "given twice",
		"stdlib+retry-only":            "cannot be composed",
		"blind+":                       `unknown strategy ""`,
	} {
		_, err := pool.Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) error %v, want it to contain %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q): error is more than one line", in)
		}
	}
}

func TestEveryStrategyIsListedWithHelp(t *testing.T) {
	infos := pool.Strategies()
	if len(infos) != 8 {
		t.Fatalf("%d strategies, want 8", len(infos))
	}
	for _, i := range infos {
		if i.Help == "" || !strings.HasPrefix(i.Usage, i.Name) {
			t.Errorf("%+v: missing help or usage", i)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"blind", "read-probe+retry-only:max=1", "timeout-margin:margin=20ms", "x:y=z,", "+", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := pool.Parse(spec)
		if err != nil {
			return
		}
		if _, err := pool.Parse(s.String()); err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", s, spec, err)
		}
	})
}
