package results

import "time"

// Schema names the version of summary.json. Readers refuse other major versions.
const Schema = "idlerace.summary/v1"

// Summary is the whole of summary.json: what ran, with what tool, and one Cell per
// combination of strategy, upstream, skew, latency and load.
type Summary struct {
	Schema   string    `json:"schema"`
	Tool     Tool      `json:"tool"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// State is "complete" or "partial" (a run that was interrupted).
	State string `json:"state"`
	// Findings are what the cells found out, first (see Findings); written by
	// WriteSummary from the cells, so they are never out of step with them; absent
	// when there are none.
	Findings []Finding `json:"findings,omitempty"`
	Cells    []Cell    `json:"cells"`
}

// Tool records which build produced the numbers.
type Tool struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
	CPUs    int    `json:"cpus"`
	// Procs is GOMAXPROCS during the run (idlerace sets more than the cores; package
	// internal/procs says why); 0 in runs written before it was recorded.
	Procs int `json:"gomaxprocs,omitempty"`
}

// Failures counts failed requests by class. A stale failure is one of the first three
// on a reused connection; Timeout and Other are never stale.
type Failures struct {
	ResetWrite int64 `json:"reset_write"`
	ResetRead  int64 `json:"reset_read"`
	EOF        int64 `json:"eof"`
	Timeout    int64 `json:"timeout"`
	// BadGateway counts 502, 503 and 504 responses: stale through a reverse proxy (its
	// upstream pool lost the race), a failure of their own otherwise.
	BadGateway int64 `json:"bad_gateway"`
	Other      int64 `json:"other"`
}

// LatencyUS holds latency percentiles in microseconds, measured from each request's
// intended send time (no coordinated omission).
type LatencyUS struct {
	P50  int64 `json:"p50"`
	P90  int64 `json:"p90"`
	P99  int64 `json:"p99"`
	P999 int64 `json:"p999"`
	Max  int64 `json:"max"`
}

// Server is the upstream's view of the same cell.
type Server struct {
	Accepted int64 `json:"accepted"`
	// IdleCloses counts connections the server closed because they sat idle past T+s.
	IdleCloses int64 `json:"idle_closes"`
	// ClosesWithUnread counts idle closes that found request bytes already in the socket:
	// the race seen from the server.
	ClosesWithUnread int64 `json:"closes_with_unread"`
	// UnmatchedFailures counts client stale failures with no idle close by the server on
	// the same connection (matched by the client's local port; behind a proxy, by time:
	// a close of any of the proxy's connections while the request was under way, and a
	// 502 left over is the proxy's own error, hop.own_errors). Non-zero means the harness
	// or the client did something the model does not explain; -1 means the upstream cannot
	// see its own closes (nginx, uvicorn, node), so nothing was matched.
	UnmatchedFailures int64 `json:"unmatched_failures"`
	// Executed counts requests the server ran; Duplicates counts executions beyond the
	// first of the same Idlerace-Request-Id (a retry of a request that had already run).
	Executed   int64 `json:"executed"`
	Duplicates int64 `json:"duplicates"`
	// CloseLateUS is how late the idle close landed after its due time T+s, in µs.
	CloseLateUS LatencyUS `json:"close_late_us"`
	// Version is the server's own version string ("nginx/1.22.1").
	Version string `json:"version,omitempty"`
	// ConfiguredTimeoutMS is the idle timeout the server was configured with: T plus the
	// skew's offset for real servers, T for the builtin one.
	ConfiguredTimeoutMS float64 `json:"configured_timeout_ms,omitempty"`
	// CloseJitterUS is how a real server's idle close, measured by the client before the
	// cell, fell around its configured timeout: close time minus the timeout, in µs
	// (negative p50 means it closes early).
	CloseJitterUS *LatencyUS `json:"close_jitter_us,omitempty"`
	// CloseSamples counts those measurements.
	CloseSamples int `json:"close_samples,omitempty"`
	// ModelCloses counts the idle closes the server made during the cell that the
	// model used for a real server (each weighted by how rarely a gap outlasted it);
	// 0 means it used the close_samples measured before the cell.
	ModelCloses int `json:"model_closes,omitempty"`
	// KeepAlive is the Keep-Alive header a real server sent on those measurements'
	// responses ("timeout=5"), empty when it sent none.
	KeepAlive string `json:"keep_alive,omitempty"`
	// View is where the idle closes, closes with unread and unmatched failures come
	// from: "self" (the server's own account: builtin, gonet), "wire" (its segments,
	// captured on the cell's interface: every other kind), or "none (why)", e.g. "none
	// (not root: no packet capture)" (then unmatched_failures is -1 for a server with no
	// account of its own). Empty in summaries from before it existed.
	View string `json:"view,omitempty"`
	// Wire is what the capture saw that no server says (view wire).
	Wire *Wire `json:"wire,omitempty"`
	// IdleCloseMS is when the server closed idle connections during the cell: each
	// idle close's idle period (its response's last byte to its FIN or RST, in ms), as
	// its view saw it. A run's recommendations are built from it (see
	// recommend.FromRun). Absent with no view of the server's closes.
	IdleCloseMS *CloseSpread `json:"idle_close_ms,omitempty"`
	// ReuseGapMS is, seen on the wire, the idle gap the server saw before each request
	// that reused one of its connections (since its last response left, to the request's
	// first byte, raced or not), in ms. Behind a proxy these are the idle periods of the
	// proxy's upstream connections, which the load's gaps only steer: with one lane they
	// follow the load's, later by the forwarding both ways.
	ReuseGapMS *CloseSpread `json:"reuse_gap_ms,omitempty"`
}

// CloseSpread is a distribution of idle closes in milliseconds: the earliest and the
// latest exact, the quantiles from a uniform sample of at most a few thousand.
type CloseSpread struct {
	Min     float64 `json:"min"`
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
	Samples int64   `json:"samples"`
}

// Client names a client kind's library: kind "node-agent", library "node:http.Agent",
// version "v20.20.2".
type Client struct {
	Kind    string `json:"kind"`
	Library string `json:"library"`
	Version string `json:"version"`
}

// Hop is a reverse proxy's own account of a cell (its access log).
type Hop struct {
	Kind    string `json:"kind"`
	Version string `json:"version"`
	// Requests it answered; BadGateway of them with 502, 503 or 504.
	Requests   int64 `json:"requests"`
	BadGateway int64 `json:"bad_gateway"`
	// UpstreamRetries are its tries on the upstream beyond one a request: replays the
	// caller never saw (nginx's proxy_next_upstream).
	UpstreamRetries int64 `json:"upstream_retries"`
	// OwnErrors are its 502s, 503s and 504s that no idle close of the upstream's
	// explains (the upstream's view matched by time): the proxy's own errors, which the
	// cell does not count as stale. Present where the upstream was seen.
	OwnErrors int64 `json:"own_errors,omitempty"`
}

// Wire is a cell's capture of the server's segments.
type Wire struct {
	Segments int64 `json:"segments"`
	// Drops are segments the kernel could not hand to the capture; above 0, the view
	// may have missed closes.
	Drops      int64 `json:"drops"`
	ServerFINs int64 `json:"server_fins"` // server closes by FIN
	ServerRSTs int64 `json:"server_rsts"` // server closes by RST
	// LateRequests are connections on which client bytes reached the server after its
	// FIN: requests sent into an already closed connection, the race on the wire.
	LateRequests int64 `json:"late_requests"`
	// ClosesWithUnread are the server's closes, as the wire saw them, that found
	// request bytes waiting (with view wire, the same as server.closes_with_unread).
	ClosesWithUnread int64 `json:"closes_with_unread"`
	// PeerCloses are the server's idle closes that the client answered with its own FIN
	// before sending anything more, and PeerCloseLagUS the mean time it took (µs): how
	// long a watching client, a proxy's pool behind a hop, takes to see a close.
	PeerCloses     int64   `json:"peer_closes,omitempty"`
	PeerCloseLagUS float64 `json:"peer_close_lag_us,omitempty"`
	// ReadLagUS is the mean time (µs) from a response's last byte on the wire to the
	// client's pool taking its connection back idle: the server's idle timer runs that
	// long before the client's gap begins. WriteLagUS is the mean time from the
	// client's checkout of an idle connection to its request's first byte on the wire:
	// a looking strategy's last look comes that long before the request, which is its
	// window. LagSamples is how many reuses paired by port they are means of (0: none,
	// a client kind's lane, whose library does not say when it checked out, or a proxy
	// between the load and the server).
	// IdleUnread are the idle closes that found a request waiting, and UnreadLeadUS the
	// mean time (µs) it had waited: the server had stopped reading before its close was
	// on the wire, and a request in between met the close unread.
	IdleUnread   int64   `json:"idle_unread,omitempty"`
	UnreadLeadUS float64 `json:"unread_lead_us,omitempty"`
	// StopLeadUS is how long (µs) before its close the server stopped reading, on
	// average: the idle closes with a request unread over how many of the cell's
	// requests the model puts just before a close. The model's closes come that much
	// sooner to a request than to a look (0: fewer than 4 unread, or no cell closes).
	StopLeadUS float64 `json:"stop_lead_us,omitempty"`
	ReadLagUS  float64 `json:"read_lag_us,omitempty"`
	WriteLagUS float64 `json:"write_lag_us,omitempty"`
	LagSamples int     `json:"lag_samples,omitempty"`
}

// Cell is one measured combination.
type Cell struct {
	ID       string `json:"id"`
	Strategy string `json:"strategy"`
	Upstream string `json:"upstream"`
	Skew     string `json:"skew"`
	Latency  string `json:"latency"`
	Load     string `json:"load"`
	// Proxy is the hop between the load and the upstream ("nginx:keepalive_timeout=4s");
	// absent when there is none. Its upstream pool is then the pool under test: the
	// load's own connections to it never idle out, and its 502s are the stale failures.
	Proxy string `json:"proxy,omitempty"`
	// Method is the request method where it is not POST, the default (absent then).
	Method string `json:"method,omitempty"`
	// IdleTimeoutMS is T, the idle timeout the client believes, in milliseconds.
	IdleTimeoutMS float64 `json:"idle_timeout_ms"`
	Repeat        int     `json:"repeat"`

	Requests int64    `json:"requests"`
	OK       int64    `json:"ok"`
	Failures Failures `json:"failures"`
	// Stale counts caller-visible stale failures (reset_write, reset_read, eof on a
	// reused connection).
	Stale int64 `json:"stale"`
	// ResetRate is Stale / Requests; ResetRateCI95 its Wilson 95% interval [lo, hi].
	ResetRate     float64    `json:"reset_rate"`
	ResetRateCI95 [2]float64 `json:"reset_rate_ci95"`
	// Retries counts extra attempts a strategy made to hide a failure from the caller.
	Retries int64 `json:"retries"`
	// Primes counts requests the load sent only to (re)open a lane's connection; they are
	// not part of Requests.
	Primes     int64   `json:"primes"`
	NewConns   int64   `json:"new_conns"`
	ConnsPer1k float64 `json:"conns_per_1k"`
	// Discards counts idle connections the strategy dropped instead of reusing.
	Discards int64 `json:"discards"`
	// Reused counts requests sent on a reused connection (their first attempt); Status
	// the responses by class; ClosingResponses the responses that ended their
	// connection (Connection: close), where the client shows the response (idlerace's
	// pool and Go's net/http; not a client kind's library). NotMeasured, when set, is why
	// the cell did not measure the race (ReuseVerdict): its reset rate reads n/a and a
	// gate fails it.
	Reused           int64         `json:"reused"`
	Status           StatusClasses `json:"status"`
	ClosingResponses int64         `json:"closing_responses"`
	NotMeasured      string        `json:"not_measured,omitempty"`
	LatencyUS        LatencyUS     `json:"latency_us"`

	PredictedResetRate float64 `json:"predicted_reset_rate"`
	// OneWayUS is the one-way latency d the model used, in µs: the path's configured
	// delay plus what the delay proxy measured of its own lateness.
	OneWayUS float64 `json:"one_way_us,omitempty"`
	// NotifyLagUS is the mean time, in µs, the pool's idle watchers took to wake to a
	// FIN (watch strategies; matched with the server's closes by port), and
	// NotifySamples how many wake-ups it averages. The model widens by it the window of
	// a pool whose watcher must run to drop a connection (a proxy's); idlerace's watch
	// asks its watcher at checkout.
	NotifyLagUS   float64 `json:"notify_lag_us,omitempty"`
	NotifySamples int     `json:"notify_samples,omitempty"`
	// ReadLagUS and WriteLagUS are the client's lags the model used (µs): the wire's
	// (server.wire.read_lag_us, write_lag_us), where it paired the client's reuses.
	ReadLagUS  float64 `json:"read_lag_us,omitempty"`
	WriteLagUS float64 `json:"write_lag_us,omitempty"`
	// PredictedRetryRate is the model's expected Retries / Requests.
	PredictedRetryRate float64 `json:"predicted_retry_rate"`

	Server Server `json:"server"`

	// Curve is the race curve: stale failures by idle gap g, binned by g - T in absolute
	// time (see CurvePoint), for the requests that were exposed to the race. Empty bins
	// are left out.
	Curve []CurvePoint `json:"curve,omitempty"`
	// WindowMS is the race window as this cell measured it: the total width, in ms, of
	// the curve's bins whose stale-failure rate is above 5% (for a blind pool, every gap
	// past the close; for a watching one, the few ms around it).
	WindowMS float64 `json:"window_ms"`
	// ModelWindowMS is the same width by the model: the bins whose predicted stale
	// probability is above 5%, over the same bins, so the two compare directly.
	ModelWindowMS float64 `json:"model_window_ms"`
	// CloseMS is where the server's idle close lands as the client sees it, in ms from
	// the end of a response: the median of a real server's measured closes, T + the
	// skew's median otherwise. sweep:focus=D aims at it. WindowProbes counts the exposed
	// requests whose gap lay within 2 ms of it, the ones that measured the race itself,
	// and WindowProbesPerS the same per second of the cell.
	CloseMS          float64 `json:"close_ms"`
	WindowProbes     int64   `json:"window_probes"`
	WindowProbesPerS float64 `json:"window_probes_per_s"`

	DurationMS float64 `json:"duration_ms"`
	// HiddenRetries are requests that reached a connection the server had closed (on
	// the wire: after its FIN, or unread at its close) beyond the stale failures the
	// caller saw and the retries idlerace's own pool made: a library that retried by
	// itself, and the caller never knew. Only with a wire view (server.wire).
	HiddenRetries int64 `json:"hidden_retries,omitempty"`
	// Client is the real client library a client kind's cell ran (its agent's hello).
	Client *Client `json:"client,omitempty"`
	// Hop is the proxy's own account of the cell, when there is one.
	Hop *Hop `json:"hop,omitempty"`
	// Learned is what a learning strategy (adaptive-margin) learned of the server's
	// close in this cell, and what learning cost.
	Learned *Learned `json:"learned,omitempty"`
	// Hlog names the cell's HdrHistogram log file, relative to the run directory.
	Hlog string `json:"hlog,omitempty"`
	// PCAP names the cell's capture of the server's segments (run --pcap), relative to
	// the run directory.
	PCAP string `json:"pcap,omitempty"`
}

// Learned is a learning strategy's estimate of the server's idle close: from Closes
// closes its watchers saw, the idle limit it reuses connections under (LimitMS), after
// how many responses and how long it first had one (until then it trusted T).
type Learned struct {
	Closes         int     `json:"closes"`
	LimitMS        float64 `json:"limit_ms"`
	AfterResponses int64   `json:"after_responses"`
	TookMS         float64 `json:"took_ms"`
}

// CurvePoint is one bin of the race curve. Bins are laid on a grid of g - T in absolute
// time, because the race window is a few ms wide whatever T is (1% of T was 50 ms at
// T = 5s, wider than the window): coarse bins across the sweep (at least 40), and bins
// of at most 0.25 ms around the server's close, where the window lives. Bins of one
// width sit on multiples of it from T, so cells with the same widths pool bin by bin.
type CurvePoint struct {
	// GapOverT is the bin's centre as a fraction of T (1.0 = the believed timeout).
	GapOverT float64 `json:"gap_over_t"`
	// GapMinusTMS is the bin's centre, g - T, in ms; BinMS its width in ms. Summaries
	// from before these fields have bins of 1% of T and neither (see CurveBin).
	GapMinusTMS float64 `json:"gap_minus_t_ms"`
	BinMS       float64 `json:"bin_ms"`
	Requests    int64   `json:"requests"`
	// Stale counts caller-visible stale failures; Retried counts requests that a strategy
	// replayed (a failure hidden from the caller).
	Stale   int64 `json:"stale"`
	Retried int64 `json:"retried"`
	// Predicted is the model's stale-failure probability averaged over the bin's gaps.
	Predicted float64 `json:"predicted"`
}
