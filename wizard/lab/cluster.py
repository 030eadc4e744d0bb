"""Management-cluster creation on simulated appliance nodes: the profile archive, variable validation, the create
request and a clock-driven deployment timeline.

Published behaviour (appliance "Create cluster" docs and the Local Management API spec): the Local UI reads the
cluster profile and its variables from the cluster-config archive, validates variable values, accepts a
``v1ClusterConfiguration`` with 202 and then reports progress on ``/cluster/details`` and ``/events/lifecycle``.
Deployment takes 20–30 minutes, during which the nodes reboot and their Local UI is unreachable for a while; the
cluster is done when it is Running and Healthy.

A :class:`ClusterDeployment` is shared by every host in the cluster, so each node's Local UI reports the same
cluster. Timeline points are fractions of the node's ``cluster_timeline`` (seconds at speed 1).
"""

from __future__ import annotations

import base64
import ipaddress
import re
import secrets
import textwrap
import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from wizard.appliance import localui_spec
from wizard.lab.node import LinkRole, LocalUIError, NodeState, iso8601

if TYPE_CHECKING:
    from wizard.lab.links import LinkRegistry
    from wizard.lab.registrysync import LocalUpload
    from wizard.lab.upgrade import UpdateArchive, Upgrade


PROFILE_UID = "6650f1e2a7c3b1d2e3f40a01"
PROFILE_NAME = "palette-management-appliance"
PROFILE_VERSION = "1.0.0"
# Where the appliance keeps the cluster-config archive it shipped with. Not published; the client only echoes it.
EMBEDDED_ARCHIVE_PATH = "/usr/local/spectrocloud/cluster-config/embedded/palette-management-appliance.tgz"
K8S_VERSION = "1.30.6"
_CREATE_LOCK = threading.Lock()
CLUSTER_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

_CIDR_RE = r"^([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])$"
_BASE64_RE = r"^[A-Za-z0-9+/]*={0,2}$"


@dataclass(frozen=True)
class ProfileVariable:
    """One ``v1Variable`` of the management profile. Names are invented (the docs show only UI labels); sections
    follow the docs' form ("Cluster Profile Options", "Registry Options")."""

    name: str
    display_name: str
    description: str
    default: str | None = None
    required: bool = False
    regex: str | None = None
    sensitive: bool = False
    fmt: str = "string"
    hidden: bool = False
    section: str = ""
    input_type: str = "text"
    options: tuple[str, ...] = ()
    immutable: bool = False

    def spec(self, newer: bool = True) -> dict[str, Any]:
        """The ``v1Variable``; ``newer``: as a release on the newer API describes it (input type, options and, outside
        the published schema, the form section)."""
        out: dict[str, Any] = {
            "name": self.name,
            "displayName": self.display_name,
            "description": self.description,
            "required": self.required,
            "isSensitive": self.sensitive,
            "hidden": self.hidden,
            "immutable": self.immutable,
            "format": self.fmt,
        }
        if self.default is not None:
            out["defaultValue"] = self.default
        if self.regex is not None:
            out["regex"] = self.regex
        if newer:
            out["inputType"] = self.input_type
            if self.options:
                out["options"] = [
                    {"label": o, "value": o, **({"default": True} if o == self.default else {})} for o in self.options
                ]
            if self.section:
                out["section"] = self.section
        return out

    def problem(self, value: str | None) -> str | None:
        """Why ``value`` is not acceptable, or None. An empty optional value is fine; regexes apply otherwise."""
        if value is None or value == "":
            return f"{self.display_name} is required" if self.required else None
        if self.immutable and value != self.default:
            return f"{self.display_name} cannot be changed"
        if self.options and value not in self.options:
            return f"{self.display_name}: {value!r} is not one of {', '.join(self.options)}"
        if self.input_type != "multiline" and "\n" in value:
            return f"{self.display_name} takes a single line"
        if self.regex is not None and re.fullmatch(self.regex, value) is None:
            return f"{self.display_name}: {value if not self.sensitive else 'the value'!s} does not match {self.regex}"
        if self.fmt == "ipv4cidr":
            try:
                ipaddress.IPv4Network(value, strict=True)
            except ValueError as exc:
                return f"{self.display_name}: {exc}"
        return None


