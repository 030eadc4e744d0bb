"""The lab's fault knobs, each seen over the real protocols, and the install monitor through a node's lifecycle with
each knob that concerns it."""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_monitor import Driver, T, monitor, power_on
from wizard.appliance.monitor import Budgets, InstallFailed, InstallStage, MonitorTimedOut
from wizard.appliance.ssh import SSHClient, SSHCredentials, SSHUnreachable
from wizard.core.cancel import CancelToken
from wizard.core.progress import Progress
from wizard.core.trust import TrustStore
from wizard.lab import Lab, ManualClock
from wizard.lab.bootmenu import MENU_TIMEOUT as MENU
from wizard.lab.lab import LabNode, NodeFaults
from wizard.lab.machine import INSTALLER_MIN_DISK, Stage

pytestmark = pytest.mark.lab

GIB = 1024**3
INSTALLED = (
    T.firmware + MENU + T.installer_boot + T.install + T.finish + T.reboot + T.firmware + T.os_boot + T.services + 1
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path) -> TrustStore:
    return TrustStore(tmp_path / "config")


@pytest.fixture
def make_lab(tmp_path: Path, clock: ManualClock) -> Iterator[Callable[..., Lab]]:
    """``make_lab(n, installed=…, faults=…)``: a started lab on the test's clock, stopped after the test."""
    labs: list[Lab] = []

    def make(n: int = 1, **kw: Any) -> Lab:
        kw.setdefault("installed", False)
        lab = Lab(
            n,
            tmp_path / f"lab{len(labs)}",
            clock,
            timings=T,
            tick_interval=None,
            socket_timeout=10.0,
            media="automatic",
            **kw,
        )
        labs.append(lab)
        return lab.start()

    yield make
    for lab in labs:
        lab.stop()


def ssh(node: LabNode, store: TrustStore, **kw: Any) -> SSHClient:
    return SSHClient(
        "127.0.0.1",
        node.ssh.port,
        SSHCredentials("kairos", password="kairos"),
        trust=store,
        expected_fingerprint=node.ssh.fingerprint,
        connect_timeout=2,
        command_timeout=5,
        **kw,
    )


def ssh_up(node: LabNode, store: TrustStore) -> SSHClient:
    """A connected client, once the node's sshd listens (it follows the machine on its own thread)."""
    client = ssh(node, store)

    def connects() -> bool:
        try:
            client.connect()
        except SSHUnreachable:
            return False
        return True

    wait_until(connects, f"{node.name} to answer SSH")
    return client


def http(node: LabNode, timeout: float = 5.0) -> httpx.Client:
    return httpx.Client(base_url=node.url, verify=node.client_ssl_context(), timeout=timeout)


def login(c: httpx.Client) -> dict[str, str]:
    r = c.post("/v1/users/default/login", json={"username": "kairos", "password": "kairos"})
    assert r.status_code == 200, r.text
    return {"Authorization": r.json()["Token"]["Authorization"]}


def boot_to_installed(lab: Lab, clock: ManualClock, index: int = 0) -> None:
    power_on(lab, index)
    clock.advance(INSTALLED)
    lab.tick()
    assert lab.nodes[index].machine.stage is Stage.RUNNING


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# -- Each knob over the real protocols -----------------------------------------------------------------------------


def test_install_failure_reason_is_in_the_node_log(make_lab: Callable[..., Lab], clock: ManualClock,
                                                   store: TrustStore) -> None:  # fmt: skip
    lab = make_lab(1, faults=NodeFaults(install_error="could not mount COS_STATE: input/output error"))
    power_on(lab, 0)
    clock.advance(T.firmware + MENU + T.installer_boot + T.install)
    assert lab.nodes[0].machine.stage is Stage.INSTALL_FAILED
    with ssh_up(lab.nodes[0], store) as c:
        log = c.run("journalctl -b -n 20").stdout
    assert "kairos-agent: ERROR failed installing: could not mount COS_STATE: input/output error" in log
    assert "Installation has finished" not in log


