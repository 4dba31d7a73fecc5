package chaos

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const latUnit, latUS = time.Millisecond, time.Microsecond

var latencyCases = []struct {
	spec    string
	want    Latency
	canon   string
	wantErr string
}{
	{spec: "0", want: Latency{}, canon: "0"},
	{spec: "", want: Latency{}, canon: "0"},
	{spec: "  0s ", want: Latency{}, canon: "0"},
	{spec: "2ms", want: Latency{Delay: 2 * latUnit}, canon: "2ms"},
	{spec: "2ms+500us", want: Latency{Delay: 2 * latUnit, Jitter: 500 * latUS}, canon: "2ms+500µs"},
	{spec: "2ms+0", want: Latency{Delay: 2 * latUnit}, canon: "2ms"},
	{spec: "0+1ms", want: Latency{Jitter: latUnit}, canon: "0+1ms"},
	{spec: "proxy:2ms", want: Latency{Delay: 2 * latUnit}, canon: "2ms"},
	{spec: "proxy:0", want: Latency{}, canon: "0"},
	{spec: "netem:2ms", want: Latency{Delay: 2 * latUnit, Netem: true}, canon: "netem:2ms"},
	{spec: "netem:2ms+500us", want: Latency{Delay: 2 * latUnit, Jitter: 500 * latUS, Netem: true}, canon: "netem:2ms+500µs"},
	{spec: " NETEM: 1.5ms + 250us ", want: Latency{Delay: 1500 * latUS, Jitter: 250 * latUS, Netem: true}, canon: "netem:1.5ms+250µs"},
	{spec: "netem:0", want: Latency{Netem: true}, canon: "netem:0"},
	{spec: "1m", want: Latency{Delay: time.Minute}, canon: "1m0s"},
	{spec: "2", wantErr: `latency "2": delay "2" is not a duration (accepted: 0, 2ms, 2ms+500us (delay plus jitter), proxy:2ms, netem:2ms, netem:2ms+500us)`},
	{spec: "-2ms", wantErr: `latency "-2ms": delay "-2ms" is negative (accepted: 0, 2ms, 2ms+500us (delay plus jitter), proxy:2ms, netem:2ms, netem:2ms+500us)`},
	{spec: "2ms+-1ms", wantErr: `latency "2ms+-1ms": jitter "-1ms" is negative (accepted: 0, 2ms, 2ms+500us (delay plus jitter), proxy:2ms, netem:2ms, netem:2ms+500us)`},
	{spec: "2ms+", wantErr: `latency "2ms+": jitter "" is not a duration (accepted: 0, 2ms, 2ms+500us (delay plus jitter), proxy:2ms, netem:2ms, netem:2ms+500us)`},
	{spec: "+1ms", wantErr: `latency "+1ms": delay "" is not a duration (accepted: 0, 2ms, 2ms+500us (delay plus jitter), proxy:2ms, netem:2ms, netem:2ms+500us)`},
	{spec: "1ms+1ms+1ms", wantErr: `latency "1ms+1ms+1ms": jitter "1ms+1ms" is not a duration (accepted: 0, 2ms, 2ms+500us (delay plus jitter), proxy:2ms, netem:2ms, netem:2ms+500us)`},
	{spec: "2h", wantErr: `latency "2h": delay "2h" is out of range (at most 1m0s) (accepted: 0, 2ms, 2ms+500us (delay plus jitter), proxy:2ms, netem:2ms, netem:2ms+500us)`},
	{spec: "tc:2ms", wantErr: `latency "tc:2ms": unknown path "tc" (known: proxy, netem; accepted: 0, 2ms, 2ms+500us (delay plus jitter), proxy:2ms, netem:2ms, netem:2ms+500us)`},
	{spec: "netem:", wantErr: `latency "netem:": netem: needs a delay (accepted: 0, 2ms, 2ms+500us (delay plus jitter), proxy:2ms, netem:2ms, netem:2ms+500us)`},
	{spec: "netem:netem:2ms", wantErr: `latency "netem:netem:2ms": delay "netem:2ms" is not a duration (accepted: 0, 2ms, 2ms+500us (delay plus jitter), proxy:2ms, netem:2ms, netem:2ms+500us)`},
}

func TestParseLatency(t *testing.T) {
	for _, tc := range latencyCases {
		got, err := ParseLatency(tc.spec)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("ParseLatency(%q) = %+v, %v\nwant error %q", tc.spec, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseLatency(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
			continue
		}
		if s := got.String(); s != tc.canon {
			t.Errorf("ParseLatency(%q).String() = %q, want %q", tc.spec, s, tc.canon)
		}
	}
}

func TestLatencyStringRoundTrips(t *testing.T) {
	for _, tc := range latencyCases {
		if tc.wantErr != "" {
			continue
		}
		again, err := ParseLatency(tc.want.String())
		if err != nil || again != tc.want {
			t.Errorf("ParseLatency(%q) = %+v, %v; want %+v", tc.want.String(), again, err, tc.want)
		}
	}
}

func TestLatencyIsZeroOnlyForPlainLoopback(t *testing.T) {
	for _, tc := range []struct {
		l    Latency
		want bool
	}{
		{Latency{}, true},
		{Latency{Delay: 1}, false},
		{Latency{Jitter: 1}, false},
		{Latency{Netem: true}, false},
	} {
		if got := tc.l.IsZero(); got != tc.want {
			t.Errorf("%+v.IsZero() = %v, want %v", tc.l, got, tc.want)
		}
	}
}

func TestLatencyJSONUsesSpec(t *testing.T) {
	in := struct{ Latency Latency }{Latency{Delay: 2 * latUnit, Jitter: 500 * latUS, Netem: true}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"Latency":"netem:2ms+500µs"}`; got != want {
		t.Fatalf("json = %s, want %s", got, want)
	}
	var out struct{ Latency Latency }
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Fatalf("round trip = %+v, %v; want %+v", out, err, in)
	}
	if err := json.Unmarshal([]byte(`{"Latency":"soon"}`), &out); err == nil || !strings.Contains(err.Error(), `latency "soon"`) {
		t.Fatalf("unmarshal of a bad spec: %v, want an error naming it", err)
	}
}

func FuzzParseLatency(f *testing.F) {
	for _, tc := range latencyCases {
		f.Add(tc.spec)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		l, err := ParseLatency(spec)
		if err != nil {
			if l != (Latency{}) {
				t.Fatalf("ParseLatency(%q) returned both %+v and error %v", spec, l, err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "latency ") {
				t.Fatalf("ParseLatency(%q) error is not one line starting with latency: %q", spec, msg)
			}
			return
		}
		if l.Delay < 0 || l.Jitter < 0 || l.Delay > MaxLatency || l.Jitter > MaxLatency {
			t.Fatalf("ParseLatency(%q) = %+v: out of range", spec, l)
		}
		again, err := ParseLatency(l.String())
		if err != nil || again != l {
			t.Fatalf("ParseLatency(%q).String() = %q does not round-trip: %+v, %v", spec, l.String(), again, err)
		}
	})
}