_PROFILE, _REGISTRY = "Cluster Profile Options", "Registry Options"
_VIP_TEMPLATE = "{{.spectro.system.cluster.kubevip}}"
VARIABLES: tuple[ProfileVariable, ...] = (
    ProfileVariable("podCidr", "Pod CIDR", "CIDR range for pod IP addresses", "100.64.0.0/18", True, _CIDR_RE,
                    fmt="ipv4cidr", section=_PROFILE),
    ProfileVariable("serviceCidr", "Service CIDR", "CIDR range for service IP addresses", "100.64.64.0/18", True,
                    _CIDR_RE, fmt="ipv4cidr", section=_PROFILE),
    ProfileVariable("ociPackRegistryPassword", "OCI Pack Registry Password",
                    "Password of the in-cluster OCI pack registry; there is no default", None, True, r"^\S.*$",
                    sensitive=True, section=_REGISTRY),
    ProfileVariable("storagePoolDrive", "Storage Pool Drive", "Disk given to the storage pool on every node",
                    "/dev/sdb", True, r"^/dev/[A-Za-z0-9/_-]+$", section=_PROFILE),
    ProfileVariable("csiPlacementCount", "CSI Placement Count", "Replicas of each volume; must equal Mongo Replicas",
                    "3", True, r"^(1|3)$", fmt="number", section=_PROFILE, input_type="dropdown",
                    options=("1", "3")),
    ProfileVariable("mongoReplicas", "Mongo Replicas", "MongoDB replica count", "3", True, r"^(1|3)$", fmt="number",
                    section=_REGISTRY, input_type="dropdown", options=("1", "3")),
    ProfileVariable("inClusterRegistry", "In Cluster Registry", "Run the Zot registry inside the cluster", "True",
                    True, r"^(True|False)$", fmt="boolean", section=_REGISTRY, input_type="dropdown",
                    options=("True", "False")),
    ProfileVariable("ubuntuProToken", "Ubuntu Pro Token", "Ubuntu Pro attach token (optional)", "",
                    sensitive=True, section=_PROFILE),
    ProfileVariable("imagePullSecret", "Image Pull Secret", "Base64-encoded image pull secret (optional)", "",
                    regex=_BASE64_RE, sensitive=True, fmt="base64", section=_PROFILE),
    ProfileVariable("imageReplacementRules", "Image Replacement Rules",
                    "One rule per line, e.g. all: oci-registry-ip:oci-registry-port/spectro-content", "",
                    section=_REGISTRY, input_type="multiline"),
    ProfileVariable("rootDomain", "Root Domain", "Where Palette answers; the cluster's VIP", _VIP_TEMPLATE, True,
                    section=_REGISTRY, immutable=True),
    ProfileVariable("registryPort", "Registry Port", "The in-cluster registry's port", "30003", True, r"^\d+$",
                    fmt="number", hidden=True, section=_REGISTRY),
)  # fmt: skip
# Other readings of the unpublished names (the UI labels stay: they are what the docs show), per variant scheme.
_DOTTED = {
    "podCidr": "pod.cidr",
    "serviceCidr": "service.cidr",
    "ociPackRegistryPassword": "registry.oci.password",
    "storagePoolDrive": "storage.pool.drive",
    "csiPlacementCount": "csi.placement.count",
    "mongoReplicas": "mongo.replicas",
    "inClusterRegistry": "registry.inCluster",
    "ubuntuProToken": "ubuntu.pro.token",
    "imagePullSecret": "image.pull.secret",
    "imageReplacementRules": "image.replacement.rules",
    "rootDomain": "root.domain",
    "registryPort": "registry.port",
}
_OCTET = r"(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])"
_STRICT_CIDR = rf"^({_OCTET}\.){{3}}{_OCTET}/([0-9]|[12][0-9]|3[0-2])$"
_STRICT = {"podCidr": _STRICT_CIDR, "serviceCidr": _STRICT_CIDR, "ociPackRegistryPassword": r"^\S{8,}$"}


def variables_for(node: NodeState) -> tuple[ProfileVariable, ...]:
    """The profile's variables as this node's variant names them (``localui.profile-variables``)."""
    scheme = node.variant("localui.profile-variables")
    if scheme == "dotted":
        return tuple(replace(v, name=_DOTTED[v.name]) for v in VARIABLES)
    if scheme == "snake":
        return tuple(
            replace(v, name=re.sub(r"(?<!^)(?=[A-Z])", "_", v.name).lower(), regex=_STRICT.get(v.name, v.regex))
            for v in VARIABLES
        )
    return VARIABLES


