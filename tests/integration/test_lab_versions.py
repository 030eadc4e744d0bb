"""The lab plays each appliance release: what it serves follows the release's spec and documented facts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.localui_client import SpecCheckedClient
from tests.integration.releases import RELEASES, each_release
from wizard.appliance import localui_spec
from wizard.appliance.versions import GA_FROM, Edition, Version
from wizard.lab import Lab, ManualClock, registrysync
from wizard.lab.cluster import ClusterDeployment
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


UPLOAD = "/v1/edge-mgmt/edgehosts/current/actions/upload-content"
ARCHIVE = "/v1/edge-mgmt/clusters/archive/embedded/details"
LINK_STATUS = "/v1/edge-mgmt/edgehosts/current/link/status"


@each_release("4.9.10", "4.9.36")
def test_uploads_needed_a_token_only_from_4_9_14(lab: Lab, client: Clients) -> None:
    """Security Advisory 016 (PE-8523): before 4.9.14 the upload took no token; every other call always needs one."""
    c = client(0)
    r = c.post(UPLOAD, files={"uploadFile": ("bundle.tar.zst", b"x" * 64)}, token=None)
    assert r.status_code == (201 if lab.appliance.version < Version(4, 9, 14) else 401), r.text
    c.get("/v1/edge-mgmt/edgehosts/current", token=None, expect=401)


@each_release("4.9.10", "4.9.36")
def test_a_full_iso_brings_the_content(lab: Lab, client: Clients) -> None:
    """Before 4.9.36 every node installs the content from its ISO: the profile is there before any upload, and every
    linked host lists the content as synced."""
    leader, follower = client(0), client(1)
    leader.login()
    follower.login()
    full = lab.appliance.version < Version(4, 9, 36)
    leader.get(ARCHIVE, expect=200 if full else 404)
    token = leader.post("/v1/edge-mgmt/edgehosts/current/link/generate-token", expect=200).json()["token"]
    follower.post("/v1/edge-mgmt/edgehosts/current/link", json={"token": token}, expect=200)
    peers = leader.get(LINK_STATUS, expect=200).json()["peers"]
    assert {p["contentSyncStatus"] for p in peers} == ({"Synced"} if full else {"NotSynced"})


def _deployment(lab: Lab) -> ClusterDeployment:
    states = [n.state for n in lab.nodes]
    deployment = ClusterDeployment("mgmt", "uid", 0.0, 0.0, "127.0.0.200", states[0].uid, [], [], {})
    for state in states:
        state.cluster = deployment
    return deployment


@pytest.mark.parametrize(
    ("profile", "late"),
    [
        (RELEASES["4.9.44-vertex"], True),
        (RELEASES["4.9.46"], False),
        (ApplianceProfile(Version(4, 9, 44), stuck_sync=True), None),
    ],
    ids=["4.9.44", "4.9.46", "4.9.44-stuck"],
)
def test_pe_9263_uploads_reach_other_hosts_late_before_4_9_46(
    tmp_path: object, clock: object, profile: ApplianceProfile, late: bool | None
) -> None:

    assert isinstance(clock, ManualClock) and isinstance(tmp_path, Path)
    with Lab(2, tmp_path / "lab", clock, content_sync_delay=5.0, appliance=profile) as lab:
        _deployment(lab)
        origin, other = lab.nodes[0].state, lab.nodes[1].state
        registrysync.record(origin, "ubuntu", "22.04.5", 1024)
        assert registrysync.sync_status(origin)["pendingItems"] == []  # the host that took the upload has it
        pending = registrysync.sync_status(other)
        localui_spec.spec().validate_definition("v1HarborContentsSyncStatus", pending)
        if late is False:
            assert pending["pendingItems"] == []
            return
        (item,) = pending["pendingItems"]
        assert item["status"] == "pending" and item["source"] == origin.uid and item["target"] == other.uid
        assert pending["statusMessage"] == "Syncing content: (1) items are pending"
        clock.advance(registrysync.LATE_FACTOR * 5.0)
        assert bool(registrysync.sync_status(other)["pendingItems"]) is (late is None)  # stuck: never arrives
