"""Secrets live in the OS keyring, and nowhere else.

When no secure keyring backend exists (a headless jump host without a Secret Service, say), secrets entered
during the run are kept in memory for that run only, and the store says so through ``notice``; it never falls
back to a plaintext file. Every value read or written is registered with the redactor.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING

from wizard import APP_NAME
from wizard.core.errors import SecretError
from wizard.core.project import SecretRef
from wizard.core.redact import REDACTOR

if TYPE_CHECKING:
    import keyring.backend

# keyring is imported where a store first uses it, not with this module: with its backends it pulls in jaraco,
# urllib.request, http.client and email, a tenth of a second that the first window would otherwise wait for.

SERVICE = APP_NAME

# Backends that store nothing securely: the "fail" backend raises, the "null" one drops everything, and the
# plaintext ones from keyrings.alt write secrets to disk.
_INSECURE = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt.file", "keyrings.alt.Gnome")


def _is_secure(backend: keyring.backend.KeyringBackend) -> bool:
    module = type(backend).__module__
    if any(module.startswith(prefix) for prefix in _INSECURE):
        return False
    if type(backend).__name__ == "PlaintextKeyring":
        return False
    chain = getattr(backend, "backends", None)
    if chain is not None:  # ChainerBackend: secure if any of its members is
        return any(_is_secure(b) for b in chain)
    return True


class SecretStore:
    """Reads and writes the wizard's secrets through keyring; redacts every value it handles."""

    def __init__(self, backend: keyring.backend.KeyringBackend | None = None) -> None:
        if backend is None:
            import keyring

            backend = keyring.get_keyring()
        self._backend = backend
        self.persistent = _is_secure(self._backend)
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()
        self.notice = (
            ""
            if self.persistent
            else (
                f"No secure keyring is available ({type(self._backend).__module__}). Secrets you enter are kept "
                "in memory for this run only and must be entered again next time."
            )
        )

    @property
    def backend_name(self) -> str:
        return f"{type(self._backend).__module__}.{type(self._backend).__name__}"

    def get(self, ref: SecretRef) -> str | None:
        with self._lock:
            if ref.key in self._memory:
                return self._memory[ref.key]
        if not self.persistent:
            return None
        import keyring.errors

        try:
            value = self._backend.get_password(SERVICE, ref.key)
        except keyring.errors.KeyringError as exc:
            raise SecretError(
                "Keyring unavailable",
                f"the keyring refused to read secret {ref.key!r}: {exc}",
                remediation="unlock the keyring (log in to the desktop session) and retry",
            ) from exc
        REDACTOR.add(value)
        return value

    def require(self, ref: SecretRef, field_path: str = "") -> str:
        value = self.get(ref)
        if value is None:
            where = f" ({field_path})" if field_path else ""
            raise SecretError(
                "Secret missing",
                f"no secret named {ref.key!r} is stored{where}",
                remediation=f"store it with `palette-wizard secret set {ref.key}` or enter it in the wizard",
            )
        return value

    def set(self, ref: SecretRef, value: str) -> None:
        if len(value) < REDACTOR.MIN_LENGTH:
            raise SecretError(
                "Secret too short",
                f"secret {ref.key!r} must have at least {REDACTOR.MIN_LENGTH} characters",
                remediation="use a longer password or key",
            )
        REDACTOR.add(value)
        if not self.persistent:
            with self._lock:
                self._memory[ref.key] = value
            return
        import keyring.errors

        try:
            self._backend.set_password(SERVICE, ref.key, value)
        except keyring.errors.KeyringError as exc:
            raise SecretError(
                "Keyring unavailable",
                f"the keyring refused to store secret {ref.key!r}: {exc}",
                remediation="unlock the keyring and retry; nothing was written anywhere else",
            ) from exc
        with self._lock:
            self._memory.pop(ref.key, None)

    def delete(self, ref: SecretRef) -> None:
        with self._lock:
            self._memory.pop(ref.key, None)
        if self.persistent:
            import keyring.errors

            with contextlib.suppress(keyring.errors.PasswordDeleteError):
                self._backend.delete_password(SERVICE, ref.key)

    def missing(self, refs: list[tuple[str, SecretRef]]) -> list[tuple[str, SecretRef]]:
        """The references (with their field paths) that have no stored value."""
        return [(path, ref) for path, ref in refs if self.get(ref) is None]
