"""idlerace's aiohttp agent: aiohttp's ClientSession with its defaults, one session (and
TCPConnector) per lane, driven over stdin/stdout as docs/agent-protocol.md says.

Why it races like idlerace's "watch": asyncio's transport reads a pooled connection all
along, so a FIN that the event loop has processed marks it closed, and
BaseConnector._get skips it ("if proto.is_connected()"); one it has not processed yet is
handed out. The connector also drops connections idle longer than keepalive_timeout
(15 s by default: "if t1 - t0 > self._keepalive_timeout"). aiohttp 3.8 retries nothing.
"""
import asyncio
import errno
import json
import sys
import time

import aiohttp

from idlerace_agent import max_idle


KEEPALIVE = max_idle()  # the kind's keepalive_timeout option, or None: aiohttp's 15 s


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def classify(exc, wrote):
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "eof"  # "Server disconnected": closed before any response byte
    if isinstance(exc, aiohttp.ClientOSError) and exc.errno in (errno.ECONNRESET, errno.EPIPE):
        return "reset_read" if wrote else "reset_write"
    return "other"


async def wait_until(at):
    # asyncio's timers are coarse: sleep to within 1.5 ms, then yield turns.
    while True:
        d = at - time.monotonic_ns()
        if d <= 0:
            return
        await asyncio.sleep((d - 1_500_000) / 1e9 if d > 2_000_000 else 0)


class Lane:
    def __init__(self):
        self.state = {}
        tc = aiohttp.TraceConfig()

        async def reused(session, ctx, params):
            self.state["reused"] = True

        async def headers_sent(session, ctx, params):
            self.state["wrote"] = True

        tc.on_connection_reuseconn.append(reused)
        tc.on_request_headers_sent.append(headers_sent)
        kw = {} if KEEPALIVE is None else {"keepalive_timeout": KEEPALIVE}
        self.connector = aiohttp.TCPConnector(limit=1, **kw)
        self.session = aiohttp.ClientSession(connector=self.connector, trace_configs=[tc])
        self.turn = asyncio.Lock()

    def pooled_port(self):
        # The connection a request will reuse, if any: the lane has one at most.
        for conns in self.connector._conns.values():
            for proto, _ in conns:
                if proto.transport is not None:
                    name = proto.transport.get_extra_info("sockname")
                    if name:
                        return name[1]
        return 0

    async def send(self, m):
        async with self.turn:
            await wait_until(int(m.get("at_ns") or 0))
            self.state = {"reused": False, "wrote": False}
            res = {"op": "result", "id": m["id"], "lane": m["lane"], "status": 0, "bytes_in": 0}
            pooled = self.pooled_port()
            res["start_ns"] = str(time.monotonic_ns())
            timeout_ns = int(m.get("timeout_ns") or 0)
            timeout = aiohttp.ClientTimeout(total=timeout_ns / 1e9) if timeout_ns else aiohttp.ClientTimeout()
            port = 0
            try:
                async with self.session.request(m.get("method") or "POST", m["url"], headers=m.get("headers") or {},
                                                data=(m.get("body") or "").encode(), timeout=timeout) as r:
                    if r.connection is not None and r.connection.transport is not None:
                        name = r.connection.transport.get_extra_info("sockname")
                        port = name[1] if name else 0
                    body = await r.read()
                    res["status"] = r.status
                    res["bytes_in"] = len(body)
            except Exception as exc:  # the library's own error, whatever it is
                res["error"] = "%s: %s" % (type(exc).__name__, exc)
                res["class"] = classify(exc, self.state["wrote"])
            res["end_ns"] = str(time.monotonic_ns())
            res["reused"] = self.state["reused"]
            res["wrote"] = self.state["wrote"]
            if not port and "error" not in res:
                port = self.pooled_port()  # back in the pool: the lane's one connection
            if not port and self.state["reused"]:
                port = pooled
            if port:
                res["local_port"] = port
            out(res)


async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    lanes = {}
    tasks = set()
    while True:
        line = await reader.readline()
        if not line:
            break
        try:
            m = json.loads(line)
        except ValueError as exc:
            sys.stderr.write("aiohttp-agent: bad line: %s\n" % exc)
            continue
        op = m.get("op")
        if op == "hello":
            out({"op": "hello", "protocol": 1, "kind": "aiohttp", "library": "aiohttp %s" % aiohttp.__version__,
                 "version": aiohttp.__version__})
        elif op == "send":
            lane = lanes.get(m["lane"])
            if lane is None:
                lane = lanes[m["lane"]] = Lane()
            t = asyncio.ensure_future(lane.send(m))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        elif op == "close":
            break
        else:
            sys.stderr.write("aiohttp-agent: unknown op %r\n" % op)
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    for lane in lanes.values():
        await lane.session.close()


if __name__ == "__main__":
    asyncio.run(main())
