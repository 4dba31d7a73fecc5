// Package attack drives requests through a pool strategy in a load shape and records
// every request. Shapes register themselves by name: sweep (lanes, each on one
// connection, whose idle gaps sweep across the server's timeout), lull (bursts on a
// shared pool separated by idle lulls around the timeout) and constant (vegeta's
// open-model pacer on a shared pool).
//
// It is built on vegeta: every request becomes a vegeta.Result (so `vegeta report` and
// `vegeta plot` read --results files), the constant shape is paced by vegeta's
// ConstantPacer, and latency is measured from each request's intended send time into an
// HdrHistogram, so a slow request does not hide the ones queued behind it (no
// coordinated omission). vegeta's Attacker itself is not used: it measures from the
// actual send time and cannot give each lane a connection of its own.
//
// The package knows nothing of how a server closes.
package attack
