// Package upstreams owns the servers under test: the HTTP/1.1 servers whose idle closes
// idlerace's clients race against. Each kind is one package or file that registers
// itself by name (builtin: exact and chaos-driven; later nginx, uvicorn, node, gonet,
// which start the real servers) and is started with a Config.
//
// It knows nothing of clients: pools, strategies and load shapes live in package attack.
// What a server reports back is its own view: connections accepted, idle closes made and
// how late they landed, requests executed and duplicated.
//
//	matrix --Start(ctx, "builtin", Config{IdleTimeout: T, Skew: ...})--> Upstream
//	                                                                      | URL()
//	attack ------------------------- HTTP/1.1 over loopback ------------->|
//	matrix <--Stats(), Closes()-------------------------------------------'
package upstreams
