"""Appliance releases the lab plays in tests: one on each side of every boundary the lab knows."""

from __future__ import annotations

import pytest

from wizard.appliance.versions import Edition, Version
from wizard.lab.versions import ApplianceProfile

#: The API spec (GA, 4.9.38), the full ISO (below 4.9.36), the upload advisory (4.9.14), Traefik (4.8.47) and
#: PE-9263 (4.9.46).
RELEASES = {
    "4.8.40": ApplianceProfile(Version(4, 8, 40)),
    "4.9.10": ApplianceProfile(Version(4, 9, 10)),
    "4.9.36": ApplianceProfile(Version(4, 9, 36)),
    "4.9.44-vertex": ApplianceProfile(Version(4, 9, 44), Edition.VERTEX),
    "4.9.46": ApplianceProfile(Version(4, 9, 46)),
}


def each_release(*names: str) -> pytest.MarkDecorator:
    """Parametrizes the ``lab`` fixture (indirectly) with the named releases, or with every one."""
    chosen = names or tuple(RELEASES)
    return pytest.mark.parametrize("lab", [RELEASES[n] for n in chosen], ids=list(chosen), indirect=True)
