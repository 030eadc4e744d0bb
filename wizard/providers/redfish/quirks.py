"""What each BMC family does differently from the DMTF schema, kept as data.

The client follows the standard everywhere and consults these records only where a vendor is known to deviate.
A record is chosen by what the BMC says about itself: the service root's ``Vendor`` and ``Oem`` keys, and the
``Manufacturer``/``Model`` of the System and the Manager. Unknown BMCs get :data:`GENERIC`, which is the plain
standard plus the fallbacks every BMC gets (a minimal InsertMedia body after a 400 that names a field, boot override
without ``BootSourceOverrideMode`` after a 400 on it).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VendorQuirks:
    name: str
    # -- matching (case-insensitive) --
    vendors: tuple[str, ...] = ()  # ServiceRoot.Vendor, exactly
    oem_keys: tuple[str, ...] = ()  # keys of ServiceRoot.Oem / System.Oem / Manager.Oem, exactly
    manufacturers: tuple[str, ...] = ()  # substrings of System or Manager Manufacturer
    models: tuple[str, ...] = ()  # substrings of Manager Model
    # -- behaviour --
    #: Start with ``{"Image": url}`` only: the BMC answers 400 to Inserted/WriteProtected in InsertMedia.
    insert_minimal_body: bool = False
    #: Extra InsertMedia members the BMC requires; ``{scheme}`` becomes the URL scheme in upper case (HTTP/HTTPS).
    insert_extra: tuple[tuple[str, str], ...] = ()
    #: Firmware without the InsertMedia action takes ``PATCH {"Image": url, "Inserted": true}`` on the media itself.
    insert_via_patch: bool = False
    #: Boot override targets for a CD, in order of preference, as the BMC names them in AllowableValues.
    cd_targets: tuple[str, ...] = ("Cd",)
    #: Changing BootSourceOverrideMode schedules a BIOS job (or is refused): never send it, only read it.
    never_send_boot_mode: bool = False
    #: ``BootSourceOverrideEnabled`` reads back as ``Continuous`` after ``Once`` was accepted.
    once_reads_back_continuous: bool = False
    #: Turning the boot override off also needs a target (the BMC ignores ``Enabled`` alone).
    clear_override_target: str = ""
    #: Reset types to try on a powered-off system, then on a powered-on one, when AllowableValues allows them.
    power_on_resets: tuple[str, ...] = ("On", "ForceOn", "PushPowerButton")
    restart_resets: tuple[str, ...] = ("ForceRestart", "PowerCycle", "GracefulRestart")
    #: Session login misbehaves (sessions leak or the role cannot create them): use basic auth.
    prefer_basic_auth: bool = False
    #: Preferred virtual media ids when several are CD-capable.
    media_ids: tuple[str, ...] = ()
    notes: str = field(default="", compare=False)


GENERIC = VendorQuirks("generic")

QUIRKS: tuple[VendorQuirks, ...] = (
    VendorQuirks(
        "HPE iLO",
        vendors=("HPE", "HP"),
        oem_keys=("Hpe", "Hp"),
        manufacturers=("hpe", "hewlett"),
        # iLO 4 firmware before 2.60 has no InsertMedia action; the media takes a PATCH of Image instead.
        insert_via_patch=True,
        media_ids=("2", "CD"),
        notes="virtual media under /Managers/1/VirtualMedia; id 1 is the floppy/USB key, 2 the CD/DVD",
    ),
    VendorQuirks(
        "Dell iDRAC",
        vendors=("Dell",),
        oem_keys=("Dell",),
        manufacturers=("dell",),
        models=("idrac",),
        # A boot-mode change is a BIOS attribute on iDRAC: it needs a configuration job and a reboot of its own.
        never_send_boot_mode=True,
        media_ids=("CD", "1"),
        notes="virtual media under the Manager (iDRAC 4/5) or the System (iDRAC 6+ firmware)",
    ),
    VendorQuirks(
        "Supermicro",
        vendors=("Supermicro",),
        oem_keys=("Supermicro",),
        manufacturers=("supermicro",),
        # X11/X12 answer 400 (ActionParameterNotSupported) to Inserted and WriteProtected.
        insert_minimal_body=True,
        cd_targets=("Cd", "UsbCd"),
        media_ids=("CD1", "CD"),
        notes="virtual media under /Managers/1/VirtualMedia; UsbCd is the virtual CD on some boards",
    ),
    VendorQuirks(
        "AMI MegaRAC",
        vendors=("AMI",),
        oem_keys=("Ami", "AMI"),
        manufacturers=("american megatrends",),
        models=("megarac",),
        # MegaRAC requires the transfer protocol and rejects WriteProtected.
        insert_minimal_body=True,
        insert_extra=(("TransferProtocolType", "{scheme}"),),
        cd_targets=("Cd", "UsbCd"),
        media_ids=("CD1", "CD"),
        notes="virtual media under /Managers/Self/VirtualMedia",
    ),
    VendorQuirks(
        "sushy-tools emulator",
        manufacturers=("sushy emulator",),
        # The fake driver ignores Once and never clears the override (reference/peers.md §2).
        once_reads_back_continuous=True,
        clear_override_target="Hdd",
        notes="virtual media under the System; InsertMedia downloads the image before answering",
    ),
)


@dataclass(frozen=True)
class BmcIdentity:
    """What a BMC says about itself, gathered from the service root, the System and its Manager."""

    vendor: str = ""
    oem_keys: tuple[str, ...] = ()
    manufacturers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()


def quirks_for(identity: BmcIdentity) -> VendorQuirks:
    """The record whose keys match ``identity`` first; :data:`GENERIC` when none does."""
    vendor = identity.vendor.strip().lower()
    oem = {k.lower() for k in identity.oem_keys}
    manufacturers = [m.lower() for m in identity.manufacturers if m]
    models = [m.lower() for m in identity.models if m]
    for q in QUIRKS:
        if vendor and vendor in (v.lower() for v in q.vendors):
            return q
        if oem & {k.lower() for k in q.oem_keys}:
            return q
        if any(s in m for s in q.manufacturers for m in manufacturers):
            return q
        if any(s in m for s in q.models for m in models):
            return q
    return GENERIC
