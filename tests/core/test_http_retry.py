"""The one retry policy (wizard.core.http): what is sent again, after how long, and what never is."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

import httpx
import pytest

from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled, WizardError
from wizard.core.http import (
    DEFAULT_RETRY,
    RetryPolicy,
    RetryTransport,
    is_idempotent,
    settle,
)

FAST = DEFAULT_RETRY.scaled(0.001)


def _client(handler: Callable[[httpx.Request], httpx.Response], policy: RetryPolicy = FAST) -> httpx.Client:
    return httpx.Client(transport=RetryTransport(httpx.MockTransport(handler), policy), base_url="http://peer")


def _answers(*statuses: int) -> tuple[Callable[[httpx.Request], httpx.Response], list[str]]:
    seen: list[str] = []
    queue = list(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return httpx.Response(queue.pop(0) if queue else 200, json={"ok": True})

    return handler, seen


def test_the_waits_double_up_to_the_cap_with_jitter_below_them() -> None:
    policy = RetryPolicy(attempts=8, base=0.5, cap=8.0, jitter=0.5)
    rng = random.Random(1)
    for failures, full in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 8.0), (7, 8.0)]:
        wait = policy.delay(failures, rng)
        assert full * 0.5 <= wait <= full
    assert sum(min(8.0, 0.5 * 2 ** (n - 1)) for n in range(1, 8)) == 31.5  # the worst case the docstring names


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_idempotent_requests_are_sent_again_after_a_5xx(status: int) -> None:
    handler, seen = _answers(status, status, status)
    with _client(handler) as client:
        assert client.get("/x").status_code == 200
        assert client.put("/x", json={}).status_code == 200
    assert seen == ["GET", "GET", "GET", "GET", "PUT"]


def test_a_post_is_never_resent_after_a_5xx() -> None:
    handler, seen = _answers(500)
    with _client(handler) as client:
        assert client.post("/x", json={"a": 1}).status_code == 500
    assert seen == ["POST"]


def test_a_post_declared_idempotent_is_retried() -> None:
    handler, seen = _answers(503)
    with _client(handler) as client:
        r = client.post("/login", json={}, extensions={"idempotent": True})
    assert r.status_code == 200 and seen == ["POST", "POST"]
    assert is_idempotent(httpx.Request("PUT", "http://x/", extensions={"idempotent": False})) is False


def test_a_429_is_waited_out_for_any_method_as_retry_after_asks() -> None:
    calls: list[float] = []
    slept: list[float] = []

    class Recorder:
        def sleep(self, seconds: float) -> None:
            slept.append(seconds)

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(429, headers={"Retry-After": "2"}) if len(calls) == 1 else httpx.Response(201)

    policy = RetryPolicy(base=0.001, cap=0.002)  # Retry-After honoured up to the default 60 s
    transport = RetryTransport(httpx.MockTransport(handler), policy, cancel=Recorder())
    with httpx.Client(transport=transport, base_url="http://peer") as client:
        assert client.post("/x", json={}).status_code == 201
    assert slept == [2.0]  # the server's wait, longer than the policy's own


def test_a_retry_after_longer_than_the_cap_hands_the_answer_back() -> None:
    handler_calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        handler_calls.append(1)
        return httpx.Response(429, headers={"Retry-After": "900"})  # a 15-minute lock

    with _client(handler, RetryPolicy(base=0.001, cap=0.002, retry_after_cap=60.0)) as client:
        assert client.get("/x").status_code == 429
    assert handler_calls == [1]


def test_a_reset_or_a_timeout_is_retried_for_idempotent_requests_only() -> None:
    failures = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        failures["n"] += 1
        if failures["n"] <= 2:
            raise httpx.ReadError("connection reset by peer") if failures["n"] == 1 else httpx.ReadTimeout("slow")
        return httpx.Response(200)

    with _client(handler) as client:
        assert client.get("/x").status_code == 200
    failures["n"] = 0
    with _client(handler) as client, pytest.raises(httpx.ReadError):
        client.post("/x", json={})
    assert failures["n"] == 1


def test_a_refused_connection_is_not_retried() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise httpx.ConnectError("connection refused")

    with _client(handler) as client, pytest.raises(httpx.ConnectError):
        client.get("/x")
    assert calls == [1]


def test_a_streamed_body_is_never_sent_twice() -> None:
    handler, seen = _answers(503)

    def body() -> object:
        yield b"chunk"

    with _client(handler) as client:
        assert client.put("/file", content=body()).status_code == 503  # type: ignore[arg-type]
    assert seen == ["PUT"]


def test_the_policy_gives_up_after_its_attempts() -> None:
    handler, seen = _answers(*([500] * 20))
    policy = RetryPolicy(attempts=4, base=0.001, cap=0.001)
    with _client(handler, policy) as client:
        assert client.get("/x").status_code == 500
    assert len(seen) == 4


def test_a_cancel_ends_a_retry_wait_at_once() -> None:
    handler, seen = _answers(*([500] * 5))
    cancel = CancelToken()
    transport = RetryTransport(httpx.MockTransport(handler), RetryPolicy(base=600.0, cap=600.0), cancel=cancel)
    timer = threading.Timer(0.1, cancel.cancel)
    timer.start()
    try:
        with httpx.Client(transport=transport, base_url="http://peer") as client, pytest.raises(Cancelled):
            client.get("/x")
    finally:
        timer.cancel()
    assert seen == ["GET"]


class _Unknown(WizardError):
    outcome_unknown = True


def test_settle_reads_the_state_before_each_resend() -> None:
    trail: list[str] = []
    sends = iter([_Unknown("x", "500"), _Unknown("x", "reset"), "done"])

    def send() -> str:
        trail.append("send")
        outcome = next(sends)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def check() -> str | None:
        trail.append("check")
        return None

    assert settle(FAST, send, check, what="create") == "done"
    assert trail == ["send", "check", "send", "check", "send"]


def test_settle_accepts_what_took_effect_and_sends_nothing_more() -> None:
    trail: list[str] = []

    def send() -> str:
        trail.append("send")
        raise _Unknown("x", "lost answer")

    assert settle(FAST, send, lambda: "there", what="create") == "there"
    assert trail == ["send"]


def test_settle_never_resends_while_the_state_cannot_be_read() -> None:
    trail: list[str] = []
    reads = iter([_Unknown("x", "503"), _Unknown("x", "503"), None])

    def send() -> str:
        trail.append("send")
        if trail.count("send") == 1:
            raise _Unknown("x", "timeout")
        return "sent"

    def check() -> str | None:
        trail.append("check")
        outcome = next(reads)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert settle(FAST, send, check, what="upload") == "sent"
    assert trail == ["send", "check", "check", "check", "send"]


def test_settle_passes_known_refusals_through_at_once() -> None:
    def send() -> str:
        raise WizardError("Refused", "400 bad input")

    with pytest.raises(WizardError, match="400"):
        settle(FAST, send, lambda: pytest.fail("a refusal needs no state read"), what="x")
