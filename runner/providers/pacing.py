"""Client-side pacing shared by the threads sending through one provider: a token bucket and a Retry-After pause."""

from __future__ import annotations

import threading
from collections.abc import Callable


class TokenBucket:
    """Client-side pacing: `rate` tokens a second, bursts up to `capacity`; rate 0 never waits.

    Taking more tokens than are left borrows against the future and sleeps the debt off, so a
    request of n messages waits exactly as long as the rate requires. Time comes from the
    injected `clock` and passes through the injected `sleep`. One bucket may be shared by
    threads: each takes its tokens under a lock and sleeps its own debt off outside it, so
    concurrent requests together keep to the rate.
    """

    def __init__(self, rate: float, capacity: float,
                 clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.rate = rate
        self.capacity = max(capacity, 1.0)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self, tokens: float) -> float:
        """Take `tokens`, sleeping until the rate allows them; returns the seconds slept."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= tokens
            if self._tokens >= 0:
                return 0.0
            wait = -self._tokens / self.rate
        self._sleep(wait)
        return wait


class Pause:
    """A wait the provider asked for (Retry-After), shared by every thread sending through one
    provider: once one request is told to wait, no other request starts before the wait is over."""

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self._clock = clock
        self._sleep = sleep
        self._until = clock()
        self._lock = threading.Lock()

    def extend(self, seconds: float) -> None:
        """Let no request start for `seconds` from now (a shorter pause than one already set changes nothing)."""
        with self._lock:
            self._until = max(self._until, self._clock() + seconds)

    def wait(self) -> float:
        """Sleep until the pause is over; returns the seconds slept."""
        with self._lock:
            wait = self._until - self._clock()
        if wait <= 0:
            return 0.0
        self._sleep(wait)
        return wait
