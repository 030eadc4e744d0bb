from __future__ import annotations

from pathlib import Path

import keyring.backends.fail
import keyring.backends.null
import pytest

from tests.support.keyrings import MemoryKeyring
from wizard.core.errors import SecretError
from wizard.core.project import SecretRef
from wizard.core.redact import REDACTOR
from wizard.core.secrets import SERVICE, SecretStore


def test_keyring_round_trip(memory_keyring: MemoryKeyring) -> None:
    store = SecretStore()
    assert store.persistent and not store.notice
    store.set(SecretRef("vc"), "VeryS3cret!")
    assert memory_keyring.store[(SERVICE, "vc")] == "VeryS3cret!"
    assert store.get(SecretRef("vc")) == "VeryS3cret!"
    assert REDACTOR.redact("pw VeryS3cret! end") == "pw «redacted» end"
    store.delete(SecretRef("vc"))
    assert store.get(SecretRef("vc")) is None
    with pytest.raises(SecretError, match="no secret named 'vc'"):
        store.require(SecretRef("vc"), "provider.vsphere.password")


@pytest.mark.parametrize("backend", [keyring.backends.fail.Keyring(), keyring.backends.null.Keyring()])
def test_no_secure_backend_keeps_secrets_in_memory_and_says_so(
    backend: keyring.backend.KeyringBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = SecretStore(backend)
    assert not store.persistent
    assert "in memory for this run only" in store.notice
    store.set(SecretRef("bmc"), "InMemoryOnly1")
    assert store.get(SecretRef("bmc")) == "InMemoryOnly1"
    assert SecretStore(backend).get(SecretRef("bmc")) is None, "a new run must not find it"
    assert not any(tmp_path.rglob("*")), "nothing may be written as a fallback"


def test_too_short_secrets_are_refused() -> None:
    with pytest.raises(SecretError, match="at least"):
        SecretStore().set(SecretRef("x"), "abc")


def test_missing_lists_field_paths() -> None:
    store = SecretStore()
    store.set(SecretRef("present"), "value-1")
    refs = [("a.b", SecretRef("present")), ("c.d", SecretRef("absent"))]
    assert store.missing(refs) == [("c.d", SecretRef("absent"))]


def test_the_engine_modules_load_without_keyring() -> None:
    """keyring (with jaraco, urllib.request, http.client, email) loads when a store is first made, not at import:
    the first window of the desktop wizard does not wait for it."""
    import subprocess
    import sys

    probe = "import sys, wizard.core.jobs, wizard.core.secrets\nprint(sorted(m for m in sys.modules if 'keyring' in m))"
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=repo, capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout
