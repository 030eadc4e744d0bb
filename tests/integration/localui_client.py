"""A test client for the lab's Local UI: httpx over verified TLS, every response checked against the spec of the
release the node plays."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from wizard.appliance import localui_spec
from wizard.appliance.localui_spec import LocalUISpec, UnknownOperation
from wizard.lab import LabNode

_SESSION = object()  # "use the client's own token"


def response_body(r: httpx.Response) -> Any:
    """Parsed JSON, raw bytes for other content, None when there is no body."""
    if not r.content:
        return None
    if r.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        return r.json()
    return r.content


def check_against_spec(method: str, path: str, r: httpx.Response, spec: LocalUISpec | None = None) -> None:
    """Every answer must be one the spec allows; a path outside the spec may only get a v1Error 404/405."""
    spec = spec or localui_spec.spec()
    body = response_body(r)
    try:
        spec.validate_response(method, path, r.status_code, body)
    except UnknownOperation:
        assert r.status_code in (404, 405), f"{method} {path} is not in {spec.name} but answered {r.status_code}"
        spec.validate_definition("v1Error", body)


class SpecCheckedClient:
    def __init__(self, node: LabNode, spec: LocalUISpec | None = None) -> None:
        self.node = node
        #: What every answer is checked against: the spec of the release the node plays, unless given.
        self.spec = spec or node.state.profile.spec
        self.token: str | None = None
        self.http = httpx.Client(base_url=node.url, verify=node.client_ssl_context(), timeout=30.0)

    def request(
        self, method: str, path: str, *, expect: int | None = None, token: Any = _SESSION, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        token = self.token if token is _SESSION else token
        if token is not None:
            headers["Authorization"] = token
        r = self.http.request(method, path, headers=headers, **kwargs)
        check_against_spec(method, urlsplit(path).path, r, self.spec)
        if expect is not None:
            assert r.status_code == expect, f"{method} {path}: expected {expect}, got {r.status_code}: {r.text[:500]}"
        return r

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def login(self, username: str = "kairos", password: str = "kairos", **params: Any) -> dict[str, Any]:
        r = self.post("/v1/users/default/login", json={"username": username, "password": password}, params=params)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        self.token = body["Token"]["Authorization"]
        return body

    def close(self) -> None:
        self.http.close()


NET = "/v1/edge-mgmt/network"


def network_tour(c: SpecCheckedClient, advance: Callable[[float], None]) -> None:
    """Every network operation once (newer releases): reads, then each write (202) and the node's 429 meanwhile."""
    for path in ("/config-options", "/interfaces", "/interfaces/eth1", "/bonds", "/vlans", "/bridges",
                 "/management-interface"):  # fmt: skip
        c.get(NET + path, expect=200)
    writes = [
        ("PUT", "/interfaces/eth3/config", {"type": "static", "ip": "192.168.7.3", "subnet": "255.255.255.0"}),
        ("POST", "/bonds/bond1", {"members": ["eth1"], "mode": "active-backup", "type": "none"}),
        ("PUT", "/bonds/bond1", {"members": ["eth1", "eth2"], "mode": "802.3ad", "lacpTransmitRate": "fast",
                                 "miiMonitorSec": "100ms", "type": "none"}),
        ("POST", "/vlans/bond1.7", {"parentName": "bond1", "parentType": "bond", "vlanID": "7", "type": "dhcp"}),
        ("PUT", "/vlans/bond1.7", {"parentName": "bond1", "parentType": "bond", "vlanID": "7", "type": "static",
                                   "ip": "192.168.8.3", "subnet": "255.255.255.0"}),
        ("PUT", "/management-interface", {"name": "bond1.7"}),
        ("DELETE", "/vlans/bond1.7", None),
        ("DELETE", "/bonds/bond1", None),
    ]  # fmt: skip
    for method, path, body in writes:
        c.request(method, NET + path, json=body, expect=202)
        if method != "PUT" or "management" not in path:
            c.request("PUT", NET + "/interfaces/eth3/config", json={"type": "dhcp"}, expect=429)  # still applying
        advance(10.0)  # the lab clock: the change is applied
    c.get(NET + "/bonds/bond1", expect=404)
    c.get(NET + "/vlans/bond1.7", expect=404)


def random_file(path: Path, size: int, chunk: int = 1 << 20) -> str:
    """Write ``size`` random bytes to ``path``; returns their sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as fh:
        left = size
        while left:
            block = os.urandom(min(chunk, left))
            fh.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()
