"""SFTP staging: resumable uploads against a real OpenSSH sshd (``-m ssh``), and the whole staging path — stage,
sha256 on the node, on-node submit into the Local UI — against the lab (``-m lab``)."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_localui_client import Harness, make_harness
from tests.reliability.transfer_peers import CuttingProxy, SftpOpenSSHServer
from tests.support.projects import make_key, random_file, sign_file
from wizard.appliance import staging
from wizard.appliance.bundles import SftpTransfer, UploadContentJob
from wizard.appliance.localui import Endpoint
from wizard.appliance.sftpupload import (
    ResumableUpload,
    SSHTarget,
    StagedFileDamaged,
    StagingError,
    Tuning,
    resume_point,
)
from wizard.appliance.ssh import SSHAuthFailed, SSHCredentials
from wizard.appliance.sshstream import BLOCK
from wizard.appliance.staging import StageAndSubmit, StagingPlan, remote_sha256
from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled
from wizard.core.progress import Progress, Reporter
from wizard.core.trust import TrustStore
from wizard.lab import Lab, ManualClock
from wizard.lab.node import LocalUIError
from wizard.lab.sftp import StagingCommands, attach_staging

MiB = 1024 * 1024
# A small rollback so resumes show where they start; quick retries so drops cost little time.
FAST = Tuning(rollback=1 * MiB, openssh_from=0, backoff_initial=0.02, backoff_max=0.1, io_timeout=10)
CLIENTS = ("openssh", "paramiko")


def data_cuts(client: str, at: int) -> list[int]:
    """CuttingProxy cuts for the connection carrying the bytes: paramiko streams on its session (the first
    connection); OpenSSH's ssh opens the second, after the paramiko session that checked the host key."""
    return [at] if client == "paramiko" else [10**12, at]


def settled_size(path: Path, quiet: float = 0.3) -> int:
    """The file's size once it stopped changing: a node's dd may still drain what reached it before a cancel."""
    size, still = -1, 0.0
    while still < quiet:
        now = path.stat().st_size
        still = still + 0.05 if now == size else 0.0
        size = now
        time.sleep(0.05)
    return size


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def progress_for(on_change: Callable[[Progress], None] | None = None) -> Progress:
    progress = Progress(on_change=(lambda: on_change(progress)) if on_change else None)
    progress.add_task("t", "staging", "content")
    return progress


def reporter(progress: Progress | None = None) -> Reporter:
    """A reporter on task "t", so byte counts are recorded in the snapshot."""
    return (progress or progress_for()).root().child(0.0, 1.0, task="t")


# -- OpenSSH -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sshd() -> Iterator[SftpOpenSSHServer]:
    with SftpOpenSSHServer() as server:
        yield server


