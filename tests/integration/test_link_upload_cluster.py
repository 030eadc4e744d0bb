"""Link, content upload and cluster creation jobs against a 3-node lab, every exchange checked against the spec.

The lab runs on a ManualClock. Where a job waits on the clock (token expiry, content sync, deployment), a driver
thread moves the clock in steps and applies it with ``lab.tick()``; in lockstep mode each step waits until the job
has made another request, so every phase (including the reboot window) is observed whatever the machine's speed.
"""

from __future__ import annotations

import hashlib
import logging
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_localui_client import Exchange, Harness, SpecCheckingTransport, make_harness
from tests.support.projects import make_key, random_file, sign_file
from wizard.appliance.bundles import MultipartBody, UploadContentJob
from wizard.appliance.cluster import ClusterRequest, CreateClusterJob
from wizard.appliance.link import LinkJob
from wizard.appliance.localui import P_CLUSTER, P_LINK, P_LINK_TOKEN, P_UPLOAD, P_VALIDATE, Connector
from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled, WizardError
from wizard.core.jobs import Job
from wizard.core.progress import Progress, TaskState
from wizard.lab import Lab, ManualClock
from wizard.lab.cluster import REBOOT_WINDOW
from wizard.lab.links import LINK_OTP_TTL, decode_link_token
from wizard.lab.variants import Variant
from wizard.lab.variants import point as variation

pytestmark = pytest.mark.lab

SYNC_DELAY = 30.0
TIMELINE = 1000.0
VIP = "10.20.30.40"
POLL = 0.005
PASSWORD = "s3cret-Pass-9"  # a test value that must never reach a log


@pytest.fixture
def lab(tmp_path: Path, clock: ManualClock) -> Iterator[Lab]:
    with Lab(
        3,
        tmp_path / "lab",
        clock,
        content_sync_delay=SYNC_DELAY,
        socket_timeout=10.0,
        cluster_timeline=TIMELINE,
        tick_interval=None,
    ) as started:
        yield started


@pytest.fixture
def harness(lab: Lab, clock: ManualClock, tmp_path: Path) -> Harness:
    return make_harness(lab, clock, tmp_path / "config")


class ClockDriver:
    """Moves the lab's clock ``step`` seconds at a time and ticks the lab; with ``lockstep`` each step waits for the
    job to make at least one more request (answered or not) first."""

    def __init__(self, lab: Lab, clock: ManualClock, seen: list[Exchange], step: float, lockstep: bool = False) -> None:
        self.lab, self.clock, self.seen, self.step, self.lockstep = lab, clock, seen, step, lockstep
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.lockstep:
                mark = len(self.seen)
                while len(self.seen) == mark and not self._stop.wait(0.001):
                    pass
            elif self._stop.wait(0.002):
                return
            self.clock.advance(self.step)
            self.lab.tick()

    def __enter__(self) -> ClockDriver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def run(job: Job, cancel: CancelToken | None = None, progress: Progress | None = None) -> tuple[Any, TaskState]:
    progress = progress or Progress()
    progress.add_task("t", job.name, "step")
    facts = job.run(progress.root().child(0.0, 1.0, task="t"), cancel or CancelToken())
    task = progress.snapshot().task("t")
    assert task is not None
    return facts, task


def link_job(h: Harness, **kw: Any) -> LinkJob:
    return LinkJob(h.endpoint(0), [h.endpoint(1), h.endpoint(2)], h.connector, poll_interval=POLL, clock=h.clock, **kw)


def upload_job(h: Harness, bundle: Path, **kw: Any) -> UploadContentJob:
    return UploadContentJob(h.endpoint(0), bundle, h.connector, poll_interval=POLL, clock=h.clock, **kw)


def cluster_job(h: Harness, kubeconfig: Path, expected: float = 1800.0, **request: Any) -> CreateClusterJob:
    fields: dict[str, Any] = {
        "name": "palette-mgmt",
        "vip": VIP,
        "ntp_servers": ("pool.ntp.org",),
        "ssh_keys": ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9k operator@wizard",),
        "secrets": {"ociPackRegistryPassword": PASSWORD},
    }
    fields.update(request)
    return CreateClusterJob(
        h.endpoint(0),
        ClusterRequest(**fields),
        h.connector,
        kubeconfig,
        poll_interval=POLL,
        expected_duration=expected,
        clock=h.clock,
    )


