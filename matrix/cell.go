package matrix

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/idlerace/idlerace/attack"
	"github.com/idlerace/idlerace/attack/pool"
	"github.com/idlerace/idlerace/chaos"
	"github.com/idlerace/idlerace/hops"
	"github.com/idlerace/idlerace/matrix/model"
	"github.com/idlerace/idlerace/results"
	"github.com/idlerace/idlerace/upstreams"
	_ "github.com/idlerace/idlerace/upstreams/builtin" // registers the builtin upstream
	"github.com/idlerace/idlerace/upstreams/wire"
)

// CellSpec is one combination to measure.
type CellSpec struct {
	Strategy string
	Upstream string // an upstream spec: "builtin", "builtin:close=rst,advertise=off"
	// Target says the server is one idlerace did not start (attack --target, probe):
	// Upstream is then ignored, and the cell's upstream reads "external".
	Target  bool
	Skew    string
	Latency string // latency path: "0" (loopback), "2ms" (delay proxy), "netem:2ms"
	// Proxy is a hop spec ("nginx:keepalive_timeout=4s"; "" or "none" for no hop): a
	// reverse proxy between the load and the upstream, whose pool is then under test.
	Proxy string
	Load  string
	// IdleTimeout is T: the builtin upstream closes at T+s, the client believes T.
	IdleTimeout time.Duration
	Method      string
	// Path, Header and Body are the rest of the request (a matrix's request block,
	// attack's -H and --body): Path and query on the server ("" is "/"), headers beside
	// idlerace's own, and the body (nil is attack.DefaultBody(Method)).
	Path   string
	Header http.Header
	Body   []byte
	// Targets, when set, are the requests the load goes round over (attack --targets);
	// Method is then the first one's, for the model.
	Targets []attack.Request
	// OwnT says T was set for this cell alone (a matrix include entry), not for the whole
	// matrix: the cell's ID then names it, so cells that differ only in T stay apart.
	OwnT   bool
	Seed   uint64
	Repeat int
	// RequestTimeout bounds each request from its write to the end of its response
	// (pool.Config.RequestTimeout; 0 means its default, 30s like vegeta's -timeout).
	// Not part of the cell's identity: it bounds a broken server, not the race.
	RequestTimeout time.Duration
	// Wire says whether the cell captures its server's segments (run --wire): "auto"
	// (or "") where the server keeps no account of its own or runs in a process of its
	// own (gonet), behind a proxy, in a sweep within 20 ms of the close, and with a pcap
	// asked for; "on" for every cell (beside the builtin too); "off" never.
	Wire string
}

// Prepared is a CellSpec whose parts parsed.
type Prepared struct {
	Spec     CellSpec
	Strategy *pool.Spec
	Upstream Upstream
	Skew     chaos.Skew
	Load     attack.Load
	Latency  chaos.Latency
	Proxy    hops.Spec
	// Path is the cell's chain of hops from the upstream outwards: the latency's (the
	// delay proxy or netem), then the proxy's.
	Path []hops.Spec
	// offset is the skew's fixed offset, for real servers (configured = T + offset).
	offset time.Duration
}

// BadInput marks an error in what the user asked for (exit code 2), as opposed to a run
// that broke (exit code 3).
type BadInput struct{ Err error }

func (e *BadInput) Error() string { return e.Err.Error() }
func (e *BadInput) Unwrap() error { return e.Err }

func bad(err error) error { return &BadInput{Err: err} }

