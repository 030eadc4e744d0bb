"""Streaming SHA-256 and signature checks, as `openssl dgst -sha256 -verify KEY -signature SIG FILE` does them.

One pass over the file computes the digest used both for the recorded sha256 and for the signature check
(the signature is verified against the pre-hashed digest), so a multi-gigabyte bundle is read once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.progress import Reporter

CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    digest: bytes
    size: int


def hash_file(path: Path, report: Reporter | None = None, cancel: CancelToken | None = None) -> FileDigest:
    """SHA-256 of ``path``, streamed with byte progress and cancellation between chunks."""
    try:
        size = path.stat().st_size
        fh = path.open("rb")
    except OSError as exc:
        raise WizardError(
            "File unreadable", f"{path}: {exc.strerror or exc}", remediation="check the path and permissions"
        ) from exc
    h = hashlib.sha256()
    done = 0
    with fh:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while True:
            if cancel is not None:
                cancel.raise_if_cancelled()
            n = fh.readinto(buf)
            if not n:
                break
            h.update(view[:n])
            done += n
            if report is not None:
                report.transfer(done, max(size, done))
    if done != size:
        raise WizardError(
            "File changed while reading",
            f"{path} was {size} bytes when the check began and {done} when it ended",
            remediation="wait until the download or copy has finished, then retry",
        )
    return FileDigest(h.hexdigest(), h.digest(), done)


def load_public_key(path: Path) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WizardError("Public key unreadable", f"{path}: {exc.strerror or exc}") from exc
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise WizardError(
            "Not a public key",
            f"{path} is not a PEM public key ({exc})",
            remediation="use spectro_public_key.pem from Artifact Studio's Bundle Verification Instructions",
        ) from exc
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise WizardError(
            "Unsupported key type",
            f"{path} holds a {type(key).__name__}; `openssl dgst -sha256` signatures use RSA or EC keys",
            remediation="use spectro_public_key.pem from Artifact Studio",
        )
    return key


def verify_signature(
    key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey, digest: bytes, signature: bytes, *, what: str
) -> None:
    """Check a signature over a SHA-256 ``digest``; raises a :class:`WizardError` that says what to do."""
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        else:
            key.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    except InvalidSignature:
        raise WizardError(
            "Signature check failed",
            f"{what} does not match its signature",
            remediation="the file is damaged or not the one that was signed: download it and its .sig.bin again",
        ) from None