def followers_of(lab: Lab) -> set[str]:
    return set(lab.nodes[0].state.link.followers)


# -- Link ----------------------------------------------------------------------------------------------------------


def test_link_three_nodes_then_skip(harness: Harness, lab: Lab) -> None:
    facts, task = run(link_job(harness))
    uids = [n.state.uid for n in lab.nodes]
    assert followers_of(lab) == set(uids[1:])
    assert facts["linked"] == ["node-2", "node-3"] and facts["already_linked"] == []
    assert facts["hosts"] == {"node-1": uids[0], "node-2": uids[1], "node-3": uids[2]} and facts["peers"] == 3
    assert task.fraction == 1.0 and "Ready and Healthy" in task.message
    links = harness.calls("POST", P_LINK)
    assert len(links) == 2 and len(harness.calls("POST", P_LINK_TOKEN)) == 2  # one fresh token per follower

    harness.seen.clear()
    facts, _ = run(link_job(harness))
    assert facts["linked"] == [] and facts["already_linked"] == ["node-2", "node-3"]
    assert not harness.calls("POST", P_LINK) and not harness.calls("POST", P_LINK_TOKEN)


def test_token_about_to_expire_is_waited_out(harness: Harness, lab: Lab, clock: ManualClock) -> None:
    with harness.connector.open(harness.endpoint(0)) as leader:
        stale = leader.generate_link_token()
    clock.advance(LINK_OTP_TTL - 5)  # the leader would hand out this token with 5 s left
    with ClockDriver(lab, clock, harness.seen, step=1.0):
        facts, _ = run(link_job(harness))
    assert facts["linked"] == ["node-2", "node-3"]
    used = {otp.value for otp in lab.nodes[0].state.link.otps.values() if otp.used_by}
    assert len(used) == 2 and decode_link_token(stale.token).otp not in used
    assert all(e.status == 200 for e in harness.calls("POST", P_LINK))


def test_token_expired_in_flight_is_replaced(tmp_path: Path, lab: Lab, clock: ManualClock) -> None:
    # The first token expires between generation and use (slow link, a paused VM): the job takes a new one.
    seen: list[Exchange] = []
    expired_once = threading.Event()

    class Slow(httpx.BaseTransport):
        def __init__(self, inner: httpx.BaseTransport) -> None:
            self.inner = inner

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = self.inner.handle_request(request)
            if request.url.path == P_LINK_TOKEN and not expired_once.is_set():
                expired_once.set()
                clock.advance(LINK_OTP_TTL + 1)
            return response

    h = make_harness(lab, clock, tmp_path / "config")
    h.connector = Connector(
        h.connector.trust,
        h.connector.confirm,
        clock=clock,
        wrap_transport=lambda inner: SpecCheckingTransport(Slow(inner), seen, lab.appliance.spec),
    )
    h.seen = seen
    facts, _ = run(link_job(h))
    assert facts["linked"] == ["node-2", "node-3"] and len(followers_of(lab)) == 2
    assert [e.status for e in h.calls("POST", P_LINK)] == [400, 200, 200]
    assert len(h.calls("POST", P_LINK_TOKEN)) == 3


def test_follower_linked_elsewhere_is_reported(harness: Harness, lab: Lab) -> None:
    with harness.connector.open(harness.endpoint(2)) as other, harness.connector.open(harness.endpoint(1)) as f:
        f.link(other.generate_link_token().token)
    with pytest.raises(WizardError, match="linked to another leader"):
        run(LinkJob(harness.endpoint(0), [harness.endpoint(1)], harness.connector, poll_interval=POLL))


# -- Content upload ------------------------------------------------------------------------------------------------


@pytest.fixture
def signed_bundle(tmp_path: Path) -> tuple[Path, Path, Path]:
    key, public = make_key(tmp_path)
    bundle = random_file(tmp_path / "core-content-4.7.16.tar.zst", 20 * 1024 * 1024 + 12345)
    signature = tmp_path / "core-content-4.7.16.tar.zst.sig.bin"
    sign_file(key, bundle, signature)
    return bundle, signature, public