// Prepare parses every part of the spec, so that bad input is reported before anything
// starts.
func Prepare(s CellSpec) (*Prepared, error) {
	if s.Upstream == "" {
		s.Upstream = "builtin"
	}
	if s.Method == "" {
		s.Method = "POST"
	}
	p := &Prepared{Spec: s}
	var err error
	if s.IdleTimeout <= 0 {
		return nil, bad(fmt.Errorf("idle timeout %s: must be > 0 (a duration such as 100ms or 5s)", s.IdleTimeout))
	}
	if s.RequestTimeout < 0 {
		return nil, bad(fmt.Errorf("request timeout %s: must be > 0 (a duration such as 1s or 30s)", s.RequestTimeout))
	}
	switch s.Wire {
	case "", WireAuto, WireOn, WireOff:
	default:
		return nil, bad(fmt.Errorf("--wire %q: want auto, on or off", s.Wire))
	}
	if p.Strategy, err = pool.Parse(s.Strategy); err != nil {
		return nil, bad(err)
	}
	if p.Skew, err = chaos.ParseSkew(s.Skew); err != nil {
		return nil, bad(err)
	}
	if p.Load, err = attack.ParseLoad(s.Load); err != nil {
		return nil, bad(err)
	}
	if p.Latency, err = chaos.ParseLatency(s.Latency); err != nil {
		return nil, bad(err)
	}
	if p.Proxy, err = hops.Parse(s.Proxy); err != nil {
		return nil, bad(err)
	}
	if h := p.Latency.Hop(); h != "" {
		lh, err := hops.ParsePath(h)
		if err != nil {
			return nil, bad(fmt.Errorf("latency %s: %w", p.Latency, err))
		}
		p.Path = append(p.Path, lh)
	}
	if !p.Proxy.IsNone() {
		p.Path = append(p.Path, p.Proxy)
	}
	encloses := slices.ContainsFunc(p.Path, func(h hops.Spec) bool { return h.Props.Encloses })
	if encloses && len(p.Path) > 1 {
		return nil, bad(fmt.Errorf("proxy %s with latency %s: the netem path's namespace holds only the builtin upstream; use the delay proxy (latency %s)", p.Proxy.Raw, p.Latency, chaos.Latency{Delay: p.Latency.Delay, Jitter: p.Latency.Jitter}))
	}
	if s.Target {
		p.Upstream = externalUpstream
	} else if p.Upstream, err = ParseUpstream(s.Upstream); err != nil {
		return nil, bad(err)
	}
	if encloses && !p.Upstream.Props.Listens {
		return nil, bad(fmt.Errorf("latency %s with upstream %s: the netem path runs the server inside a network namespace, and only %s can listen there (use the delay proxy: latency %s)", p.Latency, p.Upstream, listeningKinds(), chaos.Latency{Delay: p.Latency.Delay, Jitter: p.Latency.Jitter}))
	}
	if p.Upstream.Real() {
		name := p.Skew.String()
		switch {
		case name == "none":
		case strings.HasPrefix(name, "offset:"):
			p.offset, _ = time.ParseDuration(strings.TrimPrefix(name, "offset:"))
		default:
			return nil, bad(fmt.Errorf("skew %q with upstream %s: a real server has one timeout, so only none or offset:D apply (configured = T + D); its own close jitter is measured", name, p.Upstream))
		}
		if s.IdleTimeout+p.offset <= 0 {
			return nil, bad(fmt.Errorf("skew %q: T %s + offset is not a timeout > 0", name, s.IdleTimeout))
		}
	}
	return p, nil
}

// ID is the cell's stable identifier: its five axes, repeat, and the settings that set
// it apart from its neighbours where they are not the default (a method other than POST,
// a T of its own).
func (p *Prepared) ID() string {
	var settings []string
	if p.Spec.Method != http.MethodPost {
		settings = append(settings, strings.ToLower(p.Spec.Method))
	}
	if p.Spec.OwnT {
		settings = append(settings, "t="+p.Spec.IdleTimeout.String())
	}
	if !p.Proxy.IsNone() {
		settings = append(settings, "proxy="+p.Proxy.Raw)
	}
	return results.CellID(p.Strategy.String(), p.Upstream.String(), p.Skew.String(), p.Latency.String(), p.Load.String(), p.Spec.Repeat, settings...)
}

// Outcome is a measured cell with its latency histogram.
type Outcome struct {
	Cell    results.Cell
	Latency *hdrhistogram.Histogram
	Started time.Time
}

// RunCell measures one prepared cell against a fresh upstream of its kind. enc, when
// not nil, receives every request as a vegeta result.
func RunCell(ctx context.Context, p *Prepared, enc vegeta.Encoder) (*Outcome, error) {
	return runCell(ctx, p, enc, nil, nil)
}

