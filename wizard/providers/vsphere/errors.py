# pyVmomi's stubs type every managed property as Optional and its data-object constructors as untyped; checking
# those two codes here would mean an assert or a cast on nearly every vCenter call, so only they are off.
# mypy: disable-error-code="union-attr,no-untyped-call"
"""vCenter failures translated into :class:`~wizard.core.errors.WizardError` at the provider's boundary.

pyVmomi raises its SOAP faults as exceptions (``vim.fault.InvalidLogin``, ``NoPermission``, ``DuplicateName`` …),
task failures arrive as the same fault objects in ``task.info.error``, and the transport raises plain
``OSError``/``ssl`` errors. Everything above this module sees one error type with a title, a message naming the
object concerned, and the fix.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from pyVmomi import vim, vmodl

from wizard.core.errors import Cancelled, WizardError
from wizard.core.trust import (
    TrustKind,
    TrustStore,
    certificate_changed,
    is_certificate_change,
)


class VsphereError(WizardError):
    """A vCenter operation failed; ``fault`` is the pyVmomi fault class name when there was one."""

    def __init__(self, title: str, message: str, *, details: str = "", remediation: str = "", fault: str = "") -> None:
        super().__init__(title, message, details=details, remediation=remediation)
        self.fault = fault


def _name(obj: Any) -> str:
    """A managed object's name for a message, without a round trip when it cannot be had."""
    if obj is None:
        return ""
    try:
        name = getattr(obj, "name", None)
        if isinstance(name, str) and name:
            return f"{name} ({obj._moId})"
        return str(obj._moId)
    except Exception:  # an unreachable server must not hide the original fault
        return str(obj)


def _fault_text(fault: vmodl.MethodFault) -> str:
    msg = str(getattr(fault, "msg", "") or "")
    if not msg:
        for m in getattr(fault, "faultMessage", []) or []:
            msg = str(getattr(m, "message", "") or "")
            if msg:
                break
    return msg or type(fault).__name__.rsplit(".", 1)[-1]


def missing_privileges(fault: vim.fault.NoPermission) -> list[tuple[str, str]]:
    """(object, privilege id) pairs named by a NoPermission fault (newer vCenters list several)."""
    out: list[tuple[str, str]] = []
    for entry in getattr(fault, "missingPrivileges", []) or []:
        out.extend((_name(entry.entity), str(p)) for p in entry.privilegeIds or [])
    if not out and fault.privilegeId:
        out.append((_name(fault.object), str(fault.privilegeId)))
    return out


