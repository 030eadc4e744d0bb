"""Which appliance release a lab node plays: ``version=X.Y.Z`` and ``edition=palette|vertex``.

A version decides what the node serves and which documented defects it has (reference §10.2):

- the Local UI API: releases before GA (4.9.38) serve the spec the wizard was first built from (librarium
  @5acee344), GA and later the newer published one (network configuration, cluster settings, sectioned profile
  variables, ``isTwoNodeCluster``). Which release first served each path is not published (I); the client asks
  instead of deciding by version, so this boundary only has to be plausible;
- ``GET /v1/edge-mgmt/settings`` carries ``applianceType`` from 4.9.38 (PE-8975);
- the host's ``status.agentVersion`` is the version (I: the agent ships with the release);
- below 4.9.14 content upload needs no token (Security Advisory 016, PE-8523);
- below 4.9.36 the ISO is a full one: every node has the content from its install;
- below 4.9.46 Local UI uploads reach the other hosts' registries late (PE-9263 says "did not sync"; the lab lets
  them through after a while so a rehearsal can finish, or never with ``stuck_sync``; :mod:`wizard.lab.registrysync`);
- the cluster's ingress runs ingress-nginx below 4.8.47 and Traefik from then on.

Until the ``--lab KNOB=VALUE`` command line exists these are :class:`~wizard.lab.lab.Lab` and
:class:`~wizard.rehearsal.Rehearsal` options; :func:`profile_from_knobs` reads the knobs' text form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from wizard.appliance import localui_spec
from wizard.appliance.localui_spec import LocalUISpec
from wizard.appliance.versions import (
    APPLIANCE_TYPE_FROM,
    GA_FROM,
    LATEST,
    LOCALUI_SYNC_FROM,
    SLIM_ISO_FROM,
    TRAEFIK_FROM,
    UPLOAD_AUTH_FROM,
    Edition,
    Version,
)

#: The newer Local UI API from this release on (I; see the module docstring).
CURRENT_API_FROM = GA_FROM
#: The releases the reference names (release notes, upgrade notes): what a lab content bundle of "the next release"
#: can be.
NAMED_RELEASES = (
    Version(4, 7, 15),
    Version(4, 7, 27),
    Version(4, 8, 47),
    Version(4, 9, 14),
    Version(4, 9, 36),
    Version(4, 9, 38),
    Version(4, 9, 44),
    LATEST,
)


def next_release(version: Version) -> Version | None:
    """The first named release after ``version`` (None past the newest): what the rehearsal's upgrade bundle brings
    by default."""
    return next((v for v in NAMED_RELEASES if v > version), None)


class LabKnobError(ValueError):
    """A ``version=`` or ``edition=`` knob the lab cannot play; the message names the knob and what it accepts."""


@dataclass(frozen=True)
class ApplianceProfile:
    """One appliance release as the lab plays it; the default is the newest release the reference knows."""

    version: Version = LATEST
    edition: Edition = Edition.PALETTE
    #: PE-9263 without the lab's eventual sync: uploads never reach the other hosts.
    stuck_sync: bool = False

    @property
    def spec(self) -> LocalUISpec:
        name = localui_spec.CURRENT if self.version >= CURRENT_API_FROM else localui_spec.BASELINE
        return localui_spec.spec(name)

    @property
    def agent_version(self) -> str:
        return str(self.version)

    @property
    def reports_appliance_type(self) -> bool:
        return self.version >= APPLIANCE_TYPE_FROM

    @property
    def unauthenticated_upload(self) -> bool:
        return self.version < UPLOAD_AUTH_FROM

    @property
    def content_in_iso(self) -> bool:
        return self.version < SLIM_ISO_FROM

    @property
    def uploads_sync(self) -> bool:
        return self.version >= LOCALUI_SYNC_FROM

    @property
    def ingress(self) -> str:
        return "traefik" if self.version >= TRAEFIK_FROM else "ingress-nginx"

    def settings(self, base: Mapping[str, Any]) -> dict[str, Any]:
        """The ``v1Settings`` answer: ``base`` plus ``applianceType`` where the release reports it."""
        out = dict(base)
        if self.reports_appliance_type:
            out["applianceType"] = self.edition.value
        return out

    @property
    def label(self) -> str:
        return f"{self.edition.product} {self.version}"


def profile_from_knobs(knobs: Mapping[str, str], base: ApplianceProfile | None = None) -> ApplianceProfile:
    """``{"version": "4.9.44", "edition": "vertex"}`` (the ``--lab`` knobs' values) as a profile; unknown keys are
    left to the caller. Raises :class:`LabKnobError` naming the knob and the accepted form."""
    profile = base or ApplianceProfile()
    if "version" in knobs:
        version = Version.parse(knobs["version"])
        if version is None:
            raise LabKnobError(f"version={knobs['version']!r}: give a release as X.Y.Z, e.g. version=4.9.44")
        profile = replace(profile, version=version)
    if "edition" in knobs:
        word = str(knobs["edition"]).strip().lower()
        if word not in (e.value for e in Edition):
            raise LabKnobError(f"edition={knobs['edition']!r}: the lab plays edition=palette or edition=vertex")
        profile = replace(profile, edition=Edition(word))
    return profile
