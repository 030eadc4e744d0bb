"""A clock tests can move by hand, so token and OTP expiry are exercised without sleeping."""

from __future__ import annotations

import threading

# A fixed start keeps timestamps in test output stable from run to run (2025-06-15T16:00:00Z).
DEFAULT_START = 1_750_003_200.0


class ManualClock:
    """Callable like ``time.time``; only :meth:`advance` and :meth:`set` move it."""

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not run backwards")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        with self._lock:
            self._now = now
