"""The manual provider: instructions per node, waiting until the node answers, and run-scoped resources."""

from __future__ import annotations

import socket
import threading

import pytest

from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled, WizardError
from wizard.core.progress import Progress
from wizard.core.resources import RunResources
from wizard.providers.manual import ManualBootJob, ManualPacing, port_open


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _job(port: int, **pacing: float) -> ManualBootJob:
    return ManualBootJob(
        "node-1",
        "edge-1",
        "127.0.0.1",
        ports=(port,),
        iso_name="palette.iso",
        pacing=ManualPacing(**{"interval": 0.05, "connect_timeout": 0.5, **pacing}),
    )


def test_waits_until_the_node_answers_and_says_what_to_do() -> None:
    port = _free_port()
    progress = Progress()
    progress.add_task("boot/node-1", "node-1", "boot", "node-1")
    report = progress.root().child(0, 1, task="boot/node-1")
    seen: list[str] = []
    listener = socket.socket()
    result: dict[str, object] = {}

    def run() -> None:
        result.update(_job(port).run(report, CancelToken()) or {})

    worker = threading.Thread(target=run)
    worker.start()
    # The job tells the operator what to do before anything answers.
    for _ in range(100):
        task = progress.snapshot().task("boot/node-1")
        if task and task.message:
            seen.append(task.message)
            break
        threading.Event().wait(0.01)
    assert seen and "Boot node-1 (edge-1) from palette.iso" in seen[0] and "127.0.0.1" in seen[0]
    assert worker.is_alive()  # nothing listens yet
    listener.bind(("127.0.0.1", port))
    listener.listen()
    worker.join(10)
    listener.close()
    assert not worker.is_alive()
    assert result["port"] == port


def test_gives_up_with_what_it_tried_and_reminds_meanwhile() -> None:
    port = _free_port()
    progress = Progress()
    progress.add_task("boot/node-1", "node-1", "boot", "node-1")
    report = progress.root().child(0, 1, task="boot/node-1")
    with pytest.raises(WizardError) as info:
        _job(port, timeout=0.4, remind_every=0.1).run(report, CancelToken())
    assert info.value.title == "node-1 did not come up"
    assert f"port {port}" in info.value.message and "attempts" in info.value.message
    assert "run again" in info.value.remediation
    task = progress.snapshot().task("boot/node-1")
    assert task is not None and "still waiting for node-1" in task.warning


def test_cancel_stops_the_wait() -> None:
    cancel = CancelToken()
    threading.Timer(0.2, cancel.cancel).start()
    with pytest.raises(Cancelled):
        _job(_free_port(), interval=5.0).run(Progress().root(), cancel)


def test_port_open_is_a_real_connection() -> None:
    port = _free_port()
    assert not port_open("127.0.0.1", port, 0.5)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert port_open("127.0.0.1", port, 0.5)


def test_run_resources_start_once_and_close_newest_first() -> None:
    resources = RunResources()
    events: list[str] = []

    def start(name: str) -> str:
        events.append(f"start {name}")
        return name

    assert resources.get("a", lambda: start("a"), lambda v: events.append(f"close {v}")) == "a"
    assert resources.get("a", lambda: start("again"), lambda v: events.append("never")) == "a"

    def broken(value: str) -> None:
        raise RuntimeError("close failed")

    resources.get("b", lambda: start("b"), broken)
    resources.get("c", lambda: start("c"), lambda v: events.append(f"close {v}"))
    assert resources.peek("b") == "b" and resources.peek("zzz") is None
    resources.close()  # b's failure does not keep a from closing
    assert events == ["start a", "start b", "start c", "close c", "close a"]
    assert resources.peek("a") is None
