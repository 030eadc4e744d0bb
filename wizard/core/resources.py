"""Services that outlive one job but not the run, such as the ISO server the BMCs read from while nodes install.

A job asks for a resource by key; the first request starts it and later ones share it. The engine closes every
resource when the run ends (finished, failed or cancelled), newest first, so nothing keeps serving after the
wizard stops needing it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

log = logging.getLogger(__name__)

T = TypeVar("T")


class RunResources:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[Any, Callable[[Any], None]]] = {}

    def get(self, key: str, start: Callable[[], T], close: Callable[[T], None]) -> T:
        """The resource named ``key``, started by ``start`` on first use; ``close`` stops it when the run ends."""
        with self._lock:  # held while starting, so two jobs asking at once share one resource
            if key not in self._items:
                self._items[key] = (start(), cast(Callable[[Any], None], close))
            return cast(T, self._items[key][0])

    def peek(self, key: str) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            return item[0] if item else None

    def close(self) -> None:
        with self._lock:
            items = list(self._items.items())
            self._items.clear()
        for key, (value, close) in reversed(items):
            try:
                close(value)
            except Exception:  # one failing close must not keep the others running
                log.exception("closing %s failed", key)
            else:
                log.info("stopped %s", key)