def _canonical(node: NodeState) -> dict[str, str]:
    """This node's variable names → the reference names (what the lab's own checks are written against)."""
    return {v.name: ref.name for v, ref in zip(variables_for(node), VARIABLES, strict=True)}


PACKS: tuple[tuple[str, str], ...] = (
    ("edge-native-byoi", "2.1.0"),
    ("edge-k8s", K8S_VERSION),
    ("cni-calico", "3.28.2"),
    ("csi-piraeus-operator", "2.7.1"),
    ("spectro-mgmt-plane", "4.7.16"),
)


# -- Timeline ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """A lifecycle condition that becomes True at ``at`` (a fraction of the timeline)."""

    at: float
    category: str  # "Cluster" or "EdgeHost"
    type: str
    type_label: str
    reason: str
    reason_label: str
    message: str


STAGES: tuple[Stage, ...] = (
    Stage(0.00, "Cluster", "ClusterConfigValidated", "Cluster configuration", "Validated", "Validated",
          "cluster configuration accepted"),
    Stage(0.02, "EdgeHost", "ContentSynced", "Content", "Synced", "Synced", "content bundle available on the host"),
    Stage(0.10, "EdgeHost", "ImagesLoaded", "Images", "Loaded", "Loaded", "container images imported"),
    Stage(0.25, "EdgeHost", "OSUpgraded", "Operating system", "Staged", "Staged",
          "provider image staged; a reboot is pending"),
    Stage(0.40, "EdgeHost", "Rebooted", "Reboot", "Rebooting", "Rebooting", "host is rebooting"),
    Stage(0.50, "EdgeHost", "KubernetesReady", "Kubernetes", "Ready", "Ready", "kubelet is running"),
    Stage(0.55, "Cluster", "ControlPlaneReady", "Control plane", "Ready", "Ready", "control plane is up"),
    Stage(0.70, "Cluster", "NodesJoined", "Nodes", "Joined", "Joined", "every host joined the cluster"),
    Stage(0.85, "Cluster", "PacksDeployed", "Packs", "Deployed", "Deployed", "profile packs are deployed"),
    Stage(1.00, "Cluster", "ClusterReady", "Cluster", "Running", "Running", "cluster is Running and Healthy"),
)  # fmt: skip
REBOOT_PENDING_AT = 0.25
REBOOT_WINDOW = (0.40, 0.50)  # every node's Local UI is down between these points
LEADER_JOINS_AT = 0.55
FOLLOWERS_JOIN_AT = 0.70
JOIN_SHARE = 0.30  # a host added to a running cluster joins in this share of the creation's timeline


@dataclass(frozen=True)
class ClusterHost:
    uid: str
    address: str
    name: str
    control_plane: bool
    pool: str
    joined_at: float | None = None  # a host added to a running cluster's pool: when it was added (lab clock)


@dataclass
class ClusterDeployment:
    """The cluster the leader created; every member node holds the same object."""

    name: str
    uid: str
    created_at: float
    timeline: float
    vip: str
    leader_uid: str
    hosts: list[ClusterHost]
    pools: list[dict[str, Any]]  # v1ClusterNodePool of each pool, in request order
    config: dict[str, Any]  # the v1ClusterConfiguration as accepted
    variables: dict[str, str] = field(default_factory=dict)
    local_uploads: list[LocalUpload] = field(default_factory=list)  # packs a host's Local UI imported (PE-9263)
    #: The member hosts' states (every node of the cluster holds this same object).
    members: list[NodeState] = field(default_factory=list, repr=False)
    update: UpdateArchive | None = None  # parsed from the last content bundle uploaded to a member
    upgrade: Upgrade | None = None  # the archive update being applied
    applied: str = ""  # the archive path of the last update applied (a resent request is taken again)

    def progress(self, now: float) -> float:
        if self.timeline <= 0:
            return 1.0
        return max(0.0, (now - self.created_at) / self.timeline)

    def at(self, fraction: float) -> float:
        return self.created_at + fraction * self.timeline

    def running(self, now: float) -> bool:
        return self.progress(now) >= 1.0

    def rebooting(self, now: float) -> bool:
        start, end = REBOOT_WINDOW
        upgrading = self.upgrade is not None and self.upgrade.rebooting(now)
        return upgrading or start <= self.progress(now) < end

    def serving(self, now: float) -> bool:
        """Palette's consoles answer: the cluster runs and no update is being applied (the docs: "the system and
        tenant consoles will be unavailable")."""
        upgrade = self.upgrade
        done = upgrade is None or (upgrade.progress(now) >= 1.0 and not upgrade.error)
        return self.running(now) and done

    def node_state(self, host: ClusterHost, now: float) -> str:
        if host.joined_at is not None:  # added later: it installs its image and joins in a share of the timeline
            return "Running" if now >= host.joined_at + JOIN_SHARE * self.timeline else "Provisioning"
        joins = LEADER_JOINS_AT if host.uid == self.leader_uid else FOLLOWERS_JOIN_AT
        return "Running" if self.progress(now) >= joins else "Provisioning"