// runCell measures one cell; pcap, when set, receives the capture of the server's
// segments (--pcap).
func runCell(ctx context.Context, p *Prepared, enc vegeta.Encoder, obs attack.Observer, pcap io.Writer) (*Outcome, error) {
	s := p.Spec
	u := p.Upstream
	// A hop that encloses the upstream (netem's namespace) comes first: the upstream
	// listens inside it and the load dials into it. Removed when the cell ends, however.
	path, err := encloseUpstream(ctx, p, s.Seed+uint64(s.Repeat))
	if err != nil {
		return nil, err
	}
	defer path.close()
	configured, skew := s.IdleTimeout, p.Skew
	if u.Real() {
		// A real server has one timeout: the skew is the difference between what it is
		// configured with and what the client believes (skew = configured - believed).
		configured, skew = s.IdleTimeout+p.offset, nil
	}
	up, err := upstreams.Start(ctx, u.Kind, upstreams.Config{
		IdleTimeout:   configured,
		Skew:          skew,
		Faults:        u.Faults,
		Seed:          s.Seed + uint64(s.Repeat),
		Close:         u.Close,
		Advertise:     u.Advertise,
		MaxRequests:   u.MaxRequests,
		ResponseBytes: u.ResponseBytes,
		ServiceTime:   u.ServiceTime,
		RunDuration:   p.Load.Duration(s.IdleTimeout),
		Listen:        path.listen(),
	})
	if err != nil {
		return nil, fmt.Errorf("upstream %s: %w", u, err)
	}
	var measured *empiricalSkew
	var jitter []time.Duration
	var keepAlive string
	if u.Real() {
		// How does this server really close? A few idle connections, measured from the
		// client before the cell, give the close-time distribution the model uses and
		// the jitter the summary reports.
		m, err := upstreams.MeasureIdleCloses(ctx, up.URL()+"/", closeSamples, 2*configured+2*time.Second)
		closes := m.Closes
		keepAlive = m.KeepAlive
		if len(closes) == 0 {
			_ = up.Close()
			return nil, fmt.Errorf("upstream %s: measuring its idle closes: %w", u, err)
		}
		measured = newEmpiricalSkew(closes, s.IdleTimeout)
		for _, c := range closes {
			jitter = append(jitter, c-configured)
		}
	}
	// The rest of the chain in front of the upstream: the load talks to its front.
	if err := path.startInFront(ctx, p, strings.TrimPrefix(up.URL(), "http://"), s.Seed+uint64(s.Repeat)); err != nil {
		_ = up.Close()
		return nil, err
	}
	target := "http://" + path.front + "/"
	// The server's closes are matched with the client's failures and wake-ups as they
	// come, so that a cell of any length keeps only what is still unmatched.
	rt := s.RequestTimeout
	if rt <= 0 {
		rt = pool.DefaultRequestTimeout
	}
	// A request lives at most a request timeout per attempt; past that no retry can run
	// it again, and the server may forget it (a long cell's server then stays bounded).
	lifetime := time.Duration(1+p.Strategy.Behaviour().Retries)*rt + 5*time.Second
	if er, ok := up.(upstreams.ExecutionRememberer); ok {
		er.RememberExecutions(lifetime)
	}
	// The server is seen on the wire (inside a netem namespace, on the namespace's
	// loopback): for one with no account of its own (nginx, uvicorn, node) the wire
	// is the account; beside one that keeps its own (builtin, gonet; --wire on or
	// --pcap) it adds what only the wire shows (FIN or RST, requests after the FIN).
	streamer, streaming := up.(upstreams.CloseStreamer)
	view := viewSelf
	var capture *wire.Capture
	gaps := newDurationSample(3) // the server's gaps before reuse, on the wire
	reuses := newReuseLog()
	need := capturing{mode: s.Wire, selfView: streaming, pcap: pcap != nil, hop: path.pool() != nil, ownProcess: u.Real(), narrow: narrowLoad(p.Load, s.IdleTimeout)}
	if wanted, why := need.want(); !wanted && !streaming {
		view = why
	} else if wanted {
		capture, why = path.capture(up, configured, pcap, reuses.adder(gaps))
		switch {
		case !streaming && capture != nil:
			streamer, streaming, view = capture.Recorder(), true, viewWire
		case !streaming:
			view = why
		}
	}
	var feed *closeFeed
	var matcher *closeMatcher
	if streaming {
		feed = feedMatcher(streamer, lifetime, path.mapper(), behind(path, s.IdleTimeout))
		matcher = feed.matcher
	}
	// Where the close lands as the client sees it, for sweep:focus and window_probes:
	// the median of the measured closes of a real server, T + the skew's median for an
	// in-process one.
	var closeSkew chaos.Skew = p.Skew
	if measured != nil {
		closeSkew = measured
	}
	located := s.IdleTimeout + skewQuantile(closeSkew, 0.5)
	out, rec, err := measure(ctx, p, target, enc, obs, path.dial(), matcher, located)
	var wireStats *results.Wire
	if capture != nil {
		// Stopped before the server is: its shutdown's closes are no part of the cell.
		ws, cerr := capture.Stop()
		if cerr != nil && err == nil {
			err = fmt.Errorf("upstream %s: %w", u, cerr)
		}
		wireStats = wireOf(ws)
	}
	// The delay proxy's own scheduling adds to d; the model is told the delay the path
	// really had.
	oneWay, finLead := path.oneWay()
	var lags clientLags
	if rec != nil {
		lags = reuses.lags(rec.Checkouts)
		if path.enclosure() != nil && lags.n > 0 {
			// Inside netem's namespace the wire stamps a segment after the qdisc held
			// it: a request arrives a one-way delay after it left, which the model
			// counts apart (2d).
			lags.lessWrite(oneWay)
		}
		lags.put(wireStats)
	}
	path.stopRelays()
	if err != nil {
		_ = up.Close()
		return nil, err
	}
	if err := up.Close(); err != nil {
		return nil, fmt.Errorf("upstream %s: stop: %w", u, err)
	}
	st := up.Stats()
	if view == viewWire {
		st = wireView(st, capture.Recorder().Stats())
	}
	out.Cell.Server = results.Server{
		Accepted:            st.Accepted,
		IdleCloses:          st.IdleCloses,
		ClosesWithUnread:    st.ClosesWithUnread,
		Executed:            st.Executed,
		Duplicates:          st.Duplicates,
		CloseLateUS:         results.LatencyUS{P50: st.CloseLateP50US, P99: st.CloseLateP99US, Max: st.CloseLateMaxUS},
		Version:             up.Version(),
		ConfiguredTimeoutMS: float64(configured) / float64(time.Millisecond),
		View:                view,
		Wire:                wireStats,
	}
	if feed != nil {
		out.Cell.Server.IdleCloseMS = feed.spread()
	}
	out.Cell.Server.ReuseGapMS = gaps.spread()
	retries, err := hopAccount(path.pool(), p.Proxy, &out.Cell)
	if err != nil {
		return nil, err
	}
	if jitter != nil {
		out.Cell.Server.CloseJitterUS = durationsUS(jitter)
		out.Cell.Server.CloseSamples = len(jitter)
		out.Cell.Server.KeepAlive = keepAlive
	}
	finPath := oneWay - finLead // the delay proxy does not jitter FINs
	var m matchResult
	switch {
	case streaming:
		m = feed.finish(finPath, s.IdleTimeout)
		out.Cell.Server.UnmatchedFailures = m.unmatched
		ownErrors(&out.Cell, rec, m)
	case u.Real():
		out.Cell.Server.UnmatchedFailures = -1 // no view of the server's closes (view says why)
	default:
		out.Cell.Server.UnmatchedFailures = Unmatched(rec.StaleConns, up.Closes())
	}
	// After the proxy's own errors left the stale count: they leave nothing on the wire.
	out.Cell.HiddenRetries = hiddenRetries(wireStats, out.Cell.Stale, retries)
	closeLag, stopLag, notify := m.closeLag, m.stopLag, m.notifyLag
	if m.notifyN > 0 {
		out.Cell.NotifyLagUS = float64(notify) / float64(time.Microsecond)
		out.Cell.NotifySamples = m.notifyN
	}
	notifyLags := m.notifyLags
	if lag, ok := peerNotice(&out.Cell, path.pool() != nil && p.Proxy.Behaviour.Watch, finPath); ok {
		notify, notifyLags = lag, nil
	}
	var lead time.Duration // how long before its closes the server stopped reading
	if measured != nil && feed != nil {
		// The model of a real server: the idle closes it made under this cell's load,
		// rather than the few measured on idle connections before it, once there are
		// enough of them.
		if idle := feed.idlePeriods(); len(idle) >= closeSamples {
			// In the server's clock a client gap is longer by both lags.
			frame := lags.read + lags.write
			measured = cellClosesSkew(idle, rec.Gaps.Weighted(), frame, s.IdleTimeout)
			out.Cell.Server.ModelCloses = len(idle)
			if wireStats != nil {
				lead = stopLead(wireStats.IdleUnread, measured, rec.Gaps.Weighted(), frame, s.IdleTimeout)
				wireStats.StopLeadUS = float64(lead) / float64(time.Microsecond)
			}
		}
	}
	if measured != nil {
		// The measured closes already hold the server's lateness.
		// They are the closes as the wire shows them: the server stopped reading a lead
		// before (a negative stop lag).
		predict(p, &out.Cell, rec, observed{skew: measured, oneWay: oneWay, finLead: finLead, stopLag: -lead, notify: notify, notifyLags: notifyLags, lags: lags, keepAlive: keepAlive, measuredKeepAlive: true})
	} else {
		predict(p, &out.Cell, rec, observed{skew: p.Skew, oneWay: oneWay, finLead: finLead, closeLag: closeLag, stopLag: stopLag, closeLags: m.closeLags, stopLags: m.stopLags, notify: notify, notifyLags: notifyLags, lags: lags})
	}
	countWindowProbes(&out.Cell, rec, located)
	return out, nil
}

