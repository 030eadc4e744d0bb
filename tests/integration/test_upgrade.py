"""Upgrading an installed appliance (``palette-wizard upgrade``): the lab installed by the wizard and kept, started
again, and upgraded with a newer release's content bundle through the Local UI's archive update."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.core.helpers import cli_env, json_events, run_cli
from tests.integration.kept import SPEED, edit_state, install_kept, upgrade
from wizard.core.runner import ExitCode
from wizard.install.upgrade import UPGRADE_STEP_IDS, UpgradeBundle, upgrade_pipeline
from wizard.lab.knobs import parse_knobs
from wizard.lab.variants import Variant
from wizard.rehearsal import Rehearsal, pacing_for

pytestmark = [pytest.mark.upgrade, pytest.mark.lab, pytest.mark.flow]


def _report(session_folder: Path) -> dict[str, dict]:
    data = json.loads((session_folder / "upgrade-report.json").read_text())
    return {r["check"]: r for r in data["results"]}


@pytest.mark.timeout(240)
def test_a_kept_rehearsal_upgrades_from_4_9_38_to_4_9_44_through_the_cli(tmp_path: Path) -> None:
    """The issue's "done when": `run --rehearse --lab version=4.9.38 --keep`, then `upgrade` on the kept project
    with the 4.9.44 bundle the rehearsal wrote."""
    home = tmp_path / "home"
    env = cli_env(home)
    install = run_cli(["run", "--rehearse", "--lab", "version=4.9.38", "--keep", "--speed", "600", "--json"], env)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    folder = home / "state" / "rehearsal"
    bundle = folder / "files" / "upgrade" / "core-content-4.9.44-rehearsal.tar.zst"
    assert bundle.is_file() and bundle.with_name("core-content-4.9.44-rehearsal.tar.sig.bin").is_file()
    kept = json.loads((folder / "rehearsal.json").read_text())
    assert kept["appliance"]["version"] == "4.9.38" and kept["cluster"]["name"] == "palette-rehearsal"
    # No secret in the kept state: the registry password is left out, no account password is recorded.
    variables = kept["cluster"]["config"]["spec"]["profileVariables"]
    assert next(v for v in variables if v["name"] == "ociPackRegistryPassword")["value"] == ""
    assert "ociPackRegistryPassword" not in kept["cluster"]["variables"]

    out = run_cli(["upgrade", str(folder / "project.yaml"), "--content", str(bundle), "--json"], env, timeout=180)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-3000:]
    events = json_events(out.stdout)
    finished = [e["step"] for e in events if e["event"] == "step_finished"]
    assert finished == list(UPGRADE_STEP_IDS)
    done = {e["job"]: e["result"] for e in events if e["event"] == "job_finished" and e["status"] == "done"}
    assert done["bundle/verify"]["signature_verified"] is True and done["bundle/verify"]["name_version"] == "4.9.44"
    assert done["update/submit"]["target"] == "4.9.44" and done["update/submit"]["method"] == "cluster/{name}"
    assert done["update/follow"]["version"] == "4.9.44"
    assert done["update/follow"]["headline"] == "Upgraded 4.9.38 → 4.9.44"
    assert done["appliance/identify"]["appliance"]["label"] == "Palette 4.9.44"
    assert done["validate/palette"]["console_version"] == "4.9.44"
    backup = Path(done["backup/appliance"]["folder"])
    assert set(done["backup/appliance"]["files"]) >= {
        "cluster-configuration.json",
        "profile-values.json",
        "cluster-certificates.json",
        "console-certificate.pem",
    }
    saved = json.loads((backup / "cluster-configuration.json").read_text())
    oci = next(v for v in saved["spec"]["profileVariables"] if v["name"] == "ociPackRegistryPassword")
    assert oci["value"] == "(sensitive: not written); keyring: rehearsal-oci-registry-password"
    assert all((backup / f).stat().st_mode & 0o077 == 0 for f in done["backup/appliance"]["files"])
    # The kept lab now plays the new release, for the next session on it.
    assert json.loads((folder / "rehearsal.json").read_text())["appliance"]["version"] == "4.9.44"
    assert json_events(out.stdout)[-1]["stage"] == "end"


@pytest.mark.timeout(180)
def test_4_8_to_4_9_44_is_refused_with_the_two_hop_path_before_anything_is_uploaded(tmp_path: Path) -> None:
    folder = install_kept(tmp_path / "r")
    edit_state(folder, lambda s: s["appliance"].update(version="4.8.47"))  # an appliance kept at 4.8.47
    bundle = folder / "files" / "upgrade" / "core-content-4.9.44-rehearsal.tar.zst"
    out = run_cli(["upgrade", str(folder / "project.yaml"), "--content", str(bundle)], cli_env(tmp_path / "h"))
    assert out.returncode == int(ExitCode.PREFLIGHT_BLOCKED), out.stdout[-3000:] + out.stderr[-2000:]
    assert "4.8.47 → 4.9.14 → 4.9.44" in out.stdout and "4.9.14 recommended" in out.stdout
    assert "Upload the new content bundle" not in out.stdout.split("Steps:")[-1].split("\n", 1)[1]
    sessions = folder / "home" / "state" / "sessions"
    (session,) = [p for p in sessions.iterdir() if p.is_dir() and ".upgrade-" in p.name]
    report = _report(session)
    path = report["upgrade.path"]
    assert path["outcome"] == "fail" and path["severity"] == "blocker" and "4.8.47 → 4.9.14 → 4.9.44" in path["message"]
    assert report["upgrade.certificates"]["outcome"] == "fail"  # 4.8.47 loses custom certificates (a warning)
    assert report["upgrade.values"]["outcome"] == "fail"  # and resets profile values (a warning)
    with Rehearsal.reopen(folder) as rehearsal:  # nothing reached the appliance
        assert rehearsal.lab is not None
        uploaded = rehearsal.lab.nodes[0].state.uploaded
        assert uploaded is not None and uploaded.file_name == "pxk-e-1.30.6.zst"  # the install's last upload


@pytest.mark.timeout(240)
@pytest.mark.parametrize("variant", [2, 3, 5])
def test_the_upgrade_tolerates_every_reading_of_the_open_points(tmp_path: Path, variant: int) -> None:
    """Which call applies the archive, where the archive names its release and the cluster's word meanwhile differ
    per variant (2, 3 and 5 meet each alternative but "nowhere"), with transient 5xx answers on top."""
    knobs = f"version=4.9.38,variant={variant}"
    folder = install_kept(tmp_path / "r", nodes=3, knobs=knobs)
    with Rehearsal.reopen(folder, lab=parse_knobs("http-5xx=0.1")) as rehearsal:
        code, jobs, _ = upgrade(rehearsal)
    assert code is ExitCode.DONE, {j: e.error for j, e in jobs.items() if e.error}
    chosen = Variant(variant)
    method = {"cluster": "cluster/{name}", "profiles": "cluster/profiles"}[chosen("localui.archive-update")]
    assert jobs["update/submit"].result["method"] == method
    named = jobs["update/submit"].result["archive_version"]
    assert named == ("" if chosen("localui.update-version") == "none" else "4.9.44")
    assert jobs["update/follow"].result["version"] == "4.9.44"


@pytest.mark.timeout(180)
def test_a_bundle_and_archive_that_name_no_release_are_followed_to_the_new_one(tmp_path: Path) -> None:
    folder = install_kept(tmp_path / "r")
    with Rehearsal.reopen(folder) as rehearsal:
        assert rehearsal.lab is not None and rehearsal.upgrade_bundle is not None
        for node in rehearsal.lab.nodes:
            node.state.variant = Variant(0, {"localui.update-version": "none"})
        nameless = tmp_path / "content-next.tar.zst"
        shutil.copy(rehearsal.upgrade_bundle, nameless)
        shutil.copy(rehearsal.upgrade_bundle.with_name("core-content-4.9.44-rehearsal.tar.sig.bin"),
                    tmp_path / "content-next.tar.sig.bin")  # fmt: skip
        code, jobs, session = upgrade(rehearsal, nameless)
    assert code is ExitCode.DONE, {j: e.error for j, e in jobs.items() if e.error}
    assert jobs["bundle/verify"].result["name_version"] == ""
    assert jobs["update/submit"].result["target"] == ""
    assert jobs["update/follow"].result["version"] == "4.9.44"  # told apart from 4.9.38 by the nodes themselves
    report = _report(session.journal.path.with_suffix(""))
    assert "spells no release" in report["upgrade.target"]["message"]


@pytest.mark.timeout(180)
def test_a_rerun_continues_the_upgrade_it_started(tmp_path: Path) -> None:
    folder = install_kept(tmp_path / "r")
    with Rehearsal.reopen(folder, lab=parse_knobs("upgrade-seconds=6000")) as rehearsal:
        assert rehearsal.lab is not None and rehearsal.upgrade_bundle is not None
        bundle = UpgradeBundle.at(rehearsal.upgrade_bundle)
        leader = rehearsal.lab.nodes[0].state
        from wizard.install.day2 import open_day2

        session = open_day2(rehearsal.project_file, "upgrade", bundle.key, paths=rehearsal.paths,
                            secrets=rehearsal.secrets)  # fmt: skip
        engine = session.engine(steps=upgrade_pipeline(bundle, pacing_for(SPEED)))

        def cancel_once_upgrading() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                cluster = leader.cluster
                if cluster is not None and cluster.upgrade is not None:
                    break
                time.sleep(0.01)
            engine.cancel.cancel("test: stop while the update is applied")

        watcher = threading.Thread(target=cancel_once_upgrading, daemon=True)
        watcher.start()
        assert engine.run() is ExitCode.CANCELLED
        watcher.join(5)
        assert leader.cluster is not None and leader.cluster.upgrade is not None
        again = session.engine(steps=upgrade_pipeline(bundle, pacing_for(SPEED)))
        started: list[str] = []
        again._on_event = lambda e: started.append(getattr(e, "job", "")) if type(e).__name__ == "JobStarted" else None
        assert again.run() is ExitCode.DONE
    assert "update/submit" not in started and "content/upload" not in started
    assert "update/follow" in started
    assert session.journal.result("update/follow")["version"] == "4.9.44"


@pytest.mark.timeout(180)
def test_an_update_that_fails_says_why_and_where_the_backup_is(tmp_path: Path) -> None:
    folder = install_kept(tmp_path / "r")
    with Rehearsal.reopen(folder, lab=parse_knobs("upgrade-error=the provider image did not boot")) as rehearsal:
        code, jobs, _ = upgrade(rehearsal)
    assert code is ExitCode.INSTALL_FAILED
    error = jobs["update/follow"].error or {}
    assert error["title"] == "Upgrade failed" and "the provider image did not boot" in error["message"]
    assert "backup" in error["remediation"]


@pytest.mark.timeout(180)
def test_the_registry_password_must_be_the_install_value(tmp_path: Path) -> None:
    folder = install_kept(tmp_path / "r")
    with Rehearsal.reopen(folder) as rehearsal:
        from wizard.core.project import SecretRef

        # The keyring now holds another value than the registry was installed with.
        rehearsal.secrets.set(SecretRef("rehearsal-oci-registry-password"), "not-the-install-value")
        code, jobs, _ = upgrade(rehearsal)
    assert code is ExitCode.INSTALL_FAILED
    error = jobs["update/submit"].error or {}
    assert "OCI Pack Registry Password does not match" in error["details"]


@pytest.mark.timeout(180)
def test_a_project_without_the_registry_password_is_stopped_before_the_upload(tmp_path: Path) -> None:
    folder = install_kept(tmp_path / "r")
    project = folder / "project.yaml"
    doc = yaml.safe_load(project.read_text())
    del doc["cluster"]["secret_variables"]  # the install's answer is no longer named
    project.write_text(yaml.safe_dump(doc, sort_keys=False))
    with Rehearsal.reopen(folder) as rehearsal:
        code, jobs, session = upgrade(rehearsal)
    assert code is ExitCode.PREFLIGHT_BLOCKED and "content/upload" not in jobs
    check = _report(session.journal.path.with_suffix(""))["upgrade.registry-password"]
    assert check["outcome"] == "fail" and "OCI Pack Registry Password" in check["message"]


@pytest.mark.timeout(180)
def test_the_4_7_15_pre_upgrade_script_is_asked_for_until_it_ran(tmp_path: Path) -> None:
    folder = install_kept(tmp_path / "r")
    edit_state(folder, lambda s: s["appliance"].update(version="4.7.15"))
    checks = {}
    for knobs in ("", "pre-upgrade-done=on"):
        with Rehearsal.reopen(folder, lab=parse_knobs(knobs)) as rehearsal:
            bundle = UpgradeBundle.at(rehearsal.upgrade_bundle)  # type: ignore[arg-type]
            from tests.integration.kept import run_day2

            steps = upgrade_pipeline(bundle, pacing_for(SPEED))[:3]  # up to the assessment
            _, _, session = run_day2(rehearsal, "upgrade", f"{bundle.key}-{knobs or 'first'}", steps)
            checks[knobs] = _report(session.journal.path.with_suffix(""))["upgrade.pre-script"]
    first, after = checks[""], checks["pre-upgrade-done=on"]
    assert first["outcome"] == "fail" and "zot-pvc is ReadWriteMany" in first["message"]
    assert "change-pvc-access-mode.sh" in first["message"]
    assert "zot-system zot-pvc zot ReadWriteOnce" in first["message"]
    assert after["outcome"] == "pass" and "has run" in after["message"]
