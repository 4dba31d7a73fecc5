"""What idlerace's thread-per-lane Python agents share (requests, httpx, curl): the
protocol's loop of docs/agent-protocol.md, one thread per lane, the wait for a send's
instant, and walking an exception's causes for its class.

An agent module defines a lane's client (a class with send(m) -> result fields and
close()) and calls serve(kind, library, version, client).
"""
import json
import queue
import sys
import threading
import time

_out_lock = threading.Lock()


def max_idle():
    """The kind's idle-timeout option in seconds (--max-idle-ns N on the command line),
    or None: the library's default."""
    args = sys.argv[1:]
    for i, a in enumerate(args[:-1]):
        if a == "--max-idle-ns":
            return int(args[i + 1]) / 1e9
    return None


def out(obj):
    line = json.dumps(obj)
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


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


def causes(exc):
    """exc, then what it wraps (reason, __cause__, __context__, an exception argument),
    each once: libraries wrap the socket's error two or three deep."""
    seen = set()
    e = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
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


class _Lane(threading.Thread):
    def __init__(self, client):
        super().__init__(daemon=True)
        self.client = client
        self.q = queue.Queue()

    def run(self):
        while True:
            m = self.q.get()
            if m is None:
                self.client.close()
                return
            wait_until(int(m.get("at_ns") or 0))
            res = {"op": "result", "id": m["id"], "lane": m["lane"], "status": 0, "bytes_in": 0}
            res.update(self.client.send(m))
            out(res)


def serve(kind, library, version, client):
    """Answers the driver on stdin until it closes or says close; client() makes a
    lane's own client."""
    lanes = {}
    for line in sys.stdin:
        try:
            m = json.loads(line)
        except ValueError as exc:
            sys.stderr.write("%s-agent: bad line: %s\n" % (kind, exc))
            continue
        op = m.get("op")
        if op == "hello":
            out({"op": "hello", "protocol": 1, "kind": kind, "library": library, "version": version})
        elif op == "send":
            lane = lanes.get(m["lane"])
            if lane is None:
                lane = lanes[m["lane"]] = _Lane(client())
                lane.start()
            lane.q.put(m)
        elif op == "close":
            break
        else:
            sys.stderr.write("%s-agent: unknown op %r\n" % (kind, op))
    for lane in lanes.values():
        lane.q.put(None)
    for lane in lanes.values():
        lane.join(timeout=5)