def test_multipart_body_length_is_exact(tmp_path: Path) -> None:
    a = random_file(tmp_path / 'we"ird\nname.bin', 3 * 1024 * 1024 + 7)
    b = random_file(tmp_path / "sig.bin", 256)
    body = MultipartBody({"uploadFile": a, "signature": b}, boundary="XyZ")
    data = b"".join(body.stream(CancelToken()))
    assert len(data) == len(body)
    assert data.startswith(b'--XyZ\r\nContent-Disposition: form-data; name="uploadFile"; filename="we_ird_name.bin"')
    assert data.endswith(b"\r\n--XyZ--\r\n") and a.read_bytes() in data


def test_upload_signed_bundle_and_wait_for_sync(
    harness: Harness, lab: Lab, clock: ManualClock, signed_bundle: tuple[Path, Path, Path]
) -> None:
    bundle, signature, public = signed_bundle
    run(link_job(harness))
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    transfers: list[int] = []
    progress = Progress()

    def record() -> None:
        task = progress.snapshot().task("t")
        if task is not None and task.bytes_done is not None:
            transfers.append(task.bytes_done)

    progress._on_change = record
    with ClockDriver(lab, clock, harness.seen, step=1.0):
        facts, task = run(upload_job(harness, bundle, signature=signature, public_key=public), progress=progress)
    size = bundle.stat().st_size
    assert facts == {"sha256": digest, "size": size, "uploaded": True, "synced_hosts": 3}
    assert task.fraction == 1.0 and task.bytes_done == size and task.bytes_total == size
    assert transfers.count(size) >= 2 and len(set(transfers)) > 20  # hashing, then the upload, chunk by chunk
    stored = lab.nodes[0].state.uploaded
    assert stored is not None and stored.sha256 == digest and stored.signature_path is not None
    assert stored.signature_path.read_bytes() == signature.read_bytes()
    (upload,) = harness.calls("POST", P_UPLOAD)
    assert upload.status == 201
    # The lab's timeline holds the sync to each follower, from the upload for the content sync delay, once each.
    syncs = lab.timeline.intervals(["content-sync"])
    assert sorted(i.node for i in syncs) == ["edge-node-2", "edge-node-3"]
    leader = lab.nodes[0].state
    assert all(i.start == stored.uploaded_at and i.end == i.start + leader.content_sync_delay for i in syncs)

    harness.seen.clear()
    facts, _ = run(upload_job(harness, bundle, signature=signature, public_key=public))
    assert facts["uploaded"] is False and facts["synced_hosts"] == 3  # the same bundle is not sent twice
    assert not harness.calls("POST", P_UPLOAD)


def test_tampered_bundle_never_leaves(harness: Harness, lab: Lab, signed_bundle: tuple[Path, Path, Path]) -> None:
    bundle, signature, public = signed_bundle
    with bundle.open("r+b") as fh:
        fh.seek(10 * 1024 * 1024)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(WizardError, match="does not match its signature"):
        run(upload_job(harness, bundle, signature=signature, public_key=public))
    assert harness.seen == [] and lab.nodes[0].state.uploaded is None


def test_cancel_mid_upload(harness: Harness, lab: Lab, signed_bundle: tuple[Path, Path, Path]) -> None:
    bundle, signature, public = signed_bundle
    cancel = CancelToken()
    progress = Progress()

    def maybe_cancel() -> None:
        task = progress.snapshot().task("t")
        if task and task.message.startswith("Uploading") and (task.bytes_done or 0) >= 5 * 1024 * 1024:
            cancel.cancel("test")

    progress._on_change = maybe_cancel
    with pytest.raises(Cancelled):
        run(upload_job(harness, bundle, signature=signature, public_key=public), cancel, progress)
    task = progress.snapshot().task("t")
    assert task is not None and task.bytes_done is not None and task.bytes_done < bundle.stat().st_size
    content = lab.nodes[0].state.content_dir
    deadline = time.monotonic() + 5
    while any(content.iterdir()) and time.monotonic() < deadline:  # the node notices the cut connection
        time.sleep(0.01)
    assert lab.nodes[0].state.uploaded is None and not any(content.iterdir())


