"""idlerace's requests agent: Python requests (urllib3) with its defaults, one Session per
lane with one pooled connection, driven over stdin/stdout as docs/agent-protocol.md says.

Why it races like idlerace's "read-probe": urllib3 checks a pooled connection before
reusing it (connectionpool.HTTPConnectionPool._get_conn: "If this is a persistent
connection, check if it got disconnected", is_connection_dropped, a zero-timeout
wait_for_read), so a FIN that has arrived is seen; one still in flight is not.
requests' HTTPAdapter retries nothing by default (max_retries=0, read=False).
"""
import threading
import time

import requests
import urllib3
import urllib3.connection
import urllib3.connectionpool

from idlerace_agent import causes, serve

local = threading.local()


# What the library does not say, learnt from inside it: whether the request went out
# on a pooled connection and from which port, and whether it was written before a
# failure.
_make_request = urllib3.connectionpool.HTTPConnectionPool._make_request


def make_request(self, conn, method, url, *args, **kwargs):
    st = getattr(local, "st", None)
    if st is not None:
        st["reused"] = conn.sock is not None
        if conn.sock is not None:
            st["local_port"] = conn.sock.getsockname()[1]
    try:
        return _make_request(self, conn, method, url, *args, **kwargs)
    finally:
        if st is not None and conn.sock is not None and "local_port" not in st:
            st["local_port"] = conn.sock.getsockname()[1]


urllib3.connectionpool.HTTPConnectionPool._make_request = make_request

_request = urllib3.connection.HTTPConnection.request


def conn_request(self, *args, **kwargs):
    r = _request(self, *args, **kwargs)
    st = getattr(local, "st", None)
    if st is not None:
        st["wrote"] = True
        if self.sock is not None and "local_port" not in st:
            st["local_port"] = self.sock.getsockname()[1]
    return r


urllib3.connection.HTTPConnection.request = conn_request


def classify(exc, wrote):
    """requests' and urllib3's errors as idlerace's classes."""
    if isinstance(exc, requests.exceptions.Timeout):
        return "timeout"
    for e in causes(exc):
        name = type(e).__name__
        if name == "RemoteDisconnected":  # http.client: closed before any response byte
            return "eof"
        if isinstance(e, (ConnectionResetError, BrokenPipeError)):
            return "reset_read" if wrote else "reset_write"
        if isinstance(e, TimeoutError) or name in ("ReadTimeoutError", "ConnectTimeoutError"):
            return "timeout"
    return "other"


class Client:
    """A lane's requests Session with one pooled connection, as every lane in idlerace."""

    def __init__(self):
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1)
        self.session.mount("http://", adapter)

    def close(self):
        self.session.close()

    def send(self, m):
        st = {"reused": False, "wrote": False}
        local.st = st
        res = {"start_ns": str(time.monotonic_ns())}
        timeout = int(m.get("timeout_ns") or 0) / 1e9 or None
        try:
            r = self.session.request(m.get("method") or "POST", m["url"], headers=m.get("headers") or {},
                                     data=(m.get("body") or "").encode(), timeout=timeout)
            res["status"] = r.status_code
            res["bytes_in"] = len(r.content)
        except Exception as exc:  # the library's own error, whatever it is
            res["error"] = "%s: %s" % (type(exc).__name__, exc)
            res["class"] = classify(exc, st["wrote"])
        res["end_ns"] = str(time.monotonic_ns())
        res["reused"] = st["reused"]
        res["wrote"] = st["wrote"]
        if st.get("local_port"):
            res["local_port"] = st["local_port"]
        local.st = None
        return res


if __name__ == "__main__":
    serve("requests", "requests %s (urllib3 %s)" % (requests.__version__, urllib3.__version__),
          requests.__version__, Client)