# -- Archive and variables -----------------------------------------------------------------------------------------


def archive_details(node: NodeState) -> dict[str, Any]:
    """v1ClusterConfigArchiveDetails of the embedded archive.

    The lab treats the content bundle as what carries the archive: before any upload there is nothing to parse and
    the answer is the spec's ``default`` error (404), so a client learns to upload content first instead of seeing
    an empty profile list it cannot act on.
    """
    content = node.uploaded
    if content is None and not node.profile.content_in_iso:  # a full ISO (before 4.9.36) ships the content
        raise LocalUIError(404, "NotFound", "no cluster configuration archive: upload the content bundle first")
    packs = [{"name": n, "version": v, "values": f"# {n} {v}\npack:\n  namespace: {n}\n"} for n, v in PACKS]
    return {
        "archiveUploadPath": EMBEDDED_ARCHIVE_PATH,
        "clusterProfileDetails": [
            {
                "profileUid": PROFILE_UID,
                "profileName": PROFILE_NAME,
                "profileType": "cluster",
                "profileVersion": PROFILE_VERSION,
                "profileDescription": "Palette management plane on the appliance",
                "profileTags": "appliance",
                "packs": packs,
                "variables": [
                    v.spec(newer=node.profile.spec.name == localui_spec.CURRENT) for v in variables_for(node)
                ],
            }
        ],
    }


def validate_variables(node: NodeState, body: dict[str, Any]) -> dict[str, Any]:
    """v1ValidateVariablesResponse: one entry per submitted variable, plus one per required variable that has no
    default and was not submitted (the UI must ask for it)."""
    _check_archive_path(node, body.get("archiveUploadPath"))
    results: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in body.get("variables") or []:
        name = str(item.get("name") or "")
        seen.add(name)
        results.append(_validate_one(node, name, item.get("profileUid"), item.get("value")))
    for var in variables_for(node):
        if var.name not in seen and var.required and var.default is None:
            results.append(_validate_one(node, var.name, PROFILE_UID, None))
    return {"variables": results}


def _validate_one(node: NodeState, name: str, profile_uid: Any, value: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "profileUid": PROFILE_UID, "profileName": PROFILE_NAME}
    var = {v.name: v for v in variables_for(node)}.get(name)
    if var is None:
        reason: str | None = f"unknown variable {name!r}: the profile {PROFILE_NAME} does not define it"
    elif profile_uid not in (None, "", PROFILE_UID):
        reason = f"unknown profile {profile_uid!r} for variable {name!r}"
    else:
        if var.regex is not None:
            out["regex"] = var.regex
        reason = var.problem(value if isinstance(value, str) else None)
    out["isValid"] = reason is None
    if reason is not None:
        out["validationFailureReason"] = reason
    return out


def _check_archive_path(node: NodeState, path: Any) -> None:
    if node.uploaded is None and not node.profile.content_in_iso:
        raise LocalUIError(400, "NoArchive", "no cluster configuration archive: upload the content bundle first")
    update = node.cluster.update if node.cluster is not None else None
    if update is not None and path == update.path:
        return  # the update archive's variables are checked before it is applied
    if path not in (None, "") and path != EMBEDDED_ARCHIVE_PATH:
        raise LocalUIError(
            400,
            "UnknownArchive",
            f"archiveUploadPath {path!r} is not the archive of this host ({EMBEDDED_ARCHIVE_PATH})",
        )


# -- Create --------------------------------------------------------------------------------------------------------


