"""``palette-wizard run --rehearse --provider redfish|vsphere``: the lab's nodes booted through a real control plane
(sushy-tools' Redfish emulator, govmomi's vcsim) by the wizard's own providers, labelled as a rehearsal."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

from tests.core.helpers import cli_env, json_events, run_cli
from tests.integration.vcsim_peer import vcsim_binary_fixture  # noqa: F401 - fixture
from wizard.lab import sushy
from wizard.lab.vcsim import SimulatorMissing, find_vcsim
from wizard.rehearsal import BANNER, VCENTER_PASSWORD_KEY, Rehearsal

pytestmark = [pytest.mark.flow, pytest.mark.lab]


def _rehearse(home: Path, *extra: str) -> tuple[int, list[dict[str, object]], str]:
    out = run_cli(
        ["run", "--rehearse", "--json", "--nodes", "1", "--until", "password", "--keep", *extra],
        cli_env(home),
        timeout=200,
    )
    return out.returncode, json_events(out.stdout), out.stdout[-4000:] + out.stderr[-4000:]


def _check_labelled_and_booted(events: list[dict[str, object]], provider: str) -> dict[str, dict[str, object]]:
    rehearsal = [e for e in events if e["event"] == "rehearsal"]
    assert [e["stage"] for e in rehearsal] == ["start", "end"] and all(e["message"] == BANNER for e in rehearsal)
    assert rehearsal[0]["provider"] == provider
    finished = [e["step"] for e in events if e["event"] == "step_finished"]
    assert finished[-1] == "password" and all(e["ok"] for e in events if e["event"] == "step_finished")
    done = {str(e["job"]): e for e in events if e["event"] == "job_finished"}
    assert all(e["status"] == "done" for e in done.values()), [j for j, e in done.items() if e["status"] != "done"]
    install = done["install/edge-node-1"]["result"]
    assert isinstance(install, dict)
    stages = [s["stage"] for s in install["stages"]]
    assert "installing" in stages and stages[-1] == "done", stages
    return done


@pytest.mark.redfish
@pytest.mark.timeout(240)
def test_rehearsal_through_redfish_bmcs(tmp_path: Path) -> None:
    # With the lab's http-5xx knob, which wraps the emulator's app: the BMC answers a tenth of the wizard's requests
    # with 500/502/503 before doing anything, and the boot still goes through (issue 20, finding 2).
    lab = ("--lab", "http-5xx=0.1,variant=3")
    code, events, output = _rehearse(tmp_path / "home", "--provider", "redfish", "--speed", "60", *lab)
    assert code == 0, output
    bmc_log = tmp_path / "home" / "state" / "rehearsal" / "bmc" / "emulator.log"
    assert re.search(r'" 50[023] ', bmc_log.read_text(errors="replace")), "no fault was drawn"
    done = _check_labelled_and_booted(events, "redfish")
    # The node was booted by the wizard's bare-metal provider: its BMC fetched the ISO from our ISO server.
    boot = done["boot/edge-node-1"]["result"]
    assert isinstance(boot, dict) and int(boot["iso_bytes_read"]) > 0
    project = (tmp_path / "home" / "state" / "rehearsal" / "project.yaml").read_text()
    assert project.startswith(f"# {BANNER}") and "type: redfish" in project and "/redfish/v1/Systems/" in project
    assert ("S3cret" not in project and "password: {secret:" not in project.replace("\n", " ")) or "secret:" in project


@pytest.mark.vsphere
@pytest.mark.timeout(240)
def test_rehearsal_through_vcsim(tmp_path: Path, vcsim_binary: Path) -> None:
    code, events, output = _rehearse(
        tmp_path / "home", "--provider", "vsphere", "--vcsim", str(vcsim_binary), "--speed", "120"
    )
    assert code == 0, output
    done = _check_labelled_and_booted(events, "vsphere")
    # The wizard's vSphere provider uploaded the ISO to the simulated datastore and booted the VM from it.
    media = done["media/iso"]["result"]
    assert isinstance(media, dict) and str(media["datastore_path"]).startswith("[LocalDS_0] palette-iso/")
    text = (tmp_path / "home" / "state" / "rehearsal" / "project.yaml").read_text()
    doc = yaml.safe_load(text)
    assert text.startswith(f"# {BANNER}") and doc["provider"]["type"] == "vsphere"
    assert doc["nodes"][0]["vm"] == "pma-edge-node-1"
    assert doc["provider"]["vsphere"]["password"] == {"secret": VCENTER_PASSWORD_KEY}


def test_missing_simulator_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = run_cli(
        ["run", "--rehearse", "--provider", "vsphere", "--vcsim", str(tmp_path / "no-vcsim")], cli_env(tmp_path)
    )
    assert out.returncode == 2
    assert "vCenter simulator not found" in out.stderr and "vcsim" in out.stderr
    monkeypatch.setenv("PATH", str(tmp_path))  # no vcsim on this PATH
    with pytest.raises(SimulatorMissing) as err:
        find_vcsim()
    assert "not on PATH" in err.value.message
    assert not (tmp_path / "state" / "rehearsal").exists()  # nothing was started or written


def test_missing_emulator_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # no sushy-emulator beside it
    monkeypatch.setenv("PATH", str(tmp_path))  # nor on PATH
    with pytest.raises(sushy.EmulatorMissing) as err:
        Rehearsal(tmp_path / "rehearsal", nodes=1, provider="redfish").prepare()
    assert "sushy-emulator" in err.value.message and "[rehearsal]" in (err.value.remediation or "")
    assert not (tmp_path / "rehearsal").exists()


@pytest.mark.vsphere
@pytest.mark.media
@pytest.mark.timeout(240)
def test_rehearsal_through_vcsim_with_console_keys(tmp_path: Path, vcsim_binary: Path) -> None:
    """appliance.boot: keys — the VMs boot the ISO as shipped (GRUB default: the interactive installer) and the
    wizard types Home, Enter on each console through vSphere's keyboard API; the lab's VMs take the keys only through
    the extended simulator, so an install proves they arrived. Each booting VM's console is screenshotted."""
    from wizard.core.runner import Event, ExitCode, JobFinished, RunFinished
    from wizard.install.session import Session

    with Rehearsal(
        tmp_path / "rehearsal", nodes=1, speed=120, provider="vsphere", vcsim=vcsim_binary, boot="keys"
    ) as rehearsal:
        assert rehearsal.lab is not None
        events: list[Event] = []
        run = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
        code = run.engine(steps=rehearsal.steps(until="install"), on_event=events.append).run()
        finished = next(e for e in events if isinstance(e, RunFinished))
        assert code is ExitCode.DONE, finished.error
        done = {e.job: e for e in events if isinstance(e, JobFinished)}
        assert "media/unattended" not in done, "keys boot the ISO as downloaded: no copy is made"
        assert "-unattended-" not in str(done["media/iso"].result["datastore_path"])
        keys = done["boot/edge-node-1"].result["console_keys"]
        assert keys["keys"] == ["home", "enter"] and keys["sent"] == 2 and keys["home_presses"] >= 1
        machine = rehearsal.lab.nodes[0].machine
        assert machine.installed and machine.seeded_with is not None
        shots = list((run.journal.path.with_suffix("") / "screens").glob("*.png"))
        assert [p.name for p in shots] == ["edge-node-1.png"] and shots[0].read_bytes().startswith(b"\x89PNG")
