"""A whole headless install on a jump host with no desktop keyring: secrets from an encrypted vault (its passphrase
in a file) or from standard input, through the same option handling as `palette-wizard run`."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest

from tests.core.helpers import cli_env, run_cli
from tests.core.test_vault import assert_no_plaintext
from tests.support.quickboot import quick
from wizard.cli import _parser, secret_store_for
from wizard.core.project import SecretRef, load_project
from wizard.core.runner import ExitCode
from wizard.headless import run_headless
from wizard.rehearsal import Rehearsal

pytestmark = [pytest.mark.flow, pytest.mark.lab]

PASSPHRASE = "jump host vault passphrase"


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """Like a bare server: keyring has no backend that stores anything."""
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())  # type: ignore[no-untyped-call]
    yield
    keyring.set_keyring(previous)


def _secrets(rehearsal: Rehearsal) -> dict[str, str]:
    """The secrets the rehearsal's project names, as the operator would have them."""
    refs = load_project(rehearsal.project_file).project.secret_refs()
    return {ref.key: rehearsal.secrets.require(ref) for _, ref in refs}


def _run(rehearsal: Rehearsal, argv: list[str]) -> int:
    store = secret_store_for(_parser().parse_args(["run", str(rehearsal.project_file), *argv]))
    assert not any(store.get(SecretRef(k)) is None for k in _secrets(rehearsal))
    out = io.StringIO()
    code = run_headless(
        rehearsal.project_file,
        steps=rehearsal.steps(),
        paths=rehearsal.paths,
        secrets=store,
        on_event=rehearsal.on_event,
        out=out,
    )
    assert code == ExitCode.DONE, out.getvalue()[-4000:]
    return code


@pytest.mark.timeout(240)
def test_headless_install_with_secrets_in_a_vault(tmp_path: Path, no_keyring: None) -> None:
    vault, passphrase = tmp_path / "jump" / "palette.vault", tmp_path / "passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    env = cli_env(tmp_path / "home")
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    with Rehearsal(tmp_path / "rehearsal", nodes=1, speed=300, lab=quick()) as rehearsal:
        values = _secrets(rehearsal)
        for name, value in values.items():  # as the operator stores them, with `secret set … --vault`
            stored = run_cli(
                ["secret", "set", name, "--stdin", "--vault", str(vault), "--passphrase-file", str(passphrase)],
                env,
                stdin=value + "\n",
            )
            assert stored.returncode == 0, stored.stdout + stored.stderr
        _run(rehearsal, ["--vault", str(vault), "--passphrase-file", str(passphrase)])
    assert_no_plaintext(vault, [*values.values(), PASSPHRASE])


@pytest.mark.timeout(240)
def test_headless_install_with_secrets_on_standard_input(
    tmp_path: Path, no_keyring: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Rehearsal(tmp_path / "rehearsal", nodes=1, speed=300, lab=quick()) as rehearsal:
        values = _secrets(rehearsal)
        monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(values)))
        _run(rehearsal, ["--secrets", "-"])
        written = [p for p in rehearsal.folder.rglob("*") if p.is_file()]
        for path in written:
            data = path.read_bytes()
            assert not any(v.encode() in data for v in values.values()), f"{path} holds a secret"
