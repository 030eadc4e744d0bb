from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.helpers import cli_env, json_events, run_cli
from tests.support.projects import appliance_iso, base_doc, make_key, random_file, sign_file, write_project
from wizard import __version__


def test_version_and_help(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    out = run_cli(["--version"], env)
    assert out.returncode == 0 and __version__ in out.stdout
    out = run_cli(["--help"], env)
    assert out.returncode == 0 and "run" in out.stdout and "130" in out.stdout


def test_run_verifies_files_and_reruns_skip(tmp_path: Path) -> None:
    key, pub = make_key(tmp_path)
    appliance_iso(tmp_path / "appliance.iso", 5 * 1024 * 1024)
    bundle = random_file(tmp_path / "content.tar.zst", 2 * 1024 * 1024)
    sign_file(key, bundle, tmp_path / "content.tar.sig.bin")
    pack = random_file(tmp_path / "pack-a.zst", 1024 * 1024)
    sign_file(key, pack, tmp_path / "pack-a.sig.bin")
    path = write_project(
        tmp_path,
        base_doc(
            files={
                "iso": "appliance.iso",
                "content_bundle": "content.tar.zst",
                "pack_bundles": ["pack-a.zst"],
                "public_key": pub.name,
            }
        ),
    )
    env = cli_env(tmp_path / "home")
    out = run_cli(["run", str(path), "--until", "preflight", "--json"], env)
    assert out.returncode == 0, out.stdout + out.stderr
    events = json_events(out.stdout)
    done = {e["job"]: e for e in events if e["event"] == "job_finished"}
    assert done["verify/files.content_bundle"]["result"]["signature_verified"] is True
    assert done["verify/files.pack_bundles[0]"]["status"] == "done"
    assert events[-1]["event"] in ("run_finished", "progress")
    again = json_events(run_cli(["run", str(path), "--until", "preflight", "--json"], env).stdout)
    assert {e["status"] for e in again if e["event"] == "job_finished"} == {"skipped"}
    text = run_cli(["run", str(path), "--until", "preflight"], env)
    assert text.returncode == 0 and "already done" in text.stdout and "Done" in text.stdout


def test_tampered_bundle_blocks_with_exit_3(tmp_path: Path) -> None:
    key, pub = make_key(tmp_path)
    appliance_iso(tmp_path / "appliance.iso", 1024 * 1024)
    bundle = random_file(tmp_path / "content.tar.zst", 1024 * 1024)
    sign_file(key, bundle, tmp_path / "content.tar.sig.bin")
    with bundle.open("r+b") as fh:
        fh.seek(100)
        fh.write(b"tampered")
    path = write_project(
        tmp_path,
        base_doc(files={"iso": "appliance.iso", "content_bundle": "content.tar.zst", "public_key": pub.name}),
    )
    out = run_cli(["run", str(path), "--until", "preflight"], cli_env(tmp_path / "home"))
    assert out.returncode == 3, out.stdout + out.stderr
    assert "does not match its signature" in out.stdout


def test_invalid_project_and_missing_secret_exit_2(tmp_path: Path) -> None:
    doc = base_doc()
    doc["nodes"][0]["ip"] = "999.1.1.1"
    out = run_cli(
        ["run", str(write_project(tmp_path, doc, "bad.yaml")), "--until", "preflight"], cli_env(tmp_path / "h1")
    )
    assert out.returncode == 2 and "nodes[0].ip" in out.stdout
    path = write_project(tmp_path, base_doc(appliance={"password": {"secret": "node-password"}}))
    env = cli_env(tmp_path / "h2")
    out = run_cli(["run", str(path), "--until", "preflight"], env)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "appliance.password" in out.stdout and "secret set node-password" in out.stdout
    check = run_cli(["secret", "check", str(path)], env)
    assert check.returncode == 2 and "node-password" in check.stdout
    stored = run_cli(["secret", "set", "node-password", "--stdin"], env, stdin="Correct-Horse-9\n")
    assert stored.returncode == 0, stored.stderr
    assert run_cli(["secret", "check", str(path)], env).returncode == 0
    assert run_cli(["run", str(path), "--until", "preflight"], env).returncode == 0


def test_secret_set_refuses_without_a_secure_keyring(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    out = run_cli(["secret", "set", "x", "--stdin"], env, stdin="Some-Value-1\n")
    assert out.returncode == 2 and "No secure keyring" in out.stderr


def test_override_a_warning_and_refuse_a_blocker(tmp_path: Path) -> None:
    from tests.support.projects import appliance_iso

    appliance_iso(tmp_path / "appliance.iso")
    path = write_project(tmp_path, base_doc(files={"iso": "appliance.iso"}))
    env = cli_env(tmp_path / "home")
    ok = run_cli(["override", str(path), "net.dns-reverse", "--reason", "PTR records are managed by IT later"], env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    journal = next((tmp_path / "home" / "state" / "sessions").glob("*.json")).read_text()
    assert "PTR records are managed by IT later" in journal
    refused = run_cli(["override", str(path), "net.vip-free", "--reason", "trust me"], env)
    assert refused.returncode == 2 and "cannot be overridden" in refused.stderr


def test_trust_list_and_forget(tmp_path: Path) -> None:
    from wizard.core.trust import TrustKind, TrustStore

    home = tmp_path / "home"
    TrustStore(home / "config").pin(TrustKind.SSH, "10.1.2.3", 22, "SHA256:" + "B" * 43)
    env = cli_env(home)
    listed = run_cli(["trust", "list"], env)
    assert listed.returncode == 0 and "ssh:10.1.2.3:22" in listed.stdout
    assert "forgot ssh" in run_cli(["trust", "forget", "10.1.2.3:22"], env).stdout
    assert "no pinned" in run_cli(["trust", "list"], env).stdout
    assert run_cli(["trust", "forget", "nonsense"], env).returncode == 2


def test_until_names_the_last_step(tmp_path: Path) -> None:
    from wizard.cli import RUN_STEPS
    from wizard.install.steps import STEP_IDS, pipeline

    assert RUN_STEPS == STEP_IDS == tuple(s.id for s in pipeline())
    assert [s.id for s in pipeline(until="preflight")] == ["credentials", "verify", "preflight"]
    assert [s.id for s in pipeline(until="credentials")] == ["credentials"]
    with pytest.raises(ValueError, match="no step 'reboot'"):
        pipeline(until="reboot")
    env = cli_env(tmp_path / "home")
    path = write_project(tmp_path, base_doc())
    out = run_cli(["run", str(path), "--until", "verify", "--json"], env)
    assert out.returncode == 0, out.stdout + out.stderr
    started = next(e for e in json_events(out.stdout) if e["event"] == "run_started")
    assert [s[0] for s in started["steps"]] == ["credentials", "verify"]
    text = run_cli(["run", str(path), "--until", "verify"], env)
    assert text.returncode == 0 and "stopped there as asked (--until verify)" in text.stdout
    bad = run_cli(["run", str(path), "--until", "reboot"], env)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_run_needs_a_project_or_rehearse(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    out = run_cli(["run"], env)
    assert out.returncode == 2 and "project file or --rehearse" in out.stderr
    out = run_cli(["run", str(tmp_path / "p.yaml"), "--rehearse"], env)
    assert out.returncode == 2 and "project file or --rehearse" in out.stderr
    # `--rehearse` alone opens the desktop rehearsal (tests/ui/test_rehearsal_gui.py); with a command it is refused.
    out = run_cli(["--rehearse", "run", "--rehearse"], env)
    assert out.returncode == 2 and "palette-wizard run --rehearse" in out.stderr


def test_trust_add_pins_a_fingerprint_verified_out_of_band(tmp_path: Path) -> None:
    from wizard.core.trust import TrustKind, TrustStore

    home = tmp_path / "home"
    env = cli_env(home)
    tls = "ab" * 32
    added = run_cli(["trust", "add", "10.1.2.10:443", tls], env)
    assert added.returncode == 0, added.stdout + added.stderr
    entry = TrustStore(home / "config").pinned(TrustKind.TLS, "10.1.2.10", 443)
    assert entry is not None and entry["fingerprint"] == ":".join(["AB"] * 32)
    assert "added by the operator" in run_cli(["trust", "list"], env).stdout
    ssh = "SHA256:" + "C" * 43
    assert run_cli(["trust", "add", "10.1.2.11:22", ssh], env).returncode == 0
    assert TrustStore(home / "config").pinned(TrustKind.SSH, "10.1.2.11", 22) is not None
    # A different pin is not replaced by accident; nonsense is refused.
    other = run_cli(["trust", "add", "10.1.2.10:443", "cd" * 32], env)
    assert other.returncode == 2 and "--replace" in other.stderr
    assert run_cli(["trust", "add", "10.1.2.10:443", "cd" * 32, "--replace"], env).returncode == 0
    assert run_cli(["trust", "add", "10.1.2.10:443", "not-a-fingerprint"], env).returncode == 2
    assert run_cli(["trust", "add", "10.1.2.10", tls], env).returncode == 2
    assert run_cli(["trust", "add", "10.1.2.10:443", tls, "--kind", "ssh"], env).returncode == 2
