"""What every HTTP client of the wizard shares: a bound on a whole answer (:class:`AnswerDeadline`), one policy for
transient faults (:class:`RetryPolicy`, applied by :class:`RetryTransport` to idempotent requests and by
:func:`settle` to the others, honouring how long a busy server asks to be left alone), and a refusal in the server's
own words (:func:`error_message`, :func:`error_code`)."""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

import httpx

log = logging.getLogger(__name__)

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


# -- Transient faults: one retry policy for every client ----------------------------------------------------------
# A server answering 5xx, a connection reset mid-answer and a read that timed out are normal on a real network and
# say nothing about whether a request took effect. Idempotent requests (GET, HEAD, OPTIONS, PUT and DELETE, or any
# request a client declares idempotent through ``extensions={"idempotent": True}`` because its API makes it so) are
# sent again by :class:`RetryTransport`. Everything else is never resent blindly: the caller re-reads the state
# first (:func:`settle`). A 429 was not processed at all, so any method is sent again once the wait it asks for
# has passed. A refused connection is not retried here: the request never left, and the callers that wait for a
# rebooting node want to hear about it at once.

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: An answer lost on the way back (reset, closed without a response) or a read that ran out of time.
RESET_ERRORS: tuple[type[Exception], ...] = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError)
TIMEOUT_ERRORS: tuple[type[Exception], ...] = (httpx.ReadTimeout, httpx.WriteTimeout)
TRANSIENT_ERRORS = RESET_ERRORS + TIMEOUT_ERRORS


