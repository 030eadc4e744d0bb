"""What every HTTP client of the wizard shares: a bound on a whole answer (:class:`AnswerDeadline`), how long a
busy server asks to be left alone (:func:`retry_after`), and a refusal in the server's own words
(:func:`error_message`, :func:`error_code`)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx

# -- Bounded HTTP answers -------------------------------------------------------------------------------------------
# httpx's read timeout bounds each read, not an answer: a peer that drips one byte a second never trips it. Every
# client of a node, console, BMC or MAAS wraps its transport in AnswerDeadline so a body ends within a bound that
# grows with its size (a big log archive on a slow link is fine, a 400-byte JSON taking a minute is not).


class _DeadlineStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, request: httpx.Request, length: int, base: float, rate: float):
        self._inner = inner
        self._request = request
        self._length = length
        self._base = base
        self._rate = rate

    def __iter__(self) -> Iterator[bytes]:
        began = time.monotonic()
        received = 0
        for chunk in self._inner:
            received += len(chunk)
            allowed = self._base + max(self._length, received) / self._rate
            if time.monotonic() - began > allowed:
                raise httpx.ReadTimeout(
                    f"the answer took longer than {allowed:.0f} s ({received} bytes arrived)", request=self._request
                )
            yield chunk

    def close(self) -> None:
        self._inner.close()


class AnswerDeadline(httpx.BaseTransport):
    """Wraps a transport so every response body arrives within ``base`` seconds plus its size at ``min_rate``
    bytes per second, else the read fails with :class:`httpx.ReadTimeout` (which the clients already translate)."""

    def __init__(self, inner: httpx.BaseTransport, *, base: float, min_rate: float = 64 * 1024) -> None:
        self.inner = inner
        self.base = base
        self.min_rate = min_rate

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        try:
            length = int(response.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        stream = response.stream
        if isinstance(stream, httpx.SyncByteStream):
            response.stream = _DeadlineStream(stream, request, length, self.base, self.min_rate)
        return response

    def close(self) -> None:
        self.inner.close()


def retry_after(response: httpx.Response, default: float, cap: float = 60.0) -> float:
    """The wait a 429 or 503 asks for (``Retry-After`` in seconds or as an HTTP date), within ``[0, cap]``."""
    value = response.headers.get("Retry-After", "").strip()
    wait = default
    if value.isdigit():
        wait = float(value)
    elif value:
        from email.utils import parsedate_to_datetime

        try:
            wait = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            wait = default
    return min(max(wait, 0.0), cap)


# -- A refusal in the server's own words --------------------------------------------------------------------------
def error_message(r: httpx.Response) -> str:
    """The server's own words: a JSON ``message`` (the Local UI's v1Error, Palette's errors), a bare JSON string,
    else the status line."""
    try:
        data = r.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])
    if isinstance(data, str) and data:
        return data
    return f"HTTP {r.status_code} {r.reason_phrase}".strip()


def error_code(r: httpx.Response) -> str:
    """A JSON error body's ``code`` (e.g. ``PasswordResetRequired``), or ""."""
    try:
        data = r.json()
    except ValueError:
        return ""
    return str(data.get("code") or "") if isinstance(data, dict) else ""