def test_ssh_drops_once_and_every_n_seconds(make_lab: Callable[..., Lab], clock: ManualClock,
                                            store: TrustStore) -> None:  # fmt: skip
    lab = make_lab(1, installed=True)
    node = lab.nodes[0]
    c = ssh_up(node, store)
    try:
        first = c._transport
        assert first is not None and c.run("hostname").stdout == "edge-node-1\n"
        assert node.ssh.drop_sessions() == 1
        wait_until(lambda: not first.is_active(), "the session to be cut")
        assert c.run("hostname").ok, "the next command reconnects: only the session was cut, not the server"
        second = c._transport
        assert second is not None and second is not first
        node.ssh.drop_every = 30.0
        clock.advance(29)
        assert c.run("true").ok and second.is_active()
        clock.advance(2)
        wait_until(lambda: not second.is_active(), "the periodic drop")
        assert c.run("true").ok
        third = c._transport
        assert third is not None
        clock.advance(31)
        wait_until(lambda: not third.is_active(), "the next periodic drop")
    finally:
        c.close()


def test_local_ui_answers_500_for_n_requests(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(1, installed=True, faults=NodeFaults(localui_errors=2))
    with http(lab.nodes[0]) as c:
        first, second, third = (c.get("/v1/ping") for _ in range(3))
    assert [first.status_code, second.status_code, third.status_code] == [500, 500, 200]
    assert "internal" in first.text
    assert lab.nodes[0].state.localui_errors == 0


def test_local_ui_stall_accepts_but_never_answers(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(1, installed=True)
    state = lab.nodes[0].state
    state.stall(60)
    outcome: list[BaseException | int] = []

    def held() -> None:
        with http(lab.nodes[0], timeout=30) as c:
            try:
                outcome.append(c.get("/v1/ping").status_code)
            except httpx.HTTPError as exc:
                outcome.append(exc)

    with http(lab.nodes[0], timeout=0.5) as c, pytest.raises(httpx.ReadTimeout):
        c.get("/v1/ping")  # connected and sent (a connect timeout would be ConnectTimeout), never answered
    thread = threading.Thread(target=held)
    thread.start()
    wait_until(lambda: state.stalled_requests == 2, "the second request to be held")
    state.stall(0)  # the stall ends: the held request's connection is closed unanswered
    thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.RemoteProtocolError | httpx.ReadError)
    with http(lab.nodes[0]) as c:
        assert c.get("/v1/ping").status_code == 200


def test_slow_upload_is_capped(make_lab: Callable[..., Lab]) -> None:
    rate = 400_000
    lab = make_lab(1, installed=True, faults=NodeFaults(upload_rate=rate))
    data = bytes(range(256)) * 3000  # 768 kB
    with http(lab.nodes[0], timeout=30) as c:
        headers = login(c)
        started = time.monotonic()
        r = c.post(
            "/v1/edge-mgmt/edgehosts/current/actions/upload-content",
            files={"uploadFile": ("bundle.tar", data)},
            headers=headers,
        )
        elapsed = time.monotonic() - started
        assert r.status_code == 201, r.text
        details = c.get("/v1/edge-mgmt/edgehosts/current/uploaded-content/details", headers=headers).json()
    assert details["sizeInBytes"] == len(data)
    # The throttle cannot be beaten: the body cannot arrive faster than the cap allows.
    assert elapsed >= len(data) / rate * 0.9


def test_short_token_lifetime(make_lab: Callable[..., Lab], clock: ManualClock) -> None:
    lab = make_lab(1, installed=True, faults=NodeFaults(token_ttl=60))
    with http(lab.nodes[0]) as c:
        headers = login(c)
        assert c.get("/v1/users/current", headers=headers).status_code == 200
        clock.advance(61)
        r = c.get("/v1/users/current", headers=headers)
        assert r.status_code == 401 and "expired" in r.text
        lab.nodes[0].state.token_ttl = None  # back to the documented 2 h
        headers = login(c)
        clock.advance(3600)
        assert c.get("/v1/users/current", headers=headers).status_code == 200


def test_small_disk_is_reported_and_fails_the_install(make_lab: Callable[..., Lab], clock: ManualClock,
                                                      store: TrustStore) -> None:  # fmt: skip
    small = (("sda", 32 * GIB), ("sdb", 500 * GIB))
    lab = make_lab(1, faults=NodeFaults(disks=small, cpus=4, memory_mb=8192))
    power_on(lab, 0)
    clock.advance(T.firmware + MENU + T.installer_boot + T.install)
    with ssh_up(lab.nodes[0], store) as c:
        assert c.run("lsblk -b -d -n -o NAME,SIZE,TYPE").stdout == f"sda {32 * GIB} disk\nsdb {500 * GIB} disk\n"
        assert c.run("nproc").stdout == "4\n"
        assert "MemTotal:       8388608 kB" in c.run("cat /proc/meminfo").stdout
        log = c.run("journalctl -b").stdout
    assert f"device /dev/sda is too small: 32 GiB, the installation needs at least {INSTALLER_MIN_DISK // GIB}" in log
    assert lab.nodes[0].machine.stage is Stage.INSTALL_FAILED


def test_small_disk_facts_in_the_local_ui(make_lab: Callable[..., Lab]) -> None:
    lab = make_lab(1, installed=True, faults=NodeFaults(disks=(("sda", 120 * GIB),), cpus=4))
    with http(lab.nodes[0]) as c:
        hw = c.get("/v1/edge-mgmt/edgehosts/current", headers=login(c)).json()["spec"]["hardwareSpec"]
    assert [d["size"] for d in hw["disks"]] == [120] and hw["cpu"]["cores"] == 4


def test_clock_skew_shows_in_date_and_local_ui(make_lab: Callable[..., Lab], clock: ManualClock,
                                               store: TrustStore) -> None:  # fmt: skip
    lab = make_lab(2, installed=True, faults={1: NodeFaults(clock_skew=-90.0)})
    with ssh_up(lab.nodes[0], store) as straight, ssh_up(lab.nodes[1], store) as skewed:
        assert float(straight.run("date +%s.%N").stdout) == pytest.approx(clock(), abs=0.01)
        assert float(skewed.run("date +%s.%N").stdout) == pytest.approx(clock() - 90, abs=0.01)
        assert int(skewed.run("date -u +%s").stdout) == int(clock() - 90)
    for node, skew in ((lab.nodes[0], 0), (lab.nodes[1], -90)):
        with http(node) as c:
            r = c.get("/v1/ping")
            date = email.utils.parsedate_to_datetime(r.headers["Date"]).timestamp()
            assert date == pytest.approx(clock() + skew, abs=1)
            info = c.get("/v1/edge-mgmt/edgehosts/current", headers=login(c)).json()
            created = info["metadata"]["creationTimestamp"]
            expected = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(node.state.created_at + skew))
            assert created == expected


