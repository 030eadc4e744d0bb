"""The MAAS provider against the in-repo fake of the MAAS 2.0 API (wizard/lab/maas.py), over real HTTP(S)."""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from oauthlib import oauth1

from wizard.core.cancel import CancelToken
from wizard.core.checks.catalog import CheckResult, Outcome
from wizard.core.errors import Cancelled, WizardError
from wizard.core.http import DEFAULT_RETRY
from wizard.core.progress import Progress
from wizard.core.trust import TrustStore, system_or_pinned_tls_context
from wizard.lab.certs import create_node_certificate
from wizard.lab.clock import ManualClock
from wizard.lab.httpfaults import HttpFaults
from wizard.lab.maas import ApiError, MaasState, MaasUser, Status
from wizard.lab.maasserver import MaasServer
from wizard.providers.maas import (
    CHECKS,
    AllocateMachinesJob,
    MaasClient,
    MaasSelectionError,
    ManualInstruction,
    RedfishTarget,
    ReleaseMachinesJob,
    boot_route,
    read_boot_routes,
    resolve,
    route_facts,
    run_checks,
    zone_labels,
)

pytestmark = pytest.mark.maas

REDFISH = {"power_address": "10.20.0.11", "power_user": "root", "power_pass": "Bmc-S3cret!", "node_id": "1"}
IPMI = {"power_address": "10.20.0.12", "power_user": "ADMIN", "power_pass": "Ipmi-S3cret!", "power_driver": "LAN_2_0"}


@dataclass
class Site:
    state: MaasState
    server: MaasServer
    clock: ManualClock
    admin: MaasUser
    alice: MaasUser  # not an administrator
    bob: MaasUser

    def client(self, user: MaasUser | None = None, **kw: Any) -> MaasClient:
        return MaasClient(self.server.url, (user or self.admin).api_key, verify=True, **kw)


@pytest.fixture
def site() -> Iterator[Site]:
    clock = ManualClock()
    state = MaasState(clock=clock, power_delay=30.0, deploy_delay=600.0)
    admin = state.add_user("admin", admin=True)
    alice = state.add_user("alice")
    bob = state.add_user("bob")
    with MaasServer(state) as server:
        yield Site(state, server, clock, admin, alice, bob)


def seed_three(site: Site) -> list[str]:
    ids = []
    for i, zone in enumerate(("rack-a", "rack-b", "rack-c"), start=1):
        m = site.state.add_machine(
            f"pma-{i}",
            zone=zone,
            pool="palette",
            tags=["palette", "nvme"] if i != 3 else ["palette"],
            power_type="redfish",
            power_parameters={**REDFISH, "power_address": f"10.20.0.{10 + i}"},
            cpu_count=16,
            memory=32768,
            ip_addresses=[f"10.10.0.{10 + i}"],
        )
        ids.append(m.system_id)
    return ids


def run_job(job: AllocateMachinesJob | ReleaseMachinesJob) -> dict[str, Any]:
    progress = Progress()
    progress.add_task(job.id, job.name, "boot")
    facts = job.run(progress.root().child(0, 1, task=job.id), CancelToken())
    assert facts is not None
    return dict(facts)


# -- listing and selection ------------------------------------------------------------------------------------


def test_list_and_filter(site: Site) -> None:
    ids = seed_three(site)
    other = site.state.add_machine("spare", zone="rack-a", pool="default", tags=["gpu"])
    with site.client() as c:
        assert {m.system_id for m in c.machines()} == {*ids, other.system_id}
        assert [m.hostname for m in c.machines(zone="rack-a")] == ["pma-1", "spare"]
        assert {m.hostname for m in c.machines(pool="palette")} == {"pma-1", "pma-2", "pma-3"}
        assert {m.hostname for m in c.machines(tags=["palette", "nvme"])} == {"pma-1", "pma-2"}
        assert [m.hostname for m in c.machines(hostnames=["pma-2", "spare"], zone="rack-b")] == ["pma-2"]
        m = c.machine(ids[0])
    assert (m.zone, m.pool, m.tags, m.power_type) == ("rack-a", "palette", ("palette", "nvme"), "redfish")
    assert (m.cpu_count, m.memory_mib, m.status, m.status_name) == (16, 32768, Status.READY, "Ready")
    assert m.ip_addresses == ("10.10.0.11",) and len(m.macs) == 1


