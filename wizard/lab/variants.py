"""Where the public material leaves the appliance's answers open, the lab answers one plausible way per variant.

Every point below is marked I (inference) in the reference (``/work/shared/reference/palette-appliance.md``) or is
one where two sources disagree; each alternative names its source. ``variant=0`` is the lab's reading of the
reference, the first alternative of every point. ``variant=N`` (N ≥ 1) picks one alternative per point from N,
deterministically: each point shuffles its alternatives with a seed of its own name, and N takes the
(N mod count)-th, so variants 1…k together meet every alternative of every point that has at most k of them, and the
same N always means the same appliance. The client must complete on every variant: tests prove tolerance, not
agreement (``tests/integration/test_lab_variants.py``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Alternative:
    value: Any
    source: str


@dataclass(frozen=True)
class Point:
    name: str
    meaning: str
    alternatives: tuple[Alternative, ...]


def _a(value: Any, source: str) -> Alternative:
    return Alternative(value, source)


REF = "reference palette-appliance.md"

POINTS: tuple[Point, ...] = (
    Point(
        "console.sync-words",
        "the OCI registry sync status words (done, running, failed, idle) of the system console",
        (
            _a(("Completed", "InProgress", "Failed", "Idle"), f"{REF} §4: palette-sdk-go's sync status, read as words"),
            _a(("Success", "Running", "Error", ""), f"{REF} §10.4: the Terraform provider treats Success/Error"),
            _a(("completed", "inprogress", "failed", "idle"), f"{REF} §10.4: 'any case' in the Terraform provider"),
            _a(("SUCCESS", "IN_PROGRESS", "ERROR", "NONE"), f"{REF} §10.4 (I): upper-case enum spellings"),
        ),
    ),
    Point(
        "console.sync-supported",
        "isSyncSupported on the registry's sync status",
        (
            _a(True, f"{REF} §4: a basic OCI registry that syncs"),
            _a(False, f"{REF} §10.4: the Terraform provider's 'isSyncSupported: false' (nothing to wait for)"),
        ),
    ),
    Point(
        "console.version-endpoint",
        "whether GET /v1/system/version/installed exists",
        (
            _a(True, f"{REF} §4: palette-sdk-go lists it"),
            _a(False, "issue 20 finding 3: an independent appliance answered 404"),
        ),
    ),
    Point(
        "console.token-carrier",
        "how the system console accepts the token",
        (
            _a("both", f"{REF} §4: header and cookie both documented"),
            _a("header", f"{REF} §4: VerteX password-blocklist doc sends the Authorization header"),
            _a("cookie", f"{REF} §4: Nutanix cloud-registration doc sends Cookie: Authorization=…"),
        ),
    ),
    Point(
        "console.password-reset-flag",
        "what IsPasswordReset in the syslogin answer means",
        (
            _a("required", f"{REF} §4 (I): true while the default must still be replaced"),
            _a("done", f"{REF} §4 (I): the name read literally, true once the password was reset"),
            _a("absent", f"{REF} §4 (I): a version that leaves the field out"),
        ),
    ),
    Point(
        "console.write-status",
        "the status of a successful activation and password change",
        (
            _a((200, 204), f"{REF} §4: activate 200 with the activation, password reset 204 (palette-sdk-go)"),
            _a((201, 200), f"{REF} §4: the SDK also lists 201 for activate (I: a password reset answering 200)"),
            _a((204, 204), f"{REF} §4 (I): both with no body"),
        ),
    ),
    Point(
        "localui.token-carrier",
        "how the Local UI accepts the token",
        (
            _a("header", f"{REF} §2.1: securityDefinitions name the Authorization header only"),
            _a("both", f"{REF} §2.1/§10.3: the Authorization header, and the cookie setCookie=true sets"),
            _a("cookie", f"{REF} §10.3: the Local UI auth cookie is named Authorization (share-auth.md)"),
        ),
    ),
    Point(
        "localui.first-login",
        "what IsFirstLogin in the login answer means",
        (
            _a("until-reset", f"{REF} §2.1 (I): true until the account's password is changed"),
            _a("first-ever", f"{REF} §2.1 (I): true on the very first login only"),
            _a("never", f"{REF} §2.1 (I): an appliance whose account was created in the TUI (always false)"),
            _a("absent", f"{REF} §2.1 (I): a version that leaves the field out"),
        ),
    ),
    Point(
        "localui.peer-words",
        "a linked peer's status and contentSyncStatus words (free strings in the spec; health keeps its enum)",
        (
            _a(("Ready", "Healthy", "Synced"), f"{REF} §2.3/§8: hosts are Ready, content Synced"),
            _a(("ready", "Healthy", "synced"), f"{REF} §2.2 (I): the same words in lower case"),
            _a(("Active", "Healthy", "Completed"), f"{REF} §2.2 (I): v1LinkPeer.status is a free string"),
            _a(("READY", "Healthy", "Success"), f"{REF} §10.4 (I): the word Spectro's tooling uses for done"),
        ),
    ),
    Point(
        "localui.link-words",
        "the link status word once linked",
        (
            _a("Completed", f"{REF} §2.2: v1LinkStatus.status enum Pending/InProgress/Completed/Failed"),
            _a("completed", f"{REF} §2.2 (I): the enum in lower case"),
        ),
    ),
    Point(
        "localui.upload-status",
        "the status of a stored upload-content",
        (
            _a(201, f"{REF} §2.2: upload-content → 201 {{message, uploadPath}}"),
            _a(200, f"{REF} §2.4 (C): the CLI docs quote only 'Uploaded content successfully'"),
        ),
    ),
    Point(
        "localui.registry-items",
        "registry import item words, and whether finished items stay listed",
        (
            _a(("completed", True), f"{REF} §2.2: pendingItems status pending/completed/failed"),
            _a(("Completed", True), f"{REF} §2.2 (I): the enum capitalised like the other status words"),
            _a(("completed", False), f"{REF} §2.2 (I): 'pendingItems' read literally: finished items leave it"),
            _a(("success", True), f"{REF} §10.4 (I): the word Spectro's tooling uses for done"),
        ),
    ),
    Point(
        "localui.configuration-words",
        "configurations/status state words",
        (
            _a(("Not Configured", "In Progress", "Configured", "Failed"), f"{REF} §2.2: the spec's enum"),
            _a(("NotConfigured", "InProgress", "Configured", "Failed"), f"{REF} §2.2 (I): CamelCase like v1LinkStatus"),
            _a(("not configured", "in progress", "configured", "failed"), f"{REF} §2.2 (I): lower case"),
        ),
    ),
    Point(
        "localui.host-configuration-status",
        "edgehosts/current status.configurationStatus once the TUI step is done",
        (
            _a("configured", f"{REF} §2.2: v1Configuration pending/inprogress/configured"),
            _a("Configured", f"{REF} §2.2 (I): capitalised"),
            _a("completed", f"{REF} §2.2 (I): the link enum's word for done"),
        ),
    ),
    Point(
        "localui.profile-variables",
        "the profile variables' names and the regexes they are checked with",
        (
            _a("reference", f"{REF} §2.2 (I): names from the UI labels (podCidr, ociPackRegistryPassword)"),
            _a("dotted", f"{REF} §2.2 (I): names shaped like pack values (pod.cidr, registry.oci.password)"),
            _a("snake", f"{REF} §2.2 (I): snake case (pod_cidr, oci_pack_registry_password), stricter regexes"),
        ),
    ),
    Point(
        "localui.cluster-words",
        "cluster/details clusterState word once deployed (health keeps its enum)",
        (
            _a(("Running", "Healthy"), f"{REF} §2.2: clusterState enum Provisioning/Running/Deleting/Error"),
            _a(("running", "Healthy"), f"{REF} §10.4 (I): the enum in any case, as Spectro's own tooling reads words"),
        ),
    ),
    Point(
        "localui.write-status",
        "the status of a successful password reset and logout",
        (
            _a((204, 200), f"{REF} §2.1: password/reset → 204; logout → 200 (the spec)"),
            _a((200, 204), f"{REF} §2.1 (I): the other way round"),
        ),
    ),
    Point(
        "localui.archive-update",
        "which call applies an update archive to the cluster",
        (
            _a(
                "cluster",
                f"{REF} §10.3 (I): PUT cluster/{{clusterName}}, the whole configuration with its variables, "
                "as the Update → Review Changes form re-enters them",
            ),
            _a(
                "profiles",
                f"{REF} §10.3 (I): PUT cluster/profiles with the archive path alone "
                "(v1ClusterProfileConfiguration); the variables keep their values",
            ),
        ),
    ),
    Point(
        "localui.update-version",
        "where an update archive names the release it brings",
        (
            _a("profile-version", f"{REF} §2.2 (I): the profile's version is the release"),
            _a("pack", f"{REF} §2.2 (I): only the management plane pack's version says it"),
            _a("none", f"{REF} §10.2 (I): nowhere; the bundle's file name is all there is"),
        ),
    ),
    Point(
        "localui.upgrade-words",
        "cluster/details clusterState while an archive update runs",
        (
            _a("Upgrading", "librarium upgrade guide: progress shows on Cluster → Overview (I: the word itself)"),
            _a(
                "Provisioning",
                f"{REF} §2.2: the spec's clusterState enum has no upgrade state; Provisioning is its busy word",
            ),
            _a("Updating", "librarium upgrade guide (I): the Local UI's action is Update"),
        ),
    ),
    Point(
        "kube.console-secret",
        "the Secret (namespace, name) holding the system console's certificate",
        (
            _a(("ui-system", "ui-tls"), f"{REF} §1.6 (I): the console's namespace"),
            _a(("hubble-system", "palette-tls"), f"{REF} §1.6 (I): the management plane's namespace"),
            _a(("cp-system", "spectro-cp-tls"), f"{REF} §1.6 (I): the control plane UI's namespace"),
        ),
    ),
    Point(
        "localui.hash-case",
        "the case of uploaded-content sha256Hash",
        (
            _a("lower", f"{REF} §2.2 (I): hex digests as sha256sum prints them"),
            _a("upper", f"{REF} §2.2 (I): upper-case hex"),
        ),
    ),
)

_BY_NAME = {p.name: p for p in POINTS}


class Variant:
    """One appliance: an alternative per point, fixed by ``number``; ``overrides`` pins points to given values (a
    test that needs one reading in particular)."""

    def __init__(self, number: int = 0, overrides: dict[str, Any] | None = None) -> None:
        if number < 0:
            raise ValueError("a variant number is 0 or more")
        self.number = number
        self._chosen = {p.name: self._choose(p) for p in POINTS}
        for name, value in (overrides or {}).items():
            if name not in self._chosen:
                raise KeyError(f"no variation point {name!r}")
            self._chosen[name] = Alternative(value, "pinned by the caller")

    def _choose(self, point: Point) -> Alternative:
        if self.number == 0:
            return point.alternatives[0]
        order = list(point.alternatives)
        random.Random(point.name).shuffle(order)  # noqa: S311 - a fixed shuffle per point, not a secret
        return order[self.number % len(order)]

    def __call__(self, name: str) -> Any:
        """The value this variant gives at point ``name``."""
        return self._chosen[name].value

    def alternative(self, name: str) -> Alternative:
        return self._chosen[name]

    def describe(self) -> list[str]:
        """One line per point: its name, the value chosen and where that reading comes from."""
        return [f"{name} = {alt.value!r}  ({alt.source})" for name, alt in self._chosen.items()]

    def __repr__(self) -> str:
        return f"Variant({self.number})"


REFERENCE = Variant(0)


def point(name: str) -> Point:
    return _BY_NAME[name]
