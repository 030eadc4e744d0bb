"""The typed answers of the Local UI client (:mod:`wizard.appliance.localui`): plain values read from the Local
Management API's JSON, with the status words compared tolerantly (:mod:`wizard.appliance.statuswords`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wizard.appliance.statuswords import CLUSTER_STATE, CONTENT_SYNC, HEALTHY, PEER_READY, Outcome


@dataclass(frozen=True)
class LinkToken:
    token: str = field(repr=False)
    interval: int
    remaining: int


@dataclass(frozen=True)
class LinkPeer:
    id: str
    ip: str
    port: str
    role: str  # "leader" | "follower"
    name: str
    status: str  # "Ready" once reachable
    health: str
    health_reason: str
    content_sync: str

    @property
    def ready(self) -> bool:
        """Ready and Healthy in any of their spellings (``Ready``, ``ready``, ``Active``…)."""
        return PEER_READY.is_done(self.status) and HEALTHY.is_done(self.health)

    @property
    def synced(self) -> bool:
        """The peer holds the leader's content (``Synced``, ``Completed``…)."""
        return CONTENT_SYNC.is_done(self.content_sync)


@dataclass(frozen=True)
class LinkStatus:
    status: str
    peers: tuple[LinkPeer, ...]
    error: str = ""

    def peer(self, uid: str) -> LinkPeer | None:
        return next((p for p in self.peers if p.id == uid), None)


@dataclass(frozen=True)
class HostInfo:
    uid: str
    name: str
    ip: str
    in_cluster: bool


@dataclass(frozen=True)
class UploadedContent:
    file_name: str
    sha256: str
    size: int
    uploaded_at: str = ""  # the node's own timestamp (RFC 3339), "" when it gives none


@dataclass(frozen=True)
class ProfileVariable:
    name: str
    display_name: str
    profile_uid: str
    default: str | None
    required: bool
    sensitive: bool
    regex: str = ""

    @property
    def label(self) -> str:
        return (
            f"{self.display_name} ({self.name})" if self.display_name and self.display_name != self.name else self.name
        )


@dataclass(frozen=True)
class ArchiveDetails:
    path: str
    profile_uids: tuple[str, ...]
    variables: tuple[ProfileVariable, ...]


@dataclass(frozen=True)
class VariableCheck:
    name: str
    valid: bool
    reason: str


@dataclass(frozen=True)
class ClusterStatus:
    name: str
    uid: str
    state: str  # Provisioning | Running | Deleting | Error
    reason: str
    health: str
    reboot_pending: bool
    kubeconfig: str = field(repr=False, default="")

    @property
    def done(self) -> bool:
        return CLUSTER_STATE.is_done(self.state) and HEALTHY.is_done(self.health)

    @property
    def failed(self) -> bool:
        return CLUSTER_STATE.classify(self.state) is Outcome.FAILED


@dataclass(frozen=True)
class LifecycleEvents:
    reached: tuple[str, ...]  # "<category>/<type>" in the order they happened
    expected: tuple[str, ...]

    @property
    def fraction(self) -> float:
        return len(self.reached) / len(self.expected) if self.expected else 0.0


def link_status_from(data: Mapping[str, Any]) -> LinkStatus:
    peers = []
    for p in data.get("peers") or []:
        health = p.get("health") or {}
        config = p.get("config") or {}
        name = (config.get("status") or {}).get("hostName") or (config.get("metadata") or {}).get("name") or ""
        peers.append(
            LinkPeer(
                id=str(p.get("id") or ""),
                ip=str(p.get("ip") or ""),
                port=str(p.get("localUIPort") or ""),
                role=str(p.get("role") or ""),
                name=str(name),
                status=str(p.get("status") or ""),
                health=str(health.get("status") or ""),
                health_reason=str(health.get("reason") or ""),
                content_sync=str(p.get("contentSyncStatus") or ""),
            )
        )
    return LinkStatus(str(data.get("status") or ""), tuple(peers), str(data.get("errorMessage") or ""))