def create_cluster(node: NodeState, registry: LinkRegistry, body: dict[str, Any]) -> dict[str, Any]:
    """Check a v1ClusterConfiguration (already valid against the spec) and start the deployment on every host."""
    if node.cluster is not None:
        raise LocalUIError(400, "ClusterExists", f"this host is already part of cluster {node.cluster.name!r}")
    if node.link.role is LinkRole.FOLLOWER:
        raise LocalUIError(
            400, "NotLeader", f"this host follows leader {node.link.leader_uid}: create the cluster on the leader"
        )
    spec = body.get("spec") or {}
    name = str((body.get("metadata") or {}).get("name") or "")
    if not CLUSTER_NAME_RE.fullmatch(name):
        raise LocalUIError(400, "BadRequest", f"metadata.name {name!r} must be a DNS label (a-z, 0-9, '-', ≤ 63)")
    if not spec.get("archiveUploadPath"):
        raise LocalUIError(400, "BadRequest", "spec.archiveUploadPath is required (read it from the archive details)")
    _check_archive_path(node, spec["archiveUploadPath"])
    variables = _checked_variables(node, spec.get("profileVariables") or [])
    cloud = (spec.get("cloudConfig") or {}).get("spec")
    if not cloud:
        raise LocalUIError(400, "BadRequest", "spec.cloudConfig.spec is required")
    endpoint = (cloud.get("clusterConfig") or {}).get("controlPlaneEndpoint") or {}
    vip = str(endpoint.get("host") or "")
    if endpoint.get("type", "VIP") != "VIP":
        raise LocalUIError(400, "BadRequest", "the appliance only supports a VIP control-plane endpoint")

    members = _members(node, registry)
    # Two-node high availability (PostgreSQL instead of etcd) exists only on releases of the newer API; an older one
    # ignores the field, as a JSON decoder ignores what it does not know.
    newer = node.profile.spec.name == localui_spec.CURRENT
    two_node = newer and bool((cloud.get("clusterConfig") or {}).get("isTwoNodeCluster"))
    hosts, pools = _checked_hosts(cloud.get("machinePoolConfig") or [], members, node, two_node=two_node)
    _check_vip(vip, [h.address for h in hosts] + [m.ip for m in members.values()])
    # Read before taking any node lock: the registry locks itself first, then nodes.
    link = registry.status(node) if node.link.role is LinkRole.LEADER else None
    if link is not None:
        sync = {p["id"]: p["contentSyncStatus"] for p in link["peers"]}
        synced = node.variant("localui.peer-words")[2]
        pending = [h.name for h in hosts if sync.get(h.uid) != synced]
        if pending:
            raise LocalUIError(400, "ContentNotSynced", f"content is not synced yet to: {', '.join(pending)}")
    # One lock for the check-and-set, so two concurrent creates cannot both claim the same hosts.
    with _CREATE_LOCK:
        now = node.clock()
        deployment = ClusterDeployment(
            name=name,
            uid=secrets.token_hex(12),
            created_at=now,
            timeline=node.cluster_timeline,
            vip=vip,
            leader_uid=node.uid,
            hosts=hosts,
            pools=pools,
            config=body,
            variables=variables,
        )
        for host in hosts:
            member = members[host.uid]
            with member.lock:
                if member.cluster is not None:
                    raise LocalUIError(400, "ClusterExists", f"host {host.name} is already part of a cluster")
        for host in hosts:
            member = members[host.uid]
            with member.lock:
                member.cluster = deployment
                deployment.members.append(member)
                member.has_cluster = True
                member.node_role = "controlplane" if host.control_plane else "worker"
    if node.timeline is not None:
        node.timeline.record("cluster", node.name, now, now + node.cluster_timeline)
    return {"message": f"cluster {name} creation accepted; deployment takes about 20–30 minutes"}


def _members(node: NodeState, registry: LinkRegistry) -> dict[str, NodeState]:
    """The hosts this leader may use: itself and its linked followers."""
    members = {node.uid: node}
    for uid in node.link.followers:
        follower = registry.node(uid)
        if follower is not None:
            members[uid] = follower
    return members


