package chaos

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var parseCases = []struct {
	spec    string
	want    string // canonical String(); "" when an error is expected
	wantErr string // exact error text
}{
	{spec: "none", want: "none"},
	{spec: " none ", want: "none"},
	{spec: "none:", want: "none"},
	{spec: "offset:-5ms", want: "offset:-5ms"},
	{spec: "offset:+5ms", want: "offset:5ms"},
	{spec: "offset:0", want: "offset:0s"},
	{spec: "offset:1.5s", want: "offset:1.5s"},
	{spec: "uniform:±10ms", want: "uniform:±10ms"},
	{spec: "uniform:10ms", want: "uniform:±10ms"},
	{spec: "uniform:+-10ms", want: "uniform:±10ms"},
	{spec: "uniform:250us", want: "uniform:±250µs"},
	{spec: "normal:sd=3ms", want: "normal:sd=3ms"},
	{spec: "normal:mean=-2ms,sd=3ms", want: "normal:mean=-2ms,sd=3ms"},
	{spec: "normal:sd=3ms,mean=-2ms", want: "normal:mean=-2ms,sd=3ms"},
	{spec: "normal:mean=0,sd=1ms", want: "normal:sd=1ms"},
	{spec: "normal: mean=1ms, sd=1ms", want: "normal:mean=1ms,sd=1ms"},
	{spec: "drift:from=0,to=-20ms", want: "drift:from=0s,to=-20ms"},
	{spec: "drift:to=-20ms", want: "drift:from=0s,to=-20ms"},
	{spec: "drift:from=5ms,to=5ms", want: "drift:from=5ms,to=5ms"},
	{spec: "drift:from=10ms,to=-10ms", want: "drift:from=10ms,to=-10ms"},

	{spec: "unifrom:5ms", wantErr: `skew "unifrom:5ms": unknown model "unifrom" (known: drift, none, normal, offset, uniform)`},
	{spec: "", wantErr: `skew "": unknown model "" (known: drift, none, normal, offset, uniform)`},
	{spec: "Uniform:5ms", wantErr: `skew "Uniform:5ms": unknown model "Uniform" (known: drift, none, normal, offset, uniform)`},
	{spec: ":5ms", wantErr: `skew ":5ms": unknown model "" (known: drift, none, normal, offset, uniform)`},
	{spec: "none:1ms", wantErr: `skew "none:1ms": none takes no argument (none)`},
	{spec: "offset", wantErr: `skew "offset": offset needs a duration (offset:D (signed, e.g. offset:-5ms))`},
	{spec: "offset:", wantErr: `skew "offset:": offset needs a duration (offset:D (signed, e.g. offset:-5ms))`},
	{spec: "offset:5", wantErr: `skew "offset:5": invalid duration "5" (offset:D (signed, e.g. offset:-5ms))`},
	{spec: "offset:abc", wantErr: `skew "offset:abc": invalid duration "abc" (offset:D (signed, e.g. offset:-5ms))`},
	{spec: "offset:25h", wantErr: `skew "offset:25h": duration "25h" out of range (within ±24h0m0s) (offset:D (signed, e.g. offset:-5ms))`},
	{spec: "offset:9999999999h", wantErr: `skew "offset:9999999999h": invalid duration "9999999999h" (offset:D (signed, e.g. offset:-5ms))`},
	{spec: "uniform:0ms", wantErr: `skew "uniform:0ms": width must be > 0 (uniform:±D, e.g. uniform:±10ms)`},
	{spec: "uniform:0", wantErr: `skew "uniform:0": width must be > 0 (uniform:±D, e.g. uniform:±10ms)`},
	{spec: "uniform:-10ms", wantErr: `skew "uniform:-10ms": width must be > 0 (uniform:±D, e.g. uniform:±10ms)`},
	{spec: "uniform:±-10ms", wantErr: `skew "uniform:±-10ms": width must be > 0 (uniform:±D, e.g. uniform:±10ms)`},
	{spec: "uniform", wantErr: `skew "uniform": uniform needs a width (uniform:±D, e.g. uniform:±10ms)`},
	{spec: "uniform:±", wantErr: `skew "uniform:±": uniform needs a width (uniform:±D, e.g. uniform:±10ms)`},
	{spec: "uniform:±+-10ms", wantErr: `skew "uniform:±+-10ms": width: invalid duration "+-10ms" (uniform:±D, e.g. uniform:±10ms)`},
	{spec: "uniform:ten", wantErr: `skew "uniform:ten": width: invalid duration "ten" (uniform:±D, e.g. uniform:±10ms)`},
	{spec: "normal:sd=abc", wantErr: `skew "normal:sd=abc": sd: invalid duration "abc"`},
	{spec: "normal", wantErr: `skew "normal": sd is required (normal:sd=D[,mean=D] (e.g. normal:sd=3ms, normal:mean=-2ms,sd=3ms))`},
	{spec: "normal:mean=1ms", wantErr: `skew "normal:mean=1ms": sd is required (normal:sd=D[,mean=D] (e.g. normal:sd=3ms, normal:mean=-2ms,sd=3ms))`},
	{spec: "normal:sd=0", wantErr: `skew "normal:sd=0": sd must be > 0, got 0s (normal:sd=D[,mean=D] (e.g. normal:sd=3ms, normal:mean=-2ms,sd=3ms))`},
	{spec: "normal:sd=-3ms", wantErr: `skew "normal:sd=-3ms": sd must be > 0, got -3ms (normal:sd=D[,mean=D] (e.g. normal:sd=3ms, normal:mean=-2ms,sd=3ms))`},
	{spec: "normal:sd=3ms,sd=4ms", wantErr: `skew "normal:sd=3ms,sd=4ms": key "sd" given twice (normal:sd=D[,mean=D] (e.g. normal:sd=3ms, normal:mean=-2ms,sd=3ms))`},
	{spec: "normal:sd=3ms,var=1ms", wantErr: `skew "normal:sd=3ms,var=1ms": unknown key "var" (normal:sd=D[,mean=D] (e.g. normal:sd=3ms, normal:mean=-2ms,sd=3ms))`},
	{spec: "normal:3ms", wantErr: `skew "normal:3ms": parameter "3ms" is not key=value (normal:sd=D[,mean=D] (e.g. normal:sd=3ms, normal:mean=-2ms,sd=3ms))`},
	{spec: "normal:sd=3ms,", wantErr: `skew "normal:sd=3ms,": parameter "" is not key=value (normal:sd=D[,mean=D] (e.g. normal:sd=3ms, normal:mean=-2ms,sd=3ms))`},
	{spec: "normal:=3ms", wantErr: `skew "normal:=3ms": parameter "=3ms" is not key=value (normal:sd=D[,mean=D] (e.g. normal:sd=3ms, normal:mean=-2ms,sd=3ms))`},
	{spec: "normal:mean=x,sd=3ms", wantErr: `skew "normal:mean=x,sd=3ms": mean: invalid duration "x"`},
	{spec: "drift", wantErr: `skew "drift": to is required (drift:from=D,to=D (from defaults to 0; e.g. drift:from=0,to=-20ms))`},
	{spec: "drift:from=1ms", wantErr: `skew "drift:from=1ms": to is required (drift:from=D,to=D (from defaults to 0; e.g. drift:from=0,to=-20ms))`},
	{spec: "drift:from=0,to=-20ms,by=1s", wantErr: `skew "drift:from=0,to=-20ms,by=1s": unknown key "by" (drift:from=D,to=D (from defaults to 0; e.g. drift:from=0,to=-20ms))`},
	{spec: "drift:from=0,to=-20", wantErr: `skew "drift:from=0,to=-20": to: invalid duration "-20"`},
	{spec: "drift:from=-25h,to=0", wantErr: `skew "drift:from=-25h,to=0": from: duration "-25h" out of range (within ±24h0m0s)`},
}

