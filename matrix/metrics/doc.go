// Package metrics exports a running matrix as live Prometheus metrics: what every cell's
// requests did (counted as the cell's recorder sees them, primes apart), how long they
// took, and how far the run is. It owns the metric names, their labels and the HTTP
// endpoint that serves them; it knows nothing of how a request was made or how a server
// closes, and it writes nothing to disk (the run directory stays the record).
//
// The data path, for one cell:
//
//	matrix.Run --OnCellStart--> CellStarted      (cells_running +1)
//	           --Observer-----> Observer(p) ---> Observe(record) per request
//	           --OnCell-------> CellDone         (cells_running -1, cells_done +1,
//	                                              reset ratios of the cell)
//	Prometheus --GET /metrics-> Handler (own registry, never the global one)
//
// Every series is labelled by the cell's canonical specs (strategy, skew, upstream,
// latency, load), plus the failure class where there is one: labels are bounded by the
// matrix, never by request ids, ports or times.
//
// There is no requests-in-flight gauge: the recorder reports a request once it is over
// (Observe sees Start and End together), so a gauge raised and lowered there would
// always read zero, and one derived from those timestamps would be history, not the
// present. idlerace_cells_running is the honest live measure of work in progress.
package metrics