def test_resolve_by_hostname_fqdn_and_id(site: Site) -> None:
    ids = seed_three(site)
    with site.client() as c:
        machines = resolve(c, ["pma-3", ids[0], "pma-2.maas"], me="admin")
    assert [m.system_id for m in machines] == [ids[2], ids[0], ids[1]]


def test_resolve_reports_each_unusable_machine(site: Site) -> None:
    ok = site.state.add_machine("ok")
    site.state.add_machine("busy", status=Status.COMMISSIONING)
    site.state.add_machine("broken", status=Status.BROKEN)
    site.state.add_machine("bobs", status=Status.DEPLOYED, owner="bob")
    site.state.add_machine("mine-deployed", status=Status.DEPLOYED, owner="admin")
    with site.client() as c, pytest.raises(MaasSelectionError) as info:
        resolve(c, ["ok", "busy", "broken", "bobs", "mine-deployed", "ghost", ok.system_id], me="admin")
    problems = info.value.problems
    assert set(problems) == {"busy", "broken", "bobs", "mine-deployed", "ghost", ok.system_id}
    assert "commissioning" in problems["busy"]
    assert "Broken" in problems["broken"] and "mark it fixed" in problems["broken"]
    assert "belongs to bob" in problems["bobs"]
    assert "release it in MAAS" in problems["mine-deployed"]
    assert "no machine 'ghost'" in problems["ghost"]
    assert "same machine as 'ok'" in problems[ok.system_id]
    assert "busy:" in info.value.details


def test_machine_allocated_to_someone_else(site: Site) -> None:
    taken = site.state.add_machine("taken", status=Status.ALLOCATED, owner="bob")
    with site.client() as c:
        with pytest.raises(MaasSelectionError) as info:
            resolve(c, ["taken"], me="admin")
        assert "belongs to bob" in info.value.problems["taken"]
        with pytest.raises(WizardError) as exc:
            c.allocate(taken.system_id, "palette", user="admin")
    assert exc.value.title == "MAAS machine not available" and "No available machine" in exc.value.message
    # A user who is not an admin does not even see it, as in MAAS.
    with site.client(site.alice) as c, pytest.raises(MaasSelectionError) as info:
        resolve(c, [taken.system_id], me="alice")
    assert "that this API key's user can see" in info.value.problems[taken.system_id]


# -- allocate and release -------------------------------------------------------------------------------------


def test_allocate_with_comment_is_idempotent(site: Site) -> None:
    ids = seed_three(site)
    # The operator had allocated pma-3 to themselves before running the wizard: it is kept, not "ours".
    pre = site.state.machine(ids[2])
    pre.status, pre.owner = Status.ALLOCATED, "admin"
    job = AllocateMachinesJob(
        site.server.url,
        site.admin.api_key,
        True,
        refs=["pma-1", "pma-2", "pma-3"],
        comment="Palette appliance install",
        agent_name="pw-session-1",
    )
    facts = run_job(job)
    assert facts["allocated"] == ids[:2] and facts["kept"] == [ids[2]] and facts["user"] == "admin"
    assert facts["machines"] == {"pma-1": ids[0], "pma-2": ids[1], "pma-3": ids[2]}
    for sid in ids[:2]:
        m = site.state.machine(sid)
        assert (m.status, m.owner, m.agent_name) == (Status.ALLOCATED, "admin", "pw-session-1")
        assert m.comments("Allocated") == ["Palette appliance install"]

    again = run_job(job)
    assert again["allocated"] == ids[:2] and again["kept"] == [ids[2]]
    assert all(len(site.state.machine(sid).comments("Allocated")) == 1 for sid in ids[:2])


def test_allocate_fails_when_a_machine_is_taken(site: Site) -> None:
    ids = seed_three(site)
    site.state.machine(ids[1]).owner = "bob"
    site.state.machine(ids[1]).status = Status.ALLOCATED
    job = AllocateMachinesJob(site.server.url, site.admin.api_key, True, refs=["pma-1", "pma-2"], comment="x")
    with pytest.raises(MaasSelectionError) as info:
        run_job(job)
    assert "belongs to bob" in info.value.problems["pma-2"]
    assert site.state.machine(ids[0]).owner is None  # nothing is allocated when the selection is refused


