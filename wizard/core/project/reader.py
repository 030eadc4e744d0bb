"""Reading a raw document with every problem collected (:class:`_Reader`), and the checks of single fields."""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from wizard.core.problems import Problem, Severity
from wizard.core.project.model import SecretRef, _join


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _show(value: object) -> str:
    text = json.dumps(value) if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Reader:
    def __init__(self, base: Path | None) -> None:
        self.problems: list[Problem] = []
        self.base = base

    def error(self, path: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(path, message, fix, Severity.ERROR))

    def warning(self, path: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(path, message, fix, Severity.WARNING))

    # -- structure -----------------------------------------------------------------------------------------
    def mapping(self, value: object, path: str, allowed: tuple[str, ...]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(
                path or "(document)",
                f"expected a mapping of fields, got {_kind(value)}",
                "write it as `key: value` lines",
            )
            return None
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                self.error(
                    f"{path or '(document)'}[{_show(key)}]",
                    f"field name {_show(key)} is not text",
                    "field names are words such as `name`",
                )
                continue
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = f"did you mean `{close[0]}`?" if close else f"allowed here: {', '.join(allowed)}"
                self.error(_join(path, key), f"unknown field `{key}`", f"remove it or correct the spelling ({hint})")
                continue
            out[key] = item
        return out

    def text(self, m: Mapping[str, Any], key: str, path: str, *, required: bool = False, default: str = "") -> str:
        fp = _join(path, key)
        if key not in m or m[key] is None:
            if required:
                self.error(fp, "is required", f"add `{key}:` with a value")
            return default
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.error(fp, f"expected text, got {_kind(value)}", "write a single value")
            return default
        if isinstance(value, float) and not math.isfinite(value):
            self.error(fp, f"expected text, got {_show(value)}", "write a single value")
            return default
        text = str(value).strip()
        if required and not text:
            self.error(fp, "is empty", f"give `{key}` a value")
        return text

    def integer(
        self,
        m: Mapping[str, Any],
        key: str,
        path: str,
        *,
        default: int | None,
        minimum: int,
        maximum: int,
        required: bool = False,
    ) -> int | None:
        fp = _join(path, key)
        if key not in m or m[key] is None:
            if required:
                self.error(fp, "is required", f"add `{key}:` with a whole number")
            return default
        value = m[key]
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value.strip())
            else:
                self.error(fp, f"expected a whole number, got {_kind(value)} {_show(value)}", "write digits only")
                return default
        if not minimum <= value <= maximum:
            self.error(fp, f"{value} is out of range", f"use a number from {minimum} to {maximum}")
            return default
        return value

    def choice(self, m: Mapping[str, Any], key: str, path: str, enum: type[StrEnum], default: Any) -> Any:
        fp = _join(path, key)
        if key not in m or m[key] is None:
            if default is None:
                self.error(fp, "is required", f"use one of: {', '.join(e.value for e in enum)}")
            return default
        value = m[key]
        if isinstance(value, str):
            for member in enum:
                if member.value == value.strip().lower():
                    return member
        self.error(fp, f"{_show(value)} is not a valid choice", f"use one of: {', '.join(e.value for e in enum)}")
        return default

    def text_list(self, m: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
        fp = _join(path, key)
        value = m.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            # A single value is a common shorthand; accept it as a one-item list.
            value = [value]
        if not isinstance(value, list):
            self.error(fp, f"expected a list, got {_kind(value)}", "write it as `- item` lines or [a, b]")
            return ()
        out: list[str] = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, str | int):
                self.error(f"{fp}[{i}]", f"expected text, got {_kind(item)}", "write a single value")
                continue
            out.append(str(item).strip())
        return tuple(out)

    def secret(self, m: Mapping[str, Any], key: str, path: str, *, required: bool) -> SecretRef | None:
        fp = _join(path, key)
        value = m.get(key)
        if value is None:
            if required:
                self.error(
                    fp,
                    "is required",
                    f"store it with `palette-wizard secret set NAME` and write `{key}: {{secret: NAME}}`",
                )
            return None
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            self.error(
                fp,
                "a secret value is written in the project file",
                "remove it; store it in the keyring with `palette-wizard secret set NAME` "
                f"and write `{key}: {{secret: NAME}}`",
            )
            return None
        ref = self.mapping(value, fp, ("secret",))
        if ref is None:
            return None
        name = self.text(ref, "secret", fp, required=True)
        if name and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@/:-]{0,127}", name):
            self.error(
                _join(fp, "secret"),
                f"{_show(name)} is not a usable keyring name",
                "use letters, digits and . _ - / @ : (up to 128 characters)",
            )
            return None
        return SecretRef(name) if name else None

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        if not p.is_absolute() and self.base is not None:
            p = self.base / p
        return p


# ---------------------------------------------------------------------------------------------------------------
# Field checks

_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_FINGERPRINT = re.compile(r"(SHA256:)?([0-9A-Fa-f]{2}(:?[0-9A-Fa-f]{2}){31}|[A-Za-z0-9+/]{43}=?)")


def hostname_problem(value: str) -> str | None:
    """Why ``value`` is not an RFC 1123 host name (lower case, as Kubernetes node names require), or None."""
    if not value:
        return "is empty"
    if len(value) > 253:
        return f"{_show(value)} is longer than 253 characters"
    if value != value.lower():
        return f"{_show(value)} has upper-case letters, which Kubernetes node names do not allow"
    for label in value.rstrip(".").split("."):
        if not _LABEL.fullmatch(label):
            return (
                f"{_show(value)} is not a valid host name (each part 1–63 of a–z, 0–9 and '-', "
                "not starting or ending with '-')"
            )
    return None


def ipv4_problem(value: str) -> str | None:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return f"{_show(value)} is not an IPv4 address"
    return None


def _host_or_ip_problem(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    return hostname_problem(value.lower()) if value else "is empty"


def _url_problem(value: str, schemes: tuple[str, ...]) -> str | None:
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError as exc:
        return f"{_show(value)} is not a valid URL ({exc})"
    if parts.scheme not in schemes or not parts.hostname:
        return f"{_show(value)} is not a URL starting with {' or '.join(s + '://' for s in schemes)}"
    return None


def _read_fingerprint(r: _Reader, m: Mapping[str, Any], path: str, key: str = "tls_fingerprint") -> str:
    value = r.text(m, key, path)
    if value and not _FINGERPRINT.fullmatch(value):
        r.error(
            _join(path, key),
            f"{_show(value)} is not a SHA-256 fingerprint",
            "use 32 hex byte pairs (AB:CD:…) or the SHA256:base64 form, or leave it out to confirm on first contact",
        )
        return ""
    return value
