"""The Redfish jobs: boot a node from the ISO through its BMC's virtual media, and eject the media afterwards.

Each job is built from plain values (the node's BMC settings, the resolved password, the trust store, the confirm
callable, the ISO URL and optionally the running ISO server), opens its own BMC session in ``run`` and closes it
whatever happens.

Boot: find the System and its CD-capable virtual media by following links, insert the ISO (skipped when it is
already inserted), set a one-time boot from the CD in UEFI mode, power on or restart, and wait until the system is
on and its BMC has asked the ISO server for the image. The BMC's reads are the job's byte progress. A BMC that never
requests the image within ``fetch`` seconds cannot reach the URL: that is reported as such rather than leaving the
node to sit in a boot menu.

Seed: with a ``seed_url`` (the node's NoCloud seed ISO) the boot job inserts it into a second virtual medium, chosen
by ``MediaTypes`` (another CD/DVD drive first, else a USB stick; the installer finds the ``cidata`` volume on either).
A BMC with a single image drive cannot take it: the job says so in a warning and the node is configured another way
(the Local UI or its console), which the install monitor copes with since it logs in with the default account then.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from wizard.core.cancel import CancelToken
from wizard.core.http import DEFAULT_RETRY, RetryPolicy
from wizard.core.jobs import Job
from wizard.core.progress import Reporter
from wizard.core.project import Bmc
from wizard.core.redact import redact
from wizard.core.trust import Confirm, TrustStore
from wizard.providers.isoserver import IsoServer
from wizard.providers.redfish.client import RedfishClient, VirtualMedia
from wizard.providers.redfish.errors import InsertMediaRefused, IsoNotFetched, PowerTimeout
from wizard.providers.redfish.session import members, parse_address

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RedfishTimeouts:
    """Seconds; ``poll`` is the interval between BMC polls."""

    request: float = 30.0  # one HTTP call
    insert: float = 900.0  # InsertMedia; some BMCs (the sushy emulator) download the whole image before answering
    task: float = 600.0  # a BMC task started by an action
    power: float = 180.0  # reaching the wanted power state after a reset
    fetch: float = 300.0  # the BMC's first request for the ISO, counted from the reset
    poll: float = 2.0
    retry: RetryPolicy = DEFAULT_RETRY  # transient faults of the BMC's HTTP service


@dataclass(frozen=True)
class _FetchWatch:
    """The ISO server's view of one BMC reading one published file."""

    server: IsoServer
    name: str
    addresses: frozenset[str]
    size: int

    def seen(self) -> bool:
        return self.server.fetched(self.name, set(self.addresses))

    def bytes_read(self) -> int:
        return sum(n for ip, n in self.server.served(self.name).items() if ip in self.addresses)

    def others(self) -> list[str]:
        return sorted(ip for ip in self.server.served(self.name) if ip not in self.addresses)


def resolve_addresses(host: str) -> frozenset[str]:
    """Every address ``host`` resolves to: the ISO server sees the BMC's requests come from one of them."""
    try:
        return frozenset(str(info[4][0]) for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP))
    except OSError:
        return frozenset({host})


SEED_SUFFIX = "-seed.iso"  # how the wizard names seed images, so ejecting takes exactly its own


def image_media(client: RedfishClient, system: Mapping[str, Any]) -> list[VirtualMedia]:
    """Every virtual medium of the system that takes an image (CD, DVD or USB stick), in the BMC's order."""
    found: list[VirtualMedia] = []
    for collection, under in client.virtual_media_collections(system):
        doc = client.get_optional(collection)
        if doc is None:
            continue
        for path in members(doc):
            media = client.refresh_media(VirtualMedia(path, "", (), "", None, "", "", under))
            types = {t.upper() for t in media.media_types}
            if types & {"CD", "DVD", "USBSTICK"}:
                found.append(media)
        if found:
            break
    return found


def seed_medium(client: RedfishClient, system: Mapping[str, Any], boot: VirtualMedia) -> VirtualMedia | None:
    """A second medium for the seed: another CD/DVD drive, else a USB stick; None when the BMC has only one."""
    others = [m for m in image_media(client, system) if m.path != boot.path]

    def rank(m: VirtualMedia) -> int:
        return 0 if {t.upper() for t in m.media_types} & {"CD", "DVD"} else 1

    return sorted(others, key=rank)[0] if others else None


class _RedfishJob(Job):
    def __init__(
        self,
        node: str,
        bmc: Bmc,
        password: str,
        *,
        trust: TrustStore,
        confirm: Confirm | None,
        timeouts: RedfishTimeouts,
        transport: httpx.BaseTransport | None,
    ) -> None:
        self.node = node
        # Replaces the network with a BMC model (tests); TLS trust is then not consulted.
        self._transport = transport
        self.bmc = bmc
        self._password = password
        self.trust = trust
        self.confirm = confirm
        self.timeouts = timeouts

    def _client(self) -> RedfishClient:
        return RedfishClient.for_bmc(
            self.bmc,
            self._password,
            trust=self.trust,
            confirm=self.confirm,
            timeout=self.timeouts.request,
            transport=self._transport,
            retry=self.timeouts.retry,
        )


