'use strict';
// idlerace's undici agent: Node's built-in fetch (undici, bundled in Node) with its
// defaults, one dispatcher per lane, driven over stdin/stdout as
// docs/agent-protocol.md says.
//
// A lane's dispatcher is an undici Agent like the global one fetch uses (the same class,
// its defaults), limited to one connection so that a lane is one connection as in the
// sweep. Node does not export undici's classes; the global dispatcher, created by the
// first fetch, is reachable under the Symbol undici itself shares between its copies
// (lib/global.js: Symbol.for('undici.globalDispatcher.1')).
//
// Why it races like idlerace's "watch" with a cap: the client reads its socket all along,
// so the server's FIN ends it ('end' -> "other side closed") when the event loop runs,
// and a request dispatched before then goes out on it. An idle socket is closed after
// keepAliveTimeout (4 s), or, when the response says Keep-Alive: timeout=N, after
// N s minus keepAliveTimeoutThreshold (2 s in undici 6), not reused at all when that is
// <= 0 (lib/dispatcher/client-h1.js onHeadersComplete). A request that fails on the wire
// fails (errorRequest); fetch retries nothing.
const { AsyncLocalStorage } = require('async_hooks');
const dc = require('diagnostics_channel');
const { now, out, serve } = require('./idlerace_agent.js');

fetch('data:,').catch(() => {}); // creates the global dispatcher
const Agent = globalThis[Symbol.for('undici.globalDispatcher.1')].constructor;

// The kind's keep_alive_timeout option (--max-idle-ns N): undici's keepAliveTimeout.
const opts = { connections: 1 };
const i = process.argv.indexOf('--max-idle-ns');
if (i > 0 && process.argv[i + 1]) opts.keepAliveTimeout = Number(BigInt(process.argv[i + 1]) / 1000000n);

const lanes = new Map();
function laneFor(n) {
  let l = lanes.get(n);
  if (!l) {
    l = { agent: new Agent(opts), socket: null };
    lanes.set(n, l);
  }
  return l;
}

// What fetch does not say (the socket a request went out on, whether it was written),
// from undici's diagnostics channels. A request's state is found by the async context
// of the fetch that made it: undici creates its Request inside that fetch's chain.
const current = new AsyncLocalStorage();
const states = new WeakMap();
dc.subscribe('undici:request:create', ({ request }) => {
  const st = current.getStore();
  if (st) states.set(request, st);
});
dc.subscribe('undici:client:sendHeaders', ({ request, socket }) => {
  const st = states.get(request);
  if (!st) return;
  st.socket = socket;
  st.wrote = true;
  if (socket.localPort) st.port = socket.localPort;
});

// classify maps fetch's errors (a TypeError "fetch failed" with undici's error as its
// cause) to idlerace's classes.
function classify(err, wrote) {
  if (err.name === 'TimeoutError') return 'timeout';
  const c = err.cause || err;
  if (c.code === 'UND_ERR_SOCKET') return 'eof'; // "other side closed": a FIN, no response byte
  if (c.code === 'ECONNRESET' || c.code === 'EPIPE') {
    if (c.syscall === 'write' || !wrote) return 'reset_write';
    return 'reset_read';
  }
  if (c.code === 'UND_ERR_HEADERS_TIMEOUT' || c.code === 'UND_ERR_BODY_TIMEOUT' || c.code === 'ETIMEDOUT') return 'timeout';
  return 'other';
}

async function send(m) {
  const lane = laneFor(m.lane);
  const st = { wrote: false, socket: null, port: 0 };
  const res = { op: 'result', id: m.id, lane: m.lane, status: 0, bytes_in: 0, start_ns: String(now()) };
  const method = m.method || 'POST';
  const init = { method, headers: m.headers || {}, dispatcher: lane.agent };
  // fetch refuses a body on GET and HEAD ("Request with GET/HEAD method cannot have body").
  if (m.body && method !== 'GET' && method !== 'HEAD') init.body = m.body;
  if (m.timeout_ns) init.signal = AbortSignal.timeout(Number(BigInt(m.timeout_ns) / 1000000n));
  try {
    await current.run(st, async () => {
      const r = await fetch(m.url, init);
      const body = await r.arrayBuffer();
      res.status = r.status;
      res.bytes_in = body.byteLength;
    });
  } catch (err) {
    res.status = 0;
    res.error = err.cause ? `${err.message}: ${err.cause.message}` : String(err.message || err);
    res.class = classify(err, st.wrote);
    const info = err.cause && err.cause.socket;
    if (!st.port && info && info.localPort) st.port = info.localPort;
  }
  res.end_ns = String(now());
  res.wrote = st.wrote;
  if (st.socket) {
    res.reused = st.socket === lane.socket;
    lane.socket = st.socket;
  }
  if (st.port) res.local_port = st.port;
  out(res);
}

serve('undici', `undici ${process.versions.undici} (Node ${process.version} fetch)`, process.versions.undici, send,
  () => Promise.all([...lanes.values()].map((l) => l.agent.close())));