// RunTarget measures one prepared cell against a server idlerace did not start: there is
// no server view, and the model assumes the cell's skew (none unless told otherwise).
func RunTarget(ctx context.Context, p *Prepared, target string, enc vegeta.Encoder) (*Outcome, error) {
	// A server on loopback is seen on the wire, as the real kinds are.
	capture, view := (*wire.Capture)(nil), ""
	gaps := newDurationSample(3) // the server's gaps before reuse, on the wire
	reuses := newReuseLog()
	if wanted, why := (capturing{mode: p.Spec.Wire}).want(); wanted {
		capture, view = captureURL(target, p.Spec.IdleTimeout, nil, reuses.adder(gaps))
	} else {
		view = why
	}
	if capture != nil {
		defer capture.Stop()
	}
	for _, h := range p.Path {
		if h.Props.Encloses {
			return nil, fmt.Errorf("latency %s: the netem path needs the server inside idlerace's namespace; against a target use the delay proxy (latency 2ms)", p.Latency)
		}
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	// As in a cell: the load talks to the chain's front, whose pool to the target races.
	path := &cellPath{}
	if err := path.startInFront(ctx, p, u.Host, p.Spec.Seed); err != nil {
		return nil, err
	}
	defer path.close()
	u.Host = path.front
	target = u.String()
	var feed *closeFeed
	var matcher *closeMatcher
	if capture != nil {
		rt := p.Spec.RequestTimeout
		if rt <= 0 {
			rt = pool.DefaultRequestTimeout
		}
		feed = feedMatcher(capture.Recorder(), time.Duration(1+p.Strategy.Behaviour().Retries)*rt+5*time.Second, path.mapper(), behind(path, p.Spec.IdleTimeout))
		matcher = feed.matcher
	}
	located := p.Spec.IdleTimeout + skewQuantile(p.Skew, 0.5) // the close as the user told it
	out, rec, err := measure(ctx, p, target, enc, nil, nil, matcher, located)
	if err != nil {
		return nil, err
	}
	out.Cell.Server = results.Server{View: view, UnmatchedFailures: -1}
	oneWay, finLead := path.oneWay()
	var m matchResult
	if capture != nil {
		ws, err := capture.Stop()
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", target, err)
		}
		st := capture.Recorder().Stats()
		m = feed.finish(oneWay-finLead, p.Spec.IdleTimeout)
		out.Cell.Server = results.Server{
			Accepted: st.Accepted, IdleCloses: st.IdleCloses, ClosesWithUnread: st.ClosesWithUnread,
			Executed: st.Executed, UnmatchedFailures: m.unmatched,
			CloseLateUS: results.LatencyUS{P50: st.CloseLateP50US, P99: st.CloseLateP99US, Max: st.CloseLateMaxUS},
			View:        view,
			Wire:        wireOf(ws),
			IdleCloseMS: feed.spread(),
			ReuseGapMS:  gaps.spread(),
		}
	}
	retries, err := hopAccount(path.pool(), p.Proxy, &out.Cell)
	if err != nil {
		return nil, err
	}
	ownErrors(&out.Cell, rec, m)
	out.Cell.HiddenRetries = hiddenRetries(out.Cell.Server.Wire, out.Cell.Stale, retries)
	notify, _ := peerNotice(&out.Cell, path.pool() != nil && p.Proxy.Behaviour.Watch, oneWay-finLead)
	lags := reuses.lags(rec.Checkouts)
	lags.put(out.Cell.Server.Wire)
	predict(p, &out.Cell, rec, observed{skew: p.Skew, oneWay: oneWay, finLead: finLead, notify: notify, lags: lags})
	countWindowProbes(&out.Cell, rec, located)
	return out, nil
}

