"""The encrypted secrets vault, secrets handed over on standard input, and keyring backends that fail."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest

from tests.support.keyrings import BrokenKeyring
from wizard.core.errors import SecretError
from wizard.core.project import SecretRef
from wizard.core.secrets import SecretStore, parse_supplied
from wizard.core.vault import Vault, VaultError, read_passphrase

PASSPHRASE = "correct horse battery staple"
CHEAP = 2**14  # scrypt cost for tests; a real vault uses 2**17
SECRETS = {"node-password": "Node-Passw0rd-Value", "palette-admin": "Console-Adm1n-Secret"}


def _vault(tmp_path: Path) -> Vault:
    return Vault.open(tmp_path / "secrets.vault", PASSPHRASE, create=True, n=CHEAP)


def assert_no_plaintext(path: Path, values: list[str]) -> None:
    data = path.read_bytes()
    for value in values:
        for form in (value.encode(), value.encode("utf-16-le"), base64.b64encode(value.encode())):
            assert form not in data, f"{value!r} appears in {path} as {form!r}"


def test_round_trip_reopen_and_delete(tmp_path: Path) -> None:
    vault = _vault(tmp_path)
    for name, value in SECRETS.items():
        vault.set(name, value)
    again = Vault.open(vault.path, PASSPHRASE)
    assert {n: again.get(n) for n in again.names()} == SECRETS
    assert again.delete("palette-admin") and not again.delete("palette-admin")
    assert Vault.open(vault.path, PASSPHRASE).names() == ["node-password"]


def test_the_file_holds_no_secret_and_no_name_in_clear(tmp_path: Path) -> None:
    vault = _vault(tmp_path)
    for name, value in SECRETS.items():
        vault.set(name, value)
    assert_no_plaintext(vault.path, [*SECRETS.values(), *SECRETS, PASSPHRASE])
    doc = json.loads(vault.path.read_text())
    assert doc["format"] == "palette-wizard-vault" and doc["kdf"]["name"] == "scrypt"
    assert doc["cipher"] == "AES-256-GCM"
    if sys.platform != "win32":
        assert stat.S_IMODE(vault.path.stat().st_mode) == 0o600
    # Every write has a fresh nonce: the same contents never give the same bytes.
    before = doc["nonce"]
    vault.set("node-password", SECRETS["node-password"])
    assert json.loads(vault.path.read_text())["nonce"] != before
    assert not [p for p in tmp_path.iterdir() if p.name != vault.path.name], "no temporary file left behind"


def test_wrong_passphrase_tampering_and_changed_parameters_do_not_open(tmp_path: Path) -> None:
    vault = _vault(tmp_path)
    vault.set("node-password", SECRETS["node-password"])
    with pytest.raises(VaultError, match="does not open with that passphrase"):
        Vault.open(vault.path, "not the passphrase at all")
    doc = json.loads(vault.path.read_text())
    flipped = bytearray(base64.b64decode(doc["ciphertext"]))
    flipped[0] ^= 1
    (tmp_path / "flipped").write_text(json.dumps({**doc, "ciphertext": base64.b64encode(flipped).decode()}))
    with pytest.raises(VaultError, match="altered"):
        Vault.open(tmp_path / "flipped", PASSPHRASE)
    # The header is authenticated: lowering the cost factor cannot go unnoticed (and then fails to derive the key).
    (tmp_path / "cheaper").write_text(json.dumps({**doc, "kdf": {**doc["kdf"], "p": 2}}))
    with pytest.raises(VaultError):
        Vault.open(tmp_path / "cheaper", PASSPHRASE)


def test_not_a_vault_missing_vault_and_a_short_passphrase(tmp_path: Path) -> None:
    (tmp_path / "plain.json").write_text('{"node-password": "x"}')
    with pytest.raises(VaultError, match="no vault header"):
        Vault.open(tmp_path / "plain.json", PASSPHRASE)
    with pytest.raises(VaultError, match="there is no vault"):
        Vault.open(tmp_path / "absent.vault", PASSPHRASE)
    with pytest.raises(VaultError, match="at least 12"):
        Vault.open(tmp_path / "new.vault", "short", create=True, n=CHEAP)
    assert not (tmp_path / "new.vault").exists()


def test_passphrase_from_a_file_and_a_file_descriptor(tmp_path: Path) -> None:
    path = tmp_path / "passphrase"
    path.write_text(PASSPHRASE + "\r\nsecond line ignored\n")
    assert read_passphrase(file=path) == PASSPHRASE
    read_end, write_end = os.pipe()
    os.write(write_end, (PASSPHRASE + "\n").encode())
    os.close(write_end)
    assert read_passphrase(fd=read_end) == PASSPHRASE
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(VaultError, match="no passphrase"):
        read_passphrase(file=tmp_path / "empty")


def test_a_store_on_a_vault(tmp_path: Path) -> None:
    store = SecretStore(vault=_vault(tmp_path))
    assert store.persistent and not store.notice and "vault" in store.backend_name
    store.set(SecretRef("node-password"), SECRETS["node-password"])
    assert (
        SecretStore(vault=Vault.open(tmp_path / "secrets.vault", PASSPHRASE)).get(SecretRef("node-password"))
        == SECRETS["node-password"]
    )
    with pytest.raises(SecretError, match="in the vault") as missing:
        store.require(SecretRef("palette-admin"), "console.password")
    assert "secret set palette-admin --vault" in missing.value.remediation
    store.delete(SecretRef("node-password"))
    assert store.get(SecretRef("node-password")) is None


def test_supplied_secrets_are_for_this_run_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = SecretStore(keyring.backends.fail.Keyring(), supplied=parse_supplied(json.dumps(SECRETS)))
    assert store.get(SecretRef("node-password")) == SECRETS["node-password"]
    assert "2 secrets from standard input" in store.notice
    assert not any(tmp_path.rglob("*")), "nothing written anywhere"
    with pytest.raises(SecretError, match="at least"):
        SecretStore(supplied={"x": "abc"})


def test_supplied_secrets_that_are_not_one_object_are_refused_without_quoting_them() -> None:
    with pytest.raises(SecretError, match="not JSON") as bad:
        parse_supplied('{"node-password": "Leaky-Value-123"')
    assert "Leaky-Value-123" not in str(bad.value) and bad.value.__cause__ is None
    with pytest.raises(SecretError, match="one JSON object"):
        parse_supplied('["node-password"]')
    with pytest.raises(SecretError, match="one JSON object"):
        parse_supplied('{"n": 5}')


def test_a_keyring_backend_that_raises_is_a_clear_error() -> None:
    store = SecretStore(BrokenKeyring())
    for call in (
        lambda: store.get(SecretRef("node-password")),
        lambda: store.set(SecretRef("node-password"), "Some-Value-123"),
        lambda: store.delete(SecretRef("node-password")),
    ):
        with pytest.raises(SecretError) as failed:
            call()
        assert failed.value.title == "Keyring backend failed"
        assert "RuntimeError: pycryptodomex required" in failed.value.message
        assert "--vault" in failed.value.remediation and "--secrets -" in failed.value.remediation


def test_a_keyring_that_cannot_load_leaves_memory_and_names_both_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> keyring.backend.KeyringBackend:
        raise ModuleNotFoundError("No module named 'keyrings'")

    monkeypatch.setattr(keyring, "get_keyring", broken)
    store = SecretStore()
    assert not store.persistent
    assert "ModuleNotFoundError" in store.notice and "--vault" in store.notice and "--secrets -" in store.notice
    with pytest.raises(SecretError) as missing:
        store.require(SecretRef("node-password"))
    assert "--vault" in missing.value.remediation and "--secrets -" in missing.value.remediation
