// Package chaos owns idlerace's fault models: how far a server's idle close lands from the
// timeout the client believes in (skew models), and how the server ends a connection
// (close modes).
//
// It knows nothing of HTTP beyond bytes: a close mode closes a net.Conn, Unread looks at
// a socket's receive buffer, and a skew model draws a time.Duration. Servers under test
// (package upstreams) apply these models; clients never see them.
//
// Every skew model is one file that registers itself by name in init, in the manner of
// Toxiproxy's toxics, so adding one touches nothing else:
//
//	spec "uniform:±10ms" --ParseSkew--> registry["uniform"].parse("±10ms") --> Skew
//	                                                                           |
//	server: idle period begins at progress p --> Draw(rng, p) = s --> close at T+s
//	report: prediction over the run           --> CDF(x) = P(s <= x)
package chaos
