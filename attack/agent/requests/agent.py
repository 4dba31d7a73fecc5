"""idlerace's requests agent: Python requests (urllib3) with its defaults, one Session per
lane with one pooled connection, driven over stdin/stdout as docs/agent-protocol.md says.

Why it races like idlerace's "read-probe": urllib3 checks a pooled connection before
reusing it (connectionpool.HTTPConnectionPool._get_conn: "If this is a persistent
connection, check if it got disconnected", is_connection_dropped, a zero-timeout
wait_for_read), so a FIN that has arrived is seen; one still in flight is not.
requests' HTTPAdapter retries nothing by default (max_retries=0, read=False).
"""
import json
import queue
import sys
import threading
import time

import requests
import urllib3
import urllib3.connection
import urllib3.connectionpool

out_lock = threading.Lock()
local = threading.local()


def out(obj):
    line = json.dumps(obj)
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


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
    seen = set()
    e = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        name = type(e).__name__
        if name == "RemoteDisconnected":  # http.client: closed before any response byte
            return "eof"
        if isinstance(e, (ConnectionResetError, BrokenPipeError)):
            return "reset_read" if wrote else "reset_write"
        if isinstance(e, TimeoutError) or name in ("ReadTimeoutError", "ConnectTimeoutError"):
            return "timeout"
        nxt = None
        for attr in ("reason", "__cause__", "__context__"):
            nxt = getattr(e, attr, None)
            if isinstance(nxt, BaseException):
                break
            nxt = None
        if nxt is None and getattr(e, "args", None):
            for a in e.args:
                if isinstance(a, BaseException):
                    nxt = a
                    break
        e = nxt
    return "other"


def wait_until(at):
    # time.sleep to within 1.5 ms, then sleep(0) turns: the GIL goes to other lanes
    # between checks rather than after a 5 ms switch interval.
    while True:
        d = at - time.monotonic_ns()
        if d <= 0:
            return
        if d > 2_000_000:
            time.sleep((d - 1_500_000) / 1e9)
        else:
            time.sleep(0)


class Lane(threading.Thread):
    def __init__(self, n):
        super().__init__(daemon=True)
        self.n = n
        self.q = queue.Queue()
        self.session = requests.Session()
        # One connection per lane, as every lane in idlerace.
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1)
        self.session.mount("http://", adapter)

    def run(self):
        while True:
            m = self.q.get()
            if m is None:
                self.session.close()
                return
            wait_until(int(m.get("at_ns") or 0))
            self.send(m)

    def send(self, m):
        st = {"reused": False, "wrote": False}
        local.st = st
        res = {"op": "result", "id": m["id"], "lane": m["lane"], "status": 0, "bytes_in": 0}
        start = time.monotonic_ns()
        res["start_ns"] = str(start)
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
        out(res)


def main():
    lanes = {}
    for line in sys.stdin:
        try:
            m = json.loads(line)
        except ValueError as exc:
            sys.stderr.write("requests-agent: bad line: %s\n" % exc)
            continue
        op = m.get("op")
        if op == "hello":
            out({"op": "hello", "protocol": 1, "kind": "requests",
                 "library": "requests %s (urllib3 %s)" % (requests.__version__, urllib3.__version__),
                 "version": requests.__version__})
        elif op == "send":
            lane = lanes.get(m["lane"])
            if lane is None:
                lane = lanes[m["lane"]] = Lane(m["lane"])
                lane.start()
            lane.q.put(m)
        elif op == "close":
            break
        else:
            sys.stderr.write("requests-agent: unknown op %r\n" % op)
    for lane in lanes.values():
        lane.q.put(None)
    for lane in lanes.values():
        lane.join(timeout=5)


if __name__ == "__main__":
    main()
