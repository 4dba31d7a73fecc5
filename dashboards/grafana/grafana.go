// Package grafana holds the Grafana dashboard for the live metrics of a matrix run
// (package matrix/metrics), as a file Grafana can provision: idlerace.json. It owns the
// dashboard's panels and queries; it knows nothing of how the metrics are produced, and
// runs nothing. Its tests check every query against the metric names the code registers
// and, when a real Prometheus is installed, against a live run.
//
// To provision it, point a Grafana dashboard provider at a directory holding
// idlerace.json; the dashboard asks for a Prometheus data source through its
// "datasource" variable.
package grafana

import _ "embed"

// Dashboard is idlerace.json, the dashboard as Grafana provisions it.
//
//go:embed idlerace.json
var Dashboard []byte
