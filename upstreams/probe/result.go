package probe

// Result is what a probe learned. Durations are in milliseconds, as the race lives in
// milliseconds whatever the timeout.
type Result struct {
	Target string `json:"target"`
	// IdleTimeoutMS is where the server closes an idle connection (nil: it closed none
	// within MaxTimeoutMS).
	IdleTimeoutMS *Closes `json:"idle_timeout_ms"`
	MaxTimeoutMS  float64 `json:"max_timeout_ms"`
	// CloseMode is how it closes an idle connection: "fin", "rst", "silent" (no FIN: the
	// connection stops answering), or "none" (within MaxTimeoutMS).
	CloseMode string `json:"close_mode"`
	// LateRequest is what a request written after the close gets: "rst" or "eof" (""
	// when the close was not seen).
	LateRequest string `json:"late_request,omitempty"`
	// The Keep-Alive header as sent, its timeout and max (nil when absent), and
	// whether the timeout agrees with the measured close: "agrees", "rounds down"
	// (whole seconds, below the close), "disagrees", "not advertised".
	KeepAlive          string   `json:"keep_alive,omitempty"`
	AdvertisedTimeoutS *float64 `json:"advertised_timeout_s"`
	AdvertisedMax      *int     `json:"advertised_max"`
	Advertised         string   `json:"advertised"`
	// MaxRequests is how many responses the server sent on one connection before it
	// closed it (nil: it served all MaxRequestsTried); MaxRequestsMode how it ended:
	// "announced" (Connection: close), "fin", "rst" (unannounced) or "silent".
	MaxRequests      *int   `json:"max_requests"`
	MaxRequestsMode  string `json:"max_requests_mode,omitempty"`
	MaxRequestsTried int    `json:"max_requests_tried"`
	// RTTMS is the median request round trip on a reused connection.
	RTTMS float64 `json:"rtt_ms"`
	// WindowMS is the race window per strategy at this server, measured by a fine
	// sweep (filled in by the caller that runs one).
	WindowMS map[string]Window `json:"window_ms,omitempty"`
	// Recommendations are client settings that are safe at this server (filled in by
	// the caller, which knows the strategies and client kinds).
	Recommendations []Recommendation `json:"recommendations"`
	// Findings say in a sentence each what the numbers mean.
	Findings     []string `json:"findings"`
	RequestsSent int64    `json:"requests_sent"`
	TookMS       float64  `json:"took_ms"`
}

// Closes is the measured idle close, as the idle age at which it came.
type Closes struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	// P50CI95 is a distribution-free 95% interval on the median (order statistics);
	// for a bisection, the last bracket.
	P50CI95 [2]float64 `json:"p50_ci95"`
	Samples int        `json:"samples"`
	// Method: "watched" (each connection's close seen as it came) or "bisection" (a
	// silent server: the gap at which requests stop being answered).
	Method string `json:"method"`
}

// Window is one strategy's race window at the server.
type Window struct {
	MeasuredMS float64 `json:"measured"`
	ModelMS    float64 `json:"model"`
	Requests   int64   `json:"requests"`
	Stale      int64   `json:"stale"`
}

// Recommendation is one client setting that is safe at this server.
type Recommendation struct {
	Client  string `json:"client"`  // "Go net/http", "hyper", "undici", "timeout-margin"
	Setting string `json:"setting"` // "IdleConnTimeout ≤ 4.95s"
	// Arithmetic shows how the setting follows from the measured close.
	Arithmetic string `json:"arithmetic"`
	// Spec is the strategy spec that applies it in a run ("" when none does).
	Spec string `json:"spec,omitempty"`
	// ValueMS is the setting's idle limit. PredictedResetRate is the model's stale
	// probability for a request idle up to it: the share of the closes seen that land
	// before such a request arrives (idle ValueMS plus the round trip). ExtraConnsPer1k is
	// what it costs: for a client whose idle gaps spread evenly up to the median close,
	// the new connections per 1,000 requests it opens beyond an exact client's, for the
	// gaps between the setting and the close ((p50 − value) / p50 × 1,000).
	ValueMS            float64 `json:"value_ms,omitempty"`
	PredictedResetRate float64 `json:"predicted_reset_rate"`
	ExtraConnsPer1k    float64 `json:"extra_conns_per_1k,omitempty"`
}
