// Package upstreams owns the servers under test: the HTTP/1.1 servers whose idle closes
// idlerace's clients race against. Each kind is one package that registers itself by
// name in init and is started with a Config:
//
//	builtin  idlerace's own server: closes exactly at T+s, skew models and faults
//	gonet    Go's net/http.Server, in process
//	nginx    Debian's nginx (master + worker) with a generated nginx.conf
//	uvicorn  Debian's python3-uvicorn serving a shipped ASGI app
//	node     Node's http server running a shipped script
//
// The real kinds start the server as its users run it, in a private directory and its
// own process group, on a free loopback port, and stop it with SIGTERM then SIGKILL;
// one that cannot start returns an error wrapping ErrStart with the tail of the
// server's own log (*StartError). MeasureCloses times a server's idle closes from the
// client's side, which is all a real server lets us see.
//
// It knows nothing of clients: pools, strategies and load shapes live in package attack.
// What a server reports back is its own view: connections accepted, idle closes made and
// how late they landed, requests executed and duplicated.
//
//	matrix --Start(ctx, "builtin", Config{IdleTimeout: T, Skew: ...})--> Upstream
//	                                                                      | URL()
//	attack ------------------------- HTTP/1.1 over loopback ------------->|
//	matrix <--Stats(), Closes(), Version()--------------------------------'
package upstreams
