// Package matrix turns cell specs into measured cells: for each cell it starts the
// upstream, runs the attack through the strategy, stops the upstream, matches the
// client's stale failures against the server's closes, puts the model's prediction
// beside the measurement and hands a results.Cell to the caller. It knows nothing of
// rendering.
package matrix
