"""Bare metal through Redfish: boot a node from the ISO by BMC virtual media, eject it afterwards, check the BMC.

:mod:`.client` talks to one BMC (httpx, sessions or basic auth, links followed, task and power polling),
:mod:`.quirks` holds what vendors do differently as data, :mod:`.errors` the errors a BMC can cause,
:mod:`.jobs` the boot and eject jobs, and :mod:`.checks` the preflight checks.
"""

from wizard.providers.redfish.checks import CHECKS, inventory, run_checks
from wizard.providers.redfish.client import BmcAddress, Inventory, RedfishClient, VirtualMedia, parse_address
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
