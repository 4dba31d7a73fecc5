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

// Upstream is a parsed upstream spec: a kind and the options idlerace gives it, e.g.
// "builtin:close=rst,advertise=off,max-requests=100".
type Upstream struct {
	Kind          string
	Close         chaos.CloseMode
	Advertise     time.Duration // 0: T; < 0: off
	MaxRequests   int
	ResponseBytes int
	ServiceTime   time.Duration
}

// ParseUpstream reads an upstream spec.
func ParseUpstream(text string) (Upstream, error) {
	kind, args, _ := strings.Cut(strings.TrimSpace(text), ":")
	known := upstreams.Kinds()
	sort.Strings(known)
	found := false
	for _, k := range known {
		found = found || k == kind
	}
	if !found {
		return Upstream{}, fmt.Errorf("upstream %q: unknown kind %q (known: %s)", text, kind, strings.Join(known, ", "))
	}
	const usage = "KIND[:close=fin|rst,advertise=D|off,max-requests=N,response-bytes=N,service-time=D]"
	fail := func(err error) (Upstream, error) {
		return Upstream{}, fmt.Errorf("upstream %q: %v (%s)", text, err, usage)
	}
	o, err := spec.Parse(args)
	if err != nil {
		return fail(err)
	}
	u := Upstream{Kind: kind}
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
	return u, nil
}

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
	if len(opts) == 0 {
		return u.Kind
	}
	return u.Kind + ":" + strings.Join(opts, ",")
}