func TestParseSkew(t *testing.T) {
	for _, tc := range parseCases {
		s, err := ParseSkew(tc.spec)
		if tc.wantErr != "" {
			if err == nil {
				t.Errorf("ParseSkew(%q) = %v, want error %q", tc.spec, s, tc.wantErr)
			} else if err.Error() != tc.wantErr {
				t.Errorf("ParseSkew(%q) error\n got %q\nwant %q", tc.spec, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSkew(%q): %v", tc.spec, err)
			continue
		}
		if got := s.String(); got != tc.want {
			t.Errorf("ParseSkew(%q).String() = %q, want %q", tc.spec, got, tc.want)
		}
	}
}

func TestSkewStringRoundTrips(t *testing.T) {
	for _, tc := range parseCases {
		if tc.wantErr != "" {
			continue
		}
		s, err := ParseSkew(tc.spec)
		if err != nil {
			t.Fatalf("ParseSkew(%q): %v", tc.spec, err)
		}
		again, err := ParseSkew(s.String())
		if err != nil {
			t.Errorf("ParseSkew(%q) (String of %q): %v", s.String(), tc.spec, err)
			continue
		}
		if again != s {
			t.Errorf("round trip of %q: %#v != %#v", tc.spec, again, s)
		}
	}
}

func TestSkewModelsSortedWithUsage(t *testing.T) {
	models := SkewModels()
	var names []string
	for _, m := range models {
		names = append(names, m.Name)
		if m.Usage == "" || strings.Contains(m.Usage, "\n") || !strings.HasPrefix(m.Usage, m.Name) {
			t.Errorf("model %q: usage %q should be one line starting with the name", m.Name, m.Usage)
		}
	}
	if got, want := strings.Join(names, ","), "drift,none,normal,offset,uniform"; got != want {
		t.Errorf("SkewModels() names = %s, want %s", got, want)
	}
}

func TestRegisterSkewTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("registering \"none\" twice did not panic")
		}
	}()
	RegisterSkew("none", "none", func(string) (Skew, error) { return noneSkew{}, nil })
}

