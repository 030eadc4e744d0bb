"""The typed answers of the Local UI client (:mod:`wizard.appliance.localui`): plain values read from the Local
Management API's JSON, with the status words compared tolerantly (:mod:`wizard.appliance.statuswords`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wizard.appliance.statuswords import CLUSTER_STATE, CONTENT_SYNC, HEALTHY, PEER_READY, Outcome
from wizard.appliance.variables import TEXT, VariableOption, default_of, input_type, parse_options, section_of


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
    agent_version: str = ""  # ``status.agentVersion`` as the node spells it


@dataclass(frozen=True)
class UploadedContent:
    file_name: str
    sha256: str
    size: int
    uploaded_at: str = ""  # the node's own timestamp (RFC 3339), "" when it gives none


@dataclass(frozen=True)
class ProfileVariable:
    """A ``v1Variable`` as the appliance describes it (see :mod:`wizard.appliance.variables`)."""

    name: str
    display_name: str
    profile_uid: str
    default: str | None
    required: bool
    sensitive: bool
    regex: str = ""
    input_type: str = TEXT  # text | dropdown | multiline
    options: tuple[VariableOption, ...] = ()
    immutable: bool = False
    hidden: bool = False
    section: str = ""
    description: str = ""

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
    agent_version: str = ""  # ``status.agentVersion`` as the leader spells it: the release the cluster runs

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
    #: Readable labels by "<category>/<type>" (the expected order's typeLabel, else the type itself).
    labels: Mapping[str, str] = field(default_factory=dict)
    #: What each reached condition says (its message, else its reason), and when it was reached (as the node wrote it).
    details: Mapping[str, str] = field(default_factory=dict)
    times: Mapping[str, str] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return len(self.reached) / len(self.expected) if self.expected else 0.0

    def timeline(self) -> list[tuple[str, str, str]]:
        """(label, ``done``/``current``/``pending``, detail): the conditions reached, in the order they were
        reached — the latest is where the cluster is now (``current``) until every expected one is reached — then
        the ones still expected. The expected order lists the cluster's and the hosts' conditions apart, so which
        comes next is not known; where it is now is. Conditions the node reports but the expected order does not
        name are shown too (a newer appliance may add some)."""
        reached = set(self.reached)
        waiting = [key for key in self.expected if key not in reached]
        out = []
        for i, key in enumerate(self.reached):
            state = "current" if waiting and i == len(self.reached) - 1 else "done"
            out.append((self.labels.get(key, key.split("/", 1)[-1]), state, self.details.get(key, "")))
        out += [(self.labels.get(key, key.split("/", 1)[-1]), "pending", "") for key in waiting]
        return out


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


def parse_archive(data: Mapping[str, Any]) -> ArchiveDetails:
    """``v1ClusterConfigArchiveDetails`` as the wizard uses it; every field read tolerantly (see
    :mod:`wizard.appliance.variables` for sections and input types)."""
    uids: list[str] = []
    variables: list[ProfileVariable] = []
    profiles = [p for p in data.get("clusterProfileDetails") or [] if isinstance(p, Mapping)]
    for profile in profiles:
        uid = str(profile.get("profileUid") or "")
        uids.append(uid)
        # Several profiles: each is a section of its own unless a variable names one.
        fallback = str(profile.get("profileName") or "") if len(profiles) > 1 else ""
        for v in profile.get("variables") or []:
            if not isinstance(v, Mapping):
                continue
            options = parse_options(v.get("options"))
            variables.append(
                ProfileVariable(
                    name=str(v.get("name") or ""),
                    display_name=str(v.get("displayName") or ""),
                    profile_uid=uid,
                    default=default_of(v, options),
                    required=bool(v.get("required")),
                    sensitive=bool(v.get("isSensitive")),
                    regex=str(v.get("regex") or ""),
                    input_type=input_type(v, options),
                    options=options,
                    immutable=bool(v.get("immutable")),
                    hidden=bool(v.get("hidden")),
                    section=section_of(v) or fallback,
                    description=str(v.get("description") or ""),
                )
            )
    return ArchiveDetails(str(data.get("archiveUploadPath") or ""), tuple(uids), tuple(variables))


def _link_status(data: Mapping[str, Any]) -> LinkStatus:
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
