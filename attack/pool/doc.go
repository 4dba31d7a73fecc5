// Package pool is an HTTP/1.1 client connection pool whose reuse policy is pluggable: the
// thing idlerace puts under test. It speaks HTTP through net/http's own wire code
// (Request.Write, http.ReadResponse) and implements http.RoundTripper, so vegeta, the
// attack loads and users' code drive it like any transport.
//
// The data path of one request:
//
//	RoundTrip ─► checkout ──────────────────────────────► write ─► read ─► body EOF ─► idle list
//	               │ idle list (LIFO)                       ▲                            │
//	               ├─ stop watcher (watch)                  │                            └─ watcher (watch)
//	               ├─ Checkers: read-probe, margins ─ drop ─┤
//	               └─ dial when nothing is left ────────────┘
//	             failure on a reused connection ─► Retrier (retry-only) ─► new connection
//
// A Strategy is one policy; strategies register themselves by name (one file each, like
// Toxiproxy's toxics) and compose with '+': "read-probe+retry-only:max=1". Each strategy
// implements whichever hooks it needs: Checker (vet an idle connection at checkout),
// Watcher (read idle connections in the background), Observer (see each response),
// Retrier (replay a failed request) and Modeller (tell the race model what it does).
//
// The pool knows nothing of load shapes, servers or skew.
package pool