def _checked_variables(node: NodeState, items: list[dict[str, Any]]) -> dict[str, str]:
    """The values by reference name (checked against this node's names and regexes)."""
    own = variables_for(node)
    canonical = _canonical(node)
    given: dict[str, str] = {}
    problems: list[str] = []
    for item in items:
        name = str(item.get("name") or "")
        if name not in canonical:
            problems.append(f"unknown variable {name!r}")
            continue
        if item.get("profileUid") not in (None, "", PROFILE_UID):
            problems.append(f"variable {name!r} names unknown profile {item.get('profileUid')!r}")
            continue
        given[name] = str(item.get("value") or "")
    values: dict[str, str] = {}
    for var in own:
        value = given.get(var.name) or var.default or ""
        if (problem := var.problem(value)) is not None:
            problems.append(problem)
        values[canonical[var.name]] = value
    if not problems and values["csiPlacementCount"] != values["mongoReplicas"]:
        problems.append("CSI Placement Count must equal Mongo Replicas")
    if problems:
        raise LocalUIError(400, "InvalidVariables", "invalid profile variables: " + "; ".join(problems))
    return values


def _checked_hosts(
    pools: list[dict[str, Any]], members: dict[str, NodeState], leader: NodeState, *, two_node: bool = False
) -> tuple[list[ClusterHost], list[dict[str, Any]]]:
    if not pools:
        raise LocalUIError(400, "BadRequest", "at least one machine pool is required")
    hosts: list[ClusterHost] = []
    pool_specs: list[dict[str, Any]] = []
    for i, pool in enumerate(pools):
        pool_name = str(pool.get("name") or f"pool-{i + 1}")
        control = bool(pool.get("isControlPlane"))
        arch = (pool.get("machinePoolProperties") or {}).get("archType") or "amd64"
        pool_specs.append({"name": pool_name, "isControlPlane": control, "archType": arch})
        if not pool.get("hosts"):
            raise LocalUIError(400, "BadRequest", f"machine pool {pool_name!r} has no hosts")
        for entry in pool["hosts"]:
            uid = str(entry.get("hostUid") or "")
            member = members.get(uid)
            if member is None:
                raise LocalUIError(
                    400, "HostNotLinked", f"host {uid or '(no hostUid)'!r} is not linked to this leader: link it first"
                )
            address = str(entry.get("hostAddress") or "")
            if address != member.ip:
                raise LocalUIError(
                    400, "HostAddressMismatch", f"host {uid} is at {member.ip}, not {address or '(no hostAddress)'}"
                )
            if any(h.uid == uid for h in hosts):
                raise LocalUIError(400, "DuplicateHost", f"host {uid} appears more than once in the machine pools")
            hosts.append(ClusterHost(uid, address, member.hostname, control, pool_name))
    control_count = sum(h.control_plane for h in hosts)
    if two_node and control_count != 2:
        message = f"isTwoNodeCluster needs exactly two control-plane hosts, got {control_count}"
        raise LocalUIError(400, "TwoNodeCluster", message)
    if control_count % 2 == 0 and not two_node:
        raise LocalUIError(
            400, "ControlPlaneCount", f"the control plane needs an odd number of hosts (1, 3, 5 …), got {control_count}"
        )
    if not any(h.uid == leader.uid and h.control_plane for h in hosts):
        raise LocalUIError(400, "LeaderNotInCluster", "the leader must be a control-plane host of the cluster")
    return hosts, pool_specs


def _check_vip(vip: str, addresses: list[str]) -> None:
    try:
        ip = ipaddress.IPv4Address(vip)
    except ValueError:
        raise LocalUIError(
            400, "InvalidVIP", f"controlPlaneEndpoint.host {vip!r} must be an IPv4 address (the cluster VIP)"
        ) from None
    if ip.is_unspecified or ip.is_multicast or ip.packed[-1] in (0, 255):
        raise LocalUIError(400, "InvalidVIP", f"{vip} cannot be used as a VIP")
    if vip in addresses:
        raise LocalUIError(400, "InvalidVIP", f"the VIP {vip} is already the address of a host; pick an unused one")


# -- Reports -------------------------------------------------------------------------------------------------------


def _require(node: NodeState) -> ClusterDeployment:
    deployment = node.cluster
    if deployment is None:
        raise LocalUIError(404, "NotFound", "this host is not part of a cluster")
    return deployment


def cluster_configuration(node: NodeState) -> dict[str, Any]:
    """v1ClusterConfiguration as accepted, with sensitive variable values blanked like any secret an API returns."""
    deployment = _require(node)
    config: dict[str, Any] = {**deployment.config, "spec": dict(deployment.config.get("spec") or {})}
    sensitive = {v.name: v for v in variables_for(node)}
    config["spec"]["profileVariables"] = [
        {**v, "value": ""} if (var := sensitive.get(str(v.get("name")))) is not None and var.sensitive else v
        for v in config["spec"].get("profileVariables") or []
    ]
    metadata = dict(config.get("metadata") or {})
    metadata.setdefault("id", deployment.uid)
    metadata.setdefault("creationTimestamp", iso8601(deployment.created_at))
    config["metadata"] = metadata
    return config


