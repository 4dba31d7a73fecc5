package matrix

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/internal/spec"
	"github.com/idlerace/idlerace/upstreams"
)

// Upstream is a parsed upstream spec: a kind, the options idlerace gives it, and faults
// composed with '+', e.g. "builtin:close=rst,advertise=off+close-after:n=3".
type Upstream struct {
	Kind          string
	Faults        []chaos.Fault
	Close         chaos.CloseMode
	Advertise     time.Duration // 0: T; < 0: off
	MaxRequests   int
	ResponseBytes int
	ServiceTime   time.Duration
	// Props are what the kind declared of itself (upstreams.Properties).
	Props upstreams.Properties
}

// externalUpstream is the upstream of a cell whose server idlerace did not start
// (CellSpec.Target): nothing to start or configure, and the skew the user told is the
// model's, as for a server that draws its own.
var externalUpstream = Upstream{Kind: "external", Props: upstreams.Properties{DrawsSkews: true}}

// ParseUpstream reads an upstream spec.
func ParseUpstream(text string) (Upstream, error) {
	parts := strings.Split(strings.TrimSpace(text), "+")
	kind, args, _ := strings.Cut(strings.TrimSpace(parts[0]), ":")
	props, found := upstreams.PropertiesOf(kind)
	if !found {
		known := upstreams.Kinds()
		sort.Strings(known)
		return Upstream{}, fmt.Errorf("upstream %q: unknown kind %q (known: %s)", text, kind, strings.Join(known, ", "))
	}
	const usage = "KIND[:close=fin|rst,advertise=D|off,max-requests=N,response-bytes=N,service-time=D][+FAULT...]"
	fail := func(err error) (Upstream, error) {
		return Upstream{}, fmt.Errorf("upstream %q: %v (%s)", text, err, usage)
	}
	o, err := spec.Parse(args)
	if err != nil {
		return fail(err)
	}
	u := Upstream{Kind: kind, Props: props}
	mode, err := o.Enum("close", "fin", "fin", "rst")
	if err != nil {
		return fail(err)
	}
	u.Close = chaos.CloseMode(mode)
	if v, ok := o.String("advertise"); ok {
		if v == "off" {
			u.Advertise = -1
		} else if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			return fail(fmt.Errorf("advertise: %q is not a duration > 0 or off", v))
		} else {
			u.Advertise = d
		}
	}
	if u.MaxRequests, err = o.Int("max-requests", 0, 0, 1_000_000); err != nil {
		return fail(err)
	}
	if u.ResponseBytes, err = o.Int("response-bytes", 0, 0, 64<<20); err != nil {
		return fail(err)
	}
	if u.ServiceTime, err = o.Duration("service-time", 0, true); err != nil {
		return fail(err)
	}
	if err := o.Unused(); err != nil {
		return fail(err)
	}
	for _, fs := range parts[1:] {
		f, err := chaos.ParseFault(strings.TrimSpace(fs))
		if err != nil {
			return fail(err)
		}
		u.Faults = append(u.Faults, f)
	}
	return u, nil
}

// listeningKinds names the upstream kinds that can run inside a netem namespace.
func listeningKinds() string {
	var l []string
	for _, k := range upstreams.Kinds() {
		if p, _ := upstreams.PropertiesOf(k); p.Listens {
			l = append(l, k)
		}
	}
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// Real reports whether the kind is a real server: it cannot draw skews, so the skew
// becomes its configured timeout, and its closes are measured before each cell.
func (u Upstream) Real() bool { return !u.Props.DrawsSkews }

// String is the canonical spec: the kind alone when every option is at its default.
func (u Upstream) String() string {
	var opts []string
	if u.Close == chaos.CloseRST {
		opts = append(opts, "close=rst")
	}
	if u.Advertise < 0 {
		opts = append(opts, "advertise=off")
	} else if u.Advertise > 0 {
		opts = append(opts, "advertise="+u.Advertise.String())
	}
	if u.MaxRequests > 0 {
		opts = append(opts, fmt.Sprintf("max-requests=%d", u.MaxRequests))
	}
	if u.ResponseBytes > 0 {
		opts = append(opts, fmt.Sprintf("response-bytes=%d", u.ResponseBytes))
	}
	if u.ServiceTime > 0 {
		opts = append(opts, "service-time="+u.ServiceTime.String())
	}
	s := u.Kind
	if len(opts) > 0 {
		s += ":" + strings.Join(opts, ",")
	}
	for _, f := range u.Faults {
		s += "+" + f.String()
	}
	return s
}