class RedfishBootJob(_RedfishJob):
    """Boot ``node`` from ``iso_url`` through its BMC. Facts: ``system``, ``virtual_media``, ``reset``."""

    weight = 3.0

    def __init__(
        self,
        node: str,
        bmc: Bmc,
        password: str,
        iso_url: str,
        *,
        trust: TrustStore,
        confirm: Confirm | None,
        iso_server: IsoServer | None = None,
        timeouts: RedfishTimeouts | None = None,
        fetch_addresses: Sequence[str] | None = None,
        transport: httpx.BaseTransport | None = None,
        seed_url: str = "",
    ) -> None:
        super().__init__(
            node,
            bmc,
            password,
            trust=trust,
            confirm=confirm,
            timeouts=timeouts or RedfishTimeouts(),
            transport=transport,
        )
        self.id = f"redfish/boot/{node}"
        self.name = node
        self.iso_url = iso_url
        self.seed_url = seed_url
        self.iso_server = iso_server
        #: Where the BMC's downloads come from; None: the addresses its host name resolves to. Give them when the
        #: BMC reaches the jump host through NAT or from another interface than the one Redfish answers on.
        self.fetch_addresses = tuple(fetch_addresses) if fetch_addresses is not None else None
        self._iso_name = ""
        if iso_server is not None:
            name = iso_server.name_for_url(iso_url)
            if name is None:
                raise ValueError("iso_url is not served by the given ISO server")
            self._iso_name = name

    def fingerprint(self) -> str:
        # The ISO server's token changes every run: the file name identifies the image, not the URL.
        image = self._iso_name or self.iso_url
        parts = [self.node, self.bmc.address, self.bmc.username, image]
        if self.seed_url and self.iso_server is not None:
            parts.append(self.iso_server.name_for_url(self.seed_url) or "")
        elif self.seed_url:
            parts.append(self.seed_url)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def _watch(self) -> _FetchWatch | None:
        if self.iso_server is None:
            return None
        addresses = (
            frozenset(self.fetch_addresses)
            if self.fetch_addresses is not None
            else resolve_addresses(parse_address(self.bmc.address).host)
        )
        size = self.iso_server.snapshot().files[self._iso_name].size
        return _FetchWatch(self.iso_server, self._iso_name, addresses, size)

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        t = self.timeouts
        shown = redact(self.iso_url)
        report.update(0.0, f"{self.node}: connecting to its BMC")
        with self._client() as client:
            system_path, system = client.find_system()
            media = client.find_cd_media(system)
            report.update(0.05, f"{self.node}: inserting the ISO into {media.id}")
            cancel.raise_if_cancelled()
            watch = self._watch()
            try:
                media = client.insert_media(media, self.iso_url, cancel=cancel, timeout=t.insert, poll=t.poll)
            except InsertMediaRefused as exc:
                if watch is not None and not watch.seen():
                    raise self._not_fetched(watch, shown, after="InsertMedia", cause=exc.message) from exc
                raise
            seed = self._insert_seed(client, system, media, report, cancel) if self.seed_url else "not used"
            report.update(0.25, f"{self.node}: ISO inserted; setting a one-time boot from the CD")
            cancel.raise_if_cancelled()
            override = client.boot_once_from_cd(system_path)
            report.update(0.3, f"{self.node}: resetting")
            cancel.raise_if_cancelled()
            reset = client.reset(system_path, cancel=cancel, power_timeout=t.power, poll=t.poll, task_timeout=t.task)
            reset_at = time.monotonic()
            report.update(0.35, f"{self.node}: reset {reset}; waiting for power and the ISO download")
            read = self._wait(
                client,
                system_path,
                watch=watch,
                shown=shown,
                reset_at=reset_at,
                report=report.child(0.35, 0.65),
                cancel=cancel,
            )
        report.finish(f"{self.node}: booting from the ISO")
        facts: dict[str, Any] = {
            "system": system_path,
            "virtual_media": media.path,
            "reset": reset,
            "boot_override": override.enabled,
            "quirks": client.quirks.name,
            "seed": seed,
        }
        if watch is not None:
            facts["iso_bytes_read"] = read
        return facts

    def _insert_seed(
        self,
        client: RedfishClient,
        system: Mapping[str, Any],
        boot: VirtualMedia,
        report: Reporter,
        cancel: CancelToken,
    ) -> str:
        """Insert the seed into a second medium; returns that medium's path, or "" (with a warning) without one."""
        target = seed_medium(client, system, boot)
        if target is None:
            report.warn(
                f"{self.node}: its BMC offers a single virtual drive ({boot.id}), so the seed ISO cannot be attached "
                "beside the appliance ISO; the node keeps its default account after the install and is configured "
                "through its Local UI (or by hand on its console)"
            )
            return ""
        report.update(0.2, f"{self.node}: inserting its seed ISO into {target.id}")
        cancel.raise_if_cancelled()
        t = self.timeouts
        inserted = client.insert_media(target, self.seed_url, cancel=cancel, timeout=t.insert, poll=t.poll)
        return inserted.path

    def _wait(
        self,
        client: RedfishClient,
        system_path: str,
        *,
        watch: _FetchWatch | None,
        shown: str,
        reset_at: float,
        report: Reporter,
        cancel: CancelToken,
    ) -> int:
        """Until the system is on and (with an ISO server) its BMC requested the image; returns bytes it read."""
        t = self.timeouts
        while True:
            state = client.power_state(system_path)
            # Seen is read first: a request can be seen before its first bytes are counted, never the other way.
            seen = watch is None or watch.seen()
            read = watch.bytes_read() if watch is not None else 0
            if watch is not None:
                report.transfer(read, watch.size, f"{self.node}: {state or 'power unknown'}, ISO read by its BMC")
            if state == "On" and seen:
                return read
            waited = time.monotonic() - reset_at
            if state != "On" and waited >= t.power:
                raise PowerTimeout(
                    "Node did not power on",
                    f"{self.node} is still {state or 'in an unknown power state'} {int(waited)} s after the reset",
                    remediation="check the server in the BMC's web interface (a stuck POST, a power cap), then retry",
                )
            if watch is not None and not seen and waited >= t.fetch:
                raise self._not_fetched(watch, shown, after="InsertMedia and the reset")
            cancel.sleep(t.poll)

    def _not_fetched(self, watch: _FetchWatch, shown: str, *, after: str, cause: str = "") -> IsoNotFetched:
        others = watch.others()
        seen_from = (
            f" The ISO server saw requests only from {', '.join(others)}: if that is this BMC (behind NAT or on "
            "another interface), give that address as the BMC's fetch address."
            if others
            else ""
        )
        return IsoNotFetched(
            "BMC cannot reach the ISO",
            f"the BMC of {self.node} never requested {shown} after {after}"
            + (f" (its answer: {cause})" if cause else "")
            + f"; it {'most likely ' if cause else ''}cannot reach the ISO server at {watch.server.url_base}."
            + seen_from,
            details=f"requests expected from {', '.join(sorted(watch.addresses))}",
            remediation=(
                f"allow TCP port {watch.server.port} from the BMC network to this machine (firewall, routing), or "
                "set the ISO server address to one the BMCs can reach, or host the ISO elsewhere (provider iso_url)"
            ),
        )


