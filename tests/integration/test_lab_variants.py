"""The whole headless install on appliances that answer the open points differently, with transient server faults
(issue 20): ``palette-wizard run --rehearse --lab http-5xx=0.1,variant=N`` must exit 0 for every N, with no operator
action. Also what the wizard leaves behind on the nodes (sessions) and how packs are confirmed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.helpers import cli_env, json_events, run_cli
from tests.support.quickboot import quick
from wizard.core.progress import TaskStatus
from wizard.core.runner import Event, ExitCode, JobFinished
from wizard.install.session import Session
from wizard.lab.bootmenu import read_menu
from wizard.lab.knobs import parse_knobs
from wizard.lab.variants import POINTS, Variant
from wizard.rehearsal import ISO_NAME, Rehearsal

pytestmark = [pytest.mark.flow, pytest.mark.lab]

SPEED = "600"
VARIANTS = (1, 2, 3, 4, 5)


def test_variants_one_to_five_meet_every_reading_of_every_point() -> None:
    """The suite's five variants cover each open point's every alternative (the points have at most five)."""
    for point in POINTS:
        seen = {repr(Variant(n)(point.name)) for n in VARIANTS}
        assert seen == {repr(a.value) for a in point.alternatives}, point.name
        assert all(a.source for a in point.alternatives)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("variant", VARIANTS)
def test_rehearsal_completes_on_every_variant_with_transient_server_errors(tmp_path: Path, variant: int) -> None:
    home = tmp_path / "home"
    lab = f"http-5xx=0.1,variant={variant}"
    out = run_cli(["run", "--rehearse", "--json", "--speed", SPEED, "--keep", "--lab", lab], cli_env(home), timeout=150)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    events = json_events(out.stdout)
    start = next(e for e in events if e["event"] == "rehearsal" and e["stage"] == "start")
    assert start["lab"] == lab
    assert all(e["ok"] for e in events if e["event"] == "step_finished")
    # The faults really happened and were ridden out: the log has a line for each retry or settled request.
    (log,) = (home / "state" / "rehearsal" / "home" / "logs").glob("wizard.log")
    text = log.read_text(encoding="utf-8")
    assert "injected by the lab" in text or "; retry 1 of" in text, "no transient fault was drawn"


@pytest.mark.timeout(120)
def test_every_local_ui_session_is_logged_out(tmp_path: Path) -> None:
    """Issue 20, finding 9: about 20 logins per run and no logout. Every Local UI session the wizard opens is closed
    when its job is done with it; the count stays a regression guard. The console has no documented logout: its
    jobs share one session."""
    with Rehearsal(tmp_path / "rehearsal", nodes=3, speed=600, lab=quick()) as rehearsal:
        assert rehearsal.lab is not None and rehearsal.console is not None
        session = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
        assert session.engine(steps=rehearsal.steps(), on_event=rehearsal.on_event).run() is ExitCode.DONE
        nodes = [n.state for n in rehearsal.lab.nodes]
        assert [n.logins for n in nodes] == [n.logouts for n in nodes]
        assert all(n.open_sessions == 0 for n in nodes)
        # 17 today: 2 per node for the password, then one per job (the appliance step reads every node)
        assert sum(n.logins for n in nodes) <= 18
        # The console has no logout: its jobs share the run's session (admin/admin, then the proof of the new one).
        assert rehearsal.console.state.logins <= 2


@pytest.mark.timeout(120)
def test_a_pack_is_confirmed_by_its_own_import_not_by_a_same_named_pack(tmp_path: Path) -> None:
    """Issue 20, finding 4: the content bundle brings a pack named like a pack bundle; the upload is confirmed by its
    own import, so a failed import is a failed job (with the registry's words), and the next run uploads again."""
    knobs = quick("pack-import-error=signature of the pack does not verify")
    with Rehearsal(tmp_path / "rehearsal", nodes=1, speed=600, lab=knobs) as rehearsal:
        assert rehearsal.console is not None
        console = rehearsal.console.state
        assert ("ubuntu", "22.04.5") in {(p.name, p.version) for p in console.packs()}  # there before any upload
        seen: list[Event] = []

        def on_event(event: Event) -> None:
            rehearsal.on_event(event)
            seen.append(event)

        session = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
        assert session.engine(steps=rehearsal.steps(), on_event=on_event).run() is ExitCode.INSTALL_FAILED
        failed = [e for e in seen if isinstance(e, JobFinished) and e.status is TaskStatus.FAILED]
        assert [e.job for e in failed] == ["packs/ubuntu-22.04.5.zst"]
        error = failed[0].error or {}
        assert error["title"] == "Pack import failed" and "does not verify" in error["message"]

        again = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
        assert again.engine(steps=rehearsal.steps(), on_event=rehearsal.on_event).run() is ExitCode.DONE
        assert again.journal.result("packs/ubuntu-22.04.5.zst")["uploaded"] is True  # sent again, then confirmed
        imports = console.imports()
        assert sorted((i.name, bool(i.failure), i.listed) for i in imports) == [
            ("pxk-e", False, True),
            ("ubuntu", False, True),
            ("ubuntu", True, False),
        ]


def test_lab_knobs_reach_the_nodes_the_console_and_the_variant(tmp_path: Path) -> None:
    knobs = parse_knobs(
        "install-error@2=disk failed,token-ttl=300,ntp@3=off,configure-error@1=no space,sync-fault=registry full,"
        "pack-import-seconds=120,variant=4,http-5xx=0.05,cluster-seconds=600,grub-timeout=2"
    )
    with Rehearsal(tmp_path / "rehearsal", nodes=3, speed=60, lab=knobs) as rehearsal:
        assert rehearsal.lab is not None and rehearsal.console is not None
        nodes = rehearsal.lab.nodes
        assert [n.machine.install_error for n in nodes] == ["", "disk failed", ""]
        assert [n.state.token_ttl for n in nodes] == [300.0] * 3
        assert [n.machine.ntp_enabled for n in nodes] == [True, True, False]
        assert [n.state.configure_error for n in nodes] == ["no space", "", ""]
        assert all(n.state.variant.number == 4 and n.state.http_faults.rate == 0.05 for n in nodes)
        assert [n.state.cluster_timeline for n in nodes] == [10.0] * 3  # 600 appliance s at 60x
        menu, _ = read_menu(str(rehearsal.folder / "files" / ISO_NAME))  # what a machine booting the ISO shows
        assert menu is not None and menu.timeout == 2.0  # real seconds, not scaled
        console = rehearsal.console.state
        assert console.sync_fault == "registry full" and console.import_seconds == 2.0  # 120 appliance s at 60x
        assert console.variant.number == 4 and console.http_faults.rate == 0.05


@pytest.mark.timeout(120)
def test_an_install_error_knob_fails_that_node_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = run_cli(
        ["run", "--rehearse", "--json", "--speed", SPEED, "--lab", "install-error@2=disk /dev/sda failed"],
        cli_env(home),
        timeout=100,
    )
    assert out.returncode == int(ExitCode.INSTALL_FAILED), out.stdout[-3000:]
    failed = [e for e in json_events(out.stdout) if e["event"] == "job_finished" and e["status"] == "failed"]
    assert [e["job"] for e in failed] == ["install/edge-node-2"]
    assert "disk /dev/sda failed" in str(failed[0]["error"])
