// The HTTP server idlerace's node upstream runs (upstreams/node): Node's own `http`
// module, configured as a Node service is. Go embeds this file, writes it into the
// server's private directory and runs `/usr/bin/node server.js` there.
//
// It answers every request with a fixed body, counts executions per
// Idlerace-Request-Id itself (a replayed id is a duplicate), counts accepted
// connections and idle closes (a socket 'timeout' with no request in progress, then its
// close), and answers GET /_idlerace/stats with those counters as JSON; that request is
// not an execution. Its settings come from the environment:
//
//   IDLERACE_HOST, IDLERACE_PORT   where to listen (loopback)
//   IDLERACE_KEEP_ALIVE_MS         server.keepAliveTimeout
//   IDLERACE_MAX_REQUESTS          server.maxRequestsPerSocket (0: unlimited)
//   IDLERACE_RESPONSE_BYTES        body size, "okok..."
//   IDLERACE_SERVICE_TIME_MS       delay before answering
//   IDLERACE_TOKEN                 echoed by the stats answer (readiness)
'use strict';

const http = require('http');

const env = process.env;
const host = env.IDLERACE_HOST;
const port = Number(env.IDLERACE_PORT);
const keepAliveMs = Number(env.IDLERACE_KEEP_ALIVE_MS);
const maxRequests = Number(env.IDLERACE_MAX_REQUESTS || 0);
const responseBytes = Number(env.IDLERACE_RESPONSE_BYTES || 2);
const serviceTimeMs = Number(env.IDLERACE_SERVICE_TIME_MS || 0);
const token = env.IDLERACE_TOKEN || '';
const statsPath = '/_idlerace/stats';

const body = Buffer.from('ok'.repeat(Math.floor(responseBytes / 2) + 1).slice(0, responseBytes));
const version = 'node/' + process.version;

const stats = { accepted: 0, idle_closes: 0, closes_with_unread: 0, executed: 0, duplicates: 0 };
const executions = new Map();

function count(id) {
  stats.executed++;
  if (id === undefined) return;
  const n = (executions.get(id) || 0) + 1;
  executions.set(id, n);
  if (n > 1) stats.duplicates++;
}

function respond(res, status, headers, payload) {
  headers['Content-Length'] = payload.length;
  res.writeHead(status, headers);
  res.end(payload);
}

const server = http.createServer((req, res) => {
  const conn = req.socket.idlerace;
  conn.active++;
  res.on('close', () => { conn.active--; });
  req.resume(); // drain any body
  req.on('end', () => {
    if (req.method === 'GET' && req.url === statsPath) {
      const payload = Buffer.from(JSON.stringify({ ...stats, token, version }));
      respond(res, 200, { 'Content-Type': 'application/json' }, payload);
      return;
    }
    count(req.headers['idlerace-request-id']);
    const answer = () => respond(res, 200, { 'Content-Type': 'text/plain' }, body);
    if (serviceTimeMs > 0) setTimeout(answer, serviceTimeMs);
    else answer();
  });
});

// Node closes a keep-alive connection idle for keepAliveTimeout plus a 1s buffer
// (socket.setTimeout, on its millisecond timer lists) and advertises it as
// Keep-Alive: timeout=floor(keepAliveTimeout/1s).
// headersTimeout must stay above keepAliveTimeout, or a request that starts just as
// the connection goes idle can be cut by the wrong timer.
server.keepAliveTimeout = keepAliveMs;
server.headersTimeout = Math.max(server.headersTimeout, keepAliveMs + 1000);
if (server.requestTimeout > 0 && server.requestTimeout < server.headersTimeout) {
  server.requestTimeout = server.headersTimeout;
}
if (maxRequests > 0) server.maxRequestsPerSocket = maxRequests;

server.on('connection', (socket) => {
  stats.accepted++;
  const conn = { active: 0, timedOut: false };
  socket.idlerace = conn;
  socket.on('timeout', () => { if (conn.active === 0) conn.timedOut = true; });
  socket.on('close', () => { if (conn.timedOut) stats.idle_closes++; });
});

// SIGTERM: stop accepting and close every connection, as a Node service shutting down
// cleanly does; the process then exits with nothing left to run.
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
});

// A server that cannot listen says why on one line of stderr and exits.
server.on('error', (err) => {
  console.error(`idlerace node upstream: ${err.message}`);
  process.exit(1);
});

server.listen(port, host, () => {
  console.log(`idlerace node upstream ${version} on ${host}:${port}, keepAliveTimeout ${keepAliveMs}ms`);
});
