"""vCenter's tagging service (vAPI REST) over httpx: categories, tags and what they are attached to.

vCenter serves it at two base paths: ``/api`` (vSphere 7.0U2 and later: bare JSON, ``?action=``) and the older
``/rest`` (every answer wrapped in ``{"value": …}``, ``?~action=``, specs wrapped in ``create_spec``). ``flavour``
``auto`` tries ``/api`` first and falls back to ``/rest`` when vCenter answers 404 there; the choice is kept on the
client. Authentication is a session made with basic auth and sent as ``vmware-api-session-id``; it is deleted on
close. The TLS context is the one the SOAP session verified (or pinned), so trust is decided once.

Transient faults follow the one :class:`~wizard.core.http.RetryPolicy`: reads (the list actions are POSTs that only
read) and the session login are retried below the client; creating a category or tag and attaching a tag are resent
only after a read says they did not take effect.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from wizard.core.errors import WizardError
from wizard.core.http import (
    DEFAULT_RETRY,
    RESET_ERRORS,
    TIMEOUT_ERRORS,
    AnswerDeadline,
    RetryPolicy,
    RetryTransport,
    Sleeper,
    settle,
)
from wizard.core.trust import TrustStore
from wizard.providers.vsphere.errors import VsphereError, os_cause, translate_transport

log = logging.getLogger(__name__)

REGION_CATEGORY = "k8s-region"
ZONE_CATEGORY = "k8s-zone"
SESSION_HEADER = "vmware-api-session-id"
T = TypeVar("T")


def _unknown(error: WizardError) -> WizardError:
    error.outcome_unknown = True  # type: ignore[attr-defined]
    return error


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    cardinality: str = ""
    associable_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tag:
    id: str
    name: str
    category_id: str


_SAFE = {"idempotent": True}  # a POST that only reads, or only makes a session


class TaggingClient:
    """One tagging session. ``flavour`` is ``auto``, ``api`` or ``rest``."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        ssl_context: ssl.SSLContext | None,
        trust: TrustStore | None = None,
        host: str = "",
        port: int = 443,
        flavour: str = "auto",
        timeout: float = 30.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        cancel: Sleeper | None = None,
    ) -> None:
        if flavour not in ("auto", "api", "rest"):
            raise ValueError(f"unknown tagging API flavour {flavour!r}")
        if base_url.startswith("https:") and ssl_context is None:
            raise VsphereError("TLS context missing", "the tagging client needs the verified TLS context")
        self.flavour = flavour
        self.host = host
        self.port = port
        self.trust = trust
        self._auth = (username, password)
        verify: Any = ssl_context if ssl_context is not None else False
        self.retry = retry
        self.cancel = cancel
        deadline = AnswerDeadline(httpx.HTTPTransport(verify=verify), base=4 * timeout)
        transport = RetryTransport(deadline, retry, cancel=cancel, label="vCenter tagging")
        self.http = httpx.Client(base_url=base_url, transport=transport, timeout=timeout, follow_redirects=False)
        self._token = ""

    # -- session -------------------------------------------------------------------------------------------
    def __enter__(self) -> TaggingClient:
        self.login()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def login(self) -> None:
        if self.flavour in ("auto", "api"):
            r = self._send("POST", "/api/session", auth=self._auth, extensions=_SAFE)
            if r.status_code == 404 and self.flavour == "auto":
                self.flavour = "rest"
            else:
                self.flavour = "api"
                self._check(r, "logging in to the tagging service")
                self._token = str(r.json())
        if self.flavour == "rest":
            r = self._send("POST", "/rest/com/vmware/cis/session", auth=self._auth, extensions=_SAFE)
            self._check(r, "logging in to the tagging service")
            self._token = str(r.json()["value"])
        self.http.headers[SESSION_HEADER] = self._token
        log.info("tagging service: %s flavour", self.flavour)

    def close(self) -> None:
        try:
            if self._token:
                path = "/api/session" if self.flavour == "api" else "/rest/com/vmware/cis/session"
                self._send("DELETE", path)
        except WizardError:
            pass  # the session expires on its own; failing to delete it is not worth an error
        finally:
            self._token = ""
            self.http.close()

    # -- plumbing ------------------------------------------------------------------------------------------
    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            return self.http.request(method, path, **kw)
        except httpx.TransportError as exc:
            error = translate_transport(os_cause(exc), self.host, self.port, self.trust)
            raise (_unknown(error) if isinstance(exc, RESET_ERRORS + TIMEOUT_ERRORS) else error) from exc

    def settle(self, send: Callable[[], T], check: Callable[[], T | None], what: str) -> T:
        """A request that is not idempotent, resent after an unknown outcome only once ``check`` says it did not
        take effect."""
        return settle(self.retry, send, check, what=f"vCenter tagging: {what}", cancel=self.cancel)

    def _check(self, r: httpx.Response, doing: str) -> None:
        if r.is_success:
            return
        if r.status_code in self.retry.statuses:
            raise _unknown(
                VsphereError(
                    "Tagging request failed",
                    f"vCenter's tagging service answered {r.status_code} while {doing}",
                    details=r.text[:500],
                )
            )
        if r.status_code == 401:
            raise VsphereError(
                "Tagging login failed",
                f"vCenter's tagging service answered 401 while {doing}",
                remediation="check the vCenter user name and password",
            )
        if r.status_code == 403:
            raise VsphereError(
                "Missing tagging privilege",
                f"vCenter's tagging service answered 403 while {doing}",
                remediation="grant the user the vSphere Tagging privileges (at least read) on the root object",
            )
        raise VsphereError(
            "Tagging request failed",
            f"vCenter's tagging service answered {r.status_code} while {doing}",
            details=r.text[:500],
        )

    def _call(
        self,
        method: str,
        rest: str,
        api: str,
        doing: str,
        *,
        action: str = "",
        body: Any = None,
        reads: bool = False,
    ) -> Any:
        """``reads``: a POST action that only reads (``list-…``), retried like a GET."""
        if self.flavour == "rest":
            path, params = "/rest/com/vmware/cis/tagging/" + rest, ({"~action": action} if action else {})
        else:
            path, params = "/api/cis/tagging/" + api, ({"action": action} if action else {})
        r = self._send(method, path, params=params, json=body, extensions=_SAFE if reads else {})
        self._check(r, doing)
        if not r.content:
            return None
        data = r.json()
        return data.get("value") if self.flavour == "rest" and isinstance(data, dict) else data

    # -- categories and tags -------------------------------------------------------------------------------
    def categories(self) -> list[Category]:
        ids = self._call("GET", "category", "category", "listing tag categories") or []
        return [self.category(str(i)) for i in ids]

    def category(self, category_id: str) -> Category:
        d = self._call("GET", f"category/id:{category_id}", f"category/{category_id}", "reading a tag category")
        return Category(
            str(d["id"]), str(d["name"]), str(d.get("cardinality", "")), tuple(d.get("associable_types") or ())
        )

    def category_by_name(self, name: str) -> Category | None:
        return next((c for c in self.categories() if c.name == name), None)

    def create_category(self, name: str, *, cardinality: str = "SINGLE", associable_types: tuple[str, ...] = ()) -> str:
        spec = {"name": name, "cardinality": cardinality, "associable_types": list(associable_types), "description": ""}
        body = {"create_spec": spec} if self.flavour == "rest" else spec

        def existing() -> str | None:
            found = self.category_by_name(name)
            return found.id if found is not None else None

        return self.settle(
            lambda: str(self._call("POST", "category", "category", f"creating tag category {name}", body=body)),
            existing,
            f"create tag category {name}",
        )

    def tags_in(self, category_id: str) -> list[Tag]:
        if self.flavour == "rest":
            ids = self._call(
                "POST",
                f"tag/id:{category_id}",
                "",
                "listing tags",
                action="list-tags-for-category",
                body={},
                reads=True,
            )
        else:
            ids = self._call(
                "POST",
                "",
                "tag",
                "listing tags",
                action="list-tags-for-category",
                body={"category_id": category_id},
                reads=True,
            )
        return [self.tag(str(i)) for i in ids or []]

    def tag(self, tag_id: str) -> Tag:
        d = self._call("GET", f"tag/id:{tag_id}", f"tag/{tag_id}", "reading a tag")
        return Tag(str(d["id"]), str(d["name"]), str(d["category_id"]))

    def create_tag(self, name: str, category_id: str) -> str:
        spec = {"name": name, "category_id": category_id, "description": ""}
        body = {"create_spec": spec} if self.flavour == "rest" else spec

        def existing() -> str | None:
            return next((t.id for t in self.tags_in(category_id) if t.name == name), None)

        return self.settle(
            lambda: str(self._call("POST", "tag", "tag", f"creating tag {name}", body=body)),
            existing,
            f"create tag {name}",
        )

    # -- associations --------------------------------------------------------------------------------------
    def attach(self, tag_id: str, obj_type: str, obj_id: str) -> None:
        body = {"object_id": {"type": obj_type, "id": obj_id}}

        def send() -> bool:
            self._call(
                "POST", f"tag-association/id:{tag_id}", f"tag-association/{tag_id}", "attaching a tag",
                action="attach", body=body,
            )  # fmt: skip
            return True

        self.settle(send, lambda: tag_id in self.attached_tags(obj_type, obj_id) or None, "attach a tag")

    def attached_tags(self, obj_type: str, obj_id: str) -> list[str]:
        body = {"object_id": {"type": obj_type, "id": obj_id}}
        ids = self._call(
            "POST", "tag-association", "tag-association", "listing attached tags", action="list-attached-tags",
            body=body, reads=True,
        )  # fmt: skip
        return [str(i) for i in ids or []]


def tagging_client(session: Any, password: str, *, flavour: str = "auto") -> TaggingClient:
    """A tagging client for a :class:`~wizard.providers.vsphere.session.VsphereSession` (same host, same trust)."""
    t = session.target
    return TaggingClient(
        t.base_url,
        session.settings.username,
        password,
        ssl_context=session.ssl_context,
        trust=session.trust,
        host=t.host,
        port=t.port,
        flavour=flavour,
    )
