"""``palette-wizard run --rehearse``: the whole install, headless, against the lab's simulated nodes."""

from __future__ import annotations

import itertools
import stat
import threading
import time
from pathlib import Path

import pytest

from tests.core.helpers import cli_env, json_events, run_cli
from tests.support.quickboot import quick
from wizard.core.progress import TaskStatus
from wizard.core.runner import Event, ExitCode, JobFinished
from wizard.install.session import Session
from wizard.install.steps import STEP_IDS
from wizard.rehearsal import BANNER, PACK_BUNDLES, Rehearsal

pytestmark = [pytest.mark.flow, pytest.mark.lab]

STEPS = list(STEP_IDS)  # the rehearsal runs every step
SPEED = "600"  # a 15-minute install in 1.5 s, a 25-minute cluster deployment in 2.5 s


@pytest.mark.timeout(120)
def test_rehearsal_installs_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = run_cli(["run", "--rehearse", "--json", "--speed", SPEED, "--keep"], cli_env(home), timeout=90)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    events = json_events(out.stdout)
    rehearsal = [e for e in events if e["event"] == "rehearsal"]
    assert [e["stage"] for e in rehearsal] == ["start", "end"] and all(e["message"] == BANNER for e in rehearsal)
    assert events[0]["event"] == "rehearsal" and events[-1]["event"] == "rehearsal"
    finished = [e["step"] for e in events if e["event"] == "step_finished"]
    assert finished == STEPS and all(e["ok"] for e in events if e["event"] == "step_finished")
    # One overall progress for the whole install: never back, never repeated, 1.0 only in run_finished.
    fractions = [e["fraction"] for e in events if e["event"] in ("progress", "run_finished")]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and all(e["fraction"] < 1.0 for e in progress)
    said = [(e["fraction"], e["message"], e["tasks"]) for e in progress]
    assert all(a != b for a, b in itertools.pairwise(said))
    done = {e["job"]: e for e in events if e["event"] == "job_finished"}
    assert all(e["status"] == "done" for e in done.values())
    installs = sorted(j for j in done if j.startswith("install/"))
    assert installs == ["install/edge-node-1", "install/edge-node-2", "install/edge-node-3"]
    for job in installs:  # each node was seen booting the installer, installing and coming back installed
        stages = [s["stage"] for s in done[job]["result"]["stages"]]
        assert stages[0] == "waiting-for-boot" and "installing" in stages and stages[-1] == "done", stages
    assert done["link/hosts"]["result"]["linked"] == ["edge-node-2", "edge-node-3"]
    assert done["content/upload"]["result"]["synced_hosts"] == 3
    assert done["verify/files.content_bundle"]["result"]["signature_verified"] is True
    # The lab's ISO defaults to the interactive installer: the nodes installed from the wizard's unattended copy,
    # derived from the verified ISO, whose sha256 the journal and the run report keep.
    assert done["verify/files.iso"]["result"]["signature_verified"] is True
    derived = done["media/unattended"]["result"]
    assert derived["source_sha256"] == done["verify/files.iso"]["result"]["sha256"] != derived["sha256"]
    assert [(p["old"], p["new"]) for p in derived["patches"]] == [("2", "0")]
    report = next((home / "state" / "rehearsal").rglob("run-report.html")).read_text()
    assert f"unattended copy {Path(derived['path']).name} (sha256 {derived['sha256']})" in report
    kubeconfig = Path(done["cluster/create"]["result"]["kubeconfig"])
    assert kubeconfig.is_file() and stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    assert kubeconfig.is_relative_to(home / "state" / "rehearsal")
    # The API at the VIP (a free port on the shared loopback), reachable from here like the console (cluster.ports).
    server = next(line.split()[-1] for line in kubeconfig.read_text().splitlines() if "server:" in line)
    assert server.startswith("https://127.0.10.10:")
    reach = {c["target"]: c for c in done["validate/palette"]["result"]["checks"]}
    assert set(reach) == {"VIP 127.0.10.10"} and reach["VIP 127.0.10.10"]["outcome"] == "pass"
    assert f"Kubernetes API {server.rsplit(':', 1)[1]}" in reach["VIP 127.0.10.10"]["message"]
    # The rehearsal never touches the operator's own sessions or pinned fingerprints.
    assert not (home / "config" / "trust.json").exists() and not (home / "state" / "sessions").exists()


@pytest.mark.timeout(120)
def test_rehearsal_resumes_after_a_cancel(tmp_path: Path) -> None:
    """Cancelled while the cluster deploys, a second run of the same session skips every finished job and follows
    the cluster already being created to the end instead of creating another."""
    with Rehearsal(tmp_path / "rehearsal", nodes=1, speed=300, lab=quick()) as rehearsal:
        assert rehearsal.lab is not None
        leader = rehearsal.lab.nodes[0].state
        session = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
        engine = session.engine(steps=rehearsal.steps(), on_event=rehearsal.on_event)

        def cancel_once_created() -> None:
            deadline = time.monotonic() + 60
            while leader.cluster is None and time.monotonic() < deadline:
                time.sleep(0.01)
            engine.cancel.cancel("test: stop while the cluster deploys")

        watcher = threading.Thread(target=cancel_once_created, daemon=True)
        watcher.start()
        assert engine.run() is ExitCode.CANCELLED
        watcher.join(5)
        created = leader.cluster
        assert created is not None
        seen: list[Event] = []
        again = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
        assert again.engine(steps=rehearsal.steps(), on_event=seen.append).run() is ExitCode.DONE
        finished = {e.job: e for e in seen if isinstance(e, JobFinished)}
        assert {j for j, e in finished.items() if e.status is TaskStatus.SKIPPED} >= {
            "install/edge-node-1",
            "content/upload",
        }
        assert finished["cluster/create"].result["created"] is False and leader.cluster is created
        (kubeconfig,) = rehearsal.paths.state.glob("sessions/*/kubeconfig")
        assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
        # The lab's own timeline (what the install-overhead benchmark lays the steps over): the install and the
        # reboot into the installed system, one cluster however often it was followed, each pack's import, the
        # registry sync.
        work = rehearsal.lab.timeline.intervals()
        kinds = sorted({(i.category, i.node) for i in work})
        assert kinds == [
            ("cluster", "edge-node-1"),
            ("install", "edge-node-1"),
            ("pack-import", "console"),
            ("reboot", "edge-node-1"),
            ("registry-sync", "console"),
        ], work
        assert len([i for i in work if i.category == "pack-import"]) == len(PACK_BUNDLES)
        cluster = next(i for i in work if i.category == "cluster")
        assert cluster.start == created.created_at and cluster.end == created.at(1.0)
