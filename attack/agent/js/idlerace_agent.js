'use strict';
// What idlerace's Node agents share (node-agent, undici): the protocol's loop of
// docs/agent-protocol.md, the clock, and the wait for a send's instant.
const readline = require('readline');

const now = () => process.hrtime.bigint(); // CLOCK_MONOTONIC on Linux (libuv uv_hrtime)
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

// waitUntil runs fn no earlier than at: a timer to within 1.5 ms, then setImmediate
// turns, which let other lanes' I/O run in between (a spin would stall them).
function waitUntil(at, fn) {
  const ms = Number(at - now()) / 1e6;
  if (ms > 2) setTimeout(() => waitUntil(at, fn), ms - 1.5);
  else if (ms > 0) setImmediate(() => waitUntil(at, fn));
  else fn();
}

// serve answers the driver on stdin until it closes or says close: hello with the
// kind, library and version; send(m) for each send at its instant; closeAll() at the end.
function serve(kind, library, version, send, closeAll) {
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    let m;
    try {
      m = JSON.parse(line);
    } catch (err) {
      process.stderr.write(`${kind}-agent: bad line: ${err.message}\n`);
      return;
    }
    switch (m.op) {
      case 'hello':
        out({ op: 'hello', protocol: 1, kind, library, version });
        break;
      case 'send':
        waitUntil(BigInt(m.at_ns || 0), () => send(m));
        break;
      case 'close':
        rl.close();
        break;
      default:
        process.stderr.write(`${kind}-agent: unknown op ${m.op}\n`);
    }
  });
  rl.on('close', () => {
    Promise.resolve(closeAll()).finally(() => process.exit(0));
  });
}

module.exports = { now, out, waitUntil, serve };