@pytest.fixture
def remote_dir(sshd: SftpOpenSSHServer) -> Iterator[Path]:
    """A folder the sshd's test account writes to (its home is /tmp), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="wizard-staging-", dir="/tmp"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def openssh_target(server: SftpOpenSSHServer, tmp_path: Path, port: int | None = None) -> SSHTarget:
    return SSHTarget(
        "127.0.0.1",
        port or server.port,
        SSHCredentials(server.user, key_path=server.client_key),
        TrustStore(tmp_path / "config"),
        expected_fingerprint=server.fingerprint,
        connect_timeout=5,
    )


@pytest.mark.ssh
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("login", ["key", "password"])
def test_upload_then_node_sha256_matches(
    sshd: SftpOpenSSHServer, remote_dir: Path, tmp_path: Path, client: str, login: str
) -> None:
    local = random_file(tmp_path / "bundle.tar.zst", 5 * MiB + 4321)
    remote = str(remote_dir / "staged" / local.name)
    target = openssh_target(sshd, tmp_path)
    if login == "password":  # through SSH_ASKPASS for OpenSSH: never on a command line or on disk
        target = replace(target, credentials=SSHCredentials(sshd.user, password=sshd.password))
    tuning = replace(FAST, client=client)
    result = ResumableUpload(target, local, remote, tuning=tuning).run(reporter(), CancelToken())
    assert result.resumed_from == [0] and result.drops == 0 and result.sent == local.stat().st_size
    assert result.client == client
    assert result.cipher.startswith("aes128-gcm")  # the faster cipher is negotiated with OpenSSH's sshd
    assert not Path(remote + ".part").exists()
    with target.client() as ssh:
        assert remote_sha256(ssh, remote, timeout=30) == sha256(local)
    again = ResumableUpload(target, local, remote, tuning=tuning).run(reporter(), CancelToken())
    assert again.already_there and again.sent == 0


@pytest.mark.ssh
def test_openssh_is_used_only_as_the_session_logged_in(
    sshd: SftpOpenSSHServer, remote_dir: Path, tmp_path: Path
) -> None:
    """A key held only in memory cannot be given to ssh: the built-in client carries the bytes instead."""
    import paramiko

    local = random_file(tmp_path / "bundle.bin", 2 * MiB + 5)
    target = openssh_target(sshd, tmp_path)
    in_memory = SSHCredentials(sshd.user, pkey=paramiko.Ed25519Key.from_private_key_file(str(sshd.client_key)))
    target = replace(target, credentials=in_memory)
    result = ResumableUpload(target, local, str(remote_dir / "m.bin"), tuning=FAST).run(reporter(), CancelToken())
    assert result.client == "paramiko" and sha256(remote_dir / "m.bin") == sha256(local)
    with pytest.raises(StagingError, match="OpenSSH client unusable"):
        ResumableUpload(target, local, str(remote_dir / "n.bin"), tuning=replace(FAST, client="openssh")).run(
            reporter(), CancelToken()
        )


@pytest.mark.ssh
def test_a_key_openssh_refuses_falls_back_to_the_built_in_client(
    sshd: SftpOpenSSHServer, remote_dir: Path, tmp_path: Path
) -> None:
    """ssh refuses a private key others can read; paramiko logs in with it. The upload goes on through paramiko
    (before any byte went through ssh), unless OpenSSH was asked for explicitly."""
    key = tmp_path / "readable_key"
    shutil.copy(sshd.client_key, key)
    key.chmod(0o644)
    target = replace(openssh_target(sshd, tmp_path), credentials=SSHCredentials(sshd.user, key_path=key))
    local = random_file(tmp_path / "bundle.bin", 3 * MiB + 3)
    result = ResumableUpload(target, local, str(remote_dir / "k.bin"), tuning=FAST).run(reporter(), CancelToken())
    assert result.client == "paramiko" and result.drops == 0 and sha256(remote_dir / "k.bin") == sha256(local)
    with pytest.raises(StagingError, match="OpenSSH client refused") as err:
        ResumableUpload(target, local, str(remote_dir / "l.bin"), tuning=replace(FAST, client="openssh")).run(
            reporter(), CancelToken()
        )
    assert "Permission denied" in err.value.message or "UNPROTECTED" in err.value.message


@pytest.mark.ssh
def test_wrong_password_and_unwritable_folder_are_not_retried(
    sshd: SftpOpenSSHServer, remote_dir: Path, tmp_path: Path
) -> None:
    local = random_file(tmp_path / "bundle.bin", 1 * MiB)
    good = openssh_target(sshd, tmp_path)
    bad = SSHTarget(good.host, good.port, SSHCredentials(sshd.user, password="wrong"), good.trust,
                    expected_fingerprint=sshd.fingerprint, connect_timeout=5)  # fmt: skip
    slow = Tuning(backoff_initial=30, backoff_max=30)  # a retry would make this test time out
    with pytest.raises(SSHAuthFailed):
        ResumableUpload(bad, local, str(remote_dir / "x.bin"), tuning=slow).run(reporter(), CancelToken())
    with pytest.raises(StagingError, match="Cannot write the staging folder"):
        ResumableUpload(good, local, "/proc/x.bin", tuning=slow).run(reporter(), CancelToken())


@pytest.mark.ssh
@pytest.mark.parametrize("client", CLIENTS)
def test_resume_after_a_drop_mid_transfer(
    sshd: SftpOpenSSHServer, remote_dir: Path, tmp_path: Path, client: str
) -> None:
    local = random_file(tmp_path / "bundle.bin", 8 * MiB + 17)
    remote = str(remote_dir / local.name)
    tuning = replace(FAST, client=client)
    with CuttingProxy((sshd.host, sshd.port), cuts=data_cuts(client, 5 * MiB)) as proxy:
        target = openssh_target(sshd, tmp_path, proxy.port)
        result = ResumableUpload(target, local, remote, tuning=tuning).run(reporter(), CancelToken())
        assert proxy.cut_count == 1
    assert result.drops == 1 and len(result.resumed_from) == 2 and result.client == client
    resumed = result.resumed_from[1]
    # It resumed from what the node had, less the rollback, on a block: not from the start.
    assert 0 < resumed < 5 * MiB and resumed % BLOCK == 0
    assert sha256(Path(remote)) == sha256(local)


@pytest.mark.ssh
@pytest.mark.parametrize("client", CLIENTS)
def test_cancel_keeps_the_part_and_a_later_run_resumes(
    sshd: SftpOpenSSHServer, remote_dir: Path, tmp_path: Path, client: str
) -> None:
    local = random_file(tmp_path / "bundle.bin", 192 * MiB)  # still on its way at the first progress report
    remote = str(remote_dir / local.name)
    target = openssh_target(sshd, tmp_path)
    cancel = CancelToken()
    tuning = replace(FAST, client=client)

    def cancel_early(progress: Progress) -> None:
        task = progress.snapshot().task("t")
        if task is not None and (task.bytes_done or 0) > 0:
            cancel.cancel("test")

    with pytest.raises(Cancelled):
        ResumableUpload(target, local, remote, tuning=tuning).run(reporter(progress_for(cancel_early)), cancel)
    part = Path(remote + ".part")
    assert part.exists() and not Path(remote).exists()
    have = settled_size(part)
    assert 0 < have < local.stat().st_size

    result = ResumableUpload(target, local, remote, tuning=tuning).run(reporter(), CancelToken())
    assert result.resumed_from == [resume_point(have, local.stat().st_size, FAST.rollback)]
    assert sha256(Path(remote)) == sha256(local)


@pytest.mark.ssh
def test_a_file_changing_underway_is_refused(sshd: SftpOpenSSHServer, remote_dir: Path, tmp_path: Path) -> None:
    local = random_file(tmp_path / "bundle.bin", 24 * MiB)
    grown: list[int] = []

    def grow(progress: Progress) -> None:
        task = progress.snapshot().task("t")
        if task is not None and (task.bytes_done or 0) > 0 and not grown:
            grown.append(1)
            with local.open("ab") as fh:
                fh.write(b"late")

    with pytest.raises(StagingError, match="File changed while staging"):
        ResumableUpload(openssh_target(sshd, tmp_path), local, str(remote_dir / "g.bin"), tuning=FAST).run(
            reporter(progress_for(grow)), CancelToken()
        )
    assert grown and not (remote_dir / "g.bin").exists()


@pytest.mark.ssh
def test_wrong_remote_sha256_is_detected_and_the_copy_removed(
    sshd: SftpOpenSSHServer, remote_dir: Path, tmp_path: Path
) -> None:
    local = random_file(tmp_path / "bundle.bin", 3 * MiB)
    target = openssh_target(sshd, tmp_path)
    plan = StagingPlan(remote_dir=str(remote_dir))
    unused = Endpoint("node", "127.0.0.1", "user", "unused")
    job = StageAndSubmit(target, unused, local, sha256(local), trust=target.trust, plan=plan, tuning=FAST)
    with target.client() as ssh:
        assert job.stage(reporter(), CancelToken(), ssh) == str(remote_dir / local.name)
        staged = remote_dir / local.name
        with staged.open("r+b") as fh:  # the node's disk flips a byte
            fh.seek(1234)
            fh.write(b"\x00" if fh.read(1) != b"\x00" else b"\x01")
        with pytest.raises(StagedFileDamaged, match="Staged file damaged") as info:
            job.stage(reporter(), CancelToken(), ssh)
        assert sha256(local) in info.value.message
        assert not staged.exists()  # removed, so the next run sends it again
        job.stage(reporter(), CancelToken(), ssh)
    assert sha256(staged) == sha256(local)


# -- The lab: the whole staging path -------------------------------------------------------------------------------


@pytest.fixture
def lab(tmp_path: Path, clock: ManualClock) -> Iterator[Lab]:
    with Lab(1, tmp_path / "lab", clock, socket_timeout=10.0, tick_interval=None) as started:
        yield started


@pytest.fixture
def harness(lab: Lab, clock: ManualClock, tmp_path: Path) -> Harness:
    return make_harness(lab, clock, tmp_path / "config")


@pytest.fixture
def commands(lab: Lab) -> StagingCommands:
    return attach_staging(lab.nodes[0])


def make_bundle(folder: Path, size: int) -> tuple[Path, Path, Path]:
    key, public = make_key(folder)
    path = random_file(folder / "core-content-4.7.16.tar.zst", size)
    signature = folder / "core-content-4.7.16.tar.zst.sig.bin"
    sign_file(key, path, signature)
    return path, signature, public


@pytest.fixture
def bundle(tmp_path: Path) -> tuple[Path, Path, Path]:
    return make_bundle(tmp_path, 6 * MiB + 999)


def lab_transfer(lab: Lab, harness: Harness, tuning: Tuning = FAST) -> SftpTransfer:
    node = lab.nodes[0]
    target = SSHTarget(
        "127.0.0.1",
        node.ssh.port,
        SSHCredentials("kairos", password="kairos"),
        harness.connector.trust,
        expected_fingerprint=node.ssh.fingerprint,
        connect_timeout=5,
    )
    return SftpTransfer(target, StagingPlan(), tuning)


def staged_job(harness: Harness, lab: Lab, bundle: tuple[Path, Path, Path], **kw: Any) -> UploadContentJob:
    path, signature, public = bundle
    return UploadContentJob(
        harness.endpoint(0),
        path,
        harness.connector,
        signature=signature,
        public_key=public,
        poll_interval=0.01,
        clock=harness.clock,
        transfer=lab_transfer(lab, harness),
        **kw,
    )


def run_job(job: UploadContentJob, cancel: CancelToken | None = None, progress: Progress | None = None) -> Any:
    return job.run(reporter(progress), cancel or CancelToken())


class Spy:
    """Records the node commands and, on curl, the token the header file carries (read as the node would)."""

    def __init__(self, lab: Lab, commands: StagingCommands) -> None:
        self.node = lab.nodes[0]
        self.commands: list[str] = []
        self.tokens: list[str] = []
        self.before_curl: Callable[[str], None] | None = None
        shell = self.node.ssh.shell
        original_run = shell.run
        original_curl = commands.curl

        def run(command: str) -> tuple[int, str, str]:
            self.commands.append(command)
            return original_run(command)

        def curl(args: list[str]) -> tuple[int, str, str]:
            header = args[args.index("--header") + 1].removeprefix("@")
            path = commands.root / header
            assert oct(path.stat().st_mode & 0o777) == oct(0o600)
            token = path.read_text().split(":", 1)[1].strip()
            self.tokens.append(token)
            if self.before_curl is not None:
                self.before_curl(token)
            return original_curl(args)

        shell.run = run  # type: ignore[method-assign]
        shell.extra["curl"] = curl


@pytest.mark.lab
def test_stage_verify_and_submit_from_the_node(
    harness: Harness, lab: Lab, commands: StagingCommands, bundle: tuple[Path, Path, Path]
) -> None:
    spy = Spy(lab, commands)
    path, signature, _ = bundle
    facts = run_job(staged_job(harness, lab, bundle))
    digest = sha256(path)
    assert facts["transfer"] == "sftp" and facts["uploaded"] is True and facts["sha256"] == digest
    assert facts["staging_client"] == "openssh"  # the jump host's ssh, logged in with the node's password
    stored = lab.nodes[0].state.uploaded
    assert stored is not None and stored.sha256 == digest and stored.file_name == path.name
    assert stored.signature_path is not None and stored.signature_path.read_bytes() == signature.read_bytes()
    assert commands.submits == 1
    assert any(c.startswith(f"sha256sum -- palette-wizard-staging/{path.name}") for c in spy.commands)
    # The token never shows on a command line, its header file is gone, and the session was logged out.
    (token,) = spy.tokens
    assert token and not any(token in c for c in spy.commands)
    assert [c for c in spy.commands if c.startswith("curl")] and "--pinnedpubkey" in spy.commands[-1]
    leftovers = list((commands.root / "palette-wizard-staging").iterdir())
    assert leftovers == []  # the staged copies were removed once the node confirmed them
    with pytest.raises(LocalUIError):
        lab.nodes[0].state.authenticate(token)

    again = run_job(staged_job(harness, lab, bundle))
    assert again["uploaded"] is False and commands.submits == 1  # already on the node: nothing is sent


@pytest.mark.lab
def test_a_token_the_node_no_longer_accepts_is_reported(
    harness: Harness, lab: Lab, commands: StagingCommands, bundle: tuple[Path, Path, Path]
) -> None:
    spy = Spy(lab, commands)
    state = lab.nodes[0].state

    def revoke(token: str) -> None:
        state.logout(state.authenticate(token))

    spy.before_curl = revoke
    with pytest.raises(StagingError, match="refused the bundle") as info:
        run_job(staged_job(harness, lab, bundle))
    assert "401" in info.value.message
    assert state.uploaded is None


@pytest.mark.lab
def test_a_changed_node_key_stops_the_submit(
    harness: Harness,
    lab: Lab,
    commands: StagingCommands,
    bundle: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(staging, "spki_pin", lambda pem: "sha256//" + "A" * 43 + "=")
    with pytest.raises(StagingError, match="On-node submit failed") as info:
        run_job(staged_job(harness, lab, bundle))
    assert "exit 90" in info.value.message and "public key does not match" in info.value.details
    assert lab.nodes[0].state.uploaded is None and commands.submits == 0


@pytest.mark.lab
def test_cancel_while_staging(harness: Harness, lab: Lab, commands: StagingCommands, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path, 96 * MiB)  # big enough to be cancelled midway at the lab node's pace
    cancel = CancelToken()

    def cancel_mid(progress: Progress) -> None:
        task = progress.snapshot().task("t")
        if task is not None and task.message.startswith("Staging") and (task.bytes_done or 0) > 0:
            cancel.cancel("test")

    with pytest.raises(Cancelled):
        run_job(staged_job(harness, lab, bundle), cancel, progress_for(cancel_mid))
    assert lab.nodes[0].state.uploaded is None and commands.submits == 0
    part = commands.root / "palette-wizard-staging" / (bundle[0].name + ".part")
    assert part.exists() and 0 < settled_size(part) < bundle[0].stat().st_size


@pytest.mark.lab
def test_drop_mid_staging_resumes_on_the_lab(
    harness: Harness, lab: Lab, commands: StagingCommands, bundle: tuple[Path, Path, Path]
) -> None:
    node = lab.nodes[0]
    with CuttingProxy(("127.0.0.1", node.ssh.port), cuts=data_cuts("openssh", 5 * MiB)) as proxy:
        transfer = lab_transfer(lab, harness)
        target = SSHTarget(
            "127.0.0.1",
            proxy.port,
            transfer.target.credentials,
            transfer.target.trust,
            expected_fingerprint=node.ssh.fingerprint,
            connect_timeout=5,
        )
        path, signature, public = bundle
        job = UploadContentJob(
            harness.endpoint(0),
            path,
            harness.connector,
            signature=signature,
            public_key=public,
            poll_interval=0.01,
            clock=harness.clock,
            transfer=SftpTransfer(target, StagingPlan(), FAST),
        )
        facts = run_job(job)
        assert proxy.cut_count == 1
    assert facts["staging_drops"] == 1 and facts["staging_resumed_from"][-1] > 0
    stored = node.state.uploaded
    assert stored is not None and stored.sha256 == sha256(path)


# -- The project option --------------------------------------------------------------------------------------------


def test_transfer_mode_is_read_from_the_project(tmp_path: Path) -> None:
    from tests.support.projects import base_doc
    from wizard.core.errors import ProjectInvalid
    from wizard.core.project import TransferMode, parse_project, project_to_dict
    from wizard.install.steps.localui import staging_dir, transfer_mode

    def files(**extra: Any) -> dict[str, Any]:
        doc = base_doc()
        doc["network"]["ntp"] = ["pool.ntp.org"]
        doc["appliance"] = {"password": {"secret": "node-pw"}}
        doc["files"] = dict(extra)
        return doc

    default = parse_project(files(), base=tmp_path).project
    assert transfer_mode(default) == "direct" and staging_dir(default) == "palette-wizard-staging"
    staged = parse_project(files(transfer="SFTP", staging_dir="/usr/local/staging"), base=tmp_path).project
    assert staged.files.transfer is TransferMode.SFTP and transfer_mode(staged) == "sftp"
    assert staging_dir(staged) == "/usr/local/staging"
    saved = project_to_dict(staged, tmp_path)["files"]
    assert saved["transfer"] == "sftp" and saved["staging_dir"] == "/usr/local/staging"
    assert "transfer" not in project_to_dict(default, tmp_path)["files"]
    for bad, path in (({"transfer": "ftp"}, "files.transfer"), ({"staging_dir": "x"}, "files.staging_dir")):
        with pytest.raises(ProjectInvalid) as err:
            parse_project(files(**bad), base=tmp_path)
        assert path in {p.path for p in err.value.problems}, err.value.problems
    with pytest.raises(ProjectInvalid) as err:
        parse_project(files(transfer="sftp", staging_dir="a;rm -rf ~"), base=tmp_path)
    assert "not a plain folder path" in str(err.value.problems)
