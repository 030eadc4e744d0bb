"""Headless on a jump host without a desktop keyring: the vault and `--secrets -` from the command line."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.core.helpers import ROOT, cli_env, run_cli
from tests.core.test_vault import assert_no_plaintext
from tests.support.projects import base_doc, write_project

NODE_PASSWORD = "Node-Passw0rd-From-Vault"
PASSPHRASE = "a long vault passphrase for tests"


def _no_keyring(home: Path) -> dict[str, str]:
    env = cli_env(home)
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"  # a bare server: no Secret Service
    return env


def _project(tmp_path: Path) -> Path:
    return write_project(tmp_path, base_doc(appliance={"password": {"secret": "node-password"}}))


def test_vault_from_the_command_line_with_a_passphrase_file(tmp_path: Path) -> None:
    env = _no_keyring(tmp_path / "home")
    project, vault = _project(tmp_path), tmp_path / "jump" / "secrets.vault"
    passphrase = tmp_path / "passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    vault_args = ["--vault", str(vault), "--passphrase-file", str(passphrase)]
    assert run_cli(["secret", "check", str(project), *vault_args], env).returncode == 2  # no vault yet
    stored = run_cli(["secret", "set", "node-password", "--stdin", *vault_args], env, stdin=NODE_PASSWORD + "\n")
    assert stored.returncode == 0, stored.stdout + stored.stderr
    assert str(vault) in stored.stdout
    if sys.platform != "win32":
        assert stat.S_IMODE(vault.stat().st_mode) == 0o600
    assert_no_plaintext(vault, [NODE_PASSWORD, PASSPHRASE])
    check = run_cli(["secret", "check", str(project), *vault_args], env)
    assert check.returncode == 0, check.stdout + check.stderr
    run = run_cli(["run", str(project), "--until", "credentials", *vault_args], env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert NODE_PASSWORD not in run.stdout + run.stderr
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase of that vault\n")
    refused = run_cli(["run", str(project), "--until", "credentials", "--vault", str(vault), "--passphrase-file",
                       str(wrong)], env)  # fmt: skip
    assert refused.returncode == 2 and "Wrong vault passphrase" in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr


def test_vault_passphrase_from_a_file_descriptor(tmp_path: Path) -> None:
    env = _no_keyring(tmp_path / "home")
    vault = tmp_path / "secrets.vault"
    read_end, write_end = os.pipe()
    os.write(write_end, PASSPHRASE.encode() + b"\n")
    os.close(write_end)
    try:
        out = subprocess.run(
            [sys.executable, "-m", "wizard", "secret", "set", "node-password", "--stdin", "--vault", str(vault),
             "--passphrase-fd", str(read_end)],
            input=NODE_PASSWORD + "\n", capture_output=True, text=True, env=env, timeout=120, pass_fds=(read_end,),
            cwd=ROOT,
        )  # fmt: skip
    finally:
        os.close(read_end)
    assert out.returncode == 0, out.stdout + out.stderr
    from wizard.core.vault import Vault

    assert Vault.open(vault, PASSPHRASE).get("node-password") == NODE_PASSWORD


def test_secrets_on_standard_input_are_used_and_never_stored(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _no_keyring(home)
    project = _project(tmp_path)
    given = json.dumps({"node-password": NODE_PASSWORD})
    run = run_cli(["run", str(project), "--until", "credentials", "--secrets", "-"], env, stdin=given)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 secret from standard input" in run.stdout
    for path in home.rglob("*"):
        if path.is_file():
            assert NODE_PASSWORD.encode() not in path.read_bytes(), f"{path} holds the secret"
    bad = run_cli(["run", str(project), "--until", "credentials", "--secrets", "-"], env, stdin="node-password=x")
    assert bad.returncode == 2 and "not JSON" in bad.stdout + bad.stderr and "Traceback" not in bad.stderr


def test_without_a_keyring_and_without_either_route_the_error_names_both(tmp_path: Path) -> None:
    env = _no_keyring(tmp_path / "home")
    out = run_cli(["run", str(_project(tmp_path)), "--until", "credentials"], env)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "--vault" in out.stdout and "--secrets -" in out.stdout
    refused = run_cli(["secret", "set", "node-password", "--stdin"], env, stdin=NODE_PASSWORD + "\n")
    assert refused.returncode == 2 and "--vault" in refused.stderr and "--secrets -" in refused.stderr


def test_a_keyring_backend_that_raises_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home")
    env["PYTHON_KEYRING_BACKEND"] = "tests.support.keyrings.BrokenKeyring"
    for args, stdin in (
        (["secret", "set", "node-password", "--stdin"], NODE_PASSWORD + "\n"),
        (["secret", "check", str(_project(tmp_path))], None),
        (["run", str(_project(tmp_path)), "--until", "credentials"], None),
    ):
        out = run_cli(args, env, stdin=stdin)
        text = out.stdout + out.stderr
        assert out.returncode == 2, text
        assert "Traceback" not in text and "Keyring backend failed" in text and "--vault" in text, text
    # A configured backend that does not even import: the keyring is unusable, and the run says what to do.
    env["PYTHON_KEYRING_BACKEND"] = "keyrings.absent.EncryptedKeyring"
    out = run_cli(["run", str(_project(tmp_path)), "--until", "credentials"], env)
    text = out.stdout + out.stderr
    assert out.returncode == 2 and "Traceback" not in text and "--secrets -" in text, text