// TestSkewDrawsAgreeWithCDF draws 20,000 seeded skews per model (progress uniform over
// the run, as the CDF assumes) and checks the empirical CDF against CDF on a grid.
func TestSkewDrawsAgreeWithCDF(t *testing.T) {
	const n = 20000
	specs := []string{
		"none", "offset:-5ms", "uniform:±10ms", "uniform:1us", "normal:sd=3ms",
		"normal:mean=-2ms,sd=3ms", "drift:from=0,to=-20ms", "drift:from=-5ms,to=15ms",
		"drift:from=7ms,to=7ms",
	}
	for _, spec := range specs {
		t.Run(spec, func(t *testing.T) {
			s, err := ParseSkew(spec)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(42, 7))
			draws := make([]time.Duration, n)
			for i := range draws {
				draws[i] = s.Draw(rng, rng.Float64())
			}
			worst, at := 0.0, time.Duration(0)
			for x := -30 * time.Millisecond; x <= 30*time.Millisecond; x += 250 * time.Microsecond {
				below := 0
				for _, d := range draws {
					if d <= x {
						below++
					}
				}
				if diff := math.Abs(float64(below)/n - s.CDF(x)); diff > worst {
					worst, at = diff, x
				}
			}
			if worst >= 0.02 {
				t.Errorf("max |empirical - CDF| = %.4f at x=%v, want < 0.02", worst, at)
			}
		})
	}
}

func TestSkewCDFValues(t *testing.T) {
	cases := []struct {
		spec string
		x    time.Duration
		want float64
	}{
		{"none", -1, 0}, {"none", 0, 1},
		{"offset:-5ms", -5*time.Millisecond - 1, 0}, {"offset:-5ms", -5 * time.Millisecond, 1},
		{"uniform:±10ms", -10 * time.Millisecond, 0}, {"uniform:±10ms", 0, 0.5},
		{"uniform:±10ms", 5 * time.Millisecond, 0.75}, {"uniform:±10ms", 10 * time.Millisecond, 1},
		{"normal:mean=-2ms,sd=3ms", -2 * time.Millisecond, 0.5},
		{"normal:sd=3ms", 3 * time.Millisecond, 0.8413447460685429},
		{"drift:from=0,to=-20ms", -5 * time.Millisecond, 0.75},
		{"drift:from=0,to=-20ms", -25 * time.Millisecond, 0},
		{"drift:from=0,to=-20ms", 1, 1},
		{"drift:from=7ms,to=7ms", 7*time.Millisecond - 1, 0},
		{"drift:from=7ms,to=7ms", 7 * time.Millisecond, 1},
	}
	for _, tc := range cases {
		s, err := ParseSkew(tc.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.CDF(tc.x); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: CDF(%v) = %v, want %v", tc.spec, tc.x, got, tc.want)
		}
	}
}

