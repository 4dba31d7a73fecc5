"""idlerace's curl agent: libcurl's easy interface with its defaults, through pycurl, one
easy handle (and so one connection cache) per lane, driven over stdin/stdout as
docs/agent-protocol.md says.

Why it races like idlerace's "read-probe" with a hidden retry (libcurl 7.88, Debian's
libcurl4 under python3-pycurl):
  - before reusing a cached connection, lib/url.c extract_if_dead checks it
    (conn_maxage, then Curl_conn_is_alive: a zero-timeout poll of the socket), so a FIN
    that has arrived is seen and one still in flight is not; a connection idle longer
    than CURLOPT_MAXAGE_CONN (default 118 s) is not reused.
  - when a request on a reused connection got no response byte, lib/transfer.c
    Curl_retry_request replays it on a fresh connection, whatever the method ("Connection
    died, retrying a fresh connect"): the caller never sees the stale failure.
The agent reports the retries libcurl logs as "retries" (the driver counts hidden
retries off the wire either way).
"""
import io
import time

import pycurl

from idlerace_agent import max_idle, serve

# libcurl's error codes (curl/curl.h) that name a stale connection or a timeout.
CURLE_OPERATION_TIMEDOUT = 28
CURLE_GOT_NOTHING = 52  # "Empty reply from server": closed before any response byte
CURLE_SEND_ERROR = 55
CURLE_RECV_ERROR = 56


def classify(code, msg, wrote):
    if code == CURLE_OPERATION_TIMEDOUT:
        return "timeout"
    if code == CURLE_GOT_NOTHING:
        return "eof"
    reset = "reset" in msg.lower() or "broken pipe" in msg.lower()
    if code == CURLE_SEND_ERROR:
        return "reset_write" if reset else "other"
    if code == CURLE_RECV_ERROR:
        if reset:
            return "reset_read" if wrote else "reset_write"
        return "eof"
    return "other"


class Client:
    """A lane's easy handle: libcurl's own connection cache, its defaults."""

    def __init__(self):
        self.c = pycurl.Curl()
        self.st = {}
        # The debug callback is how libcurl says what it wrote and when it retried; it
        # fires only with VERBOSE, which changes nothing else.
        self.c.setopt(pycurl.VERBOSE, 1)
        self.c.setopt(pycurl.DEBUGFUNCTION, self.debug)
        if max_idle() is not None:
            self.c.setopt(pycurl.MAXAGE_CONN, int(max_idle()))

    def debug(self, kind, data):
        if kind == pycurl.INFOTYPE_HEADER_OUT:
            self.st["wrote"] = True
        elif kind == pycurl.INFOTYPE_TEXT and b"retrying a fresh connect" in data:
            self.st["retries"] = self.st.get("retries", 0) + 1
            self.st["wrote"] = False

    def close(self):
        self.c.close()

    def send(self, m):
        c = self.c
        self.st = {"wrote": False}
        body = (m.get("body") or "").encode()
        method = m.get("method") or "POST"
        buf = io.BytesIO()
        c.setopt(pycurl.URL, m["url"])
        c.setopt(pycurl.HTTPHEADER, ["%s: %s" % kv for kv in (m.get("headers") or {}).items()])
        c.setopt(pycurl.WRITEDATA, buf)
        if method == "GET" and not body:
            c.setopt(pycurl.HTTPGET, 1)
        else:
            c.setopt(pycurl.POSTFIELDS, body)
            c.setopt(pycurl.CUSTOMREQUEST, method)
        c.setopt(pycurl.TIMEOUT_MS, int(int(m.get("timeout_ns") or 0) / 1e6))
        res = {"start_ns": str(time.monotonic_ns())}
        try:
            c.perform()
            res["status"] = c.getinfo(pycurl.RESPONSE_CODE)
            res["bytes_in"] = len(buf.getvalue())
        except pycurl.error as exc:
            code, msg = exc.args[0], exc.args[1] if len(exc.args) > 1 else ""
            res["error"] = "curl error %d: %s" % (code, msg)
            res["class"] = classify(code, msg, self.st["wrote"])
        res["end_ns"] = str(time.monotonic_ns())
        res["reused"] = c.getinfo(pycurl.NUM_CONNECTS) == 0
        res["wrote"] = self.st["wrote"]
        port = c.getinfo(pycurl.LOCAL_PORT)
        if port:
            res["local_port"] = port
        if self.st.get("retries"):
            res["retries"] = self.st["retries"]
        return res


if __name__ == "__main__":
    v = pycurl.version_info()
    serve("curl", "libcurl %s (pycurl %s)" % (v[1], pycurl.version.split()[0].split("/")[-1]), v[1], Client)
