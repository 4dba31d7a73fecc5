// Package results owns idlerace's data model: the Cell that one measured combination of
// strategy, upstream, skew, latency and load becomes; the HDR latency histogram every
// cell records into (1 µs .. 60 s, 3 significant digits); the summary.json schema
// (idlerace.summary/v1) and its derived numbers (reset rate, Wilson interval, new
// connections per thousand requests); and the store on disk: a run directory's
// summary.json and per-cell HdrHistogram interval logs, both written atomically
// (temp file, fsync, rename). It also renders cells as a plain-text table or JSON.
//
// The package knows nothing of how the numbers were produced: it imports no pool,
// strategy, upstream, fault model or load shape, and nothing in the module below it
// in the import order (cmd -> matrix -> {attack, upstreams, chaos} -> results) is
// allowed to reach back into those from here. Its inputs are raw counts and latency
// samples; everything else is derived in this package.
package results