def translate_fault(fault: BaseException, doing: str) -> WizardError:
    """A vCenter fault (raised, or from a failed task) as the error to show; ``doing`` says what was attempted."""
    kind = type(fault).__name__.rsplit(".", 1)[-1]
    if isinstance(fault, vim.fault.InvalidLogin):
        return VsphereError(
            "vCenter login failed",
            f"vCenter rejected the user name or password while {doing}",
            remediation=(
                "check provider.vsphere.username and store the right password with "
                "`palette-wizard secret set NAME`; the account may also be locked"
            ),
            fault=kind,
        )
    if isinstance(fault, vim.fault.NoPermission):
        pairs = missing_privileges(fault)
        names = ", ".join(sorted({p for _, p in pairs})) or "a privilege"
        return VsphereError(
            "Missing vCenter privilege",
            f"the vCenter user lacks {names} while {doing}",
            details="\n".join(f"{obj or '(object)'}: {priv}" for obj, priv in pairs),
            remediation="grant the named privileges to the user's role on these objects (propagated to children)",
            fault=kind,
        )
    if isinstance(fault, vim.fault.DuplicateName):
        return VsphereError(
            "Name already in use",
            f"vCenter already has an object named {fault.name!r} ({_name(fault.object)}) while {doing}",
            remediation="pick another name, or remove or rename the existing object if it is no longer needed",
            fault=kind,
        )
    if isinstance(fault, vim.fault.InsufficientResourcesFault):
        return VsphereError(
            "Not enough resources",
            f"vCenter reports insufficient resources while {doing}: {_fault_text(fault)}",
            remediation=(
                "free capacity in the cluster or resource pool (CPU, memory, reservations), lower the node size, "
                "or choose another cluster"
            ),
            fault=kind,
        )
    if isinstance(fault, vim.fault.FileNotFound):
        return VsphereError(
            "File not found",
            f"{fault.file or 'a file'} does not exist on the datastore (while {doing})",
            remediation="check the datastore and folder names; upload the file again if it was removed",
            fault=kind,
        )
    if isinstance(fault, vim.fault.FileFault):
        return VsphereError(
            "Datastore file error",
            f"{kind} for {fault.file or 'a file'} while {doing}: {_fault_text(fault)}",
            remediation="check the datastore is accessible and has free space, then retry",
            fault=kind,
        )
    if isinstance(fault, vim.fault.InvalidPowerState):
        return VsphereError(
            "Wrong power state",
            f"the VM is {fault.existingState} while {doing}",
            remediation="power the VM off (or on) as the message asks, then retry",
            fault=kind,
        )
    if isinstance(fault, vmodl.fault.ManagedObjectNotFound):
        return VsphereError(
            "Object vanished",
            f"an object used while {doing} no longer exists in vCenter",
            remediation="someone removed or re-created it; retry so the wizard looks it up again",
            fault=kind,
        )
    if isinstance(fault, vmodl.MethodFault):
        return VsphereError(
            "vCenter refused the operation",
            f"{kind} while {doing}: {_fault_text(fault)}",
            remediation="read the message above; retry once the cause is fixed",
            fault=kind,
        )
    return VsphereError("vCenter error", f"{kind} while {doing}: {fault}", fault=kind)


def translate_transport(exc: BaseException, host: str, port: int, trust: TrustStore | None) -> WizardError:
    """A connection-level failure (refused, timed out, certificate changed) as the error to show."""
    where = f"{host}:{port}"
    if is_certificate_change(exc):
        entry = trust.pinned(TrustKind.TLS, host, port) if trust is not None else None
        if entry is not None:
            return certificate_changed(host, port, str(entry["fingerprint"]))
        return VsphereError(
            "Certificate not trusted",
            f"the certificate of {where} could not be verified: {exc}",
            remediation="install the vCenter CA in the OS trust store, or pin its fingerprint when asked",
        )
    if isinstance(exc, ConnectionRefusedError):
        return VsphereError(
            "Cannot reach vCenter",
            f"{where} refused the connection",
            remediation="check provider.vsphere.server and port, and that vCenter's services are running",
        )
    if isinstance(exc, TimeoutError | socket.timeout):
        return VsphereError(
            "vCenter did not answer",
            f"{where} did not answer in time",
            remediation="check the address, firewalls between this machine and vCenter, and vCenter's health",
        )
    if isinstance(exc, socket.gaierror):
        return VsphereError(
            "vCenter name unknown",
            f"{host} does not resolve ({exc.strerror or exc})",
            remediation="check provider.vsphere.server and this machine's DNS",
        )
    if isinstance(exc, ssl.SSLError):
        return VsphereError(
            "TLS handshake failed",
            f"{where}: {exc}",
            remediation="check that the port serves HTTPS (vCenter listens on 443)",
        )
    if isinstance(exc, OSError):
        return VsphereError(
            "Cannot reach vCenter",
            f"{where}: {exc.strerror or exc}",
            remediation="check the address, port and the network path to vCenter",
        )
    return VsphereError("vCenter connection failed", f"{where}: {type(exc).__name__}: {exc}")


def os_cause(exc: BaseException) -> BaseException:
    """The OS-level error under a wrapped one (httpx's), so refused, reset or a certificate is named precisely."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            return current
        current = current.__cause__ or current.__context__
    return exc


def translate(exc: BaseException, doing: str, host: str, port: int, trust: TrustStore | None = None) -> BaseException:
    """The error to raise for ``exc``: WizardError and Cancelled pass through; everything else is translated."""
    if isinstance(exc, WizardError | Cancelled):
        return exc
    if isinstance(exc, vmodl.MethodFault):
        return translate_fault(exc, doing)
    return translate_transport(exc, host, port, trust)
