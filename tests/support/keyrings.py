"""Keyring backends for tests: one in memory, one in a JSON file (for subprocesses, via PYTHON_KEYRING_BACKEND)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import keyring.backend
import keyring.errors


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = -1  # never auto-selected; tests install it with keyring.set_keyring

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.store[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError(username) from None


class FileKeyring(keyring.backend.KeyringBackend):
    """Stands in for the OS keyring in subprocess tests; the file lives in the test's tmp dir."""

    priority = -1

    def _path(self) -> Path:
        return Path(os.environ["TEST_KEYRING_FILE"])

    def _load(self) -> dict[str, str]:
        p = self._path()
        return json.loads(p.read_text()) if p.exists() else {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}\x00{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}\x00{username}"] = password
        self._path().parent.mkdir(parents=True, exist_ok=True)
        self._path().write_text(json.dumps(data))

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if data.pop(f"{service}\x00{username}", None) is None:
            raise keyring.errors.PasswordDeleteError(username)
        self._path().write_text(json.dumps(data))


class BrokenKeyring(keyring.backend.KeyringBackend):
    """A backend that fails on use the way keyrings.alt's encrypted file keyring does without pycryptodome."""

    priority = -1

    def get_password(self, service: str, username: str) -> str | None:
        raise RuntimeError("pycryptodomex required")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError("pycryptodomex required")

    def delete_password(self, service: str, username: str) -> None:
        raise RuntimeError("pycryptodomex required")