def test_never_boots(make_lab: Callable[..., Lab], clock: ManualClock, store: TrustStore) -> None:
    lab = make_lab(1, faults=NodeFaults(never_boots=True))
    machine = lab.nodes[0].machine
    power_on(lab, 0)
    clock.advance(INSTALLED)
    lab.tick()
    assert not machine.powered_on
    assert [machine.stage] == [Stage.POWERED_OFF]
    with pytest.raises(SSHUnreachable):
        ssh(lab.nodes[0], store).connect()
    machine.never_boots = False  # the fault cleared (someone fixed the machine): power on works again
    machine.power_on()
    assert [machine.stage] == [Stage.BOOTING_INSTALLER]


def test_ntp_and_stale_partitions(make_lab: Callable[..., Lab], store: TrustStore) -> None:
    lab = make_lab(2, installed=True, faults={1: NodeFaults(ntp_enabled=False, stale_partitions=("sdb",))})
    with ssh_up(lab.nodes[0], store) as good, ssh_up(lab.nodes[1], store) as bad:
        show = dict(line.split("=", 1) for line in good.run("timedatectl show").stdout.splitlines())
        assert show["NTP"] == "yes" and show["NTPSynchronized"] == "yes"
        assert "ntp.lab.internal" in good.run("timedatectl show-timesync").stdout
        show = dict(line.split("=", 1) for line in bad.run("timedatectl show").stdout.splitlines())
        assert show["NTP"] == "no" and show["NTPSynchronized"] == "no"
        labels = {}
        for c, key in ((good, "good"), (bad, "bad")):
            devices = json.loads(c.run("lsblk -J -b -o NAME,SIZE,TYPE,FSTYPE,LABEL,MOUNTPOINT").stdout)["blockdevices"]
            labels[key] = {d["name"]: [p["label"] for p in d.get("children", [])] for d in devices}
    assert "COS_STATE" in labels["good"]["sda"] and labels["good"]["sdb"] == []
    assert "COS_STATE" in labels["bad"]["sda"] and "COS_STATE" in labels["bad"]["sdb"]


