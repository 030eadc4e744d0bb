"""The install monitor against lab nodes: power-on to Local UI over real SSH, on a clock the test moves."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from wizard.appliance import milestones
from wizard.appliance.monitor import (
    Budgets,
    InstallFailed,
    InstallMonitor,
    InstallStage,
    PollSettings,
    UnexpectedBoot,
)
from wizard.appliance.ssh import SSHCredentials
from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled
from wizard.core.progress import Progress, Reporter, TaskStatus
from wizard.core.trust import TrustStore
from wizard.lab import Lab, ManualClock
from wizard.lab.bootmenu import MENU_TIMEOUT as MENU
from wizard.lab.machine import INSTALL_FAILURE_LINE, INSTALL_MILESTONES, Timings

pytestmark = pytest.mark.lab

T = Timings(firmware=5, installer_boot=10, install=60, reboot=5, os_boot=10, services=20)
FAST = PollSettings(interval=0.01, max_backoff=0.05, connect_timeout=2, command_timeout=5, tail_lines=50)
PERCENT = re.compile(r"\((\d+)%\)")


class Recording(Reporter):
    """A job reporter that keeps every fraction and message the monitor sent, before any clamping."""

    sent: list[tuple[float, str | None]]

    def update(self, fraction: float, message: str | None = None) -> None:
        self.sent.append((fraction, message))
        super().update(fraction, message)


def reporter(progress: Progress, key: str, node: str = "") -> Recording:
    progress.add_task(key, key, "install", node)
    progress.set_status(key, TaskStatus.RUNNING)
    r = Recording(progress, progress.root(), 1.0, key, _task_root=True)
    r.sent = []
    return r


class Driver:
    """Moves the lab's clock in small steps in real time (30 lab seconds per second) and applies it to the network,
    until stopped; stands in for the minutes a real install takes."""

    def __init__(self, lab: Lab, clock: ManualClock, step: float = 0.3, every: float = 0.01) -> None:
        self.lab, self.clock, self.step, self.every = lab, clock, step, every
        self.network = threading.Event()  # cleared: the clock moves, but listeners do not follow it
        self.network.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="lab-driver")

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.clock.advance(self.step)
            if self.network.is_set():
                self.lab.tick()

    def __enter__(self) -> Driver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def lab(tmp_path: Path, clock: ManualClock) -> Iterator[Lab]:
    with Lab(3, tmp_path / "lab", clock, installed=False, timings=T, tick_interval=None, media="automatic") as started:
        yield started


@pytest.fixture
def store(tmp_path: Path) -> TrustStore:
    return TrustStore(tmp_path / "config")


def monitor(lab: Lab, index: int, store: TrustStore, clock: ManualClock, **kw: Any) -> InstallMonitor:
    node = lab.nodes[index]
    kw.setdefault("poll", FAST)
    return InstallMonitor(
        node.name,
        "127.0.0.1",
        node.ssh.port,
        SSHCredentials("kairos", password="kairos"),
        trust=store,
        expected_fingerprint=node.ssh.fingerprint,
        local_ui_port=node.server.port,
        clock=clock,
        **kw,
    )


def power_on(lab: Lab, index: int) -> None:
    machine = lab.nodes[index].machine
    machine.insert_media("https://127.0.0.1/appliance.iso")
    machine.power_on()


def test_milestones_read_the_installer_lines() -> None:
    lines = [f"Jun 15 16:00:00 node {line}" for _, line in INSTALL_MILESTONES]
    fractions = [milestones.read_install_log(lines[: i + 1]).fraction or 0.0 for i in range(len(lines))]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert milestones.read_install_log(lines).finished
    copy_50 = milestones.read_install_log(["kairos-agent: Copying image to COS_STATE (50%)"])
    assert copy_50.milestone is not None and copy_50.milestone.key == "copying"
    assert copy_50.fraction == pytest.approx(0.43)
    assert milestones.read_install_log(["kairos-agent: Partitioning device /dev/sda"]).failure is None
    failed = milestones.read_install_log([*lines[:3], INSTALL_FAILURE_LINE])
    assert failed.failure == INSTALL_FAILURE_LINE
    # An unrelated service's ERROR is not an install failure; a kernel panic is.
    assert not milestones.is_failure("systemd-timesyncd[412]: ERROR: no NTP server reachable")
    assert milestones.is_failure("kernel: Kernel panic - not syncing: VFS: Unable to mount root fs")


def test_node_goes_through_every_stage_to_local_ui(lab: Lab, clock: ManualClock, store: TrustStore) -> None:
    progress = Progress()
    report = reporter(progress, "install/edge-node-1")
    job = monitor(lab, 0, store, clock)
    start = clock()
    power_on(lab, 0)
    with Driver(lab, clock):
        facts = job.run(report, CancelToken())
    assert facts is not None
    stages = [s["stage"] for s in facts["stages"]]
    assert stages == [s.value for s in InstallStage]
    times = [s["at"] for s in facts["stages"]]
    assert times == sorted(times) and times[0] == start
    # The lab's schedule bounds when each stage can have been seen.
    at = dict(zip(stages, times, strict=True))
    install_start = start + T.firmware + MENU + T.installer_boot
    assert at["installing"] >= install_start
    assert at["os-up"] >= install_start + T.install + T.finish + T.reboot + T.firmware + T.os_boot * 0.8
    assert at["local-ui-ready"] >= at["os-up"]
    # The reboot is proven by the boot id, live installer and installed system have different ones.
    assert facts["installer_boot_id"] and facts["os_boot_id"]
    assert facts["installer_boot_id"] != facts["os_boot_id"]
    assert facts["reboot_detected_by"] in ("boot-id", "ssh-drop")
    assert facts["warnings"] == []
    assert facts["local_ui"] == f"https://127.0.0.1:{lab.nodes[0].server.port}"
    # Progress only moves forward, and the install shows its percent from the log.
    fractions = [f for f, _ in report.sent]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    percents = [int(m.group(1)) for _, msg in report.sent if msg and (m := PERCENT.search(msg))]
    assert percents == sorted(percents) and len(set(percents)) >= 2
    assert job.stage is InstallStage.DONE
    assert any("kairos-agent" in line for line in job.tail())
    assert progress.snapshot().task("install/edge-node-1").fraction == 1.0  # type: ignore[union-attr]


def test_a_node_not_answering_is_polled_at_the_interval(lab: Lab, clock: ManualClock, store: TrustStore) -> None:
    """Powered off (or rebooting), a node is tried again every poll interval, not after growing waits: it is seen
    back within one poll (the default backed off to 30 s when the interval was 5 s)."""
    waits: list[float] = []

    class Recording(CancelToken):
        def sleep(self, seconds: float) -> None:
            waits.append(seconds)
            if len(waits) == 8:
                power_on(lab, 0)
            super().sleep(seconds)

    poll = PollSettings(interval=0.01, connect_timeout=1, command_timeout=5, tail_lines=50)
    with Driver(lab, clock):
        facts = monitor(lab, 0, store, clock, poll=poll).run(reporter(Progress(), "install/edge-node-1"), Recording())
    assert facts is not None and len(waits) > 8 and max(waits) == poll.interval


def test_local_ui_ready_means_its_port_answers(lab: Lab, clock: ManualClock, store: TrustStore) -> None:
    """The agent's "Local UI ready" line is not enough: every later step talks to the port, so the monitor waits
    until it answers from here (and says why it is still waiting)."""
    progress = Progress()
    report = reporter(progress, "install/edge-node-1")
    job = monitor(lab, 0, store, clock)
    node = lab.nodes[0]
    power_on(lab, 0)
    result: dict[str, Any] = {}
    with Driver(lab, clock) as driver:
        driver.network.clear()  # the node's listeners stay as they are: its Local UI is not listening yet
        node.server.stop()
        runner = threading.Thread(target=lambda: result.update(facts=job.run(report, CancelToken())), daemon=True)
        runner.start()
        deadline = time.monotonic() + 60
        while not any(m and "reports the Local UI ready, but port" in m for _, m in report.sent):
            assert runner.is_alive() and time.monotonic() < deadline, report.sent[-5:]
            time.sleep(0.02)
        assert node.machine.local_ui_up and not node.server.running
        assert job.stage is InstallStage.OS_UP  # the log says ready; the port does not answer: not done
        driver.network.set()  # the listener comes up with the next tick
        runner.join(60)
    assert not runner.is_alive() and result["facts"] is not None
    assert job.stage is InstallStage.DONE and node.server.running


def test_failed_install_is_an_error_with_the_log_line(lab: Lab, clock: ManualClock, store: TrustStore) -> None:
    lab.nodes[0].machine.fail_install = True
    job = monitor(lab, 0, store, clock)
    power_on(lab, 0)
    with Driver(lab, clock), pytest.raises(InstallFailed) as info:
        job.run(Progress().root(), CancelToken())
    assert INSTALL_FAILURE_LINE in info.value.message
    assert INSTALL_FAILURE_LINE in info.value.details
    assert "Partitioning device" in info.value.details, "the last lines before the failure come with it"
    assert info.value.remediation
    assert job.stage is InstallStage.INSTALLING


def test_three_nodes_in_parallel_one_over_budget(lab: Lab, clock: ManualClock, store: TrustStore) -> None:
    warned: list[tuple[str, str]] = []
    lock = threading.Lock()

    def on_warning(node: str, message: str) -> None:
        with lock:
            warned.append((node, message))

    slow = Budgets(install=T.install / 3)  # the third node's install outlasts its (soft) budget
    jobs = [monitor(lab, i, store, clock, on_warning=on_warning, budgets=slow if i == 2 else None) for i in range(3)]
    progress = Progress()
    reporters = [reporter(progress, job.id, job.node) for job in jobs]
    for i in range(3):
        power_on(lab, i)
    with Driver(lab, clock), ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(job.run, r, CancelToken()) for job, r in zip(jobs, reporters, strict=True)]
        results = [f.result(timeout=60) for f in futures]
    for result in results:
        assert result is not None
        assert [s["stage"] for s in result["stages"]] == [s.value for s in InstallStage]
    assert len({r["os_boot_id"] for r in results if r}) == 3, "each monitor watched its own node"
    assert [node for node, _ in warned] == ["edge-node-3"]
    assert "longer than the planned" in warned[0][1]
    assert results[2] is not None and results[2]["warnings"] == [warned[0][1]]
    assert any(msg and msg.startswith("warning:") for _, msg in reporters[2].sent)


def test_cancel_stops_the_monitor_promptly(lab: Lab, clock: ManualClock, store: TrustStore) -> None:
    # The node stays off, so the monitor backs off between attempts with long waits; cancelling cuts them short.
    job = monitor(lab, 0, store, clock, poll=PollSettings(interval=5, max_backoff=30, connect_timeout=1))
    token = CancelToken()
    outcome: list[BaseException] = []

    def work() -> None:
        try:
            job.run(Progress().root(), token)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    token.cancel()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 1.0
    assert len(outcome) == 1 and isinstance(outcome[0], Cancelled)
    assert job.stage is InstallStage.WAITING


def test_node_that_boots_its_old_system_is_not_reported_installed(tmp_path: Path, store: TrustStore) -> None:
    clock = ManualClock()
    with Lab(1, tmp_path / "lab", clock, installed=True, tick_interval=None) as lab:
        with pytest.raises(UnexpectedBoot) as info:
            monitor(lab, 0, store, clock).run(Progress().root(), CancelToken())
        assert "boot order" in info.value.remediation
        # A resumed run that knows the node is installed accepts it and waits for the Local UI only.
        facts = monitor(lab, 0, store, clock, allow_installed=True).run(Progress().root(), CancelToken())
    assert facts is not None
    assert [s["stage"] for s in facts["stages"]][-3:] == ["os-up", "local-ui-ready", "done"]


def test_installer_left_in_live_mode_warns_then_follows_the_manual_reboot(
    lab: Lab, clock: ManualClock, store: TrustStore
) -> None:
    machine = lab.nodes[0].machine
    machine.post_install = "nothing"  # the operator chose "nothing" as the post-install action
    job = monitor(lab, 0, store, clock, budgets=Budgets(reboot=10))
    power_on(lab, 0)
    facts: list[Any] = []
    with Driver(lab, clock):
        thread = threading.Thread(target=lambda: facts.append(job.run(Progress().root(), CancelToken())))
        thread.start()
        deadline = time.monotonic() + 20
        while not job.warnings() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert job.stage is InstallStage.INSTALLING
        assert len(job.warnings()) == 1 and "power the node on or reboot it" in job.warnings()[0]
        machine.reset()  # the operator reboots it; it starts the installed system
        thread.join(20)
    assert facts and facts[0]["stages"][-1]["stage"] == "done"
    assert facts[0]["installer_boot_id"] != facts[0]["os_boot_id"]
