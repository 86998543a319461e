"""Guessing slowed: failed authentications counted per client address in Redis (no web framework).

A small Redis counter with an expiry (SET NX with the window's expiry, then INCR, in one transaction) rather
than the ``limits`` library: it is one key per address and two commands, needs no new dependency,
and being in Redis it counts across every replica. From the first failure, an address may fail
``allowed`` times in ``window`` seconds; beyond, every request it sends that needs a key is
``429`` with ``Retry-After`` (the window's remaining seconds) until the counter expires. A right key
from another address is never slowed: only the failing address is counted. Only an address that
failed through this process lately is checked before its request (``suspect``): the others cost
no Redis call (bench/bench_keys.py).
"""

from __future__ import annotations

import time

import redis

from predictionservice.exceptions import TooManyRequests

FAILURES = "__auth_failures__:"


MAX_SUSPECTS = 10_000  # addresses one process remembers having failed from (then it forgets them all)


class FailureLimit:
    """The count is Redis's; each process also remembers the addresses that failed through it
    within the window (``suspect``), and only for those reads the count before a request: a
    client that never failed costs no Redis call. A guesser spread over n replicas gets at most n
    attempts more per window than ``allowed`` (its first failure on each replica), each counted."""

    def __init__(self, client: redis.Redis, prefix: str = "", *, allowed: int = 20, window: int = 60):
        self.client = client
        self.prefix = prefix
        self.allowed = allowed
        self.window = window
        self._suspects: dict[str, float] = {}  # address -> monotonic time its window here ends

    def suspect(self, address: str) -> bool:
        """Whether this address failed through this process within the window."""
        until = self._suspects.get(address)
        if until is None:
            return False
        if until < time.monotonic():
            self._suspects.pop(address, None)
            return False
        return True

    def check(self, address: str) -> None:
        """TooManyRequests when this address has failed too often lately."""
        name = self.prefix + FAILURES + address
        with self.client.pipeline(transaction=True) as pipe:
            pipe.get(name)
            pipe.ttl(name)
            count, ttl = pipe.execute()
        if count is not None and int(count) >= self.allowed:
            raise TooManyRequests(
                f"too many failed authentications from this address: try again in {max(ttl, 1)} s",
                retry_after=max(int(ttl), 1),
            )

    def failed(self, address: str) -> int:
        """Count one failure of this address: how many it has in the current window."""
        if len(self._suspects) >= MAX_SUSPECTS:
            self._suspects.clear()  # bounded: a forgotten address is counted again at its next failure
        self._suspects[address] = time.monotonic() + self.window
        name = self.prefix + FAILURES + address
        with self.client.pipeline(transaction=True) as pipe:
            pipe.set(name, 0, ex=self.window, nx=True)  # the window starts at the first failure
            pipe.incr(name)
            _, count = pipe.execute()
        return int(count)
