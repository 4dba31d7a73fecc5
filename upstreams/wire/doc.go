// Package wire is the server's view from the wire: it captures the TCP segments of one
// server port (AF_PACKET on the interface a cell uses, kernel timestamps) and turns
// them into what only an in-process server could say of itself before: each
// connection's accept, requests and responses, and its close by the server, FIN or RST,
// as upstreams.CloseRecords through an upstreams.Recorder. So every upstream kind, nginx,
// uvicorn and node included, and any server `idlerace attack --target` reaches on
// loopback, gets idle closes, closes with unread requests and its stale failures matched
// to the close of the same connection.
//
// What the wire adds that no server says: whether a close was a FIN or a RST, and the
// client bytes that arrived after the server's FIN (a request sent into a connection
// the server had already closed: the race, seen on the wire).
//
// What it cannot tell: why the server closed. A close while the connection was idle for
// at least half the configured timeout counts as idle; an earlier one, soon after a
// response (max requests, Connection: close, a fault), as ReasonServer.
//
// Capture needs Linux, cgo (gopacket's afpacket: a TPACKET_V3 ring, no system call per
// segment, the kernel's drop count) and CAP_NET_RAW; without them Start returns an error
// wrapping ErrUnavailable that says which, and a cell's server.view says "none" with it.
package wire
