"""Transient server faults every lab HTTP service can inject: ``http-5xx=RATE`` answers that share of requests with
500, 502 or 503 before doing anything with them (no state changes, the body unread), as a proxy or a restarting
service in front of a real appliance, console, BMC or MAAS region would.

Seeded per service, so a rehearsal's faults are repeatable for the same seed and request order (threads may still
interleave requests differently from run to run).
"""

from __future__ import annotations

import random
import threading

STATUSES = (500, 502, 503)
REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


class HttpFaults:
    """Draws, per request, whether this one fails and with which status; thread-safe."""

    def __init__(self, rate: float = 0.0, *, seed: int | str = 0, label: str = "") -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"a fault rate is between 0 and 1, not {rate}")
        self.rate = rate
        self.label = label
        self._rng = random.Random(f"{seed}/{label}")  # noqa: S311 - fault injection, not a secret
        self._lock = threading.Lock()
        self.injected = 0  # how many requests were answered with a fault

    def take(self) -> int | None:
        """The status this request gets instead of its answer, or None to answer it normally."""
        if self.rate <= 0.0:
            return None
        with self._lock:
            if self._rng.random() >= self.rate:
                return None
            self.injected += 1
            return self._rng.choice(STATUSES)

    def message(self, status: int) -> str:
        return f"{REASONS.get(status, 'Server Error')} (injected by the lab's http-5xx knob)"


NONE = HttpFaults(0.0, label="none")