// measure runs the attack of one cell against target and fills the client's side of
// the cell.
func measure(ctx context.Context, p *Prepared, target string, enc vegeta.Encoder, obs attack.Observer, dial func(ctx context.Context, network, addr string) (net.Conn, error), m *closeMatcher, located time.Duration) (*Outcome, *attack.Recorder, error) {
	s := p.Spec
	// A client kind's agent starts before the load's clock (and the cell's) does.
	for _, part := range p.Strategy.Parts {
		if w, ok := part.(interface {
			Warm() error
			Cool()
		}); ok {
			if err := w.Warm(); err != nil {
				return nil, nil, err
			}
			defer w.Cool()
		}
	}
	started := time.Now()
	cfg := pool.Config{IdleTimeout: s.IdleTimeout, RequestTimeout: s.RequestTimeout, Dial: dial}
	if m != nil {
		cfg.OnWatchClose, cfg.OnClose = m.wakeUp, m.clientClosed
		for _, part := range p.Strategy.Parts {
			if _, ok := part.(interface{ ClosesUnseen() }); ok {
				m.expireOnServerClose()
			}
		}
	}
	body := s.Body
	if body == nil {
		body = attack.DefaultBody(s.Method)
	}
	env := &attack.Env{
		Target:       withPath(target, s.Path),
		Method:       s.Method,
		Body:         body,
		Header:       s.Header,
		Targets:      s.Targets,
		IdleTimeout:  s.IdleTimeout,
		LocatedClose: located,
		StaleGateway: !p.Proxy.IsNone(),
		Seed:         s.Seed + uint64(s.Repeat),
		RunID:        fmt.Sprintf("%x", started.UnixNano()),
		NewTransport: func() pool.Transport {
			return pool.New(p.Strategy, cfg)
		},
	}
	rec := attack.NewRecorder(p.ID(), enc)
	rec.Observer = obs
	if m != nil {
		// Behind a proxy the matcher matches by time (behindHop): the load's stale
		// failures are the proxy's doing (its 502, or HAProxy and Apache closing the
		// load's connection when their server connection met a close).
		rec.OnStale = m.failure
	}
	if err := attack.Run(ctx, p.Load, env, rec); err != nil {
		return nil, nil, err
	}
	if rec.EncodeErr != nil {
		return nil, nil, fmt.Errorf("writing results: %w", rec.EncodeErr)
	}
	ps := env.Stats()
	c := results.Cell{
		ID:               p.ID(),
		Strategy:         p.Strategy.String(),
		Upstream:         p.Upstream.String(),
		Skew:             p.Skew.String(),
		Latency:          p.Latency.String(),
		Load:             p.Load.String(),
		IdleTimeoutMS:    float64(s.IdleTimeout) / float64(time.Millisecond),
		Proxy:            proxyName(p.Proxy),
		Method:           methodUnlessPost(s.Method),
		Repeat:           s.Repeat,
		Requests:         rec.Requests,
		OK:               rec.OK,
		Failures:         rec.Failures,
		Stale:            rec.Stale,
		Retries:          rec.Retries,
		Primes:           rec.Primes,
		NewConns:         ps.NewConns,
		Discards:         ps.Discards + ps.WatchCloses,
		Reused:           rec.Reused,
		Status:           rec.Status,
		ClosingResponses: rec.ClosingResponses,
		LatencyUS:        results.LatencyFrom(rec.Latency),
		DurationMS:       float64(time.Since(started)) / float64(time.Millisecond),
	}
	for _, part := range p.Strategy.Parts {
		if ck, ok := part.(interface {
			Client() (string, string, string)
		}); ok {
			if kind, lib, ver := ck.Client(); kind != "" {
				c.Client = &results.Client{Kind: kind, Library: lib, Version: ver}
			}
		}
		if l, ok := part.(interface {
			Learned() (int, time.Duration, int64, time.Duration, bool)
		}); ok {
			if closes, limit, after, took, learned := l.Learned(); learned {
				ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
				c.Learned = &results.Learned{Closes: closes, LimitMS: ms(limit), AfterResponses: after, TookMS: ms(took)}
			}
		}
	}
	c.Finish()
	return &Outcome{Cell: c, Latency: rec.Latency, Started: started}, rec, nil
}

