"""A synchronous Redfish client for booting a server from a virtual-media ISO.

It follows the DMTF schema and links rather than vendor paths: the service root leads to the System (or the project
names it in the BMC address), the System (or, on older BMCs, its Manager) leads to the VirtualMedia collection, and
actions are posted to the ``target`` the BMC advertises. Known vendor deviations come from
:mod:`wizard.providers.redfish.quirks`, chosen by what the BMC says about itself.

Sessions, authentication and the request plumbing are :class:`~wizard.providers.redfish.session.RedfishSession`'s.
Certificates are verified (OS store, or a pinned certificate the operator confirmed).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.http import DEFAULT_RETRY, RetryPolicy
from wizard.core.project import Bmc
from wizard.core.redact import redact
from wizard.core.trust import (
    Confirm,
    TrustChanged,
    TrustKind,
    TrustRefused,
    TrustStore,
    system_or_pinned_tls_context,
)
from wizard.providers.redfish.actions import RedfishActions
from wizard.providers.redfish.errors import (
    BmcUnreachable,
    BootOverrideRefused,
    InsertMediaRefused,
    NoCdMedia,
    RedfishError,
    UnexpectedAnswer,
    bmc_message,
    is_property_error,
)
from wizard.providers.redfish.quirks import BmcIdentity, quirks_for
from wizard.providers.redfish.session import (
    _UNREACHABLE_FIX,
    DEFAULT_TIMEOUT,
    ROOT,
    members,
    odata_id,
    parse_address,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VirtualMedia:
    path: str
    id: str
    media_types: tuple[str, ...]
    image: str
    inserted: bool | None
    insert_target: str  # "" when the BMC offers no InsertMedia action
    eject_target: str
    under: str  # "System" or "Manager": where the collection was found


@dataclass(frozen=True)
class BootOverride:
    target: str
    enabled: str
    mode: str


@dataclass(frozen=True)
class Inventory:
    system: str
    name: str
    manufacturer: str
    model: str
    power_state: str
    cpus: int | None  # logical processors (threads) when reported, else cores
    cpu_field: str  # which ProcessorSummary member gave ``cpus``
    memory_gib: float | None
    boot_mode: str  # BootSourceOverrideMode: "UEFI", "Legacy" or "" when not reported
    secure_boot: bool | None  # None: not reported
    quirks: str


class RedfishClient(RedfishActions):
    """One BMC: find its System and CD media, insert and eject, boot once from CD, reset, read the inventory."""

    @classmethod
    def for_bmc(
        cls,
        bmc: Bmc,
        password: str,
        *,
        trust: TrustStore,
        confirm: Confirm | None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> RedfishClient:
        """A client for a project's BMC: TLS verified by the OS store or pinned after the operator confirms.

        ``transport`` replaces the network (a BMC model in tests); TLS trust is then not consulted.
        """
        try:
            address = parse_address(bmc.address)
        except ValueError as exc:
            raise RedfishError("Invalid BMC address", str(exc)) from exc
        verify: ssl.SSLContext | bool = True
        if address.scheme == "https" and transport is None:
            try:
                verify = system_or_pinned_tls_context(
                    trust, confirm, address.host, address.port, expected=bmc.tls_fingerprint, timeout=timeout
                )
            except (TrustRefused, TrustChanged):
                raise
            except WizardError as exc:  # the handshake could not even be made
                raise BmcUnreachable(
                    "BMC unreachable", f"{address.where}: {exc.message}", remediation=_UNREACHABLE_FIX
                ) from exc
        entry = trust.pinned(TrustKind.TLS, address.host, address.port)
        pinned = str(entry["fingerprint"]) if entry else ""
        return cls(
            address,
            bmc.username,
            password,
            verify=verify,
            timeout=timeout,
            transport=transport,
            pinned=pinned,
            retry=retry,
        )

    # -- identity and discovery ------------------------------------------------------------------------------------
    def find_system(self) -> tuple[str, dict[str, Any]]:
        """The System this BMC boots: the one the address names, or the only one there is."""
        if self.address.system_path:
            doc = self.get_optional(self.address.system_path)
            if doc is None:
                raise UnexpectedAnswer(
                    "System not found",
                    f"{self.address.where} has no System at {self.address.system_path}",
                    remediation="correct the System path in the BMC address, or leave it out when the BMC has one",
                )
            return self.address.system_path, self._identify(doc)
        collection = odata_id(self.root.get("Systems")) or ROOT + "Systems"
        found = members(self.get(collection))
        if len(found) == 1:
            return found[0], self._identify(self.get(found[0]))
        if not found:
            raise UnexpectedAnswer("No System", f"{self.address.where} lists no computer system")
        raise RedfishError(
            "Several systems behind one BMC",
            f"{self.address.where} manages {len(found)} systems: {', '.join(found)}",
            remediation=f"name the node's system in its BMC address, e.g. {self.address.base_url}{found[0]}",
        )

    def _identify(self, system: dict[str, Any]) -> dict[str, Any]:
        """Refine the vendor quirks with what the System and its Manager say about themselves."""
        manufacturers = [str(system.get("Manufacturer") or "")]
        models: list[str] = []
        oem_keys = list(self.root.get("Oem") or {}) if isinstance(self.root.get("Oem"), Mapping) else []
        if isinstance(system.get("Oem"), Mapping):
            oem_keys += list(system["Oem"])
        for manager_path in self._managers(system)[:1]:
            with contextlib.suppress(RedfishError):
                manager = self.get_optional(manager_path) or {}
                manufacturers.append(str(manager.get("Manufacturer") or ""))
                models.append(str(manager.get("Model") or ""))
                if isinstance(manager.get("Oem"), Mapping):
                    oem_keys += list(manager["Oem"])
        self._identity = BmcIdentity(
            str(self.root.get("Vendor") or ""), tuple(oem_keys), tuple(manufacturers), tuple(models)
        )
        self.quirks = quirks_for(self._identity)
        log.info("Redfish: %s looks like %s", self.address.where, self.quirks.name)
        return system

    @staticmethod
    def _managers(system: Mapping[str, Any]) -> list[str]:
        links = system.get("Links")
        managed_by = links.get("ManagedBy") if isinstance(links, Mapping) else None
        return [p for p in (odata_id(m) for m in managed_by) if p] if isinstance(managed_by, list) else []

    def virtual_media_collections(self, system: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Where this system's virtual media may live, in the order to try: the System's own link, then each
        Manager's (older BMCs such as iDRAC 4/5, iLO and Supermicro keep it on the Manager)."""
        found: list[tuple[str, str]] = []
        own = odata_id(system.get("VirtualMedia"))
        if own:
            found.append((own, "System"))
        for manager_path in self._managers(system):
            manager = self.get_optional(manager_path)
            link = odata_id(manager.get("VirtualMedia")) if manager else ""
            if link and all(link != p for p, _ in found):
                found.append((link, "Manager"))
        return found

    def find_cd_media(self, system: Mapping[str, Any]) -> VirtualMedia:
        """The virtual media device that takes a CD/DVD image, following links (never a vendor path)."""
        seen: list[str] = []
        cds: list[VirtualMedia] = []
        for collection, under in self.virtual_media_collections(system):
            doc = self.get_optional(collection)
            if doc is None:
                continue
            for path in members(doc):
                media = self._media(path, under)
                seen.append(f"{media.id} ({', '.join(media.media_types) or 'no MediaTypes'})")
                if _cd_capable(media):
                    cds.append(media)
            if cds:
                break
        if not cds:
            listed = "; ".join(seen) if seen else "none"
            raise NoCdMedia(
                "No CD virtual media",
                f"{self.address.where} offers no virtual media that takes a CD/DVD image (found: {listed})",
                remediation="enable virtual media on the BMC (it may need a licence, e.g. iDRAC Enterprise or iLO "
                "Advanced), or boot this node another way (manual mode)",
            )
        preferred = [m.lower() for m in self.quirks.media_ids]

        def rank(m: VirtualMedia) -> tuple[int, int]:
            pos = preferred.index(m.id.lower()) if m.id.lower() in preferred else len(preferred)
            return (pos, 0 if m.insert_target else 1)

        return sorted(cds, key=rank)[0]

    def _media(self, path: str, under: str) -> VirtualMedia:
        doc = self.get(path)
        actions = doc.get("Actions") if isinstance(doc.get("Actions"), Mapping) else {}
        assert isinstance(actions, Mapping)
        insert = actions.get("#VirtualMedia.InsertMedia")
        eject = actions.get("#VirtualMedia.EjectMedia")
        types = doc.get("MediaTypes")
        inserted = doc.get("Inserted")
        return VirtualMedia(
            path=str(doc.get("@odata.id") or path),
            id=str(doc.get("Id") or path.rstrip("/").rsplit("/", 1)[-1]),
            media_types=tuple(str(t) for t in types) if isinstance(types, list) else (),
            image=str(doc.get("Image") or ""),
            inserted=inserted if isinstance(inserted, bool) else None,
            insert_target=str(insert.get("target") or "") if isinstance(insert, Mapping) else "",
            eject_target=str(eject.get("target") or "") if isinstance(eject, Mapping) else "",
            under=under,
        )

    def refresh_media(self, media: VirtualMedia) -> VirtualMedia:
        return self._media(media.path, media.under)

    # -- media ------------------------------------------------------------------------------------------------------
    def insert_media(
        self,
        media: VirtualMedia,
        url: str,
        *,
        cancel: CancelToken,
        timeout: float = 600.0,
        poll: float = 2.0,
    ) -> VirtualMedia:
        """Insert ``url`` into ``media`` (ejecting another image first) and read it back.

        Tries ``Image`` + ``Inserted`` + ``WriteProtected``; when the BMC answers 400 naming a field, retries with
        ``{"Image": url}`` only. Without an InsertMedia action, PATCHes the media if the vendor quirks say so.
        """
        if media.inserted and media.image == url:
            log.info("Redfish: %s already holds the image", media.path)
            return media
        if media.inserted or (media.inserted is None and media.image):
            self.eject_media(media, cancel=cancel, timeout=timeout, poll=poll)
        scheme = urlsplit(url).scheme.upper() or "HTTP"
        extra = {k: v.format(scheme=scheme) for k, v in self.quirks.insert_extra}
        full: dict[str, Any] = {"Image": url, "Inserted": True, "WriteProtected": True, **extra}
        minimal: dict[str, Any] = {"Image": url, **extra}
        bodies = [minimal] if self.quirks.insert_minimal_body else [full, minimal]
        shown = redact(url)

        def inserted() -> bool:
            now = self.refresh_media(media)
            return bool(now.inserted) and now.image == url

        for attempt, body in enumerate(bodies):
            if media.insert_target:
                r = self.action(
                    media.insert_target,
                    body,
                    what="InsertMedia",
                    cancel=cancel,
                    timeout=timeout,
                    task_timeout=timeout,
                    poll=poll,
                    took_effect=inserted,
                )
            elif self.quirks.insert_via_patch:
                # Setting the image by PATCH sets it once however often it is sent.
                r = self.request("PATCH", media.path, json=body, timeout=timeout, idempotent=True)
                if r.status_code == 202:
                    r = self.wait_task(r, what="InsertMedia (PATCH)", cancel=cancel, timeout=timeout, poll=poll)
            else:
                raise NoCdMedia(
                    "Virtual media cannot be inserted",
                    f"{self.address.where} offers no InsertMedia action on {media.path}",
                    remediation="update the BMC firmware, or boot this node another way (manual mode)",
                )
            if r.status_code < 300:
                break
            if is_property_error(r) and attempt + 1 < len(bodies):
                log.info(
                    "Redfish: %s rejected a field of InsertMedia (%s); retrying with Image only",
                    self.address.where,
                    bmc_message(r),
                )
                continue
            raise InsertMediaRefused(
                "InsertMedia refused",
                f"{self.address.where} refused to insert {shown}: {bmc_message(r)}",
                details=f"HTTP {r.status_code} from POST {media.insert_target or media.path}",
                remediation="check that the BMC can reach the ISO URL and supports HTTP(S) virtual media; "
                "the BMC's message above says what it did not accept",
            )
        after = self.refresh_media(media)
        if after.inserted is False or (after.image and after.image != url):
            raise InsertMediaRefused(
                "Virtual media not inserted",
                f"{self.address.where} accepted InsertMedia but {media.id} shows "
                f"Inserted={after.inserted}, Image={redact(after.image) or 'none'}",
                remediation="check the virtual media state in the BMC's web interface (another session may hold it)",
            )
        log.info("Redfish: %s inserted into %s", shown, after.path)
        return after

    def eject_media(
        self, media: VirtualMedia, *, cancel: CancelToken, timeout: float = 120.0, poll: float = 2.0
    ) -> VirtualMedia:
        if media.eject_target:
            r = self.action(
                media.eject_target,
                {},
                what="EjectMedia",
                cancel=cancel,
                timeout=timeout,
                task_timeout=timeout,
                poll=poll,
                took_effect=lambda: not self.refresh_media(media).inserted,
            )
        elif self.quirks.insert_via_patch:
            body = {"Image": None, "Inserted": False}
            r = self.request("PATCH", media.path, json=body, timeout=timeout, idempotent=True)
        else:
            raise NoCdMedia(
                "Virtual media cannot be ejected",
                f"{self.address.where} offers no EjectMedia action on {media.path}",
                remediation="eject the media in the BMC's web interface",
            )
        if r.status_code >= 300:
            raise RedfishError(
                "EjectMedia refused",
                f"{self.address.where} refused to eject {media.id}: {bmc_message(r)}",
                remediation="eject the media in the BMC's web interface",
            )
        after = self.refresh_media(media)
        if after.inserted:
            raise RedfishError(
                "Virtual media still inserted",
                f"{self.address.where} accepted EjectMedia but {media.id} still shows an inserted image",
                remediation="eject the media in the BMC's web interface",
            )
        return after

    def boot_once_from_cd(self, system_path: str, *, uefi: bool = True) -> BootOverride:
        """Boot override Once/Cd (and UEFI mode), read back. The emulator's Continuous read-back is accepted only
        through its quirks record."""
        system = self.get(system_path)
        boot = system.get("Boot") if isinstance(system.get("Boot"), Mapping) else {}
        assert isinstance(boot, Mapping)
        allowed = boot.get("BootSourceOverrideTarget@Redfish.AllowableValues")
        targets = list(self.quirks.cd_targets)
        if isinstance(allowed, list):
            usable = [t for t in targets if t in allowed]
            if not usable:
                raise BootOverrideRefused(
                    "No CD boot target",
                    f"{self.address.where} offers no CD boot override (allowed: {', '.join(map(str, allowed))})",
                    remediation="set the boot order in the BMC to boot the virtual CD once, or boot the node by hand",
                )
            target = usable[0]
        else:
            target = targets[0]
        wanted: dict[str, Any] = {"BootSourceOverrideTarget": target, "BootSourceOverrideEnabled": "Once"}
        send_mode = uefi and not self.quirks.never_send_boot_mode
        body = {**wanted, "BootSourceOverrideMode": "UEFI"} if send_mode else wanted
        r = self._patch(system_path, {"Boot": body})
        if send_mode and is_property_error(r):
            log.info(
                "Redfish: %s refused BootSourceOverrideMode (%s); retrying without it",
                self.address.where,
                bmc_message(r),
            )
            r = self._patch(system_path, {"Boot": wanted})
        if r.status_code >= 300:
            raise BootOverrideRefused(
                "Boot override refused",
                f"{self.address.where} refused to boot {target} once: {bmc_message(r)}",
                remediation="set a one-time boot from the virtual CD in the BMC's web interface, then retry",
            )
        return self._read_back_boot(system_path, target, uefi=uefi)

    def _read_back_boot(self, system_path: str, target: str, *, uefi: bool) -> BootOverride:
        boot = self.get(system_path).get("Boot") or {}
        got = BootOverride(
            str(boot.get("BootSourceOverrideTarget") or ""),
            str(boot.get("BootSourceOverrideEnabled") or ""),
            str(boot.get("BootSourceOverrideMode") or ""),
        )
        enabled_ok = ("Once", "Continuous") if self.quirks.once_reads_back_continuous else ("Once",)
        if got.target != target or got.enabled not in enabled_ok:
            raise BootOverrideRefused(
                "Boot override not applied",
                f"{self.address.where} reads back target {got.target or '?'} / {got.enabled or '?'} after "
                f"{target} / Once was accepted",
                remediation="set a one-time boot from the virtual CD in the BMC's web interface, then retry",
            )
        if uefi and got.mode and got.mode != "UEFI":
            raise BootOverrideRefused(
                "System boots in Legacy mode",
                f"{self.address.where} boots {system_path} in {got.mode} mode; the appliance ISO boots only in UEFI",
                remediation="switch the server's boot mode to UEFI in its BIOS setup, then retry",
            )
        return got

    def clear_boot_override(self, system_path: str) -> bool:
        """Turn a CD boot override off (BMCs that keep it Continuous would otherwise boot the CD forever)."""
        boot = self.get(system_path).get("Boot") or {}
        if boot.get("BootSourceOverrideEnabled") in (None, "Disabled"):
            return False
        body: dict[str, Any] = {"BootSourceOverrideEnabled": "Disabled"}
        if self.quirks.clear_override_target:
            body["BootSourceOverrideTarget"] = self.quirks.clear_override_target
        r = self._patch(system_path, {"Boot": body})
        if r.status_code >= 300:
            log.warning("Redfish: %s kept its boot override: %s", self.address.where, bmc_message(r))
            return False
        return True

    # -- inventory --------------------------------------------------------------------------------------------------
    def inventory(self, system_path: str, system: Mapping[str, Any] | None = None) -> Inventory:
        doc = dict(system) if system is not None else self.get(system_path)
        cpus: int | None = None
        cpu_field = ""
        summary = doc.get("ProcessorSummary") if isinstance(doc.get("ProcessorSummary"), Mapping) else {}
        assert isinstance(summary, Mapping)
        # Count is sockets on most BMCs; threads or cores are what the 8 vCPU minimum is about.
        for name in ("LogicalProcessorCount", "CoreCount"):
            value = summary.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                cpus, cpu_field = value, name
                break
        memory = doc.get("MemorySummary") if isinstance(doc.get("MemorySummary"), Mapping) else {}
        assert isinstance(memory, Mapping)
        gib = memory.get("TotalSystemMemoryGiB")
        memory_gib = float(gib) if isinstance(gib, int | float) and not isinstance(gib, bool) and gib > 0 else None
        boot = doc.get("Boot") if isinstance(doc.get("Boot"), Mapping) else {}
        assert isinstance(boot, Mapping)
        secure: bool | None = None
        link = odata_id(doc.get("SecureBoot"))
        if link:
            sb = self.get_optional(link) or {}
            current = sb.get("SecureBootCurrentBoot")
            if isinstance(current, str) and current:
                secure = current == "Enabled"
            elif isinstance(sb.get("SecureBootEnable"), bool):
                secure = bool(sb["SecureBootEnable"])
        return Inventory(
            system=system_path,
            name=str(doc.get("Name") or doc.get("Id") or ""),
            manufacturer=str(doc.get("Manufacturer") or ""),
            model=str(doc.get("Model") or ""),
            power_state=str(doc.get("PowerState") or ""),
            cpus=cpus,
            cpu_field=cpu_field,
            memory_gib=memory_gib,
            boot_mode=str(boot.get("BootSourceOverrideMode") or ""),
            secure_boot=secure,
            quirks=self.quirks.name,
        )


def _cd_capable(media: VirtualMedia) -> bool:
    if media.media_types:
        return any(t.upper() in ("CD", "DVD") for t in media.media_types)
    # Old firmware without MediaTypes: go by the device's name.
    ident = media.id.lower()
    return "cd" in ident or "dvd" in ident