def test_release_only_what_the_session_allocated(site: Site) -> None:
    ids = seed_three(site)
    site.state.machine(ids[2]).status = Status.ALLOCATED
    site.state.machine(ids[2]).owner = "admin"
    facts = run_job(
        AllocateMachinesJob(site.server.url, site.admin.api_key, True, refs=["pma-1", "pma-2", "pma-3"], comment="in")
    )
    allocated = facts["allocated"]
    assert isinstance(allocated, list)
    # pma-2 changed hands meanwhile: it is left alone.
    site.state.machine(ids[1]).owner = "bob"
    out = run_job(
        ReleaseMachinesJob(site.server.url, site.admin.api_key, True, system_ids=allocated, comment="operator aborted")
    )
    assert out["released"] == [ids[0]] and ids[1] in out["skipped"]
    released = site.state.machine(ids[0])
    assert (released.status, released.owner) == (Status.READY, None)
    assert released.comments("Released") == ["operator aborted"]
    assert site.state.machine(ids[1]).owner == "bob"
    assert site.state.machine(ids[2]).status is Status.ALLOCATED  # the operator's own allocation is kept


def test_release_of_a_running_machine_waits_for_power_off(site: Site) -> None:
    m = site.state.add_machine("on", status=Status.ALLOCATED, owner="admin", power_type="redfish", power_state="on")
    with site.client() as c:
        assert c.release(m.system_id, "bye").status_name == "Releasing"
        site.clock.advance(30)
        after = c.machine(m.system_id)
    assert (after.status_name, after.power_state, after.owner) == ("Ready", "off", None)


# -- power and boot plan ----------------------------------------------------------------------------------------


