"""vSphere: boot the appliance nodes as VMs through vCenter (pyVmomi for SOAP, httpx for datastore and tagging).

Modules: ``session`` (TLS trust, login, lookups, logout), ``errors`` (faults → WizardError), ``inventory`` (what
the vSphere page lists), ``datastore`` (streamed ``/folder`` uploads with a completion record), ``vms`` (create or
validate, place, boot, eject, guest info), ``tagging`` (vAPI tags at ``/api`` or ``/rest``), ``checks`` (preflight)
and ``jobs`` (what the engine runs).
"""

from wizard.providers.vsphere.checks import CHECKS, run_checks, vm_name_for
from wizard.providers.vsphere.inventory import Inventory, load_inventory
from wizard.providers.vsphere.jobs import (
    AntiAffinityJob,
    BootVmJob,
    EjectVmJob,
    PrepareVmJob,
    UploadIsoJob,
    guest_address,
)

__all__ = [
    "CHECKS",
    "AntiAffinityJob",
    "BootVmJob",
    "EjectVmJob",
    "Inventory",
    "PrepareVmJob",
    "UploadIsoJob",
    "guest_address",
    "load_inventory",
    "run_checks",
    "vm_name_for",
]
