"""Redaction of every secret value the run has seen, from logs and from anything the wizard writes."""

from __future__ import annotations

import re
import threading

MASK = "«redacted»"

# Credentials that appear in protocol text even when the value was never registered (tokens a peer issued).
_PATTERNS = (
    # HTTP headers and JSON fields that carry credentials: ``Authorization: <jwt>``, ``"Authorization": "<jwt>"``
    re.compile(r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?:bearer\s+|basic\s+)?[^\s\"',}]+"),
    re.compile(r"(?i)(\b(?:x-auth-token|vmware-api-session-id)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"),
    re.compile(r"(?i)(\bvmware_soap_session=\"?)[^\s\";,]+"),
    # JSON members such as "password": "…", "newPassword": "…", "api_key": "…", "token": "…"
    re.compile(r"(?i)([\"'][a-z_]*(?:password|passwd|api_?key|secret|token)[\"']\s*:\s*[\"'])[^\"']+"),
    # query strings and form bodies: password=…&
    re.compile(r"(?i)(\b[a-z_]*(?:password|passwd|api_?key|token)=)[^\s&\"',]+"),
    re.compile(r"(?i)(\boauth_signature=\"?)[^\s\"&,]+"),
)


class Redactor:
    """Knows the secret values of this run and masks them in any text."""

    MIN_LENGTH = 4  # shorter values would mask ordinary words; such secrets are refused elsewhere

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: list[str] = []

    def add(self, value: str | None) -> None:
        if not value or len(value) < self.MIN_LENGTH:
            return
        with self._lock:
            if value not in self._values:
                self._values.append(value)
                # Longest first so a secret that contains another is masked whole.
                self._values.sort(key=len, reverse=True)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def redact(self, text: str) -> str:
        with self._lock:
            values = list(self._values)
        for value in values:
            if value in text:
                text = text.replace(value, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
        return text

    def contains_secret(self, text: str) -> bool:
        with self._lock:
            return any(v in text for v in self._values)


# One per process: logging and writers of every kind consult it.
REDACTOR = Redactor()


def redact(text: str) -> str:
    return REDACTOR.redact(text)
