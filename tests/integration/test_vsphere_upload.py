"""ISO upload to the simulator's datastore: round trip, byte progress, skip on rerun, cancel, errors."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.integration.vcsim_peer import (  # noqa: F401 - fixtures
    PASSWORD,
    VcsimServer,
    vcsim_binary_fixture,
    vcsim_fixture,
    vcsim_tls_fixture,
)
from tests.reliability.transfer_peers import CuttingProxy
from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled, WizardError
from wizard.core.progress import Progress, TaskStatus
from wizard.core.trust import TrustStore
from wizard.providers.vsphere.datastore import CHUNK, SIDECAR_SUFFIX, DatastoreClient, datastore_path
from wizard.providers.vsphere.folderhttp import FolderConnection
from wizard.providers.vsphere.jobs import UploadIsoJob
from wizard.providers.vsphere.session import connect

pytestmark = pytest.mark.vsphere

SIZE = 24 * 1024 * 1024 + 12345  # not a multiple of the chunk size


@pytest.fixture
def trust(tmp_path: Path) -> TrustStore:
    return TrustStore(tmp_path / "config")


@pytest.fixture
def iso(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "palette-appliance.iso"
    data = os.urandom(SIZE)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def _datastore_dir(server: VcsimServer, trust: TrustStore) -> Path:
    with connect(server.settings(), PASSWORD, trust, lambda r: True, scheme=server.scheme) as session:
        return Path(session.datastore().info.url)


def _run(job: UploadIsoJob, cancel: CancelToken | None = None) -> tuple[dict[str, object], Progress, list[int]]:
    seen: list[int] = []
    progress = Progress()
    progress.add_task(job.id, job.name, "vsphere")
    progress.set_status(job.id, TaskStatus.RUNNING)
    reporter = progress.root().child(0.0, 1.0, task=job.id)
    original = reporter.transfer

    def spy(done: int, total: int, message: str | None = None) -> None:
        seen.append(done)
        original(done, total, message)

    reporter.transfer = spy  # type: ignore[method-assign]
    facts = job.run(reporter, cancel or CancelToken())
    assert facts is not None
    return dict(facts), progress, seen


def test_upload_round_trip_progress_and_skip(vcsim: VcsimServer, trust: TrustStore, iso: tuple[Path, str]) -> None:
    path, digest = iso
    settings = vcsim.settings(iso_folder="palette/isos")
    job = UploadIsoJob(
        settings, PASSWORD, trust, None, local_path=path, sha256=digest, remote_name="pma.iso", scheme="http"
    )
    assert job.id == "vsphere/iso"
    facts, progress, seen = _run(job)
    assert facts == {
        "datastore_path": "[LocalDS_0] palette/isos/pma.iso",
        "size": SIZE,
        "sha256": digest,
        "uploaded": True,
    }
    # Real byte counts, increasing, ending at the size; the task reached 1.0.
    assert seen[0] == 0 and seen[-1] == SIZE and seen == sorted(seen) and len(seen) >= SIZE // CHUNK + 1
    task = progress.snapshot().task(job.id)
    assert task is not None and task.fraction == 1.0 and task.bytes_done == SIZE and task.bytes_total == SIZE
    # Bytes equal both in the datastore's folder and over GET.
    folder = _datastore_dir(vcsim, trust)
    stored = folder / "palette" / "isos" / "pma.iso"
    assert stored.read_bytes() == path.read_bytes()
    got = httpx.get(
        f"http://{vcsim.host}:{vcsim.port}/folder/palette/isos/pma.iso",
        params={"dcPath": "DC0", "dsName": "LocalDS_0"},
    )
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == digest
    record = json.loads((folder / "palette" / "isos" / ("pma.iso" + SIDECAR_SUFFIX)).read_text())
    assert record == {"state": "complete", "sha256": digest, "size": SIZE}

    # A rerun sends nothing and says so.
    mtime = stored.stat().st_mtime_ns
    facts2, progress2, seen2 = _run(
        UploadIsoJob(
            settings, PASSWORD, trust, None, local_path=path, sha256=digest, remote_name="pma.iso", scheme="http"
        )
    )
    assert facts2["uploaded"] is False and seen2 == [SIZE]
    task2 = progress2.snapshot().task("vsphere/iso")
    assert task2 is not None and task2.fraction == 1.0 and "nothing sent" in task2.message
    assert stored.stat().st_mtime_ns == mtime

    # A file with another digest under the same name is uploaded again.
    path.write_bytes(os.urandom(SIZE))
    digest3 = hashlib.sha256(path.read_bytes()).hexdigest()
    facts3, _, _ = _run(
        UploadIsoJob(
            settings, PASSWORD, trust, None, local_path=path, sha256=digest3, remote_name="pma.iso", scheme="http"
        )
    )
    assert facts3["uploaded"] is True and stored.read_bytes() == path.read_bytes()


def test_damaged_or_truncated_datastore_file_is_not_skipped(
    vcsim: VcsimServer, trust: TrustStore, iso: tuple[Path, str]
) -> None:
    path, digest = iso
    settings = vcsim.settings()
    make = lambda: UploadIsoJob(  # noqa: E731
        settings, PASSWORD, trust, None, local_path=path, sha256=digest, remote_name="a.iso", scheme="http"
    )
    _run(make())
    stored = _datastore_dir(vcsim, trust) / settings.iso_folder / "a.iso"
    with stored.open("r+b") as fh:
        fh.truncate(SIZE // 2)
    facts, _, _ = _run(make())
    assert facts["uploaded"] is True and stored.read_bytes() == path.read_bytes()


def test_cancel_mid_upload_leaves_no_complete_claim(
    vcsim: VcsimServer, trust: TrustStore, iso: tuple[Path, str]
) -> None:
    path, digest = iso
    settings = vcsim.settings()
    cancel = CancelToken()
    job = UploadIsoJob(
        settings,
        PASSWORD,
        trust,
        None,
        local_path=path,
        sha256=digest,
        remote_name="c.iso",
        scheme="http",
        chunk=256 * 1024,
    )
    progress = Progress()
    progress.add_task(job.id, job.name, "vsphere")
    reporter = progress.root().child(0.0, 1.0, task=job.id)
    original = reporter.transfer
    cancelled_at: list[int] = []

    def cancel_midway(done: int, total: int, message: str | None = None) -> None:
        original(done, total, message)
        if done >= total // 3 and not cancelled_at:
            cancelled_at.append(done)
            cancel.cancel("test")

    reporter.transfer = cancel_midway  # type: ignore[method-assign]
    with pytest.raises(Cancelled):
        job.run(reporter, cancel)
    assert cancelled_at and cancelled_at[0] < SIZE
    folder = _datastore_dir(vcsim, trust) / settings.iso_folder
    record = json.loads((folder / ("c.iso" + SIDECAR_SUFFIX)).read_text())
    assert record["state"] == "incomplete"
    # The next run uploads everything and then claims completion.
    facts, _, _ = _run(
        UploadIsoJob(
            settings, PASSWORD, trust, None, local_path=path, sha256=digest, remote_name="c.iso", scheme="http"
        )
    )
    assert facts["uploaded"] is True
    assert (folder / "c.iso").read_bytes() == path.read_bytes()
    assert json.loads((folder / ("c.iso" + SIDECAR_SUFFIX)).read_text())["state"] == "complete"


def test_upload_over_https_with_pinned_certificate(
    vcsim_tls: VcsimServer, trust: TrustStore, iso: tuple[Path, str]
) -> None:
    path, digest = iso
    settings = vcsim_tls.settings()
    job = UploadIsoJob(settings, PASSWORD, trust, lambda r: True, local_path=path, sha256=digest, remote_name="t.iso")
    facts, _, _ = _run(job)
    assert facts["uploaded"] is True
    assert (_datastore_dir(vcsim_tls, trust) / settings.iso_folder / "t.iso").read_bytes() == path.read_bytes()


def test_wrong_datastore_is_a_clear_error(vcsim: VcsimServer, trust: TrustStore, iso: tuple[Path, str]) -> None:
    path, digest = iso
    job = UploadIsoJob(
        vcsim.settings(datastore="missing"),
        PASSWORD,
        trust,
        None,
        local_path=path,
        sha256=digest,
        remote_name="x.iso",
        scheme="http",
    )
    with pytest.raises(WizardError) as err:
        _run(job)
    assert err.value.title == "Datastore not found" and "LocalDS_0" in err.value.remediation


def test_seed_iso_job_has_its_own_id(vcsim: VcsimServer, trust: TrustStore, iso: tuple[Path, str]) -> None:
    path, digest = iso
    job = UploadIsoJob(
        vcsim.settings(),
        PASSWORD,
        trust,
        None,
        local_path=path,
        sha256=digest,
        remote_name="seed-node-1.iso",
        node="node-1",
        scheme="http",
    )
    assert job.id == "vsphere/seed/node-1" and job.node == "node-1"
    t = threading.Thread(target=_run, args=(job,))
    t.start()
    t.join(60)
    assert not t.is_alive()


def test_file_changing_underway_is_refused_and_never_claimed_complete(
    vcsim: VcsimServer, trust: TrustStore, iso: tuple[Path, str]
) -> None:
    """A file written to while it is sent (an ISO still downloading) is refused with a clear error: the server never
    receives a whole body of it, and the sidecar keeps saying "incomplete"."""
    path, digest = iso
    settings = vcsim.settings()
    job = UploadIsoJob(
        settings,
        PASSWORD,
        trust,
        None,
        local_path=path,
        sha256=digest,
        remote_name="g.iso",
        scheme="http",
        chunk=1024 * 1024,
    )
    progress = Progress()
    progress.add_task(job.id, job.name, "vsphere")
    reporter = progress.root().child(0.0, 1.0, task=job.id)
    original = reporter.transfer

    def grow_midway(done: int, total: int, message: str | None = None) -> None:
        original(done, total, message)
        if 0 < done < total and not grow_midway.done:  # type: ignore[attr-defined]
            grow_midway.done = True  # type: ignore[attr-defined]
            with path.open("ab") as fh:
                fh.write(b"more")

    grow_midway.done = False  # type: ignore[attr-defined]
    reporter.transfer = grow_midway  # type: ignore[method-assign]
    with pytest.raises(WizardError) as err:
        job.run(reporter, CancelToken())
    assert err.value.title == "File changed while uploading"
    assert f"{SIZE} bytes expected, {SIZE + 4} now" in err.value.message
    folder = _datastore_dir(vcsim, trust) / settings.iso_folder
    assert json.loads((folder / ("g.iso" + SIDECAR_SUFFIX)).read_text())["state"] == "incomplete"
    stored = folder / "g.iso"
    assert not stored.exists() or stored.stat().st_size < SIZE  # the last bytes never went out


def test_link_dropping_mid_upload_is_a_translated_error(
    trust: TrustStore, iso: tuple[Path, str], vcsim: VcsimServer
) -> None:
    """A link that drops mid-body is a vCenter connection error naming the address, not a raw socket error; the
    sidecar stays "incomplete" and a rerun over a sound link uploads everything."""
    path, digest = iso
    with CuttingProxy((vcsim.host, vcsim.port), cuts=[8 * 1024 * 1024] * 50) as proxy:  # SOAP calls stay far below
        settings = vcsim.settings(port=proxy.port)
        make = lambda: UploadIsoJob(  # noqa: E731
            settings, PASSWORD, trust, None, local_path=path, sha256=digest, remote_name="d.iso", scheme="http"
        )
        with pytest.raises(WizardError) as err:
            _run(make())
        assert proxy.cut_count >= 1
        assert err.value.title == "Cannot reach vCenter" and f"127.0.0.1:{proxy.port}" in err.value.message
        folder = _datastore_dir(vcsim, trust) / settings.iso_folder
        assert json.loads((folder / ("d.iso" + SIDECAR_SUFFIX)).read_text())["state"] == "incomplete"
        proxy.set_cuts([])
        facts, _, _ = _run(make())
    assert facts["uploaded"] is True and (folder / "d.iso").read_bytes() == path.read_bytes()


def test_a_cancel_ends_the_wait_between_retries_of_a_datastore_read(vcsim: VcsimServer, trust: TrustStore) -> None:
    """vCenter answering 503 with a long Retry-After is waited out between tries; a cancel ends that wait at once
    instead of after the policy's half minute."""
    asked = threading.Event()

    class Busy(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.set()
            self.send_response(503)
            self.send_header("Retry-After", "20")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cancel = CancelToken()
    try:
        with (
            connect(vcsim.settings(), PASSWORD, trust, lambda r: True, scheme=vcsim.scheme) as session,
            DatastoreClient(session, cancel=cancel) as client,
        ):
            client.http.close()
            client.http = FolderConnection("http", "127.0.0.1", server.server_address[1], cookie=session.cookie,
                                           ssl_context=None, timeout=5.0)  # fmt: skip
            threading.Thread(target=lambda: asked.wait(10) and cancel.cancel("operator"), daemon=True).start()
            with pytest.raises(Cancelled):
                client.size(datastore_path(vcsim.settings().datastore, "isos", "busy.iso"))
    finally:
        server.shutdown()
        server.server_close()
