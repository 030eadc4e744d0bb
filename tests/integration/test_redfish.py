"""The Redfish client and jobs against sushy-tools' emulator over HTTPS with basic auth.

The emulator's virtual media really downloads the ISO from our ISO server, so the ISO server is exercised by a real
client too. Power changes land 1-11 s after a reset, so power waits allow 30 s.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.sushy_peer import SushyEmulator
from wizard.core.cancel import CancelToken
from wizard.core.checks.catalog import Outcome
from wizard.core.http import DEFAULT_RETRY
from wizard.core.progress import Progress
from wizard.core.project import Bmc, SecretRef
from wizard.core.trust import TrustChanged, TrustKind, TrustRefused, TrustRequest, TrustStore
from wizard.providers.isoserver import IsoServer
from wizard.providers.redfish import (
    CHECKS,
    AuthRefused,
    BmcUnreachable,
    BootOverrideRefused,
    InsertMediaRefused,
    IsoNotFetched,
    RedfishBootJob,
    RedfishClient,
    RedfishEjectJob,
    RedfishError,
    RedfishTimeouts,
    run_checks,
)
from wizard.providers.redfish.quirks import GENERIC

pytestmark = pytest.mark.redfish

ISO_SIZE = 6 * 1024 * 1024 + 321
FAST = RedfishTimeouts(
    request=30.0, insert=120.0, task=60.0, power=30.0, fetch=30.0, poll=0.3, retry=DEFAULT_RETRY.scaled(0.02)
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[SushyEmulator]:
    with SushyEmulator(tls=True, auth=True) as emu:
        yield emu


@pytest.fixture(scope="module")
def iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("iso") / "palette-appliance.iso"
    path.write_bytes(os.urandom(ISO_SIZE))
    return path


@pytest.fixture
def iso_server() -> Iterator[IsoServer]:
    with IsoServer() as server:
        yield server


@pytest.fixture
def trust(tmp_path: Path) -> TrustStore:
    return TrustStore(tmp_path / "config")


def bmc_of(emu: SushyEmulator, index: int, *, pinned: bool = True, system: bool = True) -> Bmc:
    return Bmc(
        address=emu.address(index) if system else emu.base_url,
        username=emu.username,
        password=SecretRef("bmc"),
        tls_fingerprint=emu.fingerprint if pinned else "",
    )


def connect(emu: SushyEmulator, index: int, trust: TrustStore, password: str | None = None) -> RedfishClient:
    return RedfishClient.for_bmc(bmc_of(emu, index), password or emu.password, trust=trust, confirm=None)


def test_discovery_follows_links(emulator: SushyEmulator, trust: TrustStore) -> None:
    with connect(emulator, 0, trust) as client:
        assert client.auth_mode == "basic"  # the emulator offers no SessionService
        assert client.session_path == ""
        path, system = client.find_system()
        assert path == f"/redfish/v1/Systems/{emulator.systems[0]}"
        assert system["Name"] == "node-0"
        assert client.quirks.name == "sushy-tools emulator"
        media = client.find_cd_media(system)
        assert media.id == "Cd" and "CD" in media.media_types
        assert media.under == "System"
        assert media.insert_target.endswith("/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia")
        inv = client.inventory(path, system)
        assert inv.boot_mode == "UEFI" and inv.secure_boot is False
        assert inv.cpus is None and inv.memory_gib is None  # the fake driver reports neither


def test_a_bmc_with_several_systems_needs_the_system_named(emulator: SushyEmulator, trust: TrustStore) -> None:
    bmc = bmc_of(emulator, 0, system=False)
    with (
        RedfishClient.for_bmc(bmc, emulator.password, trust=trust, confirm=None) as client,
        pytest.raises(RedfishError, match="manages 3 systems") as err,
    ):
        client.find_system()
    assert f"{emulator.base_url}/redfish/v1/Systems/" in err.value.remediation


def test_wrong_password_is_auth_refused_without_the_password(emulator: SushyEmulator, trust: TrustStore) -> None:
    wrong = "Not-The-Password-42"
    with pytest.raises(AuthRefused) as err:
        connect(emulator, 0, trust, password=wrong).__enter__()
    text = err.value.render()
    assert "refused the user name or password" in text
    assert wrong not in text and emulator.password not in text


def test_unreachable_bmc(trust: TrustStore) -> None:
    from tests.integration.sushy_peer import free_port

    port = free_port()
    bmc = Bmc(f"https://127.0.0.1:{port}/redfish/v1/Systems/x", "admin", SecretRef("bmc"))
    with pytest.raises(BmcUnreachable, match=f"127.0.0.1:{port}"):
        RedfishClient.for_bmc(bmc, "whatever", trust=trust, confirm=None)
    plain = Bmc(f"http://127.0.0.1:{port}", "admin", SecretRef("bmc"))
    with pytest.raises(BmcUnreachable, match="refused the connection"):
        RedfishClient.for_bmc(plain, "whatever", trust=trust, confirm=None).__enter__()


def test_tls_first_contact_refused_then_confirmed_and_pinned(emulator: SushyEmulator, trust: TrustStore) -> None:
    bmc = bmc_of(emulator, 0, pinned=False)
    with pytest.raises(TrustRefused):  # self-signed, nobody to ask
        RedfishClient.for_bmc(bmc, emulator.password, trust=trust, confirm=None)
    with pytest.raises(TrustRefused):  # the operator says no
        RedfishClient.for_bmc(bmc, emulator.password, trust=trust, confirm=lambda req: False)
    asked: list[TrustRequest] = []

    def confirm(request: TrustRequest) -> bool:
        asked.append(request)
        return True

    with RedfishClient.for_bmc(bmc, emulator.password, trust=trust, confirm=confirm) as client:
        client.find_system()
    assert (
        len(asked) == 1 and asked[0].presented.replace(":", "").lower() == emulator.fingerprint.replace(":", "").lower()
    )
    assert trust.pinned(TrustKind.TLS, "127.0.0.1", emulator.port) is not None
    with RedfishClient.for_bmc(bmc, emulator.password, trust=trust, confirm=None) as client:  # pinned: no question
        client.find_system()


def test_tls_wrong_expected_fingerprint_is_a_change(emulator: SushyEmulator, trust: TrustStore) -> None:
    bmc = Bmc(emulator.address(0), emulator.username, SecretRef("bmc"), tls_fingerprint="AB" * 32)
    with pytest.raises(TrustChanged):
        RedfishClient.for_bmc(bmc, emulator.password, trust=trust, confirm=lambda req: True)


def test_tls_certificate_change_after_pinning(trust: TrustStore) -> None:
    with SushyEmulator(tls=True, auth=True, systems=1) as emu:
        bmc = bmc_of(emu, 0, pinned=False)
        client = RedfishClient.for_bmc(bmc, emu.password, trust=trust, confirm=lambda req: True)
        with client:
            client.find_system()
        old = emu.fingerprint
        emu.restart(new_certificate=True)
        assert emu.fingerprint != old
        with pytest.raises(TrustChanged) as err:  # a context built before the change, as a resumed job has
            client2 = RedfishClient.for_bmc(bmc, emu.password, trust=trust, confirm=None)
            client2.__enter__()
        assert "Certificate changed" in err.value.title


def test_insert_media_downloads_from_our_iso_server_then_eject(
    emulator: SushyEmulator, trust: TrustStore, iso_server: IsoServer, iso: Path
) -> None:
    url = iso_server.publish(iso)
    cancel = CancelToken()
    with connect(emulator, 0, trust) as client:
        _, system = client.find_system()
        media = client.find_cd_media(system)
        if media.inserted:
            media = client.eject_media(media, cancel=cancel)
        inserted = client.insert_media(media, url, cancel=cancel, timeout=120)
        assert inserted.inserted is True and inserted.image == url
        # The emulator downloaded the whole image from our server, from its own address.
        assert iso_server.served(iso.name) == {"127.0.0.1": ISO_SIZE}
        held = emulator.downloaded_media()
        assert [p.read_bytes() == iso.read_bytes() for p in held] == [True]
        again = client.insert_media(inserted, url, cancel=cancel)  # idempotent: nothing fetched twice
        assert again.inserted and iso_server.snapshot().files[iso.name].clients["127.0.0.1"].requests == 1
        ejected = client.eject_media(again, cancel=cancel)
        assert ejected.inserted is False and ejected.image == ""
        assert emulator.downloaded_media() == []


def test_insert_media_refusal_carries_the_bmc_message(
    emulator: SushyEmulator, trust: TrustStore, iso_server: IsoServer, iso: Path
) -> None:
    iso_server.publish(iso)
    wrong = f"{iso_server.url_base}/not-the-token/{iso.name}"  # our server answers 404 to the emulator
    with connect(emulator, 1, trust) as client:
        _, system = client.find_system()
        media = client.find_cd_media(system)
        with pytest.raises(InsertMediaRefused) as err:
            client.insert_media(media, wrong, cancel=CancelToken(), timeout=60)
    assert "Cannot download virtual media: got error 404" in err.value.message
    assert "HTTP 400" in err.value.details


def test_boot_override_read_back_accepts_continuous_only_through_quirks(
    emulator: SushyEmulator, trust: TrustStore
) -> None:
    with connect(emulator, 0, trust) as client:
        path, _ = client.find_system()
        got = client.boot_once_from_cd(path)
        assert (got.target, got.mode) == ("Cd", "UEFI")
        assert got.enabled == "Continuous"  # the fake driver ignores Once (peers.md §2)
        client.quirks = GENERIC  # a BMC not known to misreport Once must read it back
        with pytest.raises(BootOverrideRefused, match="Continuous"):
            client.boot_once_from_cd(path)


def test_reset_from_allowable_values_and_power_polling(emulator: SushyEmulator, trust: TrustStore) -> None:
    cancel = CancelToken()
    with connect(emulator, 1, trust) as client:
        path, system = client.find_system()
        _, allowed = client.reset_types(system)
        assert allowed is not None and "ForceRestart" in allowed
        if client.power_state(path) != "Off":
            client._reset(client.reset_types(system)[0], "ForceOff", cancel, 60, 0.3)
            client.wait_power(path, "Off", cancel=cancel, timeout=30, poll=0.3)
        assert client.reset(path, cancel=cancel, poll=0.3) == "On"
        assert client.wait_power(path, "On", cancel=cancel, timeout=30, poll=0.3) == "On"
        assert client.reset(path, cancel=cancel, poll=0.3) == "ForceRestart"
        assert client.wait_power(path, "On", cancel=cancel, timeout=30, poll=0.3) == "On"


def test_power_wait_times_out_and_cancels(emulator: SushyEmulator, trust: TrustStore) -> None:
    with connect(emulator, 1, trust) as client:
        path, _ = client.find_system()
        with pytest.raises(RedfishError, match="still"):
            client.wait_power(path, "PoweringOn", cancel=CancelToken(), timeout=0.5, poll=0.2)
        token = CancelToken()
        token.cancel()
        from wizard.core.errors import Cancelled

        with pytest.raises(Cancelled):
            client.wait_power(path, "PoweringOn", cancel=token, timeout=30, poll=0.2)


def test_boot_job_then_eject_job(
    emulator: SushyEmulator,
    trust: TrustStore,
    iso_server: IsoServer,
    iso: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = iso_server.publish(iso, "node-2.iso")
    token = url.split("/")[3]
    bmc = bmc_of(emulator, 2)
    job = RedfishBootJob(
        "node-2", bmc, emulator.password, url, trust=trust, confirm=None, iso_server=iso_server, timeouts=FAST
    )
    assert job.id == "redfish/boot/node-2"
    progress = Progress()
    progress.add_task(job.id, job.name, "boot")
    facts = job.run(progress.root().child(0, 1, task=job.id), CancelToken())
    assert facts is not None
    assert facts["system"] == f"/redfish/v1/Systems/{emulator.systems[2]}"
    assert facts["virtual_media"].endswith("/VirtualMedia/Cd")
    assert facts["reset"] in ("On", "ForceRestart")
    assert facts["iso_bytes_read"] == ISO_SIZE
    row = progress.snapshot().task(job.id)
    assert row is not None and row.fraction == 1.0
    assert (row.bytes_done, row.bytes_total) == (ISO_SIZE, ISO_SIZE)
    assert iso_server.served("node-2.iso") == {"127.0.0.1": ISO_SIZE}
    with connect(emulator, 2, trust) as client:
        path, _ = client.find_system()
        assert client.power_state(path) == "On"
    # A new URL for the same image (a resumed run has a new token) keeps the job's identity.
    with IsoServer() as other:
        again = RedfishBootJob(
            "node-2",
            bmc,
            emulator.password,
            other.publish(iso, "node-2.iso"),
            trust=trust,
            confirm=None,
            iso_server=other,
        )
        assert again.fingerprint() == job.fingerprint()

    eject = RedfishEjectJob("node-2", bmc, emulator.password, trust=trust, confirm=None, timeouts=FAST)
    assert eject.id == "redfish/eject/node-2"
    done = eject.run(progress.root().child(0, 0), CancelToken())
    assert done is not None and done["ejected"] is True and done["override_cleared"] is True
    assert emulator.downloaded_media() == []
    again_done = eject.run(progress.root().child(0, 0), CancelToken())  # nothing left to eject
    assert again_done is not None and again_done["ejected"] is False

    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Redfish:" in text
    assert token not in text
    assert emulator.password not in text


def test_bmc_that_cannot_reach_the_iso_server_is_detected(
    emulator: SushyEmulator, trust: TrustStore, iso: Path
) -> None:
    # URLs name 127.0.0.2, where nothing listens: the emulator's download is refused, our server sees nothing.
    with IsoServer("127.0.0.1", advertise="127.0.0.2") as unreachable:
        url = unreachable.publish(iso)
        job = RedfishBootJob(
            "node-0",
            bmc_of(emulator, 0),
            emulator.password,
            url,
            trust=trust,
            confirm=None,
            iso_server=unreachable,
            timeouts=FAST,
        )
        progress = Progress()
        progress.add_task(job.id, job.name, "boot")
        with pytest.raises(IsoNotFetched) as err:
            job.run(progress.root().child(0, 1, task=job.id), CancelToken())
        assert unreachable.served(iso.name) == {}
    e = err.value
    assert e.title == "BMC cannot reach the ISO"
    assert "never requested" in e.message and "127.0.0.2" in e.message
    assert "Failed fetching image" in e.message  # the BMC's own answer is kept
    assert f"TCP port {unreachable.port}" in e.remediation
    assert url.split("/")[3] not in e.render()


def test_preflight_checks(emulator: SushyEmulator, trust: TrustStore) -> None:
    results = run_checks("node-0", bmc_of(emulator, 0), emulator.password, trust=trust, confirm=None)
    assert [r.check for r in results] == [c.id for c in CHECKS]
    by_id = {r.check: r for r in results}
    assert all(r.outcome is Outcome.PASS for r in results)
    assert by_id["redfish.virtual-media"].message.startswith("Cd")
    assert by_id["redfish.uefi"].message == "boot mode UEFI"
    assert by_id["redfish.secure-boot"].message == "Secure Boot is off"
    assert by_id["redfish.resources"].details.get("skipped") is True  # the fake driver reports no totals

    refused = run_checks("node-0", bmc_of(emulator, 0), "Wrong-Password-1", trust=trust, confirm=None)
    assert refused[0].outcome is Outcome.FAIL and "refused" in refused[0].message
    assert all(r.outcome is Outcome.ERROR for r in refused[1:])


def test_boot_job_rides_out_a_bmc_answering_5xx(
    trust: TrustStore, iso_server: IsoServer, iso: Path, tmp_path: Path
) -> None:
    """Issue 20, finding 2: a BMC (sushy's app, wrapped by the lab's http-5xx knob) answering a quarter of the
    requests with 500/502/503 before doing anything: reads and PATCHes are retried, InsertMedia and the reset are
    settled by reading the media and the power state, and the node boots from the ISO once."""
    with SushyEmulator(systems=1, folder=tmp_path / "bmc", http_5xx=0.25, seed=3) as flaky:
        url = iso_server.publish(iso, "flaky.iso")
        job = RedfishBootJob(
            "node-0", bmc_of(flaky, 0), flaky.password, url, trust=trust, confirm=None, iso_server=iso_server,
            timeouts=FAST,
        )  # fmt: skip
        progress = Progress()
        progress.add_task(job.id, job.name, "boot")
        facts = job.run(progress.root().child(0, 1, task=job.id), CancelToken())
        assert facts is not None and facts["iso_bytes_read"] == ISO_SIZE
        with connect(flaky, 0, trust) as client:
            path, _ = client.find_system()
            assert client.power_state(path) == "On"
        # The emulator's access log shows the injected answers (its server logs each request with its status).
        assert re.search(r'" 50[023] ', flaky.log.read_text(errors="replace"))
    assert iso_server.served("flaky.iso") == {"127.0.0.1": ISO_SIZE}
