"""Bare metal through Redfish: boot a node from the ISO by BMC virtual media, eject it afterwards, check the BMC.

:mod:`.session` holds the HTTP session with one BMC (httpx, SessionService or basic auth), :mod:`.client` what a
boot needs on top of it (links followed, media, boot override, task and power polling),
:mod:`.quirks` holds what vendors do differently as data, :mod:`.errors` the errors a BMC can cause,
:mod:`.jobs` the boot and eject jobs, and :mod:`.checks` the preflight checks.
"""

from wizard.providers.redfish.checks import CHECKS, inventory, run_checks
from wizard.providers.redfish.client import Inventory, RedfishClient, VirtualMedia
from wizard.providers.redfish.errors import (
    AuthRefused,
    BmcUnreachable,
    BootOverrideRefused,
    InsertMediaRefused,
    IsoNotFetched,
    NoCdMedia,
    PowerTimeout,
    RedfishError,
    TaskFailed,
)
from wizard.providers.redfish.jobs import RedfishBootJob, RedfishEjectJob, RedfishTimeouts
from wizard.providers.redfish.session import BmcAddress, parse_address

__all__ = [
    "CHECKS",
    "AuthRefused",
    "BmcAddress",
    "BmcUnreachable",
    "BootOverrideRefused",
    "InsertMediaRefused",
    "Inventory",
    "IsoNotFetched",
    "NoCdMedia",
    "PowerTimeout",
    "RedfishBootJob",
    "RedfishClient",
    "RedfishEjectJob",
    "RedfishError",
    "RedfishTimeouts",
    "TaskFailed",
    "VirtualMedia",
    "inventory",
    "parse_address",
    "run_checks",
]