// observed is what a cell measured of its server and path, beside the requests: the
// model's inputs (see model.Params). Zero lags are unknown: the model's defaults.
type observed struct {
	skew              chaos.Skew
	oneWay            time.Duration
	finLead           time.Duration // how much sooner a FIN crosses the path than data
	closeLag, stopLag time.Duration
	// closeLags and stopLags are their distributions, where measured (model.Params).
	closeLags, stopLags []time.Duration
	notify              time.Duration   // the watchers' notify lag
	notifyLags          []time.Duration // its quantiles, where measured
	lags                clientLags      // the client's read and write lags, off the wire
	// keepAlive is the Keep-Alive header a real server was seen to send ("" none);
	// measured says it was looked at (a real server), so that its absence counts.
	keepAlive         string
	measuredKeepAlive bool
}

// predict puts the model's prediction for the cell's realised gaps beside the
// measurement.
func predict(p *Prepared, c *results.Cell, rec *attack.Recorder, o observed) {
	c.OneWayUS = float64(o.oneWay) / float64(time.Microsecond)
	c.ReadLagUS = float64(o.lags.read) / float64(time.Microsecond)
	c.WriteLagUS = float64(o.lags.write) / float64(time.Microsecond)
	hint := p.Upstream.Advertise
	if hint == 0 {
		hint = p.Spec.IdleTimeout
	}
	if o.measuredKeepAlive {
		// A real server's hint is what it sent, if anything (nginx, uvicorn and Go's
		// net/http send none by default).
		hint = -1
		if ms, ok := results.AdvertisedTimeoutMS(o.keepAlive); ok {
			hint = time.Duration(ms * float64(time.Millisecond))
		}
	}
	method := p.Spec.Method
	if method == "" {
		method = "POST"
	}
	params := model.Params{
		IdleTimeout: p.Spec.IdleTimeout,
		Skew:        o.skew,
		Latency:     o.oneWay,
		Hint:        max(hint, 0),
		Method:      method,
		CloseLag:    o.closeLag,
		StopLag:     o.stopLag,
		CloseLags:   o.closeLags,
		StopLags:    o.stopLags,
		NotifyLag:   o.notify,
		NotifyLags:  o.notifyLags,
		ReadLag:     o.lags.read,
		WriteLag:    o.lags.write,
		ReadLags:    o.lags.readQ,
		ReachLags:   o.lags.reachQ,
	}
	// The delay proxy jitters data, not FINs: on average a FIN crosses Jitter/2 sooner.
	params.FINLead = o.finLead
	b := p.Strategy.Behaviour()
	if !p.Proxy.IsNone() {
		// Behind a proxy the load's connections never idle out: the pool that races is
		// the proxy's, on gaps that are the load's as long as one lane drives one
		// upstream connection (a proxy hands a request its most recently used idle
		// connection, so many lanes share the youngest).
		b = p.Proxy.Behaviour
	}
	params = params.Prepare() // once, for the prediction and the curve's
	c.PredictedResetRate, c.PredictedRetryRate = model.PredictWeighted(b, params, rec.Gaps.Weighted(), rec.Requests)
	c.Curve = curve(b, params, rec)
	c.WindowMS = results.WindowMS(c.Curve, c.IdleTimeoutMS)
	c.ModelWindowMS = results.ModelWindowMS(c.Curve, c.IdleTimeoutMS)
}

