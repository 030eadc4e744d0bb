"""The headless run's terminal questions: first contact takes y/N, a changed fingerprint takes the host typed."""

from __future__ import annotations

import io

import pytest

from wizard.core.trust import TrustKind, TrustRequest
from wizard.headless import _Printer, _terminal_confirm

FIRST = TrustRequest(TrustKind.TLS, "10.0.0.5", 5080, "ab" * 32, None)
CHANGED = TrustRequest(TrustKind.SSH, "10.0.0.5", 22, "ab" * 32, "cd" * 32)


@pytest.mark.parametrize(
    ("request_", "typed", "trusted"),
    [
        (FIRST, "y", True),
        (FIRST, "", False),
        (CHANGED, "y", False),  # a reflexive yes does not accept a changed key
        (CHANGED, "10.0.0.6", False),
        (CHANGED, "10.0.0.5", True),
    ],
)
def test_answers(monkeypatch: pytest.MonkeyPatch, request_: TrustRequest, typed: str, trusted: bool) -> None:
    prompts: list[str] = []

    def fake_input(prompt: str) -> str:
        prompts.append(prompt)
        return typed

    monkeypatch.setattr("builtins.input", fake_input)
    out = io.StringIO()
    assert _terminal_confirm(_Printer(out, False))(request_) is trusted
    assert ("type 10.0.0.5" in prompts[0]) is request_.changed
