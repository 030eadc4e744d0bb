"""The activation keys the lab's "support" issues for a system console, and how the console reads them back.

A real key is issued by Spectro Cloud support for one install's system uid and is opaque to the operator (reference
§4); the lab's keys carry their claims (system, key and plan uids) so the console can check them without a
directory of its own.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import cast

_KEY_PREFIX = "lab-act-"


@dataclass(frozen=True)
class ActivationKey:
    """What the lab's "support" issued: ``key`` is the string the operator pastes into the console."""

    key: str
    key_uid: str
    system_uid: str
    plan_uid: str


def encode_key(system_uid: str, key_uid: str, plan_uid: str) -> ActivationKey:
    payload = json.dumps({"systemUid": system_uid, "keyUid": key_uid, "planUid": plan_uid}, separators=(",", ":"))
    key = _KEY_PREFIX + base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return ActivationKey(key, key_uid, system_uid, plan_uid)


def decode_key(key: str) -> dict[str, str] | None:
    """A key's claims, None for anything the lab did not issue (a typo, another vendor's string)."""
    if not key.startswith(_KEY_PREFIX):
        return None
    raw = key.removeprefix(_KEY_PREFIX)
    try:
        claims = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(claims, dict) or not all(isinstance(claims.get(k), str) for k in ("systemUid", "keyUid")):
        return None
    return cast(dict[str, str], claims)
