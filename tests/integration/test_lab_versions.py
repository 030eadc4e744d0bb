"""The lab plays each appliance release: what it serves follows the release's spec and documented facts."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.localui_client import SpecCheckedClient
from tests.integration.releases import RELEASES, each_release
from wizard.appliance import localui_spec
from wizard.appliance.versions import GA_FROM, Edition, Version
from wizard.lab import Lab
from wizard.lab.versions import ApplianceProfile, LabKnobError, profile_from_knobs

pytestmark = pytest.mark.lab

Clients = Callable[[int], SpecCheckedClient]
CONFIG_OPTIONS = "/v1/edge-mgmt/network/config-options"


def test_the_shipped_specs() -> None:
    baseline, current = localui_spec.spec(localui_spec.BASELINE), localui_spec.spec(localui_spec.CURRENT)
    assert len(list(current.document["paths"])) == 70
    assert set(baseline.operations()) < set(current.operations())
    for spec in (baseline, current):  # data copied from the reference keeps a line naming where it came from
        assert spec.document["x-copied-from"].startswith("shared/reference/") and spec.document["x-source"]
    assert "third-party mirror" in current.document["x-copied-from"]
    assert current.has("PUT", "/v1/edge-mgmt/network/bonds/bond0") and not baseline.has("GET", CONFIG_OPTIONS)
    assert localui_spec.operation("GET", CONFIG_OPTIONS).spec is current  # the module functions: the newer spec
    with pytest.raises(KeyError):
        localui_spec.spec("1999")


@each_release()
def test_each_release_reports_itself(lab: Lab, client: Clients) -> None:
    profile = lab.appliance
    c = client(0)
    c.login()
    host = c.get("/v1/edge-mgmt/edgehosts/current", expect=200).json()
    assert Version.parse(host["status"]["agentVersion"]) == profile.version
    settings = c.get("/v1/edge-mgmt/settings", expect=200).json()
    if profile.version >= GA_FROM:  # PE-8975: applianceType from 4.9.38
        assert Edition.parse(settings["applianceType"]) is profile.edition
    else:
        assert "applianceType" not in settings
    # Paths of the newer API exist only on releases that serve it; elsewhere they are the spec's 404.
    r = c.get(CONFIG_OPTIONS)
    assert (r.status_code != 404) is (profile.version >= GA_FROM), r.text


def test_knobs_read_as_the_command_line_writes_them() -> None:
    assert profile_from_knobs({"version": "4.9.44", "edition": "vertex"}) == RELEASES["4.9.44-vertex"]
    assert profile_from_knobs({}) == ApplianceProfile()
    with pytest.raises(LabKnobError, match=r"version='4\.9': give a release as X\.Y\.Z"):
        profile_from_knobs({"version": "4.9"})
    with pytest.raises(LabKnobError, match="edition=palette or edition=vertex"):
        profile_from_knobs({"edition": "edge"})
