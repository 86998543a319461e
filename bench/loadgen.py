"""A closed-loop HTTP/1.1 load generator for loopback servers.

``processes`` processes each drive ``connections / processes`` keep-alive connections from one
selector loop (non-blocking sockets, no threads): every connection sends the same request again as
soon as the previous answer is complete, and the latency of each request (first byte sent to last
byte received) is recorded. A run is bounded in time (``duration``) and in count
(``max_requests``); answers must carry a Content-Length (CherryPy's do). A non-2xx status, a
closed connection or a request slower than ``timeout`` counts as an error (the connection is then
opened again).

    .venv/bin/python bench/loadgen.py http://127.0.0.1:5000/predict/ body.json -c 16 -d 10
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import selectors
import socket
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "localhost", "::1")
_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


def build_request(url: str, body: bytes, content_type: str = "application/json", headers: dict | None = None) -> bytes:
    parts = urlsplit(url)
    if parts.hostname not in LOOPBACK:
        raise ValueError(f"the load generator only targets loopback, not {parts.hostname!r}")
    lines = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class LoadResult:
    requests: int = 0  # answered with a 2xx
    errors: int = 0
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, sorted

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        return self.latencies[min(len(self.latencies) - 1, int(q / 100 * len(self.latencies)))]

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.per_second, 1),
            "p50_ms": round(self.percentile(50) * 1000, 3),
            "p99_ms": round(self.percentile(99) * 1000, 3),
            "max_ms": round(self.latencies[-1] * 1000, 3) if self.latencies else None,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


class _Connection:
    def __init__(self, address: tuple[str, int], timeout: float):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.pending = memoryview(b"")
        self.received = bytearray()
        self.expected = -1  # total bytes of the answer once its header is read
        self.status = 0
        self.close_after = False
        self.started = 0.0


def _drive(
    address: tuple[str, int],
    request: bytes,
    connections: int,
    duration: float,
    max_requests: int,
    timeout: float,
    barrier: Any,
    out: Any,
) -> None:
    """One process's share of the load; puts (ok, errors, statuses, latencies, first, last)."""
    selector = selectors.DefaultSelector()
    latencies = array("d")
    statuses: Counter = Counter()
    counts = {"sent": 0, "errors": 0}
    conns = [_Connection(address, timeout) for _ in range(connections)]
    barrier.wait()
    first = time.perf_counter()
    deadline = first + duration

    def send(conn: _Connection) -> None:
        if time.perf_counter() >= deadline or counts["sent"] >= max_requests:
            conn.sock.close()
            return
        counts["sent"] += 1
        conn.received.clear()
        conn.expected = -1
        conn.started = time.perf_counter()
        try:
            sent = conn.sock.send(request)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            fail(conn)
            return
        conn.pending = memoryview(request)[sent:]
        selector.register(conn.sock, selectors.EVENT_WRITE if conn.pending else selectors.EVENT_READ, conn)

    def fail(conn: _Connection) -> None:
        counts["errors"] += 1
        renew(conn)

    def renew(conn: _Connection) -> None:
        conn.sock.close()
        try:
            fresh = _Connection(address, timeout)
        except OSError:
            counts["errors"] += 1
            return
        conns[conns.index(conn)] = fresh
        send(fresh)

    def on_answer(conn: _Connection) -> None:
        latencies.append(time.perf_counter() - conn.started)
        statuses[conn.status] += 1
        if not 200 <= conn.status < 300:
            counts["errors"] += 1
        if conn.close_after:
            renew(conn)
        else:
            send(conn)

    def on_readable(conn: _Connection) -> None:
        try:
            chunk = conn.sock.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            selector.unregister(conn.sock)
            fail(conn)
            return
        conn.received += chunk
        if conn.expected < 0:
            end = conn.received.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(conn.received[: end + 2])
            length = _LENGTH.search(head)
            conn.status = int(head[9:12])
            if length is None:  # chunked or unknown length: not this generator's business
                selector.unregister(conn.sock)
                fail(conn)
                return
            conn.expected = end + 4 + int(length.group(1))
            conn.close_after = _CLOSE.search(head) is not None
        if len(conn.received) >= conn.expected:
            selector.unregister(conn.sock)
            on_answer(conn)

    def on_writable(conn: _Connection) -> None:
        try:
            sent = conn.sock.send(conn.pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            selector.unregister(conn.sock)
            fail(conn)
            return
        conn.pending = conn.pending[sent:]
        if not conn.pending:
            selector.modify(conn.sock, selectors.EVENT_READ, conn)

    for conn in list(conns):
        send(conn)
    last_check = time.perf_counter()
    while selector.get_map():
        for key, events in selector.select(timeout=0.2):
            conn = key.data
            if events & selectors.EVENT_WRITE:
                on_writable(conn)
            elif events & selectors.EVENT_READ:
                on_readable(conn)
        now = time.perf_counter()
        if now - last_check > 0.2:
            last_check = now
            for key in list(selector.get_map().values()):
                if now - key.data.started > timeout:
                    selector.unregister(key.fileobj)
                    fail(key.data)
    last = time.perf_counter()
    selector.close()
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    out.put((ok, counts["errors"], dict(statuses), latencies.tobytes(), first, last))


def run(
    url: str,
    body: bytes,
    *,
    connections: int = 16,
    processes: int = 2,
    duration: float = 20.0,
    max_requests: int = 1_000_000,
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """Load url with POSTs of body; bounded by duration seconds and max_requests requests."""
    request = build_request(url, body, headers=headers)
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    processes = max(1, min(processes, connections))
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    out = context.Queue()
    workers = []
    for i in range(processes):
        share = connections // processes + (1 if i < connections % processes else 0)
        quota = max_requests // processes + (1 if i < max_requests % processes else 0)
        args = (address, request, share, duration, quota, timeout, barrier, out)
        workers.append(context.Process(target=_drive, args=args, daemon=True))
    for worker in workers:
        worker.start()
    result = LoadResult()
    firsts, lasts = [], []
    try:
        for _ in workers:
            ok, errors, statuses, raw, first, last = out.get(timeout=duration + timeout + 60)
            result.requests += ok
            result.errors += errors
            result.statuses.update(statuses)
            latencies = array("d")
            latencies.frombytes(raw)
            result.latencies.extend(latencies)
            firsts.append(first)
            lasts.append(last)
    finally:
        for worker in workers:
            worker.join(5)
            if worker.is_alive():
                worker.terminate()
                worker.join()
    result.seconds = max(lasts) - min(firsts)
    result.latencies.sort()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="http://127.0.0.1:PORT/path (loopback only)")
    parser.add_argument("body", help="file holding the JSON body")
    parser.add_argument("-c", "--connections", type=int, default=16)
    parser.add_argument("-p", "--processes", type=int, default=2)
    parser.add_argument("-d", "--duration", type=float, default=10.0)
    parser.add_argument("-n", "--max-requests", type=int, default=1_000_000)
    args = parser.parse_args()
    with open(args.body, "rb") as f:
        body = f.read()
    result = run(
        args.url,
        body,
        connections=args.connections,
        processes=args.processes,
        duration=args.duration,
        max_requests=args.max_requests,
    )
    print(result.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
