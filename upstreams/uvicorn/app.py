"""The ASGI application idlerace's uvicorn upstream serves (upstreams/uvicorn).

Go embeds this file, writes it into the server's private directory and runs
`/usr/bin/python3 -m uvicorn app:app ...` there. The app answers every request with a
fixed body, counts executions per Idlerace-Request-Id itself (a replayed id is a
duplicate), and answers GET /_idlerace/stats with its counters as JSON; that request is
not an execution. Its settings come from the environment:

    IDLERACE_TOKEN            echoed by the stats answer (readiness: this is our server)
    IDLERACE_RESPONSE_BYTES   body size, "okok..." (default 2)
    IDLERACE_SERVICE_TIME_S   seconds to sleep before answering (default 0)
    IDLERACE_KEEP_ALIVE       a Keep-Alive header value to send ("" for none: uvicorn
                              itself sends none)
"""

import asyncio
import importlib.util
import json
import os
import platform

import uvicorn

TOKEN = os.environ.get("IDLERACE_TOKEN", "")
RESPONSE_BYTES = int(os.environ.get("IDLERACE_RESPONSE_BYTES", "2"))
SERVICE_TIME_S = float(os.environ.get("IDLERACE_SERVICE_TIME_S", "0"))
KEEP_ALIVE = os.environ.get("IDLERACE_KEEP_ALIVE", "").encode("latin-1")
STATS_PATH = "/_idlerace/stats"
REQUEST_ID = b"idlerace-request-id"

BODY = (b"ok" * (RESPONSE_BYTES // 2 + 1))[:RESPONSE_BYTES]

executed = 0
duplicates = 0
executions = {}


def http_implementation():
    """The HTTP protocol uvicorn's default --http auto picks: httptools if importable."""
    if importlib.util.find_spec("httptools") is not None:
        import httptools

        return "httptools " + httptools.__version__
    import h11

    return "h11 " + h11.__version__


VERSION = "uvicorn/%s (%s %s, %s)" % (
    uvicorn.__version__,
    platform.python_implementation(),
    platform.python_version(),
    http_implementation(),
)


def count(request_id):
    global executed, duplicates
    executed += 1
    if request_id is None:
        return
    n = executions.get(request_id, 0) + 1
    executions[request_id] = n
    if n > 1:
        duplicates += 1


async def lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = message.get("more_body", False)

    if scope["method"] == "GET" and scope["path"] == STATS_PATH:
        body = json.dumps(
            {
                "accepted": 0,
                "idle_closes": 0,
                "closes_with_unread": 0,
                "executed": executed,
                "duplicates": duplicates,
                "token": TOKEN,
                "version": VERSION,
            }
        ).encode()
        headers = [(b"content-type", b"application/json")]
    else:
        request_id = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID:
                request_id = value
        count(request_id)
        if SERVICE_TIME_S > 0:
            await asyncio.sleep(SERVICE_TIME_S)
        body = BODY
        headers = [(b"content-type", b"text/plain")]
    if KEEP_ALIVE:
        headers.append((b"keep-alive", KEEP_ALIVE))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