def update_settings(node: NodeState, body: dict[str, Any]) -> dict[str, Any]:
    """``PUT /cluster/settings`` (newer API): the cluster's NTP servers and SSH keys, taken at once."""
    deployment = _require(node)
    with _CREATE_LOCK:
        cluster_config = deployment.config.setdefault("spec", {}).setdefault("cloudConfig", {}).setdefault("spec", {})
        settings = cluster_config.setdefault("clusterConfig", {})
        for key in ("ntpServers", "sshKeys"):
            if key in body:
                settings[key] = list(body[key] or [])
    return {"message": "cluster settings update accepted"}


def cluster_details(node: NodeState) -> dict[str, Any]:
    """v1Cluster, computed from the clock."""
    d = _require(node)
    now = node.clock()
    progress = d.progress(now)
    running = d.running(now)
    cluster_config = d.config["spec"]["cloudConfig"]["spec"].get("clusterConfig") or {}
    overlay = cluster_config.get("overlayNetworkConfiguration") or {}
    node_pools_spec = []
    node_pools_status = []
    for pool in d.pools:
        members = [h for h in d.hosts if h.pool == pool["name"]]
        node_pools_spec.append(
            {
                "pool": pool,
                "hosts": [{"hostID": h.uid, "hostAddress": h.address, "hostName": h.name} for h in members],
            }
        )
        node_pools_status.append({"pool": pool, "nodes": [_node_status(d, h, now) for h in members]})
    status: dict[str, Any] = {
        "clusterState": node.variant("localui.cluster-words")[0] if running else "Provisioning",
        "clusterStateReason": "" if running else _current_stage(d, now).message,
        "clusterConditions": [_condition(d, s) for s in STAGES if s.category == "Cluster" and d.at(s.at) <= now],
        "nodePools": node_pools_status,
        "isRebootPending": REBOOT_PENDING_AT <= progress < REBOOT_WINDOW[0],
        "agentVersion": node.agent_version,
        "k8sVersion": K8S_VERSION,
        "ntpServersApplied": running,
        "sshKeysApplied": running,
    }
    upgrade = d.upgrade
    if running and upgrade is not None and upgrade.failed(now):
        running = False
        status.update(clusterState="Error", clusterStateReason=f"update to {upgrade.target} failed: {upgrade.error}")
        status["health"] = {"status": "Unhealthy", "reason": upgrade.error}
    elif running and upgrade is not None and upgrade.progress(now) < 1.0:
        running = False  # the consoles are down and the hosts reboot: not Running, not Healthy
        status["clusterState"] = node.variant("localui.upgrade-words")
        status["clusterStateReason"] = f"updating to {upgrade.target}: {upgrade.stage(now)}"
        status["health"] = {"status": "Unhealthy", "reason": "an update is being applied"}
        status["isRebootPending"] = upgrade.reboot_pending(now)
    if running:
        status["health"] = {"status": node.variant("localui.cluster-words")[1]}
        status["kubeconfig"] = kubeconfig(d)
        status["services"] = [
            {
                "name": "palette-system-console",
                "host": d.vip,
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https"}],
            }
        ]
    return {
        "metadata": {"id": d.uid, "name": d.name, "creationTimestamp": iso8601(d.created_at), "labels": {}},
        "spec": {
            "hostIDs": [h.uid for h in d.hosts],
            "nodePools": node_pools_spec,
            "ntpServers": list(cluster_config.get("ntpServers") or []),
            "sshKeys": list(cluster_config.get("sshKeys") or []),
            "vip": d.vip,
            "overlayCIDR": str(overlay.get("cidr") or ""),
        },
        "status": status,
    }


def _node_status(d: ClusterDeployment, host: ClusterHost, now: float) -> dict[str, Any]:
    state = d.node_state(host, now)
    out: dict[str, Any] = {
        "nodeName": host.name,
        "ipv4": host.address,
        "nodeState": state,
        "architecture": next(p["archType"] for p in d.pools if p["name"] == host.pool),
        "k8sVersion": K8S_VERSION,
        "age": f"{int(max(0.0, now - d.created_at) // 60)}m",
    }
    out["health"] = {"status": "Healthy"} if state == "Running" else {"status": "Unhealthy", "reason": "joining"}
    return out