func TestDriftFollowsProgressAndClamps(t *testing.T) {
	s, err := ParseSkew("drift:from=0,to=-20ms")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{
		{0, 0}, {0.25, -5 * time.Millisecond}, {1, -20 * time.Millisecond},
		{-3, 0}, {7, -20 * time.Millisecond}, {math.NaN(), 0}, {math.Inf(1), -20 * time.Millisecond},
	} {
		if got := s.Draw(nil, tc.p); got != tc.want {
			t.Errorf("Draw(progress %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

func TestUniformStaysWithinWidth(t *testing.T) {
	s, _ := ParseSkew("uniform:3ns")
	rng := rand.New(rand.NewPCG(1, 1))
	seen := map[time.Duration]int{}
	for range 7000 {
		d := s.Draw(rng, 0)
		if d < -3 || d > 3 {
			t.Fatalf("Draw = %v, outside ±3ns", d)
		}
		seen[d]++
	}
	if len(seen) != 7 {
		t.Errorf("saw %d distinct values, want all 7 of -3..3ns: %v", len(seen), seen)
	}
}

func TestSkewDrawIsDeterministicForSeed(t *testing.T) {
	for _, spec := range []string{"uniform:±10ms", "normal:mean=-2ms,sd=3ms", "drift:from=0,to=-20ms"} {
		s, _ := ParseSkew(spec)
		a, b, c := rand.New(rand.NewPCG(9, 3)), rand.New(rand.NewPCG(9, 3)), rand.New(rand.NewPCG(10, 3))
		same, differs := true, false
		for i := range 1000 {
			p := float64(i) / 1000
			x, y, z := s.Draw(a, p), s.Draw(b, p), s.Draw(c, p)
			same = same && x == y
			differs = differs || x != z
		}
		if !same {
			t.Errorf("%s: two rngs with the same seed drew different skews", spec)
		}
		if !differs && spec != "drift:from=0,to=-20ms" {
			t.Errorf("%s: a different seed drew the same 1000 skews", spec)
		}
	}
}

func FuzzParseSkew(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.spec)
	}
	for _, s := range []string{"uniform:±", "normal:sd=1ns", "normal:sd=24h,mean=-24h", "drift:from=24h,to=-24h",
		"offset:-24h", "uniform:24h", "normal:,", "drift:from=,to=", "\xff:\xfe", "offset:-0", "uniform:1e3ms"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := ParseSkew(spec)
		if err != nil {
			if s != nil {
				t.Fatalf("ParseSkew(%q) returned both %v and error %v", spec, s, err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "skew ") {
				t.Fatalf("ParseSkew(%q) error is not one line starting with skew: %q", spec, msg)
			}
			return
		}
		again, err := ParseSkew(s.String())
		if err != nil || again != s {
			t.Fatalf("ParseSkew(%q).String() = %q does not round-trip: %v, %v", spec, s.String(), again, err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for _, p := range []float64{math.NaN(), math.Inf(-1), -1, 0, 0.5, 1, 2} {
			d := s.Draw(rng, p)
			// A draw lies in the model's support: not below it, not above it.
			if s.CDF(d+1) <= 0 || s.CDF(d-1) >= 1 {
				t.Fatalf("%s: draw %v at progress %v lies outside the support of CDF", s, d, p)
			}
		}
		prev := 0.0
		for x := -2 * MaxSkew; x <= 2*MaxSkew; x += MaxSkew / 8 {
			c := s.CDF(x)
			if math.IsNaN(c) || c < prev || c > 1 {
				t.Fatalf("%s: CDF(%v) = %v after %v: not a CDF", s, x, c, prev)
			}
			prev = c
		}
	})
}
