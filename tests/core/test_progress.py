from __future__ import annotations

import itertools
import threading
import time

import pytest

from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled
from wizard.core.progress import LOG_LINES, Progress, TaskStatus


def test_children_add_up_and_never_go_backwards() -> None:
    progress = Progress()
    root = progress.root()
    a = root.child(0.0, 0.25, task="a")
    b = root.child(0.25, 0.75, task="b")
    progress.add_task("a", "A", "s")
    progress.add_task("b", "B", "s")
    b.update(0.5)
    assert progress.snapshot().fraction == pytest.approx(0.375)
    a.update(1.0)
    assert progress.snapshot().fraction == pytest.approx(0.625)
    b.update(0.2)  # backwards: ignored
    assert progress.snapshot().fraction == pytest.approx(0.625)
    assert progress.snapshot().task("b").fraction == pytest.approx(0.5)  # type: ignore[union-attr]
    b.finish()
    assert progress.snapshot().fraction == pytest.approx(1.0)


def test_nested_children_scale_into_their_parent() -> None:
    progress = Progress()
    progress.add_task("job", "Job", "s")
    job = progress.root().child(0.0, 0.5, task="job")
    hashing = job.child(0.0, 0.8)
    hashing.update(0.5, "hashing")
    snap = progress.snapshot()
    assert snap.fraction == pytest.approx(0.2)
    assert snap.task("job").fraction == pytest.approx(0.4)  # type: ignore[union-attr]
    assert snap.task("job").message == "hashing"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="out of bounds"):
        job.child(0.5, 0.6)


def test_thread_safe_monotonic_sum() -> None:
    progress = Progress()
    root = progress.root()
    workers = 8
    seen: list[float] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(progress.snapshot().fraction)

    def work(i: int) -> None:
        r = root.child(i / workers, 1 / workers, task=f"t{i}")
        for step in range(1, 1001):
            r.update(step / 1000)

    for i in range(workers):
        progress.add_task(f"t{i}", f"T{i}", "s")
    t_reader = threading.Thread(target=reader)
    t_reader.start()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    t_reader.join()
    assert progress.snapshot().fraction == pytest.approx(1.0)
    assert all(b >= a for a, b in itertools.pairwise(seen)), "progress went backwards"


def test_transfer_reports_bytes_rate_and_eta() -> None:
    progress = Progress()
    progress.add_task("up", "Upload", "s")
    r = progress.root().child(0.0, 1.0, task="up")
    total = 100 * 1024 * 1024
    r.transfer(0, total)
    time.sleep(0.3)
    r.transfer(30 * 1024 * 1024, total)
    t = progress.snapshot().task("up")
    assert t is not None
    assert t.bytes_done == 30 * 1024 * 1024 and t.bytes_total == total
    assert t.rate is not None and t.rate > 0
    assert t.eta is not None and t.eta > 0
    assert t.fraction == pytest.approx(0.3)


def test_status_transitions_record_times() -> None:
    progress = Progress()
    progress.add_task("j", "J", "s")
    progress.set_status("j", TaskStatus.RUNNING)
    progress.set_status("j", TaskStatus.DONE)
    t = progress.snapshot().task("j")
    assert t is not None and t.fraction == 1.0 and t.elapsed is not None and t.finished is not None


def test_cancel_token_sleep_wakes_early() -> None:
    token = CancelToken()
    threading.Timer(0.05, token.cancel).start()
    start = time.monotonic()
    with pytest.raises(Cancelled):
        token.sleep(10)
    assert time.monotonic() - start < 2
    with pytest.raises(Cancelled):
        token.raise_if_cancelled()


def test_live_log_keeps_the_newest_lines_masked_and_reaches_the_jobs_row() -> None:
    from wizard.core.redact import REDACTOR

    REDACTOR.add("s3cret-node-pw")
    progress = Progress()
    progress.add_task("install/n1", "Install", "install", "n1")
    job = progress.root().child(0.0, 1.0, task="install/n1")
    job.child(0.0, 0.5).log(["installer: start\n", "login with s3cret-node-pw"])  # a sub-task logs to its job
    job.log([f"line {i}" for i in range(LOG_LINES + 5)])
    t = progress.snapshot().task("install/n1")
    assert t is not None and len(t.log) == LOG_LINES
    assert t.log[-1] == f"line {LOG_LINES + 4}" and t.log[0] == "line 5"
    progress2 = Progress()
    progress2.add_task("k", "K", "s")
    progress2.root().child(0.0, 1.0, task="k").log(["installer: start\n", "login with s3cret-node-pw"])
    t2 = progress2.snapshot().task("k")
    assert t2 is not None and t2.log[0] == "installer: start" and "s3cret-node-pw" not in t2.log[1]