# -- Cluster -------------------------------------------------------------------------------------------------------


def prepare(h: Harness, lab: Lab, clock: ManualClock, tmp_path: Path) -> None:
    run(link_job(h))
    bundle = random_file(tmp_path / "content.tar.zst", 256 * 1024)
    with ClockDriver(lab, clock, h.seen, step=5.0):
        run(upload_job(h, bundle))


@pytest.mark.flow
def test_create_cluster_end_to_end(
    harness: Harness, lab: Lab, clock: ManualClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    prepare(harness, lab, clock, tmp_path)
    kubeconfig = tmp_path / "out" / "kubeconfig"
    harness.seen.clear()
    progress = Progress()
    messages: list[str] = []
    progress._on_change = lambda: messages.append(progress.snapshot().message)
    with ClockDriver(lab, clock, harness.seen, step=10.0, lockstep=True):
        facts, task = run(cluster_job(harness, kubeconfig, expected=0.8 * TIMELINE), progress=progress)
    assert facts["cluster"] == "palette-mgmt" and facts["created"] is True and facts["vip"] == VIP
    assert task.fraction == 1.0 and "Running and Healthy" in task.message
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600
    assert f"server: https://{VIP}:6443" in kubeconfig.read_text()

    deployment = lab.nodes[0].state.cluster
    assert deployment is not None and {h.uid for h in deployment.hosts} == {n.state.uid for n in lab.nodes}
    assert all(h.control_plane for h in deployment.hosts) and deployment.hosts[0].uid == lab.nodes[0].state.uid
    assert deployment.variables["ociPackRegistryPassword"] == PASSWORD
    assert deployment.variables["podCidr"] == "100.64.0.0/18"  # defaults fill what was not given
    pool = deployment.config["spec"]["cloudConfig"]["spec"]["machinePoolConfig"][0]
    assert pool["useControlPlaneAsWorker"] is True
    cluster_config = deployment.config["spec"]["cloudConfig"]["spec"]["clusterConfig"]
    assert cluster_config["ntpServers"] == ["pool.ntp.org"] and len(cluster_config["sshKeys"]) == 1
    # The reboot window was ridden out: requests went unanswered, then the job carried on.
    refused = [e for e in harness.seen if e.status == 0]
    assert refused and harness.seen[-1].status == 200
    assert clock() - deployment.created_at >= TIMELINE and REBOOT_WINDOW[1] < 1.0
    assert any("not answering (nodes reboot" in m for m in messages)
    assert any("taking longer than the usual" in m for m in messages)  # the soft timeout warns, then waits on
    assert any("taking longer" in r.getMessage() or "still" in r.getMessage() for r in caplog.records)
    assert PASSWORD not in caplog.text and all(PASSWORD not in m for m in messages)

    harness.seen.clear()
    kubeconfig.unlink()
    facts, _ = run(cluster_job(harness, kubeconfig))  # a second run follows the existing cluster
    assert facts["created"] is False and kubeconfig.exists()
    assert not harness.calls("POST", P_CLUSTER)


def test_missing_required_variable_is_named(harness: Harness, lab: Lab, clock: ManualClock, tmp_path: Path) -> None:
    prepare(harness, lab, clock, tmp_path)
    with pytest.raises(WizardError) as err:
        run(cluster_job(harness, tmp_path / "kubeconfig", secrets={}))
    assert err.value.title == "Cluster variable missing"
    assert "OCI Pack Registry Password (ociPackRegistryPassword)" in err.value.message
    assert not harness.calls("POST", P_CLUSTER) and lab.nodes[0].state.cluster is None


def test_invalid_and_unknown_variables(harness: Harness, lab: Lab, clock: ManualClock, tmp_path: Path) -> None:
    prepare(harness, lab, clock, tmp_path)
    with pytest.raises(WizardError) as err:  # the node's own variables/validate refuses it
        run(cluster_job(harness, tmp_path / "kc", values={"podCidr": "10.0.0.0/33", "storagePoolDrive": "sdb"}))
    assert err.value.title == "Invalid cluster variables"
    assert "Pod CIDR (podCidr)" in err.value.details and "Storage Pool Drive (storagePoolDrive)" in err.value.details
    validated = len(harness.calls("POST", P_VALIDATE))
    # What the profile's own description rules out is refused before the node is asked: a dropdown's answer not
    # among its options, a change to an immutable value, a line break in a single-line field.
    refused = {"mongoReplicas": "2", "rootDomain": "palette.example.com", "storagePoolDrive": "/dev/sdb\n/dev/sdc"}
    with pytest.raises(WizardError) as err:
        run(cluster_job(harness, tmp_path / "kc", values=refused))
    assert err.value.title == "Cluster variable not accepted"
    assert "Mongo Replicas (mongoReplicas) '2' is not one of its options ('1', '3')" in err.value.message
    assert "Root Domain (rootDomain) is fixed by the profile" in err.value.message
    assert "Storage Pool Drive (storagePoolDrive) takes a single line" in err.value.message
    assert len(harness.calls("POST", P_VALIDATE)) == validated
    with pytest.raises(WizardError, match="no variable bogus"):
        run(cluster_job(harness, tmp_path / "kc", values={"bogus": "1"}))
    assert not harness.calls("POST", P_CLUSTER)


def test_cluster_needs_content_first(harness: Harness, tmp_path: Path) -> None:
    with pytest.raises(WizardError) as err:
        run(cluster_job(harness, tmp_path / "kc"))
    assert err.value.title == "No cluster profile" and "upload the content bundle" in err.value.remediation


def _after_create(h: Harness, lab: Lab, errors: int) -> threading.Thread:
    """Once the cluster is created, the leader answers the next ``errors`` requests with 500 (a lab fault knob)."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while not h.calls("POST", P_CLUSTER) and time.monotonic() < deadline:
            time.sleep(0.001)
        lab.nodes[0].state.localui_errors = errors

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_server_errors_while_the_cluster_deploys_are_ridden_out(
    harness: Harness, lab: Lab, clock: ManualClock, tmp_path: Path
) -> None:
    prepare(harness, lab, clock, tmp_path)
    harness.seen.clear()
    watcher = _after_create(harness, lab, errors=4)
    with ClockDriver(lab, clock, harness.seen, step=10.0, lockstep=True):
        facts, task = run(cluster_job(harness, tmp_path / "kubeconfig"))
    watcher.join(5)
    assert facts["created"] is True and "Running and Healthy" in task.message
    create = next(i for i, e in enumerate(harness.seen) if e.method == "POST" and e.path == P_CLUSTER)
    after_create = [e.status for e in harness.seen[create + 1 :]]
    assert after_create.count(500) == 4 and after_create[-1] == 200


def test_a_leader_failing_for_too_long_is_a_specific_error(
    harness: Harness, lab: Lab, clock: ManualClock, tmp_path: Path
) -> None:
    prepare(harness, lab, clock, tmp_path)
    harness.seen.clear()
    watcher = _after_create(harness, lab, errors=10**6)
    job = cluster_job(harness, tmp_path / "kubeconfig")
    job.outage_timeout = 120.0
    with ClockDriver(lab, clock, harness.seen, step=10.0, lockstep=True), pytest.raises(WizardError) as err:
        run(job)
    watcher.join(5)
    assert err.value.title == "Leader unreachable" and "during cluster deployment" in err.value.message
    assert "500" in (err.value.details or "") or "error" in (err.value.details or "").lower()
    lab.nodes[0].state.localui_errors = 0
    # The cluster was created once; running again follows it instead of creating another.
    harness.seen.clear()
    with ClockDriver(lab, clock, harness.seen, step=10.0, lockstep=True):
        facts, _ = run(cluster_job(harness, tmp_path / "kubeconfig"))
    assert facts["created"] is False and not harness.calls("POST", P_CLUSTER)


def test_a_rerun_waits_for_a_leader_that_is_rebooting(
    harness: Harness, lab: Lab, clock: ManualClock, tmp_path: Path
) -> None:
    """A run resumed while the leader reboots for the deployment an earlier run started: its Local UI refuses
    connections, so the job waits for it (as while following a deployment) instead of failing at once."""
    prepare(harness, lab, clock, tmp_path)
    with ClockDriver(lab, clock, harness.seen, step=10.0, lockstep=True):
        run(cluster_job(harness, tmp_path / "kubeconfig"))
    leader = lab.nodes[0].server
    leader.stop()
    progress = Progress()
    result: dict[str, Any] = {}
    rerun = threading.Thread(
        target=lambda: result.update(done=run(cluster_job(harness, tmp_path / "kubeconfig"), progress=progress)),
        daemon=True,
    )
    rerun.start()
    deadline = time.monotonic() + 60
    while "it may be rebooting" not in progress.snapshot().message:
        assert rerun.is_alive() and time.monotonic() < deadline, result
        time.sleep(0.01)
    leader.start()
    rerun.join(60)
    assert not rerun.is_alive()
    facts, task = result["done"]
    assert facts["created"] is False and "Running and Healthy" in task.message


# -- Status words the spec leaves free (issue 20, finding 1) ----------------------------------------------------------

PEER_WORDS = [a.value for a in variation("localui.peer-words").alternatives]


@pytest.mark.parametrize("words", PEER_WORDS, ids=["-".join(w) for w in PEER_WORDS])
def test_linking_and_content_sync_accept_every_spelling_of_ready_and_synced(
    harness: Harness, lab: Lab, clock: ManualClock, signed_bundle: tuple[Path, Path, Path], words: tuple[str, ...]
) -> None:
    for node in lab.nodes:
        node.state.variant = Variant(0, {"localui.peer-words": words})
    bundle, signature, public = signed_bundle
    with ClockDriver(lab, clock, harness.seen, step=1.0):
        facts, task = run(link_job(harness, ready_timeout=60.0))
        assert facts["peers"] == 3 and "Ready and Healthy" in task.message
        facts, _ = run(upload_job(harness, bundle, signature=signature, public_key=public, sync_timeout=120.0))
    assert facts["synced_hosts"] == 3


def test_an_unknown_content_sync_word_is_waited_on_and_shown_as_written(
    harness: Harness, lab: Lab, clock: ManualClock, signed_bundle: tuple[Path, Path, Path]
) -> None:
    for node in lab.nodes:
        node.state.variant = Variant(0, {"localui.peer-words": ("Ready", "Healthy", "Replicated-ish")})
    bundle, signature, public = signed_bundle
    run(link_job(harness))
    progress = Progress()
    messages: list[str] = []
    progress._on_change = lambda: messages.append(progress.snapshot().message)
    job = upload_job(harness, bundle, signature=signature, public_key=public, sync_timeout=20.0)
    with ClockDriver(lab, clock, harness.seen, step=1.0), pytest.raises(WizardError) as err:
        run(job, progress=progress)
    assert err.value.title == "Content not synced"  # never taken for done
    assert any("Replicated-ish" in m for m in messages)  # but shown as the node wrote it


def test_an_unreachable_leader_is_polled_at_the_poll_interval(
    harness: Harness, lab: Lab, clock: ManualClock, tmp_path: Path
) -> None:
    """However long the leader stays away, the wait never grows past the poll interval: the wizard notices it back
    within one poll, not after a backed-off wait (up to 8 intervals before: 2 minutes with the real 15 s)."""
    prepare(harness, lab, clock, tmp_path)
    with ClockDriver(lab, clock, harness.seen, step=10.0, lockstep=True):
        run(cluster_job(harness, tmp_path / "kubeconfig"))
    leader = lab.nodes[0].server
    leader.stop()
    waits: list[float] = []

    class Recording(CancelToken):
        def sleep(self, seconds: float) -> None:
            waits.append(seconds)
            if len(waits) == 8:
                leader.start()
            super().sleep(seconds)

    facts, _ = run(cluster_job(harness, tmp_path / "kubeconfig"), cancel=Recording())
    assert facts["created"] is False and len(waits) >= 8 and max(waits) <= POLL
