"""Redaction of every secret value the run has seen, from logs and from anything the wizard writes.

``redact`` runs on every log record and on every cell the GUI draws, on many threads at once, so it must be cheap
for the common case — text that holds no secret — without masking any less:

* the known values are an immutable tuple, replaced whole on ``add``: readers never take a lock;
* the credential patterns all need one of a few keywords, so a search for those keywords decides whether the
  patterns can match at all; only text that mentions one pays for the substitutions, which
  then run one after the other exactly as before (a single combined pattern would let an earlier, shorter match
  swallow the start of a later one and leave its value unmasked).
"""

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
_REPLACEMENT = r"\g<1>" + MASK  # every pattern keeps its group 1 (the field name) and masks the value after it

#: Every pattern above matches one of these literally (with the same case-insensitive flag), so text without any
#: of them cannot match a pattern. ``passw`` covers password and passwd, ``token`` also x-auth-token. Keep in step
#: with ``_PATTERNS``: tests/core/test_redact_patterns.py checks each pattern's keyword.
_KEYWORDS = re.compile(
    r"(?i)authorization|vmware-api-session-id|vmware_soap_session|passw|api_?key|secret|token|oauth_signature"
)


#: The same keywords for ASCII text, where lower-casing is exactly what the patterns' case-insensitivity does and a
#: few substring tests beat the regular expression's scan several times over. Other text (``ſ`` matches ``s``
#: case-insensitively, ``K`` the Kelvin sign ``k``) takes the regular expression.
_ASCII_KEYWORDS = (
    "authorization",
    "vmware-api-session-id",
    "vmware_soap_session",
    "passw",
    "apikey",
    "api_key",
    "secret",
    "token",
    "oauth_signature",
)


def may_hold_credential(text: str) -> bool:
    """False when no credential pattern can match ``text``."""
    if text.isascii():
        low = text.lower()
        return any(keyword in low for keyword in _ASCII_KEYWORDS)
    return _KEYWORDS.search(text) is not None


def redact_patterns(text: str) -> str:
    """``text`` with every credential the patterns recognise masked (known values are the redactor's job)."""
    if not may_hold_credential(text):
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(_REPLACEMENT, text)
    return text


class Redactor:
    """Knows the secret values of this run and masks them in any text."""

    MIN_LENGTH = 4  # shorter values would mask ordinary words; such secrets are refused elsewhere

    def __init__(self) -> None:
        self._lock = threading.Lock()  # serialises writers only; readers take the current tuple as it is
        # Longest first so a secret that contains another is masked whole.
        self._values: tuple[str, ...] = ()

    def add(self, value: str | None) -> None:
        if not value or len(value) < self.MIN_LENGTH:
            return
        with self._lock:
            if value not in self._values:
                self._values = tuple(sorted((*self._values, value), key=len, reverse=True))

    def clear(self) -> None:
        with self._lock:
            self._values = ()

    def redact(self, text: str) -> str:
        for value in self._values:  # one read of the attribute: a concurrent add() swaps in a new tuple
            if value in text:
                text = text.replace(value, MASK)
        return redact_patterns(text)

    def contains_secret(self, text: str) -> bool:
        return any(v in text for v in self._values)


# One per process: logging and writers of every kind consult it.
REDACTOR = Redactor()


def redact(text: str) -> str:
    return REDACTOR.redact(text)
