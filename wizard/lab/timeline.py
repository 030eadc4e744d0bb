"""The lab's own timeline: every piece of work a simulated appliance does that the wizard has to wait for.

The simulated machines and nodes record each such piece as it is decided — an install from power-on to its last
line, a reboot until the Local UI answers again, content syncing to a follower, the cluster from create to Running,
the registry sync — as ``(category, node, start, end)`` on the lab clock. The ``install-overhead`` benchmark lays the
wizard's steps over it: what a step took beyond the appliance work it waited for is the wizard's own overhead.

Categories: ``install`` (power-on from the ISO until the installer has finished), ``reboot`` (going down until the
Local UI answers again, after the install or to apply user data), ``configure`` (a Local UI configuration until it
is applied), ``content-sync`` (an uploaded bundle reaching a follower), ``cluster`` (create until Running),
``pack-import`` (an uploaded pack bundle until the registry lists it) and ``registry-sync`` (the system console's
pack registry sync).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Interval:
    category: str
    node: str
    start: float
    end: float


class Timeline:
    """A thread-safe ledger of :class:`Interval`; a repeated ``key`` records once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._intervals: list[Interval] = []
        self._keys: set[Hashable] = set()

    def record(self, category: str, node: str, start: float, end: float, *, key: Hashable | None = None) -> None:
        with self._lock:
            if key is not None:
                if key in self._keys:
                    return
                self._keys.add(key)
            self._intervals.append(Interval(category, node, start, max(start, end)))

    def intervals(self, categories: Iterable[str] | None = None) -> list[Interval]:
        wanted = None if categories is None else set(categories)
        with self._lock:
            return [i for i in self._intervals if wanted is None or i.category in wanted]


def covered(intervals: Iterable[Interval], start: float, end: float) -> float:
    """Seconds of ``[start, end]`` inside at least one interval (their union, clipped to the window)."""
    spans = sorted((max(i.start, start), min(i.end, end)) for i in intervals if i.end > start and i.start < end)
    total, reach = 0.0, start
    for a, b in spans:
        begin = max(a, reach)
        if b > begin:
            total += b - begin
            reach = b
    return total