def test_power_parameters_route_redfish_or_manual(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rf = site.state.add_machine("rf", power_type="redfish", power_parameters=dict(REDFISH))
    ipmi = site.state.add_machine("ipmi", power_type="ipmi", power_parameters=dict(IPMI))
    manual = site.state.add_machine("hand", power_type="manual")
    half = site.state.add_machine("half", power_type="redfish", power_parameters={"power_address": "10.20.0.9"})
    with site.client() as c:
        routes = {
            m.hostname: boot_route(
                c.machine(m.system_id), c.power_parameters(m.system_id), iso_url="http://10.0.0.2:8080/t/pma.iso"
            )
            for m in (rf, ipmi, manual, half)
        }
    target = routes["rf"]
    assert isinstance(target, RedfishTarget)
    assert (target.bmc.address, target.bmc.username, target.password, target.redfish_system) == (
        "10.20.0.11",
        "root",
        "Bmc-S3cret!",
        "1",
    )
    assert "Bmc-S3cret!" not in repr(target)
    manual_ipmi = routes["ipmi"]
    assert isinstance(manual_ipmi, ManualInstruction)
    assert (
        "10.20.0.12" in manual_ipmi.text
        and "IPMI" in manual_ipmi.text
        and "http://10.0.0.2:8080/t/pma.iso" in manual_ipmi.text
    )
    assert "Ipmi-S3cret!" not in manual_ipmi.text
    assert isinstance(routes["hand"], ManualInstruction) and "no power control" in routes["hand"].text
    assert isinstance(routes["half"], ManualInstruction) and "power_user, power_pass" in routes["half"].text
    assert "Bmc-S3cret!" not in caplog.text and "Ipmi-S3cret!" not in caplog.text


def test_power_parameters_need_an_admin(site: Site) -> None:
    m = site.state.add_machine("rf", power_type="redfish", power_parameters=dict(REDFISH))
    with site.client(site.alice) as c, pytest.raises(WizardError) as exc:
        c.power_parameters(m.system_id)
    assert exc.value.title == "MAAS permission denied" and "administrator" in exc.value.remediation


def test_power_on_lands_after_the_delay(site: Site) -> None:
    m = site.state.add_machine("rf", status=Status.ALLOCATED, owner="admin", power_type="redfish")
    with site.client() as c:
        c.power_on(m.system_id, "boot the appliance ISO")
        assert c.query_power_state(m.system_id) == "off"
        site.clock.advance(29)
        assert c.query_power_state(m.system_id) == "off"
        site.clock.advance(1)
        assert c.wait_power_state(m.system_id, "on", CancelToken(), timeout=10, interval=0.05) == "on"
        c.power_off(m.system_id)
        site.clock.advance(30)
        assert c.query_power_state(m.system_id) == "off"


def test_power_on_polled_on_the_real_clock_and_cancelled() -> None:
    state = MaasState(power_delay=0.3)
    admin = state.add_user("admin", admin=True)
    m = state.add_machine("rf", status=Status.ALLOCATED, owner="admin", power_type="redfish")
    hand = state.add_machine("hand", status=Status.ALLOCATED, owner="admin", power_type="manual")
    with MaasServer(state) as server, MaasClient(server.url, admin.api_key, verify=True) as c:
        c.power_on(m.system_id)
        assert c.wait_power_state(m.system_id, "on", CancelToken(), timeout=30, interval=0.05) == "on"
        # A manual machine never reports "on": the wait ends when the operator cancels.
        token = CancelToken()
        token.cancel("operator aborted")
        with pytest.raises(Cancelled):
            c.wait_power_state(hand.system_id, "on", token, timeout=30, interval=0.05)
        with pytest.raises(WizardError) as exc:
            c.wait_power_state(hand.system_id, "on", CancelToken(), timeout=0.2, interval=0.05)
        assert exc.value.title == "Power state did not change" and "'unknown'" in exc.value.message


def test_power_on_needs_an_allocated_machine(site: Site) -> None:
    m = site.state.add_machine("free", power_type="redfish")
    with site.client() as c, pytest.raises(WizardError) as exc:
        c.power_on(m.system_id)
    assert exc.value.title == "MAAS machine not available" and "hasn't been allocated" in exc.value.message


def test_fake_deploy_lifecycle(site: Site) -> None:
    m = site.state.add_machine("d", power_type="redfish")
    with site.client() as c:
        r = c._request("POST", f"machines/{m.system_id}/", params=[("op", "deploy")], form=[("distro_series", "noble")])
        assert (r["status_name"], r["owner"], r["distro_series"]) == ("Deploying", "admin", "noble")
        site.clock.advance(600)
        after = c.machine(m.system_id)
        assert (after.status_name, after.power_state) == ("Deployed", "on")
        with pytest.raises(WizardError) as exc:
            c._request("POST", f"machines/{m.system_id}/", params=[("op", "nonsense")])
    assert "Unrecognised signature" in exc.value.details


def test_zone_labels(site: Site) -> None:
    m = site.state.add_machine("z", zone="Room 2 / Rack A", pool="palette")
    with site.client() as c:
        labels = zone_labels(c.machine(m.system_id))
    assert labels == {"topology.kubernetes.io/region": "palette", "topology.kubernetes.io/zone": "Room-2-Rack-A"}


# -- authentication ----------------------------------------------------------------------------------------------


def test_bad_key_is_refused_with_a_clear_error(site: Site) -> None:
    consumer, token, _ = site.admin.api_key.split(":")
    with (
        MaasClient(site.server.url, f"{consumer}:{token}:wrongsecret", verify=True) as c,
        pytest.raises(WizardError) as exc,
    ):
        c.whoami()
    assert exc.value.title == "MAAS refused the API key" and "401" in exc.value.message
    assert "Invalid signature" in exc.value.details and "wrongsecret" not in exc.value.render()
    with MaasClient(site.server.url, f"nobody:{token}:x", verify=True) as c, pytest.raises(WizardError) as exc:
        c.machines()
    assert "Invalid API key" in exc.value.details
    with pytest.raises(WizardError) as exc:
        MaasClient(site.server.url, "not-a-key", verify=True)
    assert exc.value.title == "Invalid MAAS API key" and "not-a-key" not in exc.value.render()


def _signed(user: MaasUser, url: str, method: str = "GET") -> str:
    consumer, token, secret = user.api_key.split(":")
    client = oauth1.Client(
        consumer,
        client_secret="",
        resource_owner_key=token,
        resource_owner_secret=secret,
        signature_method=oauth1.SIGNATURE_PLAINTEXT,
    )
    return client.sign(url, http_method=method)[1]["Authorization"]


def test_fake_verifies_the_oauth_header(site: Site) -> None:
    url = site.server.api_url + "users/?op=whoami"
    good = _signed(site.admin, url)
    with httpx.Client() as http:
        assert http.get(url, headers={"Authorization": good}).json()["username"] == "admin"
        replay = http.get(url, headers={"Authorization": good})
        assert replay.status_code == 401 and "Nonce already used" in replay.text
        tampered = _signed(site.admin, url).replace('oauth_signature="%26', 'oauth_signature="%26x')
        r = http.get(url, headers={"Authorization": tampered})
        assert r.status_code == 401 and "Invalid signature" in r.text
        assert r.headers["WWW-Authenticate"].startswith("OAuth")
        other_token = _signed(site.admin, url).replace(site.admin.token_key, site.bob.token_key)
        assert "Invalid access token" in http.get(url, headers={"Authorization": other_token}).text
        no_nonce = _signed(site.admin, url).replace("oauth_nonce=", "oauth_nonx=")
        assert "Missing OAuth parameters: oauth_nonce" in http.get(url, headers={"Authorization": no_nonce}).text
        stale = _signed(site.admin, url)
        stale = stale.replace(stale.split('oauth_timestamp="')[1].split('"')[0], "1000000000")
        assert "Expired timestamp" in http.get(url, headers={"Authorization": stale}).text
        assert http.get(url).status_code == 401
        # version/ is anonymous in MAAS
        assert http.get(site.server.api_url + "version/").json()["version"]


def test_https_maas_with_pinned_certificate(tmp_path: Path) -> None:
    cert = create_node_certificate(tmp_path / "tls", ip="127.0.0.1", hostname="maas.lab")
    state = MaasState()
    admin = state.add_user("admin", admin=True)
    state.add_machine("rf")
    with MaasServer(state, tls=cert.server_context()) as server:
        assert server.url.startswith("https://")
        with (
            MaasClient(server.url, admin.api_key, verify=ssl.create_default_context()) as c,
            pytest.raises(WizardError) as exc,
        ):
            c.whoami()
        assert exc.value.title == "MAAS certificate not trusted"
        asked: list[str] = []

        def confirm(request: object) -> bool:
            asked.append(str(request))
            return True

        ctx = system_or_pinned_tls_context(TrustStore(tmp_path / "config"), confirm, "127.0.0.1", server.port)
        assert asked
        with MaasClient(server.url, admin.api_key, verify=ctx) as c:
            assert c.whoami().username == "admin" and [m.hostname for m in c.machines()] == ["rf"]


# -- preflight checks --------------------------------------------------------------------------------------------


def _outcomes(results: list[CheckResult]) -> dict[tuple[str, str], Outcome]:
    return {(r.check, r.target): r.outcome for r in results}


def test_checks_pass_for_good_machines(site: Site) -> None:
    seed_three(site)
    results = run_checks(site.server.url, site.admin.api_key, True, refs=["pma-1", "pma-2", "pma-3"])
    assert {c.id for c in CHECKS} == {r.check for r in results}
    assert all(r.outcome is Outcome.PASS for r in results), [r for r in results if r.failed]
    assert len(results) == 1 + 3 * 3
    assert all(c.category.value == "provider" and c.step == "provider" for c in CHECKS)


def test_checks_fail_for_each_problem(site: Site) -> None:
    site.state.add_machine("small", power_type="redfish", power_parameters=dict(REDFISH), cpu_count=4, memory=8192)
    site.state.add_machine("ipmi", power_type="ipmi", power_parameters=dict(IPMI), cpu_count=8, memory=16384)
    site.state.add_machine("new", status=Status.NEW, power_type="redfish", power_parameters=dict(REDFISH))
    site.state.add_machine("half", power_type="redfish", power_parameters={"power_address": "10.20.0.9"})
    results = run_checks(site.server.url, site.admin.api_key, True, refs=["small", "ipmi", "new", "ghost", "half"])
    got = _outcomes(results)
    assert got[("maas.reachable", site.server.url)] is Outcome.PASS
    assert got[("maas.resources", "small")] is Outcome.FAIL and got[("maas.machines", "small")] is Outcome.PASS
    assert got[("maas.power-type", "small")] is Outcome.PASS
    assert got[("maas.power-type", "ipmi")] is Outcome.FAIL and got[("maas.resources", "ipmi")] is Outcome.PASS
    assert got[("maas.machines", "new")] is Outcome.FAIL
    assert got[("maas.machines", "ghost")] is Outcome.FAIL
    ipmi_msg = next(r.message for r in results if r.check == "maas.power-type" and r.target == "ipmi")
    assert "booted by hand" in ipmi_msg
    half = next(r for r in results if r.check == "maas.power-type" and r.target == "half")
    assert half.outcome is Outcome.FAIL and "no power_user, power_pass" in half.message
    # A key without admin rights cannot read BMC credentials: Redfish machines fall back to a manual boot.
    alice = run_checks(site.server.url, site.alice.api_key, True, refs=["small"])
    msg = next(r for r in alice if r.check == "maas.power-type")
    assert msg.outcome is Outcome.FAIL and "administrator" in msg.message


def test_checks_when_maas_is_unreachable_or_the_key_is_wrong(site: Site) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/MAAS"
    results = run_checks(dead, site.admin.api_key, True, refs=["pma-1"])
    got = _outcomes(results)
    assert got[("maas.reachable", dead)] is Outcome.FAIL
    assert got[("maas.machines", "pma-1")] is Outcome.ERROR and got[("maas.resources", "pma-1")] is Outcome.ERROR
    assert "MAAS unreachable" in results[0].message
    consumer, token, _ = site.admin.api_key.split(":")
    wrong = run_checks(site.server.url, f"{consumer}:{token}:nope", True, refs=["pma-1"])
    assert wrong[0].outcome is Outcome.FAIL and "refused the API key" in wrong[0].message


def test_a_redfish_target_names_the_system_maas_gives_in_node_id(site: Site) -> None:
    m = site.state.add_machine(
        "rf",
        power_type="redfish",
        power_parameters={**REDFISH, "power_address": "bmc.example.com:8443", "node_id": "System.Embedded.1"},
    )
    plain = site.state.add_machine(
        "rf2", power_type="redfish", power_parameters={**REDFISH, "power_address": "10.20.0.21", "node_id": ""}
    )
    with site.client() as c:
        target = boot_route(c.machine(m.system_id), c.power_parameters(m.system_id))
        other = boot_route(c.machine(plain.system_id), c.power_parameters(plain.system_id))
    assert isinstance(target, RedfishTarget) and isinstance(other, RedfishTarget)
    assert target.boot_bmc.address == "https://bmc.example.com:8443/redfish/v1/Systems/System.Embedded.1"
    assert other.boot_bmc.address == "10.20.0.21"  # no node_id: the client discovers the only System
    facts = route_facts(target)
    assert facts["route"] == "redfish" and "Bmc-S3cret!" not in str(facts)


def test_boot_routes_with_a_users_key_are_manual(site: Site) -> None:
    m = site.state.add_machine("rf", power_type="redfish", power_parameters=dict(REDFISH))
    with site.client(site.alice) as c:
        routes = read_boot_routes(c, {"node-1": m.system_id}, iso_hint="/isos/pma.iso")
    route = routes["node-1"]
    assert isinstance(route, ManualInstruction) and "administrator" in route.text and "/isos/pma.iso" in route.text


def test_release_with_an_agent_name_leaves_the_users_other_machines_alone(site: Site) -> None:
    ids = seed_three(site)
    with site.client() as c:
        c.allocate(ids[0], "by the wizard", user="admin", agent_name="palette-wizard/p")
        c.allocate(ids[1], "by hand", user="admin")
    job = ReleaseMachinesJob(
        site.server.url, site.admin.api_key, True, system_ids=ids[:2], comment="abort", agent_name="palette-wizard/p"
    )
    facts = job.run(Progress().root(), CancelToken())
    assert facts is not None and facts["released"] == [ids[0]] and ids[1] in facts["skipped"]
    assert site.state.machine(ids[1]).owner == "admin"


# -- transient faults (issue 20, finding 2) ----------------------------------------------------------------------


def test_reads_and_allocations_ride_out_transient_server_errors(site: Site) -> None:
    """A fifth of the requests answered 5xx before MAAS does anything: reads are retried, an allocation whose answer
    was a 5xx is settled by reading the machine's owner, and every machine ends allocated once, to us."""
    ids = seed_three(site)
    site.state.http_faults = HttpFaults(0.2, seed=7, label="maas")
    with site.client(retry=DEFAULT_RETRY.scaled(0.001)) as c:
        assert {m.system_id for m in c.machines(tags=["palette"])} == set(ids)
        for sid in ids:
            got = c.allocate(sid, "palette", user="admin")
            assert got.allocated_to("admin")
        assert all(c.machine(sid).allocated_to("admin") for sid in ids)
    assert site.state.http_faults.injected > 0


def test_an_allocation_whose_answer_was_lost_is_not_sent_again(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = seed_three(site)
    real = site.state.allocate
    calls: list[str] = []

    def allocate_then_fail(user: Any, form: Any) -> Any:
        calls.append("allocate")
        real(user, form)
        raise ApiError(502, "Bad Gateway")  # the work is done, the answer lost on the way back

    monkeypatch.setattr(site.state, "allocate", allocate_then_fail)
    with site.client(retry=DEFAULT_RETRY.scaled(0.001)) as c:
        got = c.allocate(ids[0], "palette", user="admin")
    assert got.system_id == ids[0] and got.allocated_to("admin")
    assert calls == ["allocate"]  # read back, not sent again
