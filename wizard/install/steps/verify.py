"""Verify the ISO and bundles before they are used: sha256 (recorded) and signature, streamed with progress."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.integrity import hash_file, load_public_key, verify_signature
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.progress import Reporter


def _stat_id(path: Path | None) -> str:
    if path is None:
        return "-"
    try:
        st = path.stat()
    except OSError:
        return f"{path}:missing"
    return f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}"


class VerifyFileJob(Job):
    """Hash one file and, when it has a signature, check it against the signing key."""

    def __init__(
        self,
        job_id: str,
        name: str,
        path: Path,
        *,
        signature: Path | None,
        public_key: Path | None,
        expected_sha256: str = "",
    ) -> None:
        self.id = job_id
        self.name = name
        self.path = path
        self.signature = signature
        self.public_key = public_key
        self.expected_sha256 = expected_sha256
        try:
            self.weight = max(1.0, path.stat().st_size / (64 * 1024 * 1024))
        except OSError:
            self.weight = 1.0

    def fingerprint(self) -> str:
        checked = (
            _stat_id(self.signature) + "|" + _stat_id(self.public_key) if self.signature and self.public_key else "-"
        )
        return f"{_stat_id(self.path)}|{checked}|{self.expected_sha256}"

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any]:
        key = load_public_key(self.public_key) if self.signature and self.public_key else None
        digest = hash_file(self.path, report.child(0.0, 0.99), cancel)
        if self.expected_sha256 and digest.sha256 != self.expected_sha256:
            raise WizardError(
                "Checksum mismatch",
                f"{self.path.name} has sha256 {digest.sha256}, the project expects {self.expected_sha256}",
                remediation="download the file again, or correct the sha256 in the project",
            )
        verified = False
        if key is not None and self.signature is not None:
            try:
                signature = self.signature.read_bytes()
            except OSError as exc:
                raise WizardError("Signature unreadable", f"{self.signature}: {exc.strerror or exc}") from exc
            verify_signature(key, digest.digest, signature, what=self.path.name)
            verified = True
        report.finish("signature verified" if verified else "sha256 recorded")
        return {"sha256": digest.sha256, "size": digest.size, "signature_verified": verified}


class VerifyFilesStep(Step):
    id = "verify"
    title = "Verify files"
    kind = StepKind.PREFLIGHT
    weight = 1.0
    parallel = 2  # hashing is disk- and CPU-bound; two readers keep one disk busy without thrashing
    #: Hashing (and checking signatures) on this machine, at about this many bytes a second from one disk.
    hash_rate = 150 * 1024 * 1024

    def expected_duration(self, ctx: StepContext) -> float:
        size = 0
        for _path, ref in ctx.project.files.all():
            try:
                size += ref.path.stat().st_size
            except OSError:
                continue  # the job reports the missing file
        return 0.2 + size / self.hash_rate  # local work: as long in a rehearsal as on a real install

    def jobs(self, ctx: StepContext) -> list[Job]:
        files = ctx.project.files
        out: list[Job] = []
        for field_path, ref in files.all():
            noun = {
                "files.iso": "Appliance ISO",
                "files.content_bundle": "Content bundle",
            }.get(field_path, f"Pack {ref.path.name}")
            out.append(
                VerifyFileJob(
                    f"verify/{field_path}",
                    noun,
                    ref.path,
                    signature=ref.signature,
                    public_key=files.public_key,
                    expected_sha256=ref.sha256,
                )
            )
        return out
