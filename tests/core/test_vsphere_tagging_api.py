"""The vSphere Automation ``/api`` tagging flavour (vSphere 7.0U2 and later), which the Debian vcsim lacks.

A small in-memory peer written from VMware's published API reference for ``/api/session`` and
``/api/cis/tagging/{category,tag,tag-association}`` answers through httpx.MockTransport; the ``/rest`` flavour is
exercised against vcsim in tests/integration/test_vsphere_checks.py.
"""

from __future__ import annotations

import json

import httpx
import pytest

from wizard.core.errors import WizardError
from wizard.core.http import DEFAULT_RETRY, RetryTransport
from wizard.providers.vsphere.tagging import TaggingClient


class ApiPeer:
    def __init__(self, *, has_api: bool = True) -> None:
        self.has_api = has_api
        self.categories: dict[str, dict[str, object]] = {}
        self.tags: dict[str, dict[str, object]] = {}
        self.attached: dict[tuple[str, str], list[str]] = {}
        self.requests: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, query = request.url.path, dict(request.url.params)
        self.requests.append(f"{request.method} {path}{'?' + request.url.query.decode() if query else ''}")
        if not self.has_api and path.startswith("/api/"):
            return httpx.Response(404)
        if path == "/rest/com/vmware/cis/session" and request.method == "POST":
            return httpx.Response(200, json={"value": "rest-token"})
        if path == "/api/session":
            if request.method == "POST":
                if not request.headers.get("authorization", "").startswith("Basic "):
                    return httpx.Response(401)
                return httpx.Response(201, json="api-token")
            return httpx.Response(204)
        if request.headers.get("vmware-api-session-id") != "api-token":
            return httpx.Response(401, json={"error_type": "UNAUTHENTICATED"})
        body = json.loads(request.content) if request.content else {}
        if path == "/api/cis/tagging/category":
            if request.method == "GET":
                return httpx.Response(200, json=list(self.categories))
            if "create_spec" in body:  # the /rest wrapper is an error on /api
                return httpx.Response(400, json={"error_type": "INVALID_ARGUMENT"})
            cid = f"urn:vmomi:InventoryServiceCategory:{len(self.categories) + 1}:GLOBAL"
            self.categories[cid] = {"id": cid, **body}
            return httpx.Response(201, json=cid)
        if path.startswith("/api/cis/tagging/category/"):
            return httpx.Response(200, json=self.categories[path.rsplit("/", 1)[1]])
        if path == "/api/cis/tagging/tag" and query.get("action") == "list-tags-for-category":
            return httpx.Response(
                200, json=[t for t, d in self.tags.items() if d["category_id"] == body["category_id"]]
            )
        if path == "/api/cis/tagging/tag":
            tid = f"urn:vmomi:InventoryServiceTag:{len(self.tags) + 1}:GLOBAL"
            self.tags[tid] = {"id": tid, **body}
            return httpx.Response(201, json=tid)
        if path.startswith("/api/cis/tagging/tag/"):
            return httpx.Response(200, json=self.tags[path.rsplit("/", 1)[1]])
        if path.startswith("/api/cis/tagging/tag-association/") and query.get("action") == "attach":
            obj = body["object_id"]
            self.attached.setdefault((obj["type"], obj["id"]), []).append(path.rsplit("/", 1)[1])
            return httpx.Response(204)
        if path == "/api/cis/tagging/tag-association" and query.get("action") == "list-attached-tags":
            obj = body["object_id"]
            return httpx.Response(200, json=self.attached.get((obj["type"], obj["id"]), []))
        return httpx.Response(404)


def _client(peer: ApiPeer, flavour: str = "auto") -> TaggingClient:
    client = TaggingClient(
        "http://vcenter.test", "administrator@vsphere.local", "pw", ssl_context=None, flavour=flavour
    )
    client.http.close()
    client.http = httpx.Client(base_url="http://vcenter.test", transport=httpx.MockTransport(peer))
    return client


def test_auto_picks_api_and_speaks_its_shapes() -> None:
    peer = ApiPeer()
    with _client(peer) as client:
        assert client.flavour == "api"
        cid = client.create_category("k8s-zone", associable_types=("HostSystem",))
        tid = client.create_tag("zone-a", cid)
        client.attach(tid, "HostSystem", "host-23")
        assert [t.name for t in client.tags_in(cid)] == ["zone-a"]
        assert client.attached_tags("HostSystem", "host-23") == [tid]
        assert client.category_by_name("k8s-zone") is not None
    assert "POST /api/cis/tagging/tag?action=list-tags-for-category" in peer.requests
    assert "DELETE /api/session" in peer.requests  # the session is closed
    assert not any("/rest/" in r for r in peer.requests)


def test_auto_falls_back_to_rest_when_api_is_missing() -> None:
    peer = ApiPeer(has_api=False)
    client = _client(peer)
    client.login()
    assert client.flavour == "rest"
    assert peer.requests[:2] == ["POST /api/session", "POST /rest/com/vmware/cis/session"]


def test_api_without_a_session_is_a_clear_error() -> None:
    peer = ApiPeer()
    client = _client(peer, flavour="api")
    with pytest.raises(WizardError, match="401"):
        client.categories()


class Flaky:
    """In front of the peer: the first answer to each request is a 503 sent before the peer sees it, and the first
    create of each category or tag is done by the peer but its answer lost (a 500 after the work)."""

    def __init__(self, peer: ApiPeer) -> None:
        self.peer = peer
        self.seen: set[str] = set()
        self.lost: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        key = f"{request.method} {request.url}"
        if key not in self.seen:
            self.seen.add(key)
            return httpx.Response(503)
        answer = self.peer(request)
        creates = request.method == "POST" and request.url.path in ("/api/cis/tagging/category", "/api/cis/tagging/tag")
        if creates and key not in self.lost:
            self.lost.add(key)
            return httpx.Response(500)
        return answer


def test_transient_faults_are_ridden_out_and_creates_are_never_doubled() -> None:
    peer = ApiPeer()
    client = TaggingClient(
        "http://vcenter.test", "administrator@vsphere.local", "pw", ssl_context=None, retry=DEFAULT_RETRY.scaled(0.001)
    )
    client.http.close()
    transport = RetryTransport(httpx.MockTransport(Flaky(peer)), DEFAULT_RETRY.scaled(0.001))
    client.http = httpx.Client(base_url="http://vcenter.test", transport=transport)
    with client:
        cid = client.create_category("k8s-zone", associable_types=("HostSystem",))
        tid = client.create_tag("zone-a", cid)
        client.attach(tid, "HostSystem", "host-23")
        assert client.attached_tags("HostSystem", "host-23") == [tid]
    assert len(peer.categories) == 1 and len(peer.tags) == 1  # the lost answers were settled by reading, not resent
