"""Upgrading an installed appliance with a newer content bundle: which hops the release notes allow, what the docs
say to do first, which version a bundle names, and the checks that judge an upgrade before anything is uploaded.

Sources (reference §1.8, §10.2; librarium ``_upgrade-palette-*.mdx``; F unless marked I):

- The documented upgrade: upload the new content bundle to the leader's Local UI, wait until "Syncing content: (N)
  items are pending" clears, then Cluster → Configuration → Update → Review Changes → Confirm → Update; "some upgrade
  paths require you to re-enter the configuration values you provided during the initial installation. This
  includes the OCI Pack Registry Password". During the upgrade the system and tenant consoles are unavailable.
- 4.8.x → 4.9.23 or newer must go through a 4.9.x release first, 4.9.14 recommended.
- From 4.7.15 and from 4.7.27 the docs give a script to run before upgrading (below, :data:`PRE_UPGRADE_SCRIPTS`).
- The Zot registry's password must match the value given at install.
- Custom TLS certificates are lost on upgrades between 4.8.47 and 4.9.14: back them up first.
- Before 4.9.22 an upgrade reset profile values to their defaults.

Open (I): the version scheme of a content bundle's file name is not published, nor where the update archive names
its release. The target is read from both and either may be missing: the file name's ``X.Y.Z`` before the upload,
the update archive's profile (its version, its name, a pack's version) after it; the hop rules apply to whichever is
known, and again once the archive has said.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from wizard.appliance.versions import UPLOAD_AUTH_FROM, Version
from wizard.core.checks.catalog import Category, Check, CheckSeverity

#: From 4.8.x, targets from this release on need a 4.9.x release in between.
HOP_TARGET_FROM = Version(4, 9, 23)
#: The 4.9.x release the docs recommend in between.
RECOMMENDED_HOP = Version(4, 9, 14)
#: Custom TLS certificates are lost on upgrades from releases in [CERTS_LOST_FROM, CERTS_LOST_UNTIL).
CERTS_LOST_FROM = Version(4, 8, 47)
CERTS_LOST_UNTIL = Version(4, 9, 14)
#: Before this release an upgrade reset profile values to their defaults.
VALUES_KEPT_FROM = Version(4, 9, 22)

_NAME_VERSION = re.compile(r"(?<![\d.])v?(\d+)\.(\d+)\.(\d+)(?![\d])")


@dataclass(frozen=True)
class PreUpgradeScript:
    """A script the docs say to run before upgrading from one release."""

    release: Version
    script: str
    what: str
    run: str
    ha_only: bool = False


PRE_UPGRADE_SCRIPTS: Mapping[Version, PreUpgradeScript] = {
    Version(4, 7, 15): PreUpgradeScript(
        Version(4, 7, 15),
        "change-pvc-access-mode.sh",
        "changes the access mode of the zot deployment's PersistentVolumeClaim from RWX to RWO, which the upgrade "
        "requires",
        "./change-pvc-access-mode.sh zot-system zot-pvc zot ReadWriteOnce",
    ),
    Version(4, 7, 27): PreUpgradeScript(
        Version(4, 7, 27),
        "recreate.sh",
        "makes the linstor-lvm-storage StorageClass resourceGroup lvm-ha with placementCount 3 and recreates the zot "
        "PVC on it, keeping its data",
        "./recreate.sh  (defaults: zot-system zot-pvc zot)",
        ha_only=True,
    ),
}

UPGRADE_DOCS = 'the upgrade guide\'s "Prerequisites" (Palette Management Appliance → Upgrade)'

# -- Checks ---------------------------------------------------------------------------------------------------------

CLUSTER = "upgrade.cluster"
VERSION = "upgrade.version"
TARGET = "upgrade.target"
PATH = "upgrade.path"
PRE_SCRIPT = "upgrade.pre-script"
REGISTRY_PASSWORD = "upgrade.registry-password"  # noqa: S105 - a check id
CERTIFICATES = "upgrade.certificates"
VALUES = "upgrade.values"
UPLOAD_AUTH = "upgrade.upload-auth"

_B, _W = CheckSeverity.BLOCKER, CheckSeverity.WARNING
CHECKS = (
    Check(
        CLUSTER,
        Category.NODE,
        _B,
        "The management cluster is Running and Healthy",
        "upgrade a healthy cluster only (the docs' prerequisite): check Cluster → Overview in the leader's Local UI, "
        "fix what is unhealthy, then run the upgrade again",
        "upgrade",
    ),
    Check(
        VERSION,
        Category.NODE,
        _W,
        "The appliance's current version is known and the same on every node",
        "every node's agent version shows in its Local UI; a node left behind by an earlier upgrade must be fixed "
        "first",
        "upgrade",
    ),
    Check(
        TARGET,
        Category.FILES,
        _B,
        "The new content bundle is newer than the appliance",
        "choose the content bundle of a newer release (Artifact Studio → Install Palette → the version → Content "
        "bundle)",
        "upgrade",
    ),
    Check(
        PATH,
        Category.FILES,
        _B,
        "The upgrade path is supported",
        f"from 4.8.x, releases from {HOP_TARGET_FROM} on need a 4.9.x release first ({RECOMMENDED_HOP} recommended): "
        "upgrade in the hops the message lists, one bundle at a time",
        "upgrade",
    ),
    Check(
        PRE_SCRIPT,
        Category.NODE,
        _B,
        "The release's pre-upgrade script has run",
        f"run the script {UPGRADE_DOCS} gives for this release with the admin kubeconfig, then run the upgrade again",
        "upgrade",
    ),
    Check(
        REGISTRY_PASSWORD,
        Category.FILES,
        _B,
        "The Zot registry password is re-entered with its install value",
        "name the OCI Pack Registry Password the install used under cluster.secret_variables (a keyring reference): "
        "the upgrade must answer it with the very value the registry was installed with",
        "upgrade",
    ),
    Check(
        CERTIFICATES,
        Category.NODE,
        _W,
        "Custom TLS certificates survive the upgrade",
        f"upgrades between {CERTS_LOST_FROM} and {CERTS_LOST_UNTIL} lose custom TLS certificates: the wizard backs "
        "them up and installs console.certificate again afterwards; re-apply any other custom certificate by hand",
        "upgrade",
    ),
    Check(
        VALUES,
        Category.NODE,
        _W,
        "Profile values survive the upgrade",
        f"releases before {VALUES_KEPT_FROM} reset profile values to their defaults when upgraded: the wizard backs "
        "them up and answers the new profile with the project's values; values given only in the Local UI must be "
        "entered there again",
        "upgrade",
    ),
    Check(
        UPLOAD_AUTH,
        Category.NODE,
        _W,
        "The appliance authenticates content uploads",
        f"before {UPLOAD_AUTH_FROM} the appliance took uploads without authentication (Security Advisory 016): "
        "upload the new bundle from a trusted network; the upgrade itself removes the exposure",
        "upgrade",
    ),
)


# -- Versions and hops ----------------------------------------------------------------------------------------------


def version_in_name(name: str) -> Version | None:
    """The release a bundle's file name spells (``…-4.9.44….tar.zst``), or None (I: no published name scheme)."""
    found = _NAME_VERSION.findall(name)
    if len(found) != 1:  # none, or several candidates: the name does not say which release it is
        return None
    major, minor, patch = (int(x) for x in found[0])
    return Version(major, minor, patch)


