"""An encrypted file of secrets, for jump hosts without a desktop keyring (air-gapped servers, SSH sessions).

The file is JSON whose only readable parts say how to open it: the key is derived from the operator's passphrase
with scrypt (N=2^17, r=8, p=1: 128 MiB and a fraction of a second per opening, per OWASP's guidance), and every
secret is in one AES-256-GCM ciphertext whose authenticated data is that header, so a changed parameter or a
flipped byte fails to open instead of yielding garbage. Each write has a fresh random nonce and a fresh salt is
made only with the file. Writes are atomic (a crash leaves the old vault or the new one) and owner-only: mode 0600
on POSIX; on Windows the file's privacy comes from the user's profile folder it lives in (chmod there sets only
the read-only bit). A wrong passphrase is an error, never an empty vault, and nothing is ever written in clear.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path
from typing import Any

from wizard.core.errors import WizardError
from wizard.core.fsutil import atomic_write_bytes

FORMAT = "palette-wizard-vault"
VERSION = 1
SCRYPT_N = 2**17
SCRYPT_R = 8
SCRYPT_P = 1
KEY_LENGTH = 32  # AES-256
MIN_PASSPHRASE = 12


class VaultError(WizardError):
    """The vault cannot be opened or written: wrong passphrase, damaged file, or not a vault at all."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str, path: Path) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except ValueError as exc:
        raise _damaged(path, f"its {what} is not base64") from exc


def _damaged(path: Path, why: str) -> VaultError:
    return VaultError(
        "Vault unreadable",
        f"{path} is not a secrets vault this wizard can open: {why}",
        remediation="give the path of a vault made with `palette-wizard secret set NAME --vault PATH`",
    )


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    return Scrypt(salt=salt, length=KEY_LENGTH, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


class Vault:
    """The secrets in one vault file, opened with its passphrase; thread-safe."""

    def __init__(self, path: Path, key: bytes, header: dict[str, Any], secrets: dict[str, str]) -> None:
        self.path = path
        self._key = key
        self._header = header
        self._secrets = secrets
        self._lock = threading.Lock()

    # -- opening -----------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path, passphrase: str, *, create: bool = False, n: int = SCRYPT_N) -> Vault:
        """Open the vault at ``path``; with ``create`` a missing file becomes a new, empty vault (written at once, so
        the passphrase chosen is the one kept). ``n`` is scrypt's cost for a new vault (tests make it cheaper)."""
        path = Path(path)
        if not path.exists():
            if not create:
                raise VaultError(
                    "No such vault",
                    f"there is no vault at {path}",
                    remediation=f"create it by storing a secret: `palette-wizard secret set NAME --vault {path}`",
                )
            return cls._create(path, passphrase, n)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise _damaged(path, f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise _damaged(path, "it has no vault header")
        if doc.get("version") != VERSION:
            raise _damaged(path, f"format version {doc.get('version')!r} (this wizard reads {VERSION})")
        kdf = doc.get("kdf")
        if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
            raise _damaged(path, "unknown key derivation")
        try:
            n_, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _damaged(path, "incomplete key derivation parameters") from exc
        if n_ < 2**14 or n_ & (n_ - 1) or not (1 <= r <= 32 and 1 <= p <= 16):
            raise _damaged(path, f"implausible scrypt parameters n={n_} r={r} p={p}")
        salt = _unb64(kdf.get("salt"), "salt", path)
        nonce = _unb64(doc.get("nonce"), "nonce", path)
        ciphertext = _unb64(doc.get("ciphertext"), "ciphertext", path)
        header = {"format": FORMAT, "version": VERSION, "kdf": kdf}
        key = _derive(passphrase, salt, n_, r, p)
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            plain = AESGCM(key).decrypt(nonce, ciphertext, _aad(header))
        except InvalidTag as exc:
            raise VaultError(
                "Wrong vault passphrase",
                f"{path} does not open with that passphrase (or the file was altered)",
                remediation="give the passphrase the vault was made with; nothing was changed",
            ) from exc
        try:
            body = json.loads(plain.decode("utf-8"))
            secrets = {str(k): str(v) for k, v in dict(body["secrets"]).items()}
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise _damaged(path, "its contents are not a table of secrets") from exc
        return cls(path, key, header, secrets)

    @classmethod
    def _create(cls, path: Path, passphrase: str, n: int) -> Vault:
        if len(passphrase) < MIN_PASSPHRASE:
            raise VaultError(
                "Vault passphrase too short",
                f"a new vault's passphrase needs at least {MIN_PASSPHRASE} characters",
                remediation="choose a longer passphrase; it is all that protects the secrets in the file",
            )
        salt = os.urandom(16)
        kdf = {"name": "scrypt", "salt": _b64(salt), "n": n, "r": SCRYPT_R, "p": SCRYPT_P, "length": KEY_LENGTH}
        header = {"format": FORMAT, "version": VERSION, "kdf": kdf}
        vault = cls(path, _derive(passphrase, salt, n, SCRYPT_R, SCRYPT_P), header, {})
        vault._write()
        return vault

    # -- reading and writing -------------------------------------------------------------------------------------
    def get(self, name: str) -> str | None:
        with self._lock:
            return self._secrets.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._secrets)

    def set(self, name: str, value: str) -> None:
        with self._lock:
            self._secrets[name] = value
            self._write()

    def delete(self, name: str) -> bool:
        with self._lock:
            if self._secrets.pop(name, None) is None:
                return False
            self._write()
            return True

    def _write(self) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(12)
        plain = json.dumps({"secrets": self._secrets}, sort_keys=True).encode("utf-8")
        ciphertext = AESGCM(self._key).encrypt(nonce, plain, _aad(self._header))
        doc = {**self._header, "cipher": "AES-256-GCM", "nonce": _b64(nonce), "ciphertext": _b64(ciphertext)}
        atomic_write_bytes(self.path, (json.dumps(doc, indent=1) + "\n").encode("utf-8"), mode=0o600)


def _aad(header: dict[str, Any]) -> bytes:
    """The header as authenticated data: the parameters the key came from cannot be changed unnoticed."""
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")


def read_passphrase(*, file: Path | None = None, fd: int | None = None) -> str:
    """The passphrase from the first line of ``file`` or of what file descriptor ``fd`` carries (read to its end,
    then closed), without its line ending."""
    try:
        if file is not None:
            text = Path(file).read_text(encoding="utf-8")
            where = str(file)
        elif fd is not None:
            with open(fd, encoding="utf-8", closefd=True) as stream:
                text = stream.read()
            where = f"file descriptor {fd}"
        else:
            raise ValueError("a passphrase file or file descriptor is needed")
    except (OSError, UnicodeDecodeError) as exc:
        raise VaultError(
            "Cannot read the vault passphrase",
            f"{exc}",
            remediation="give a readable --passphrase-file, or an open --passphrase-fd",
        ) from exc
    passphrase = text.splitlines()[0] if text else ""
    if not passphrase:
        raise VaultError(
            "Empty vault passphrase",
            f"{where} holds no passphrase on its first line",
            remediation="write the passphrase on the first line",
        )
    return passphrase