// hopAccount stops the cell's proxy, if any, and puts its own account in c; it returns
// the cell's retries with the proxy's replays, which its log says, so they are not
// hidden ones. The proxy stops before its counts are read (a log line is written as a
// request ends, a moment after its response) and after the capture (its shutdown's
// closes are no part of the cell).
func hopAccount(hop hops.Hop, spec hops.Spec, c *results.Cell) (retries int64, err error) {
	retries = c.Retries
	if hop == nil {
		return retries, nil
	}
	if err := hop.Close(); err != nil {
		return 0, fmt.Errorf("proxy %s: stop: %w", spec.Raw, err)
	}
	hs := hop.Stats()
	c.Hop = &results.Hop{Kind: hop.Kind(), Version: hop.Version(), Requests: hs.Requests, BadGateway: hs.BadGateway, UpstreamRetries: hs.UpstreamTries}
	return retries + hs.UpstreamTries, nil
}

// behind is the matcher's lead behind a reverse proxy in path (hopLead), 0 without one.
func behind(path *cellPath, t time.Duration) time.Duration {
	if path.pool() == nil {
		return 0
	}
	return hopLead(t)
}

// ownErrors takes out of the cell's stale failures the proxy's 502s that no close of the
// server's explained (matchResult.ownErrors): the proxy's own errors, reported apart in
// hop.own_errors, their gaps no longer stale on the race curve.
func ownErrors(c *results.Cell, rec *attack.Recorder, m matchResult) {
	if c.Hop == nil || m.ownErrors == 0 {
		return
	}
	c.Hop.OwnErrors = m.ownErrors
	c.Stale -= m.ownErrors
	for _, g := range m.ownGaps {
		rec.Gaps.Unstale(g)
	}
	c.Finish()
}