class Sleeper(Protocol):
    def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often a transient fault is ridden out, the same for every HTTP client.

    The n-th wait is ``base * 2**(n-1)`` capped at ``cap``, less up to ``jitter`` of it drawn at random (so clients
    that failed together do not come back together). A ``Retry-After`` longer than that wait is honoured up to
    ``retry_after_cap``; a server asking for longer than that gets its answer handed to the caller instead.
    ``attempts`` counts every try, the first included. With the defaults a request gives up after about 30 s of a
    server failing every time; at a 10 % error rate the chance that all eight tries fail is 1 in 10⁸.
    """

    attempts: int = 8
    base: float = 0.5
    cap: float = 8.0
    jitter: float = 0.5
    retry_after_cap: float = 60.0
    statuses: frozenset[int] = frozenset({500, 502, 503, 504})
    throttled: frozenset[int] = frozenset({429})

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base < 0 or self.cap < self.base or not 0 <= self.jitter <= 1:
            raise ValueError(f"unusable retry policy: {self}")

    def scaled(self, factor: float) -> RetryPolicy:
        """The same policy with every wait multiplied by ``factor`` (the rehearsal's faster clock, tests)."""
        return replace(
            self, base=self.base * factor, cap=self.cap * factor, retry_after_cap=self.retry_after_cap * factor
        )

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """The wait after the ``failures``-th failure in a row (1 for the first)."""
        wait = min(self.cap, self.base * float(2 ** max(0, failures - 1)))
        draw = (rng or _RNG).random()
        return wait * (1.0 - self.jitter * draw)

    def wait_for(self, response: httpx.Response, failures: int, rng: random.Random | None = None) -> float | None:
        """The wait before trying again after ``response``; None when its Retry-After asks for more than
        ``retry_after_cap`` (the caller hears the answer instead of a long silence)."""
        return self.wait_after(response.headers, failures, rng)

    def wait_after(self, headers: Mapping[str, str], failures: int, rng: random.Random | None = None) -> float | None:
        """``wait_for`` for an answer read by other means than httpx (its headers, names in lower case)."""
        wait = self.delay(failures, rng)
        asked = retry_after_seconds(headers)
        if asked is None:
            return wait
        if asked > self.retry_after_cap:
            return None
        return max(wait, asked)

    def sleep(self, seconds: float, cancel: Sleeper | None) -> None:
        """Wait ``seconds``; a cancel (through the job's :class:`~wizard.core.cancel.CancelToken`) ends it at once."""
        if cancel is not None:
            cancel.sleep(seconds)
        else:
            time.sleep(seconds)


DEFAULT_RETRY = RetryPolicy()
_RNG = random.Random()  # noqa: S311 - jitter, not cryptography


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """A Retry-After header's wait in seconds (either form), or None."""
    value = (headers.get("Retry-After") or headers.get("retry-after") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def is_idempotent(request: httpx.Request) -> bool:
    """Whether ``request`` may be sent twice with the effect of once: by its method, or as its client declared
    (``extensions={"idempotent": …}``, for a POST that only reads or a PUT that is not)."""
    declared = request.extensions.get("idempotent")
    if isinstance(declared, bool):
        return declared
    return request.method.upper() in IDEMPOTENT_METHODS


def _replayable(request: httpx.Request) -> bool:
    """A body that can be sent again (bytes, JSON, a form); a streamed upload cannot."""
    stream = request.stream
    return isinstance(stream, httpx.ByteStream) or type(stream).__name__ == "MultipartStream"


def fault_of(exc: BaseException) -> str:
    """A short name of a transport failure for log lines."""
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return f"connection lost ({exc.__class__.__name__})"


def tls_refusal(exc: BaseException) -> bool:
    """Whether a lost connection was the peer refusing the TLS session with an alert (our client certificate, say:
    TLS 1.3 sends that after the handshake, so it surfaces as a read error). Sending again gets the same alert."""
    cause: BaseException | None = exc
    for _ in range(4):  # httpx wraps httpcore's error, which wraps the ssl module's
        cause = cause.__cause__ or cause.__context__ if cause is not None else None
        if isinstance(cause, ssl.SSLError):
            break
    if not isinstance(cause, ssl.SSLError) or isinstance(cause, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return False
    reason = str(getattr(cause, "reason", "") or "")
    return "ALERT" in reason and "INTERNAL_ERROR" not in reason


class RetryTransport(httpx.BaseTransport):
    """Applies a :class:`RetryPolicy` below an httpx client: idempotent requests are sent again after a 5xx, a reset
    or a timeout (their answer is read here, so a body cut off halfway counts too), any request after a 429; one
    log line per retry. ``cancel`` (anything with a ``sleep`` that raises when cancelled) ends a wait at once."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        policy: RetryPolicy = DEFAULT_RETRY,
        *,
        cancel: Sleeper | None = None,
        label: str = "",
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.policy = policy
        self.cancel = cancel
        self.label = label
        self.rng = rng
        self.retried = 0  # how many times a request was sent again

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        policy = self.policy
        replayable = _replayable(request)
        idempotent = replayable and is_idempotent(request)
        failures = 0
        while True:
            try:
                response = self.inner.handle_request(request)
                if idempotent:
                    response = _buffered(response, request)
            except TRANSIENT_ERRORS as exc:
                failures += 1
                if not idempotent or failures >= policy.attempts or tls_refusal(exc):
                    raise
                self._pause(request, fault_of(exc), failures, policy.delay(failures, self.rng))
                continue
            status = response.status_code
            retry = (status in policy.throttled and replayable) or (status in policy.statuses and idempotent)
            if not retry or failures + 1 >= policy.attempts:
                return response
            wait = policy.wait_for(response, failures + 1, self.rng)
            if wait is None:
                return response
            failures += 1
            response.close()
            self._pause(request, f"answered {status}", failures, wait)

    def _pause(self, request: httpx.Request, why: str, failures: int, wait: float) -> None:
        self.retried += 1
        where = f"{self.label} " if self.label else ""
        log.warning(
            "%s%s %s %s; retry %d of %d in %.1f s",
            where,
            request.method,
            request.url.path,
            why,
            failures,
            self.policy.attempts - 1,
            wait,
        )
        self.policy.sleep(wait, self.cancel)

    def close(self) -> None:
        self.inner.close()


def _buffered(response: httpx.Response, request: httpx.Request) -> httpx.Response:
    """The whole answer read now, so a reset or a deadline while it arrives is seen (and retried) here."""
    if response.is_stream_consumed:
        return response  # read already (by a transport below): nothing can fail any more
    try:
        raw = b"".join(response.iter_raw())
    finally:
        response.close()
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=httpx.ByteStream(raw),
        extensions=response.extensions,
        request=request,
    )


# -- Requests that must not be resent blindly --------------------------------------------------------------------

T = TypeVar("T")


def outcome_unknown(exc: BaseException) -> bool:
    """Whether ``exc`` leaves open if a request took effect: the clients mark their errors for a 5xx answer and for
    an answer lost to a reset or a timeout (``outcome_unknown = True``); a refusal or a refused connection is
    known not to have."""
    return bool(getattr(exc, "outcome_unknown", False))


def settle(
    policy: RetryPolicy,
    send: Callable[[], T],
    check: Callable[[], T | None],
    *,
    what: str,
    cancel: Sleeper | None = None,
) -> T:
    """Send a request that is not idempotent (``send``); when its outcome is unknown, wait as the policy says and
    read the state (``check``: a value when the request took effect, None when it did not) before deciding to send
    it again. A state that cannot be read yet is read again after the next wait; nothing is resent meanwhile.
    Gives up, raising the last error, after the policy's attempts."""
    failures = 0
    while True:
        try:
            return send()
        except Exception as exc:
            if not outcome_unknown(exc):
                raise
            last: Exception = exc
        log.warning("%s: outcome unknown (%s); reading the state before sending it again", what, last)
        while True:
            failures += 1
            if failures >= policy.attempts:
                raise last
            policy.sleep(policy.delay(failures), cancel)
            try:
                done = check()
            except Exception as exc:
                if not outcome_unknown(exc):
                    raise
                last = exc
                log.warning("%s: the state cannot be read yet (%s); reading it again", what, exc)
                continue
            break
        if done is not None:
            log.info("%s had taken effect", what)
            return done
        log.warning("%s had not taken effect; sending it again (%d of %d)", what, failures, policy.attempts - 1)


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
