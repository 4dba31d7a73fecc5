'use strict';
// idlerace's node-agent: Node's http.Agent with keepAlive: true, one Agent per lane with
// one socket, driven over stdin/stdout as docs/agent-protocol.md says. Defaults are a
// user's: keepAlive true (Node's default Agent keeps no connection alive), nothing else
// changed. Why this races like idlerace's "watch": a free socket listens for 'close',
// and a FIN from the server ends it (allowHalfOpen is false) and removes it from the
// free list (lib/_http_agent.js, installListeners: onClose/onRemove), but only when
// the event loop runs; a request handed to the agent before then reuses the dead socket.
const http = require('http');
const { now, out, serve } = require('./idlerace_agent.js');

const lanes = new Map();
function agentFor(n) {
  let a = lanes.get(n);
  if (!a) {
    a = new http.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
    lanes.set(n, a);
  }
  return a;
}

// classify maps Node's errors to idlerace's classes. "socket hang up" (code ECONNRESET)
// is Node's name for a connection that ended (FIN) before any response byte: eof.
function classify(err, wrote) {
  if (err.idleraceTimeout) return 'timeout';
  if (err.message === 'socket hang up') return 'eof';
  const c = err.code;
  if (c === 'ECONNRESET' || c === 'EPIPE') {
    if (err.syscall === 'write' || !wrote) return 'reset_write';
    return 'reset_read';
  }
  if (c === 'ETIMEDOUT') return 'timeout';
  return 'other';
}

function send(m) {
  const start = now();
  const res = { op: 'result', id: m.id, lane: m.lane, status: 0, bytes_in: 0, start_ns: String(start), wrote: false };
  let done = false;
  const finish = (err) => {
    if (done) return;
    done = true;
    res.end_ns = String(now());
    if (err) {
      res.status = 0;
      res.error = String(err.message || err);
      res.class = res.got_response ? 'other' : classify(err, res.wrote);
    }
    delete res.got_response;
    out(res);
  };
  let req;
  try {
    req = http.request(m.url, { method: m.method || 'POST', headers: m.headers || {}, agent: agentFor(m.lane) });
  } catch (err) {
    finish(err);
    return;
  }
  if (m.timeout_ns) {
    req.setTimeout(Number(BigInt(m.timeout_ns) / 1000000n), () => {
      const e = new Error('request timeout');
      e.idleraceTimeout = true;
      req.destroy(e);
    });
  }
  req.on('socket', (s) => {
    res.reused = !!req.reusedSocket;
    if (s.localPort) res.local_port = s.localPort;
    else s.once('connect', () => { res.local_port = s.localPort; });
  });
  req.on('finish', () => { res.wrote = true; });
  req.on('error', finish);
  req.on('response', (r) => {
    res.status = r.statusCode;
    res.got_response = true;
    r.on('data', (b) => { res.bytes_in += b.length; });
    r.on('end', () => finish(null));
    r.on('error', finish);
    r.on('aborted', () => finish(new Error('response aborted')));
  });
  req.end(m.body || '');
}

serve('node-agent', 'node:http.Agent', process.version, send, () => {
  for (const a of lanes.values()) a.destroy();
});