def _current_stage(d: ClusterDeployment, now: float) -> Stage:
    reached = [s for s in STAGES if d.at(s.at) <= now]
    return reached[-1] if reached else STAGES[0]


def _condition(d: ClusterDeployment, stage: Stage) -> dict[str, Any]:
    when = iso8601(d.at(stage.at))
    return {
        "type": stage.type,
        "status": "True",
        "reason": stage.reason,
        "message": stage.message,
        "lastTransitionTime": when,
        "lastProbeTime": when,
    }


def expected_order() -> list[dict[str, Any]]:
    out = []
    for order, category in enumerate(("Cluster", "EdgeHost"), start=1):
        stages = [s for s in STAGES if s.category == category]
        out.append(
            {
                "category": category,
                "order": order,
                "conditionsOrder": [
                    {
                        "type": s.type,
                        "typeLabel": s.type_label,
                        "reason": s.reason,
                        "reasonLabel": s.reason_label,
                        "order": i,
                    }
                    for i, s in enumerate(stages, start=1)
                ],
            }
        )
    return out


def lifecycle_events(node: NodeState) -> dict[str, Any]:
    """v1LifecycleEvents: conditions reached so far (none before a cluster exists) and the full expected order."""
    d = node.cluster
    events: dict[str, list[dict[str, Any]]] = {"Cluster": [], "EdgeHost": []}
    if d is not None:
        now = node.clock()
        for stage in STAGES:
            if d.at(stage.at) <= now:
                events[stage.category].append(_condition(d, stage))
    return {"clusterEvents": events["Cluster"], "edgeHostEvents": events["EdgeHost"], "expectedOrder": expected_order()}


def cluster_nodes(node: NodeState) -> dict[str, Any]:
    """v1ClusterNodes: the Kubernetes nodes that have joined (an empty list without a cluster)."""
    d = node.cluster
    if d is None:
        return {"nodes": []}
    now = node.clock()
    nodes = []
    for host in d.hosts:
        if d.node_state(host, now) != "Running":
            continue
        ready = {"conditionType": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is ready"}
        nodes.append(
            {
                "nodeName": host.name,
                "edgeHostID": host.uid,
                "ipv4": host.address,
                "architecture": "amd64",
                "kernelVersion": "5.15.0-127-generic",
                "kubeletVersion": "v" + K8S_VERSION,
                "operatingSystem": "linux",
                "osImage": "Ubuntu 22.04.5 LTS",
                "age": f"{int(max(0.0, now - d.created_at) // 60)}m",
                "nodeStatus": ready,
                "nodeHealth": [ready],
            }
        )
    return {"nodes": nodes}


def kubeconfig(d: ClusterDeployment) -> str:
    """An admin kubeconfig shaped like kubeadm's admin.conf, pointing at the API on the VIP: with the cluster PKI's
    CA and admin certificate where the lab serves that API, else placeholder data."""
    from wizard.lab.kubeapi import api_port  # the API server imports the lab's TLS plumbing; keep this light
    from wizard.lab.kubepki import lookup

    pki = lookup(d.vip)
    if pki is not None:
        pems = (pki.ca_pem, pki.client_cert_pem, pki.client_key_pem)
        ca, cert, key = (base64.b64encode(pem).decode() for pem in pems)
    else:
        ca = base64.b64encode(f"lab CA for {d.name} {d.uid}".encode()).decode()
        cert = base64.b64encode(f"lab admin certificate {d.uid}".encode()).decode()
        key = base64.b64encode(f"lab admin key {d.uid}".encode()).decode()
    return textwrap.dedent(
        f"""\
        apiVersion: v1
        kind: Config
        clusters:
        - cluster:
            certificate-authority-data: {ca}
            server: https://{d.vip}:{api_port(d.vip)}
          name: {d.name}
        contexts:
        - context:
            cluster: {d.name}
            user: {d.name}-admin
          name: {d.name}-admin@{d.name}
        current-context: {d.name}-admin@{d.name}
        users:
        - name: {d.name}-admin
          user:
            client-certificate-data: {cert}
            client-key-data: {key}
        """
    )