// proxyName is a cell's proxy as the summary names it: "" for none.
func proxyName(h hops.Spec) string {
	if h.IsNone() {
		return ""
	}
	return h.Raw
}

// Unmatched counts stale failures that no close by the server explains. A failure on
// local port P at time t is explained when the connection from port P that the server
// accepted last before t was closed by the server itself (for idleness, or by a fault):
// the server gave up on that connection before it read the request.
func Unmatched(failures []attack.StaleConn, closes []upstreams.CloseRecord) int64 {
	byPort := map[int][]upstreams.CloseRecord{}
	for _, c := range closes {
		byPort[c.RemotePort] = append(byPort[c.RemotePort], c)
	}
	for _, l := range byPort {
		sort.Slice(l, func(i, j int) bool { return l[i].Accepted.Before(l[j].Accepted) })
	}
	var n int64
	for _, f := range failures {
		var match *upstreams.CloseRecord
		for i, c := range byPort[f.LocalPort] {
			if c.Accepted.After(f.Start) {
				break
			}
			match = &byPort[f.LocalPort][i]
		}
		if match == nil || !serverInitiated(match.Reason) {
			n++
		}
	}
	return n
}

// windowProbeSpan is how near the located close a gap must lie to probe the window.
const windowProbeSpan = 2 * time.Millisecond

// countWindowProbes counts the exposed requests whose gap lay within windowProbeSpan of
// the located close: the requests that measured the race rather than its flanks.
func countWindowProbes(c *results.Cell, rec *attack.Recorder, located time.Duration) {
	c.CloseMS = float64(located) / float64(time.Millisecond)
	c.WindowProbes = 0
	for b := range rec.Gaps.Buckets() {
		if (b.Gap - located).Abs() <= windowProbeSpan {
			c.WindowProbes += b.N
		}
	}
	if c.DurationMS > 0 {
		c.WindowProbesPerS = float64(c.WindowProbes) / (c.DurationMS / 1000)
	}
}

// closeSamples is how many idle closes are measured on a real server before each cell.
const closeSamples = 16

// durationsUS summarises durations as percentiles in µs (exact order statistics: the
// samples are few).
func durationsUS(ds []time.Duration) *results.LatencyUS {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(q float64) int64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))].Microseconds()
	}
	return &results.LatencyUS{P50: at(0.5), P90: at(0.9), P99: at(0.99), P999: at(0.999), Max: s[len(s)-1].Microseconds()}
}

// serverInitiated reports whether the server itself ended the connection: for idleness
// or a fault (restart, close-after, max-requests), not because the client closed it or
// the server shut down after the cell.
func serverInitiated(reason string) bool {
	switch reason {
	case upstreams.ReasonIdle, upstreams.ReasonRestart, upstreams.ReasonCloseAfter, upstreams.ReasonMaxRequests, upstreams.ReasonServer:
		return true
	}
	return false
}

// medianLags is how late the server's idle closes typically landed after their due
// time, and how late it stopped reading before them. The model widens the looking
// strategies' window by the difference: a request that arrives after the server
// stopped reading but before the close is never read. The median, not the mean: a
// rare late wake-up (a descheduled goroutine) is not the typical window. stop is 0
// when the server does not say when it stopped reading.

// methodUnlessPost is a cell's method as its summary carries it: absent for POST, the
// default.
func methodUnlessPost(m string) string {
	if m == http.MethodPost {
		return ""
	}
	return m
}
