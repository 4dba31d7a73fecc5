package upstreams

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idlerace/idlerace/chaos"
)

type fakeUpstream struct{ cfg Config }

func (f *fakeUpstream) Kind() string          { return "fake" }
func (f *fakeUpstream) Version() string       { return "fake/1" }
func (f *fakeUpstream) URL() string           { return "http://127.0.0.1:1" }
func (f *fakeUpstream) Stats() Stats          { return Stats{} }
func (f *fakeUpstream) Closes() []CloseRecord { return nil }
func (f *fakeUpstream) Close() error          { return nil }

func init() {
	Register("fake", Properties{}, func(_ context.Context, cfg Config) (Upstream, error) {
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		return &fakeUpstream{cfg: cfg}, nil
	})
	Register("broken", Properties{}, func(context.Context, Config) (Upstream, error) { return nil, nil })
}

func TestStartUsesRegisteredKind(t *testing.T) {
	u, err := Start(context.Background(), "fake", Config{IdleTimeout: time.Second, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if f, ok := u.(*fakeUpstream); !ok || f.cfg.Seed != 3 {
		t.Errorf("Start returned %#v, want the fake with the given config", u)
	}
}

func TestStartErrors(t *testing.T) {
	for _, tc := range []struct {
		kind string
		cfg  Config
		want string
	}{
		{"nginx", Config{IdleTimeout: time.Second}, `upstream "nginx": unknown kind (known: broken, fake)`},
		{"fake", Config{}, `upstream "fake": upstream config: IdleTimeout must be > 0, got 0s`},
		{"broken", Config{IdleTimeout: time.Second}, `upstream broken: start returned no server`},
	} {
		_, err := Start(context.Background(), tc.kind, tc.cfg)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Start(%q): %v, want %q", tc.kind, err, tc.want)
		}
	}
}

func TestKindsSorted(t *testing.T) {
	if got := Kinds(); !slices.Equal(got, []string{"broken", "fake"}) {
		t.Errorf("Kinds() = %v", got)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("registering fake twice did not panic")
		}
	}()
	Register("fake", Properties{}, func(context.Context, Config) (Upstream, error) { return nil, errors.New("x") })
}

func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"", true}, {"127.0.0.1:0", true}, {"127.8.9.10:8080", true}, {"[::1]:0", true}, {"localhost:0", true},
		{"0.0.0.0:0", false}, {":0", false}, {"[::]:0", false}, {"10.0.0.1:80", false},
		{"example.com:80", false}, {"127.0.0.1", false}, {"[::ffff:8.8.8.8]:53", false},
	} {
		err := CheckLoopback(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("CheckLoopback(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), `"`+tc.addr+`"`) {
			t.Errorf("CheckLoopback(%q) error %q does not name the address", tc.addr, err)
		}
	}
}

func TestValidateNamesTheField(t *testing.T) {
	base := Config{IdleTimeout: time.Second}
	if err := base.Validate(); err != nil {
		t.Fatalf("minimal config: %v", err)
	}
	for field, cfg := range map[string]Config{
		"IdleTimeout":   {},
		"MaxRequests":   {IdleTimeout: time.Second, MaxRequests: -1},
		"ResponseBytes": {IdleTimeout: time.Second, ResponseBytes: -2},
		"ServiceTime":   {IdleTimeout: time.Second, ServiceTime: -time.Millisecond},
		"RunDuration":   {IdleTimeout: time.Second, RunDuration: -time.Second},
		"Close":         {IdleTimeout: time.Second, Close: "RST"},
		"Addr":          {IdleTimeout: time.Second, Addr: "0.0.0.0:80"},
		"Faults[1]":     {IdleTimeout: time.Second, Faults: []chaos.Fault{chaos.RST{}, nil}},
		"Faults[2]":     {IdleTimeout: time.Second, Faults: []chaos.Fault{chaos.CloseAfter{N: 1}, chaos.RST{}, chaos.CloseAfter{N: 2}}},
	} {
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), "upstream config: "+field) {
			t.Errorf("Validate(%+v) = %v, want an error naming %s", cfg, err, field)
		}
	}
}
