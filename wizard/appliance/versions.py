"""Which appliance the wizard talks to — its version and edition — and what the documented releases change.

Sources (reference §10.2, release notes "RN"; all F unless marked I):

- The appliance left Tech Preview in 4.9.38; from 4.9.36 it ships as a slim Appliance ISO plus a separate content
  bundle, below that as a full ISO with the content inside.
- Security Advisory 016 (PE-8523): content upload needed no authentication until 4.9.14.
- PE-9263: content uploaded through the Local UI did not sync to linked hosts until 4.9.46.
- Traefik replaced ingress-nginx in 4.8.47 (nginx removed in 4.9.14).
- PE-8975 (4.9.38): ``GET /v1/edge-mgmt/settings`` returns ``applianceType`` (``palette``, ``vertex``, …).
- Sizing (4.9.38 docs): Small 8 CPU / 16 GB, Medium 16 / 32 (recommended), Large 32 / 64; 750 GB storage per node
  (the table and its checks are in :mod:`wizard.core.checks.sizing`, shared with the vSphere checks).

How the version is read is not published (I): the host's ``status.agentVersion`` is taken as the appliance's
version (the agent ships with the release), spelled loosely (``4.9.44``, ``v4.9.44``, ``4.9.44-rc1+abc``); an
edition word is matched loosely too (``vertex``, ``VerteX``, ``palette-vertex``). Unknown is a valid answer: the
guards that need a version then say so instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

_VERSION = re.compile(r"^\s*v?(\d+)\.(\d+)\.(\d+)(?:[-+._ ].*)?\s*$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @classmethod
    def parse(cls, text: object) -> Version | None:
        """``4.9.44``, ``v4.9.44``, ``4.9.44-rc1`` → 4.9.44; anything else (empty, ``4.9``, ``latest``) → None."""
        if not isinstance(text, str):
            return None
        m = _VERSION.match(text)
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


class Edition(StrEnum):
    PALETTE = "palette"
    VERTEX = "vertex"

    @property
    def product(self) -> str:
        """The product name the docs use in texts (the VerteX docs render the same pages with ``VerteX``)."""
        return "VerteX" if self is Edition.VERTEX else "Palette"

    @classmethod
    def parse(cls, value: object) -> Edition | None:
        """An ``applianceType`` (or the ISO's ``stylus.applianceType``) as an edition; None when not recognised."""
        if not isinstance(value, str):
            return None
        word = value.strip().lower()
        if "vertex" in word:
            return cls.VERTEX
        if word in ("palette", "palette-enterprise", "enterprise", "palette enterprise", "pe"):
            return cls.PALETTE
        return None


#: Default product name while the edition is unknown.
DEFAULT_PRODUCT = "Palette"

UPLOAD_AUTH_FROM = Version(4, 9, 14)  # Security Advisory 016, PE-8523
LOCALUI_SYNC_FROM = Version(4, 9, 46)  # PE-9263
SLIM_ISO_FROM = Version(4, 9, 36)
GA_FROM = Version(4, 9, 38)
APPLIANCE_TYPE_FROM = Version(4, 9, 38)  # PE-8975
TRAEFIK_FROM = Version(4, 8, 47)
NGINX_REMOVED_FROM = Version(4, 9, 14)
#: The newest release the reference knows (the top release-notes entry).
LATEST = Version(4, 9, 46)

ADVISORY_016 = "Security Advisory 016 (PE-8523)"
PE_9263 = "PE-9263"


@dataclass(frozen=True)
class ApplianceIdentity:
    """What the wizard knows about the appliance: each field None when nothing said it.

    ``sources`` names where each fact came from (``settings.applianceType``, ``edgehosts/current agentVersion``,
    ``ISO config.yaml``, ``system console``), for the report; ``hosts`` is every node's own agent version."""

    version: Version | None = None
    edition: Edition | None = None
    sources: tuple[str, ...] = ()
    hosts: tuple[tuple[str, str], ...] = ()  # (node, agentVersion as the node spelled it)
    content_on_nodes: bool | None = None  # the nodes already hold the content (a full ISO)

    @property
    def product(self) -> str:
        return self.edition.product if self.edition is not None else DEFAULT_PRODUCT

    @property
    def label(self) -> str:
        """``VerteX 4.9.44``, ``Palette 4.9.10``, ``Palette (version unknown)``."""
        return f"{self.product} {self.version}" if self.version is not None else f"{self.product} (version unknown)"

    def before(self, version: Version) -> bool | None:
        """Whether the appliance is older than ``version``; None when its version is unknown."""
        return None if self.version is None else self.version < version

    @property
    def full_iso(self) -> bool | None:
        """A full ISO (content inside) is what releases before 4.9.36 ship; None when the version is unknown."""
        return self.before(SLIM_ISO_FROM)

    def to_dict(self) -> dict[str, Any]:
        """Journal facts (plain JSON), read back by :meth:`from_dict`; ``label`` and ``product`` are for reports."""
        return {
            "version": str(self.version) if self.version else "",
            "edition": self.edition.value if self.edition else "",
            "product": self.product,
            "label": self.label,
            "sources": list(self.sources),
            "hosts": {name: spelled for name, spelled in self.hosts},
            "content_on_nodes": self.content_on_nodes,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ApplianceIdentity:
        data = data or {}
        hosts = data.get("hosts") or {}
        content = data.get("content_on_nodes")
        return cls(
            version=Version.parse(data.get("version")),
            edition=Edition.parse(data.get("edition")),
            sources=tuple(str(s) for s in data.get("sources") or ()),
            hosts=tuple((str(k), str(v)) for k, v in hosts.items()) if isinstance(hosts, Mapping) else (),
            content_on_nodes=content if isinstance(content, bool) else None,
        )


def appliance_type(settings: Mapping[str, Any] | None) -> Edition | None:
    """The edition in a ``v1Settings`` answer: ``applianceType`` (PE-8975, 4.9.38; not in the published schema, so
    also looked for under ``featureFlags``-free spellings the field may take)."""
    if not settings:
        return None
    for key in ("applianceType", "ApplianceType", "appliance_type"):
        found = Edition.parse(settings.get(key))
        if found is not None:
            return found
    return None


def edition_from_iso_config(config: Mapping[str, Any] | None) -> Edition | None:
    """The edition an appliance ISO declares in its embedded ``config.yaml`` (the user data at the ISO's root, parsed
    to a mapping): ``stylus.applianceType``. None when the ISO does not say (older ISOs)."""
    if not config:
        return None
    stylus = config.get("stylus")
    if not isinstance(stylus, Mapping):
        return None
    return Edition.parse(stylus.get("applianceType"))


def combine(versions: Mapping[str, str]) -> tuple[Version | None, list[str]]:
    """The appliance version from each node's agent version: the common one, or the lowest when nodes disagree (the
    guards must hold for every node), with a note per disagreement."""
    parsed = {name: Version.parse(text) for name, text in versions.items()}
    known = {name: v for name, v in parsed.items() if v is not None}
    notes = [
        f"{name} reports no version it could be read from ({versions[name]!r})" for name in parsed if not parsed[name]
    ]
    if not known:
        return None, notes
    lowest = min(known.values())
    if len(set(known.values())) > 1:
        listing = ", ".join(f"{name} {v}" for name, v in sorted(known.items()))
        notes.append(f"the nodes run different versions ({listing}); the lowest, {lowest}, decides")
    return lowest, notes
