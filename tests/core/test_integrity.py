from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.projects import make_key, random_file, sign_file
from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled, WizardError
from wizard.core.integrity import hash_file, load_public_key, verify_signature
from wizard.core.progress import Progress, TaskStatus
from wizard.install.steps.verify import VerifyFileJob


def test_hash_matches_hashlib_and_reports_bytes(tmp_path: Path) -> None:
    import hashlib

    f = random_file(tmp_path / "x.bin", 9 * 1024 * 1024 + 7)
    progress = Progress()
    progress.add_task("h", "hash", "s")
    digest = hash_file(f, progress.root().child(0, 1, task="h"))
    assert digest.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()
    t = progress.snapshot().task("h")
    assert t is not None and t.bytes_done == f.stat().st_size and t.fraction == 1.0


def test_rsa_signature_good_tampered_and_truncated(tmp_path: Path) -> None:
    key, pub = make_key(tmp_path)
    bundle = random_file(tmp_path / "content.tar.zst", 3 * 1024 * 1024)
    sig = tmp_path / "content.tar.sig.bin"
    sign_file(key, bundle, sig)
    job = VerifyFileJob("v", "Content", bundle, signature=sig, public_key=pub)
    result = job.run(Progress().root(), CancelToken())
    assert result["signature_verified"] is True
    # Tampered: one byte flipped in the middle.
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bundle.write_bytes(bytes(data))
    with pytest.raises(WizardError, match="does not match its signature"):
        VerifyFileJob("v", "Content", bundle, signature=sig, public_key=pub).run(Progress().root(), CancelToken())
    # Truncated.
    bundle.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(WizardError, match="does not match its signature"):
        VerifyFileJob("v", "Content", bundle, signature=sig, public_key=pub).run(Progress().root(), CancelToken())


def test_ec_keys_and_openssl_compatibility(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pub = tmp_path / "ec.pem"
    pub.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    f = random_file(tmp_path / "p.zst", 1024 * 1024)
    sig = key.sign(f.read_bytes(), ec.ECDSA(hashes.SHA256()))  # what `openssl dgst -sha256 -sign` produces
    digest = hash_file(f)
    verify_signature(load_public_key(pub), digest.digest, sig, what="p.zst")


def test_checksum_mismatch_and_bad_key(tmp_path: Path) -> None:
    f = random_file(tmp_path / "a.iso", 1024)
    with pytest.raises(WizardError, match="Checksum mismatch"):
        VerifyFileJob("v", "ISO", f, signature=None, public_key=None, expected_sha256="0" * 64).run(
            Progress().root(), CancelToken()
        )
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(WizardError, match="not a PEM public key"):
        load_public_key(bad)


def test_cancel_between_chunks(tmp_path: Path) -> None:
    f = tmp_path / "sparse.bin"
    with f.open("wb") as fh:
        fh.truncate(256 * 1024 * 1024)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        hash_file(f, None, token)


def test_fingerprint_changes_when_the_file_changes(tmp_path: Path) -> None:
    f = random_file(tmp_path / "a.iso", 1024)
    job = VerifyFileJob("v", "ISO", f, signature=None, public_key=None)
    before = job.fingerprint()
    os.utime(f, ns=(1, 1))
    assert job.fingerprint() != before
    assert TaskStatus.DONE.value == "done"
