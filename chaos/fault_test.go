package chaos

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseFault(t *testing.T) {
	for _, tc := range []struct {
		spec    string
		want    Fault
		wantErr string // exact error text; "" when the spec is valid
	}{
		{spec: "close-after:n=3", want: CloseAfter{N: 3}},
		{spec: " close-after: n=1 ", want: CloseAfter{N: 1}},
		{spec: "restart:every=2s", want: Restart{Every: 2 * time.Second}},
		{spec: "restart:every=1ms", want: Restart{Every: time.Millisecond}},
		{spec: "silent-death:after=5", want: SilentDeath{After: 5}},
		{spec: "rst", want: RST{}},
		{spec: "rst:", want: RST{}},
		{spec: "slow-close:delay=20ms", want: SlowClose{Delay: 20 * time.Millisecond}},

		{spec: "close-afterr:n=3", wantErr: `fault "close-afterr:n=3": unknown fault "close-afterr" (known: close-after, restart, rst, silent-death, slow-close)`},
		{spec: "", wantErr: `fault "": unknown fault "" (known: close-after, restart, rst, silent-death, slow-close)`},
		{spec: "close-after", wantErr: `fault "close-after": n is required (` + closeAfterUsage + `)`},
		{spec: "close-after:n=0", wantErr: `fault "close-after:n=0": n: want a whole number from 1 to 1073741824, got "0" (` + closeAfterUsage + `)`},
		{spec: "close-after:n=x", wantErr: `fault "close-after:n=x": n: want a whole number from 1 to 1073741824, got "x" (` + closeAfterUsage + `)`},
		{spec: "close-after:n=2,m=1", wantErr: `fault "close-after:n=2,m=1": unknown option "m" (` + closeAfterUsage + `)`},
		{spec: "close-after:3", wantErr: `fault "close-after:3": option "3": want key=value (` + closeAfterUsage + `)`},
		{spec: "restart:every=0", wantErr: `fault "restart:every=0": every: must be > 0, got 0 (` + restartUsage + `)`},
		{spec: "restart:every=10us", wantErr: `fault "restart:every=10us": every: must be within [1ms, 24h0m0s], got 10µs (` + restartUsage + `)`},
		{spec: "restart:every=-1s", wantErr: `fault "restart:every=-1s": every: must be > 0, got -1s (` + restartUsage + `)`},
		{spec: "restart:every=soon", wantErr: `fault "restart:every=soon": every: invalid duration "soon" (` + restartUsage + `)`},
		{spec: "silent-death:after=-1", wantErr: `fault "silent-death:after=-1": after: want a whole number from 1 to 1073741824, got "-1" (` + silentDeathUsage + `)`},
		{spec: "rst:hard", wantErr: `fault "rst:hard": rst takes no argument (` + rstUsage + `)`},
		{spec: "slow-close:delay=25h", wantErr: `fault "slow-close:delay=25h": delay: must be within [1ns, 24h0m0s], got 25h0m0s (` + slowCloseUsage + `)`},
		{spec: "slow-close", wantErr: `fault "slow-close": delay is required (` + slowCloseUsage + `)`},
	} {
		got, err := ParseFault(tc.spec)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("ParseFault(%q) = %v, %v\n want error %q", tc.spec, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseFault(%q) = %#v, %v; want %#v", tc.spec, got, err, tc.want)
		}
	}
}

func TestFaultStringRoundTrips(t *testing.T) {
	for _, f := range []Fault{CloseAfter{N: 7}, Restart{Every: 1500 * time.Millisecond}, SilentDeath{After: 2}, RST{}, SlowClose{Delay: 250 * time.Microsecond}} {
		back, err := ParseFault(f.String())
		if err != nil || back != f {
			t.Errorf("ParseFault(%q) = %#v, %v; want %#v", f.String(), back, err, f)
		}
	}
	if got := (SlowClose{Delay: 20 * time.Millisecond}).String(); got != "slow-close:delay=20ms" {
		t.Errorf("String() = %q", got)
	}
	if got := FaultName(Restart{Every: time.Second}); got != "restart" {
		t.Errorf("FaultName = %q, want restart", got)
	}
}

func TestFaultParametersAreJSONTagged(t *testing.T) {
	b, err := json.Marshal([]Fault{CloseAfter{N: 2}, Restart{Every: time.Second}, SilentDeath{After: 1}, SlowClose{Delay: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `[{"n":2},{"every":1000000000},{"after":1},{"delay":1000000}]`; string(b) != want {
		t.Errorf("JSON = %s, want %s", b, want)
	}
}

func TestFaultsListsEveryFaultWithUsage(t *testing.T) {
	infos := Faults()
	var names []string
	for _, fi := range infos {
		names = append(names, fi.Name)
		if !strings.HasPrefix(fi.Usage, fi.Name) {
			t.Errorf("fault %q: usage %q does not start with its name", fi.Name, fi.Usage)
		}
	}
	if want := []string{"close-after", "restart", "rst", "silent-death", "slow-close"}; !slices.Equal(names, want) {
		t.Errorf("Faults() names = %v, want %v", names, want)
	}
}

func TestRegisterFaultRefusesBadNames(t *testing.T) {
	for _, name := range []string{"rst", "", "a:b", "a+b"} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("RegisterFault(%q) did not panic", name)
				}
			}()
			RegisterFault(name, "x", func(string) (Fault, error) { return RST{}, nil })
		}()
	}
}
