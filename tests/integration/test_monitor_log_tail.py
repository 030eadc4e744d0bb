"""The install monitor publishes each node's new log lines into its job's progress: real lines from a lab node over
SSH, each once, in order, while the install runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_monitor import Driver
from tests.support.waiting import eventually
from wizard.appliance.monitor import InstallMonitor, InstallStage, PollSettings, new_lines
from wizard.appliance.ssh import SSHCredentials
from wizard.core.cancel import CancelToken
from wizard.core.progress import LOG_LINES, Progress, TaskStatus
from wizard.core.trust import TrustStore
from wizard.lab import Lab, ManualClock
from wizard.lab.machine import INSTALL_MILESTONES, Timings

T = Timings(firmware=5, installer_boot=10, install=60, reboot=5, os_boot=10, services=20)
# Five lines a read, so the reads overlap and sometimes more than five lines come between two; through sudo, as on
# the appliance.
FAST = PollSettings(interval=0.01, max_backoff=0.05, connect_timeout=2, command_timeout=5, tail_lines=5)
KEY = "install/edge-node-1"


# -- the overlap between two reads of one log -------------------------------------------------------------------
def test_new_lines_follow_the_overlap() -> None:
    assert new_lines([], ["a", "b"]) == ["a", "b"]
    assert new_lines(["a", "b", "c"], ["b", "c", "d", "e"]) == ["d", "e"]
    assert new_lines(["a", "b", "c"], ["a", "b", "c"]) == []
    assert new_lines(["a", "b", "c"], ["x", "y"]) == ["x", "y"], "no overlap: a new log, or more than one read"
    assert new_lines(["a", "b"], []) == []


def test_new_lines_keep_repeated_lines_that_are_new() -> None:
    """A line the log writes again is new again: the overlap is positional, not a set of texts."""
    assert new_lines(["x", "y", "x"], ["y", "x", "x", "y"]) == ["x", "y"]
    assert new_lines(["x", "x"], ["x", "x", "x"]) == ["x"]


def test_new_lines_prefer_the_longest_overlap() -> None:
    assert new_lines(["a", "b", "a", "b"], ["a", "b", "a", "b", "c"]) == ["c"]


# -- against a lab node --------------------------------------------------------------------------------------------
@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def lab(tmp_path: Path, clock: ManualClock) -> Iterator[Lab]:
    with Lab(1, tmp_path / "lab", clock, installed=False, timings=T, tick_interval=None, media="automatic") as started:
        yield started


@pytest.mark.lab
def test_the_installing_nodes_task_receives_its_real_log_lines(tmp_path: Path, lab: Lab, clock: ManualClock) -> None:
    node = lab.nodes[0]
    job = InstallMonitor(
        node.name,
        "127.0.0.1",
        node.ssh.port,
        SSHCredentials("kairos", password="kairos"),
        trust=TrustStore(tmp_path / "config"),
        expected_fingerprint=node.ssh.fingerprint,
        local_ui_port=node.server.port,
        clock=clock,
        poll=FAST,
    )
    progress = Progress()
    progress.add_task(KEY, node.name, "install", node.name)
    progress.set_status(KEY, TaskStatus.RUNNING)
    report = progress.root().child(0.0, 1.0, task=KEY)
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            outcome["facts"] = job.run(report, CancelToken())
        except BaseException as exc:
            outcome["error"] = exc

    def task_log() -> tuple[str, ...]:
        task = progress.snapshot().task(KEY)
        assert task is not None
        return task.log

    node.machine.insert_media("https://127.0.0.1/appliance.iso")
    node.machine.power_on()
    worker = threading.Thread(target=work, name="monitor", daemon=True)
    with Driver(lab, clock, step=0.2):
        worker.start()
        # Live: the installer's lines arrive while the node is still installing.
        assert eventually(lambda: any("Copying image" in line for line in task_log()), timeout=60)
        assert job.stage in (InstallStage.BOOTING_INSTALLER, InstallStage.INSTALLING)
        worker.join(120)
    assert not worker.is_alive() and "error" not in outcome, outcome.get("error")

    task = progress.snapshot().task(KEY)
    assert task is not None
    lines = task.log
    assert task.log_total == len(lines) < LOG_LINES
    # Every line is one the node wrote (its installer journal, then the stylus agent's log), never twice.
    written = set(node.machine.journal(this_boot=False)) | set(node.machine.service_log())
    assert lines and set(lines) <= written
    assert len(set(lines)) == len(lines), "overlapping reads must not repeat lines"
    # The installer's milestones, each exactly once and in the order written.
    positions = []
    for _, milestone in INSTALL_MILESTONES:
        hits = [i for i, line in enumerate(lines) if line.endswith(milestone)]
        assert len(hits) == 1, (milestone, hits)
        positions.append(hits[0])
    assert positions == sorted(positions)
    agent = [i for i, line in enumerate(lines) if "stylus-agent:" in line]
    assert agent and min(agent) > positions[-1], "the installed system's agent log follows the install"
    assert job.tail() == list(lines[-FAST.tail_lines :])