def hop_needed(current: Version, target: Version) -> bool:
    """Whether ``current`` → ``target`` skips a release the notes require in between."""
    return (current.major, current.minor) == (4, 8) and target >= HOP_TARGET_FROM


def supported_path(current: Version, target: Version) -> tuple[Version, ...]:
    """The releases to go through, ``current`` first and ``target`` last."""
    if hop_needed(current, target):
        return (current, RECOMMENDED_HOP, target)
    return (current, target)


def spell_path(path: Iterable[Version]) -> str:
    return " → ".join(str(v) for v in path)


def path_problem(current: Version, target: Version) -> str | None:
    """Why ``current`` → ``target`` is refused, with the supported path spelled out; None when it is allowed."""
    if target < current:
        return f"{target} is older than the installed {current}: the appliance cannot be downgraded"
    if target == current:
        return f"the appliance already runs {current}"
    if hop_needed(current, target):
        path = spell_path(supported_path(current, target))
        return (
            f"{current} → {target} is not supported: from 4.8.x, upgrades to {HOP_TARGET_FROM} or newer must go "
            f"through a 4.9.x release first ({RECOMMENDED_HOP} recommended): {path}"
        )
    return None


def certificates_lost(current: Version) -> bool:
    return CERTS_LOST_FROM <= current < CERTS_LOST_UNTIL


def values_reset(current: Version) -> bool:
    return current < VALUES_KEPT_FROM


def pre_upgrade_script(current: Version, nodes: int) -> PreUpgradeScript | None:
    """The script the docs give for upgrading from ``current`` (None when none, or when it is for HA only and the
    appliance has one node)."""
    script = PRE_UPGRADE_SCRIPTS.get(current)
    if script is None or (script.ha_only and nodes < 2):
        return None
    return script


def script_instructions(script: PreUpgradeScript) -> str:
    """What the docs say to do, in one paragraph the check's message can carry."""
    return (
        f"the docs say to run {script.script} before upgrading from {script.release}: it {script.what}. Download the "
        "Admin Kubeconfig File (leader's Local UI → Cluster → Overview → Environment; the wizard saved it too), "
        f"export KUBECONFIG, create {script.script} from {UPGRADE_DOCS}, chmod u+x it and run {script.run}"
    )


def archive_version(details: Mapping[str, Any] | None, current: Version | None = None) -> Version | None:
    """The release an update archive names (``clusters/archive/update/details``), or None: a profile's version, else
    its name, else the management plane pack's version (I: where it says so is not published). With ``current``
    known, only a version of the same major release and not older counts: a profile's own numbering (``1.0.0``) or
    a pack's is not the appliance's release."""
    if not details:
        return None
    profiles = [p for p in details.get("clusterProfileDetails") or [] if isinstance(p, Mapping)]
    candidates: list[Version | None] = [Version.parse(p.get("profileVersion")) for p in profiles]
    candidates += [version_in_name(str(p.get("profileName") or "")) for p in profiles]
    candidates += [
        Version.parse(pack.get("version"))
        for p in profiles
        for pack in p.get("packs") or []
        if isinstance(pack, Mapping) and "mgmt" in str(pack.get("name") or "").lower()
    ]
    for found in candidates:
        if found is None:
            continue
        if current is None or (found.major == current.major and found >= current):
            return found
    return None
