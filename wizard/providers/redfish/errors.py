"""Errors of the Redfish boot path, each with what went wrong at the BMC and what the operator can do about it.

Everything a Redfish call can raise leaves this package as one of these (all :class:`WizardError`), with the BMC's
own words from ``@Message.ExtendedInfo`` where it gave any.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx

from wizard.core.errors import WizardError
from wizard.core.redact import redact


class RedfishError(WizardError):
    """Any failure talking to a BMC."""


class BmcUnreachable(RedfishError):
    pass


class AuthRefused(RedfishError):
    pass


class NoCdMedia(RedfishError):
    pass


class InsertMediaRefused(RedfishError):
    pass


class IsoNotFetched(RedfishError):
    """The BMC never asked the ISO server for the image: it cannot reach the URL."""


class TaskFailed(RedfishError):
    pass


class BootOverrideRefused(RedfishError):
    pass


class PowerTimeout(RedfishError):
    pass


class UnexpectedAnswer(RedfishError):
    pass


#: Message ids (the part after the registry prefix) that mean "a property or parameter you sent is not accepted".
PROPERTY_ERRORS = frozenset(
    {
        "PropertyUnknown",
        "PropertyNotWritable",
        "PropertyValueNotInList",
        "PropertyValueTypeError",
        "PropertyValueFormatError",
        "PropertyValueIncorrect",
        "PropertyValueError",
        "ActionParameterUnknown",
        "ActionParameterNotSupported",
        "ActionParameterValueTypeError",
        "ActionParameterValueNotInList",
        "ActionParameterValueFormatError",
        "ActionParameterValueError",
        "ActionParameterMissing",
        "UnrecognizedRequestBody",
    }
)


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except (ValueError, json.JSONDecodeError, httpx.ResponseNotRead):
        return {}
    return data if isinstance(data, dict) else {}


def extended_info(response: httpx.Response) -> list[dict[str, Any]]:
    """The ``@Message.ExtendedInfo`` entries of an error (or success) answer, wherever the BMC put them."""
    data = _body(response)
    entries: list[dict[str, Any]] = []
    error = data.get("error")
    for holder in (error if isinstance(error, dict) else {}, data):
        info = holder.get("@Message.ExtendedInfo")
        if isinstance(info, list):
            entries.extend(e for e in info if isinstance(e, dict))
    return entries


def message_ids(response: httpx.Response) -> list[str]:
    """Message ids without their registry prefix: ``Base.1.8.PropertyUnknown`` → ``PropertyUnknown``."""
    return [str(e.get("MessageId", "")).rsplit(".", 1)[-1] for e in extended_info(response) if e.get("MessageId")]


def bmc_message(response: httpx.Response) -> str:
    """The BMC's own explanation of a failed call, as specific as it gave one, with secrets masked (BMCs echo the
    image URL, and with it the ISO server's token)."""
    return redact(_bmc_message(response))


def _bmc_message(response: httpx.Response) -> str:
    parts: list[str] = []
    for entry in extended_info(response):
        text = str(entry.get("Message") or "").strip()
        resolution = str(entry.get("Resolution") or "").strip()
        if text and text not in parts:
            parts.append(text + (f" ({resolution})" if resolution and resolution not in text else ""))
    if not parts:
        error = _body(response).get("error")
        if isinstance(error, dict) and error.get("message"):
            parts.append(str(error["message"]).strip())
    if not parts:
        text = ""
        if not response.headers.get("content-type", "").startswith("application/json"):
            # Some BMCs (and the sushy emulator) answer a bad request with plain words; HTML pages say nothing.
            with contextlib.suppress(httpx.ResponseNotRead, UnicodeDecodeError):
                text = response.text.strip()
            if text.startswith("<"):
                text = ""
        parts.append(text[:300] or f"HTTP {response.status_code} {response.reason_phrase}".strip())
    return "; ".join(parts)


def is_property_error(response: httpx.Response) -> bool:
    """A 400 that rejects a field of the body (not the request as such): worth retrying with fewer fields."""
    if response.status_code != 400:
        return False
    ids = set(message_ids(response))
    if ids & PROPERTY_ERRORS:
        return True
    # BMCs that answer with a generic id often still name the field they did not take.
    text = _bmc_message(response).lower()
    return any(name.lower() in text for name in OPTIONAL_FIELDS)


#: Members the client sends that a BMC may not take; a generic 400 naming one of them is a field error.
OPTIONAL_FIELDS = ("Inserted", "WriteProtected", "TransferProtocolType", "BootSourceOverrideMode")
