"""idlerace's httpx agent: httpx's Client with its defaults (httpcore underneath), one
Client per lane, driven over stdin/stdout as docs/agent-protocol.md says.

Why it races like idlerace's "read-probe" with a 5 s cap: at checkout httpcore's
ConnectionPool._close_expired_connections drops every connection whose has_expired()
is true (httpcore/_sync/http11.py, HTTP11Connection.has_expired): one idle longer than
keepalive_expiry (httpx's Limits default, 5.0 s), or one that is IDLE while its socket
is readable (a zero-timeout poll: "the only valid state is that the socket is about to
return b''"). So a FIN that has arrived is seen; one still in flight is not. httpcore
retries only ConnectionNotAvailable (a connection that turned out busy), never a
request that failed on the wire.
"""
import time

import httpcore
import httpx

from idlerace_agent import causes, max_idle, serve


def classify(exc, wrote):
    """httpx's and httpcore's errors as idlerace's classes."""
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    for e in causes(exc):
        if isinstance(e, (httpx.RemoteProtocolError, httpcore.RemoteProtocolError)) and "without sending a response" in str(e):
            return "eof"  # "Server disconnected without sending a response."
        if isinstance(e, (ConnectionResetError, BrokenPipeError)):
            return "reset_read" if wrote else "reset_write"
        if isinstance(e, TimeoutError):
            return "timeout"
    return "other"


class Client:
    """A lane's httpx.Client: its default Limits, keepalive_expiry unless the spec sets it."""

    def __init__(self):
        expiry = max_idle()
        if expiry is None:
            self.client = httpx.Client()
        else:  # httpx's DEFAULT_LIMITS with the kind's keepalive_expiry
            self.client = httpx.Client(limits=httpx.Limits(max_connections=100, max_keepalive_connections=20,
                                                           keepalive_expiry=expiry))

    def close(self):
        self.client.close()

    def send(self, m):
        # What httpx does not say, from httpcore's trace extension: a connect means a new
        # connection, a completed body means the request was written.
        st = {"connected": False, "wrote": False}

        def trace(name, info):
            if name == "connection.connect_tcp.complete":
                st["connected"] = True
                st["port"] = port_of(info.get("return_value"))
            elif name == "http11.send_request_body.complete":
                st["wrote"] = True

        pooled = self.pooled_port()
        res = {"start_ns": str(time.monotonic_ns())}
        timeout_ns = int(m.get("timeout_ns") or 0)
        timeout = httpx.Timeout(timeout_ns / 1e9) if timeout_ns else httpx.Timeout(None)
        try:
            with self.client.stream(m.get("method") or "POST", m["url"], headers=m.get("headers") or {},
                                    content=(m.get("body") or "").encode(), timeout=timeout,
                                    extensions={"trace": trace}) as r:
                body = r.read()
                res["status"] = r.status_code
                res["bytes_in"] = len(body)
        except Exception as exc:  # the library's own error, whatever it is
            res["error"] = "%s: %s" % (type(exc).__name__, exc)
            res["class"] = classify(exc, st["wrote"])
        res["end_ns"] = str(time.monotonic_ns())
        res["reused"] = not st["connected"]
        res["wrote"] = st["wrote"]
        port = st.get("port") if st["connected"] else pooled
        if port:
            res["local_port"] = port
        return res

    def pooled_port(self):
        # The connection a request will reuse, if any: the lane has one at most.
        for conn in self.client._transport._pool.connections:
            inner = getattr(conn, "_connection", None)
            if inner is not None and inner.is_idle():
                return port_of(getattr(inner, "_network_stream", None))
        return 0


def port_of(stream):
    sock = stream.get_extra_info("socket") if stream is not None else None
    try:
        return sock.getsockname()[1] if sock is not None else 0
    except OSError:
        return 0


if __name__ == "__main__":
    serve("httpx", "httpx %s (httpcore %s)" % (httpx.__version__, httpcore.__version__), httpx.__version__, Client)