# -- The install monitor through a whole lifecycle with each knob -------------------------------------------------


def test_monitor_install_failure_carries_the_reason_and_last_lines(make_lab: Callable[..., Lab], clock: ManualClock,
                                                                   store: TrustStore) -> None:  # fmt: skip
    lab = make_lab(1, faults=NodeFaults(install_error="no space left on device /dev/sda2"))
    job = monitor(lab, 0, store, clock)
    power_on(lab, 0)
    with Driver(lab, clock), pytest.raises(InstallFailed) as info:
        job.run(Progress().root(), CancelToken())
    assert "no space left on device /dev/sda2" in info.value.message
    assert "Partitioning device" in info.value.details and "no space left" in info.value.details


def test_monitor_small_disk_is_an_install_failure(make_lab: Callable[..., Lab], clock: ManualClock,
                                                  store: TrustStore) -> None:  # fmt: skip
    lab = make_lab(1, faults=NodeFaults(disks=(("sda", 20 * GIB), ("sdb", 500 * GIB))))
    job = monitor(lab, 0, store, clock)
    power_on(lab, 0)
    with Driver(lab, clock), pytest.raises(InstallFailed) as info:
        job.run(Progress().root(), CancelToken())
    assert "too small" in info.value.message and "20 GiB" in info.value.message
    assert info.value.remediation


def test_monitor_recovers_from_ssh_drops(make_lab: Callable[..., Lab], clock: ManualClock, store: TrustStore) -> None:
    # Sessions are cut every 10 lab seconds (3 times a real second with the driver) for the whole lifecycle.
    lab = make_lab(1, faults=NodeFaults(ssh_drop_every=10.0))
    job = monitor(lab, 0, store, clock)
    power_on(lab, 0)
    with Driver(lab, clock):
        facts = job.run(Progress().root(), CancelToken())
    assert facts is not None
    assert [s["stage"] for s in facts["stages"]] == [s.value for s in InstallStage]
    assert lab.nodes[0].ssh.drops >= 3, "the sessions really were cut while the monitor watched"
    assert facts["installer_boot_id"] != facts["os_boot_id"]
    assert facts["warnings"] == []


def test_monitor_never_boots_warns_then_hits_the_hard_limit(make_lab: Callable[..., Lab], clock: ManualClock,
                                                            store: TrustStore) -> None:  # fmt: skip
    lab = make_lab(1, faults=NodeFaults(never_boots=True))
    warned: list[str] = []
    job = monitor(
        lab, 0, store, clock, budgets=Budgets(boot=60, overall=180), on_warning=lambda _node, msg: warned.append(msg)
    )
    power_on(lab, 0)
    with Driver(lab, clock), pytest.raises(MonitorTimedOut) as info:
        job.run(Progress().root(), CancelToken())
    assert len(warned) == 1 and "has not started installing" in warned[0], "the soft warning came first"
    assert "never answered SSH" in info.value.message and "3 min" in info.value.message
    assert "boots from the ISO" in info.value.remediation
    assert warned[0] in info.value.details
    assert job.stage is InstallStage.WAITING


def test_monitor_is_unaffected_by_node_clock_skew_and_local_ui_errors(make_lab: Callable[..., Lab],
                                                                      clock: ManualClock,
                                                                      store: TrustStore) -> None:  # fmt: skip
    # The monitor times stages on its own clock: a node 10 minutes ahead must not trip a budget or move a stage.
    lab = make_lab(1, faults=NodeFaults(clock_skew=600.0, localui_errors=5))
    job = monitor(lab, 0, store, clock, budgets=Budgets(boot=120, install=120, reboot=120, local_ui=120))
    start = clock()
    power_on(lab, 0)
    with Driver(lab, clock):
        facts = job.run(Progress().root(), CancelToken())
    assert facts is not None and facts["warnings"] == []
    assert all(start <= s["at"] <= clock() for s in facts["stages"])
    assert [s["stage"] for s in facts["stages"]][-1] == "done"