class RedfishEjectJob(_RedfishJob):
    """Eject the CD virtual media of ``node`` and turn its CD boot override off, so a reboot boots the disk.

    Whatever image the CD holds is ejected (after the install it is this wizard's ISO, possibly from an earlier
    run's URL). Facts: ``system``, ``virtual_media``, ``ejected``, ``override_cleared``.
    """

    weight = 0.5

    def __init__(
        self,
        node: str,
        bmc: Bmc,
        password: str,
        *,
        trust: TrustStore,
        confirm: Confirm | None,
        timeouts: RedfishTimeouts | None = None,
        clear_override: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            node,
            bmc,
            password,
            trust=trust,
            confirm=confirm,
            timeouts=timeouts or RedfishTimeouts(),
            transport=transport,
        )
        self.id = f"redfish/eject/{node}"
        self.name = node
        self.clear_override = clear_override

    def fingerprint(self) -> str:
        return hashlib.sha256("\n".join([self.node, self.bmc.address]).encode()).hexdigest()[:16]

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        t = self.timeouts
        report.update(0.0, f"{self.node}: connecting to its BMC")
        with self._client() as client:
            system_path, system = client.find_system()
            media = client.find_cd_media(system)
            cancel.raise_if_cancelled()
            ejected = False
            if media.inserted or (media.inserted is None and media.image):
                report.update(0.3, f"{self.node}: ejecting the ISO from {media.id}")
                media = client.eject_media(media, cancel=cancel, timeout=t.insert, poll=t.poll)
                ejected = True
            seeds = 0
            for other in image_media(client, system):
                if other.path != media.path and other.inserted and other.image.split("?")[0].endswith(SEED_SUFFIX):
                    report.update(0.5, f"{self.node}: ejecting the seed ISO from {other.id}")
                    client.eject_media(other, cancel=cancel, timeout=t.insert, poll=t.poll)
                    seeds += 1
            cleared = False
            if self.clear_override:
                report.update(0.7, f"{self.node}: clearing the CD boot override")
                cleared = client.clear_boot_override(system_path)
        report.finish(f"{self.node}: ISO ejected" if ejected else f"{self.node}: no ISO was inserted")
        return {
            "system": system_path,
            "virtual_media": media.path,
            "ejected": ejected,
            "seeds_ejected": seeds,
            "override_cleared": cleared,
        }
