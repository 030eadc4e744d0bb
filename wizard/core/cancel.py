"""Cooperative cancellation: workers check the token between chunks and polls."""

from __future__ import annotations

import threading

from wizard.core.errors import Cancelled


class CancelToken:
    """A thread-safe cancel flag; ``sleep`` wakes up as soon as the token is cancelled."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled by the operator") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` or until cancelled, whichever comes first; raises :class:`Cancelled`."""
        if self._event.wait(max(0.0, seconds)):
            raise Cancelled(self.reason)
