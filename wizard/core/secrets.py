"""Secrets live in the OS keyring, or in an encrypted vault file, and nowhere else.

Three routes, one interface:

- the OS keyring (Secret Service, macOS Keychain, Windows Credential Manager) through ``keyring``, the default;
- an encrypted vault file (:mod:`wizard.core.vault`) for jump hosts without a desktop keyring: ``--vault PATH``;
- values handed over for one run (``run --secrets -`` reads a JSON object on standard input): kept in memory only.

When no secure keyring backend exists and neither other route is taken, secrets entered during the run are kept in
memory for that run only, and the store says so through ``notice``; it never falls back to a plaintext file. A
keyring backend that fails (one that cannot even load, or raises on use, like keyrings.alt without pycryptodome)
is reported as a :class:`SecretError` naming the other routes, never as a traceback. Every value read or written is
registered with the redactor.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from wizard import APP_NAME
from wizard.core.errors import SecretError
from wizard.core.project import SecretRef
from wizard.core.redact import REDACTOR
from wizard.core.vault import Vault, VaultError

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


#: What a jump host without a working keyring can do instead, for every message that needs it.
ROUTES = (
    "keep the secrets in an encrypted vault file (`palette-wizard secret set NAME --vault FILE`, then "
    "`palette-wizard run PROJECT --vault FILE`), or hand them to one run as a JSON object on standard input "
    "(`palette-wizard run PROJECT --secrets -`)"
)


def _load_backend() -> tuple[keyring.backend.KeyringBackend, str]:
    """The OS keyring's backend, or the fail backend and why when keyring cannot even choose one (a configured
    backend that does not import, a broken keyringrc)."""
    import keyring
    import keyring.backends.fail

    try:
        return keyring.get_keyring(), ""
    except Exception as exc:  # keyring raises whatever the configured backend's import raises
        return keyring.backends.fail.Keyring(), f"{type(exc).__name__}: {exc}"  # type: ignore[no-untyped-call]


class SecretStore:
    """Reads and writes the wizard's secrets through keyring or a vault; redacts every value it handles."""

    def __init__(
        self,
        backend: keyring.backend.KeyringBackend | None = None,
        *,
        vault: Vault | None = None,
        supplied: Mapping[str, str] | None = None,
    ) -> None:
        """``vault``: keep secrets there instead of the keyring; ``supplied``: values for this run only (from
        ``--secrets -``), found before the vault or keyring is asked."""
        problem = ""
        if vault is None and backend is None:
            backend, problem = _load_backend()
        self._backend = backend
        self._vault = vault
        self.persistent = vault is not None or (backend is not None and _is_secure(backend))
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()
        if vault is not None:
            self.notice = ""
        elif problem:
            self.notice = (
                f"The OS keyring cannot be used ({problem}). Secrets you enter are kept in memory for this run "
                f"only; {ROUTES}."
            )
        elif not self.persistent:
            self.notice = (
                f"No secure keyring is available ({type(backend).__module__}). Secrets you enter are kept "
                f"in memory for this run only and must be entered again next time; {ROUTES}."
            )
        else:
            self.notice = ""
        for key, value in (supplied or {}).items():
            self.supply(SecretRef(key), value)
        if supplied:
            count = f"{len(supplied)} secret{'s' if len(supplied) != 1 else ''}"
            self.notice = (
                f"{self.notice} " if self.notice else ""
            ) + f"{count} from standard input, for this run only."

    @property
    def backend_name(self) -> str:
        if self._vault is not None:
            return f"the vault {self._vault.path}"
        return f"{type(self._backend).__module__}.{type(self._backend).__name__}"

    @property
    def vault(self) -> Vault | None:
        return self._vault

    def _failed(self, action: str, ref: SecretRef, exc: Exception) -> SecretError:
        if isinstance(exc, VaultError):
            return SecretError(exc.title, exc.message, remediation=exc.remediation)
        import keyring.errors

        if isinstance(exc, keyring.errors.KeyringError) and not isinstance(exc, keyring.errors.InitError):
            return SecretError(
                "Keyring unavailable",
                f"the keyring refused to {action} secret {ref.key!r}: {exc}",
                remediation="unlock the keyring (log in to the desktop session) and retry; nothing was written "
                f"anywhere else. Without a desktop session: {ROUTES}",
            )
        # Not a locked keyring but a broken backend: retrying will not help.
        return SecretError(
            "Keyring backend failed",
            f"the keyring backend {self.backend_name} failed to {action} secret {ref.key!r}: "
            f"{type(exc).__name__}: {exc}",
            remediation=f"fix or remove that backend (PYTHON_KEYRING_BACKEND, keyringrc.cfg), or {ROUTES}",
        )

    def get(self, ref: SecretRef) -> str | None:
        with self._lock:
            if ref.key in self._memory:
                return self._memory[ref.key]
        if self._vault is not None:
            value = self._vault.get(ref.key)
        elif not self.persistent or self._backend is None:
            return None
        else:
            try:
                value = self._backend.get_password(SERVICE, ref.key)
            except Exception as exc:
                raise self._failed("read", ref, exc) from exc
        REDACTOR.add(value)
        return value

    def require(self, ref: SecretRef, field_path: str = "") -> str:
        value = self.get(ref)
        if value is None:
            where = f" ({field_path})" if field_path else ""
            raise SecretError(
                "Secret missing",
                f"no secret named {ref.key!r} is stored{where} in {self.where}",
                remediation=self.how_to_store(ref.key),
            )
        return value

    @property
    def where(self) -> str:
        """Where secrets are looked up, in words."""
        if self._vault is not None:
            return f"the vault {self._vault.path}"
        return "the keyring" if self.persistent else "this run's memory (no secure keyring here)"

    def how_to_store(self, key: str) -> str:
        """The fix for a missing secret, for the route this store uses."""
        if self._vault is not None:
            return f"store it with `palette-wizard secret set {key} --vault {self._vault.path}`"
        if not self.persistent:
            return f"no secure keyring here: {ROUTES}"
        return f"store it with `palette-wizard secret set {key}` or enter it on the Credentials page"

    @staticmethod
    def _check_length(ref: SecretRef, value: str) -> None:
        if len(value) < REDACTOR.MIN_LENGTH:
            raise SecretError(
                "Secret too short",
                f"secret {ref.key!r} must have at least {REDACTOR.MIN_LENGTH} characters",
                remediation="use a longer password or key",
            )

    def supply(self, ref: SecretRef, value: str) -> None:
        """Keep ``value`` in memory for this run only, whatever the store keeps otherwise."""
        self._check_length(ref, value)
        REDACTOR.add(value)
        with self._lock:
            self._memory[ref.key] = value

    def set(self, ref: SecretRef, value: str) -> None:
        self._check_length(ref, value)
        REDACTOR.add(value)
        if not self.persistent:
            with self._lock:
                self._memory[ref.key] = value
            return
        try:
            if self._vault is not None:
                self._vault.set(ref.key, value)
            elif self._backend is not None:
                self._backend.set_password(SERVICE, ref.key, value)
        except Exception as exc:
            raise self._failed("store", ref, exc) from exc
        with self._lock:
            self._memory.pop(ref.key, None)

    def delete(self, ref: SecretRef) -> None:
        with self._lock:
            self._memory.pop(ref.key, None)
        if self._vault is not None:
            try:
                self._vault.delete(ref.key)
            except Exception as exc:
                raise self._failed("delete", ref, exc) from exc
            return
        if self.persistent and self._backend is not None:
            import keyring.errors

            try:
                self._backend.delete_password(SERVICE, ref.key)
            except keyring.errors.PasswordDeleteError:
                pass  # nothing stored under that name
            except Exception as exc:
                raise self._failed("delete", ref, exc) from exc

    def missing(self, refs: list[tuple[str, SecretRef]]) -> list[tuple[str, SecretRef]]:
        """The references (with their field paths) that have no stored value."""
        return [(path, ref) for path, ref in refs if self.get(ref) is None]


def parse_supplied(text: str, source: str = "standard input") -> dict[str, str]:
    """The secrets of ``run --secrets -``: one JSON object of keyring names to values, e.g.
    ``{"node-password": "…", "palette-admin": "…"}``."""
    import json

    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SecretError(
            "Secrets not readable",
            f"{source} is not JSON: {exc.__class__.__name__} at {getattr(exc, 'pos', '?')}",
            remediation='give one JSON object of secret names and values, e.g. {"node-password": "…"}',
        ) from None  # never chain: the parser's message may quote the text
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise SecretError(
            "Secrets not readable",
            f"{source} must hold one JSON object whose values are strings",
            remediation='give one JSON object of secret names and values, e.g. {"node-password": "…"}',
        )
    return dict(data)
