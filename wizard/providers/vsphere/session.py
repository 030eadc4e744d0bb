# pyVmomi's stubs type every managed property as Optional and its data-object constructors as untyped; checking
# those two codes here would mean an assert or a cast on nearly every vCenter call, so only they are off.
# mypy: disable-error-code="union-attr,no-untyped-call"
"""One logged-in vCenter session: TLS trust, login, object lookups by the project's names, logout.

TLS is verified against the OS trust store, or against the vCenter certificate pinned after the operator confirmed
its fingerprint (or the project named it); :func:`wizard.core.trust.system_or_pinned_tls_context` decides, and the
same context carries the SOAP calls and the datastore transfers. Plain HTTP exists only for the simulator in tests:
it is a keyword argument (``scheme="http"``), never a project setting.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from pyVim.connect import Disconnect, GetSi, SetSi, SmartConnect
from pyVmomi import vim, vmodl

from wizard.core.errors import WizardError
from wizard.core.project import VsphereSettings
from wizard.core.trust import Confirm, TrustStore, system_or_pinned_tls_context
from wizard.providers.vsphere.errors import VsphereError, translate

log = logging.getLogger(__name__)

#: vCenter's SOAP endpoint.
SDK_PATH = "/sdk"
T = TypeVar("T", bound=vim.ManagedEntity)


@dataclass(frozen=True)
class Target:
    """Where vCenter is: from the settings, plus the test-only scheme."""

    host: str
    port: int
    scheme: str = "https"

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def target(settings: VsphereSettings, scheme: str = "https") -> Target:
    if scheme not in ("https", "http"):
        raise ValueError(f"unknown scheme {scheme!r}")
    return Target(settings.server, settings.port, scheme)


def tls_context(
    settings: VsphereSettings, trust: TrustStore, confirm: Confirm | None, *, scheme: str = "https"
) -> ssl.SSLContext | None:
    """The verified SSL context for vCenter (None only for the test-only plain HTTP)."""
    if scheme == "http":
        return None
    return system_or_pinned_tls_context(
        trust, confirm, settings.server, settings.port, expected=settings.tls_fingerprint
    )


class VsphereSession:
    """A logged-in ServiceInstance with lookups by the names the project uses. Close it (or use :func:`connect`)."""

    def __init__(
        self,
        si: vim.ServiceInstance,
        settings: VsphereSettings,
        where: Target,
        ssl_context: ssl.SSLContext | None,
        trust: TrustStore | None,
    ) -> None:
        self.si = si
        self.settings = settings
        self.target = where
        self.ssl_context = ssl_context
        self.trust = trust
        self.content: vim.ServiceInstanceContent = si.RetrieveContent()

    # -- session facts -----------------------------------------------------------------------------------
    @property
    def cookie(self) -> tuple[str, str]:
        """The SOAP session cookie (``vmware_soap_session``) that authorises ``/folder`` transfers."""
        raw = str(getattr(self.si._stub, "cookie", "") or "")
        first = raw.split(";", 1)[0].strip()
        name, sep, value = first.partition("=")
        if not sep:
            raise VsphereError("No vCenter session", "vCenter did not set a session cookie at login")
        return name.strip(), value.strip().strip('"')

    @property
    def session_key(self) -> str:
        return str(self.content.sessionManager.currentSession.key)

    @property
    def user_name(self) -> str:
        return str(self.content.sessionManager.currentSession.userName)

    def call(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Calls ``fn`` and translates whatever it raises."""
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            raise translate(exc, doing, self.target.host, self.target.port, self.trust) from exc

    def close(self) -> None:
        # pyVim's Disconnect asks vCenter for the service content again just to find the session manager: one
        # round trip more than logging out through the content read at login.
        with contextlib.suppress(Exception):  # logging out of a session that is already gone is not an error
            self.content.sessionManager.Logout()
        with contextlib.suppress(Exception):
            self.si._stub.DropConnections()
        if GetSi() is self.si:
            SetSi(None)

    # -- lookups -------------------------------------------------------------------------------------------
    def objects(self, kind: type[T], root: vim.ManagedEntity | None = None) -> list[T]:
        """Every object of ``kind`` under ``root`` (recursively), through one container view."""
        view = self.content.viewManager.CreateContainerView(root or self.content.rootFolder, [kind], True)
        try:
            return list(view.view)
        finally:
            with contextlib.suppress(Exception):
                view.DestroyView()

    def properties(
        self, kind: type[vim.ManagedEntity], props: Sequence[str], root: vim.ManagedEntity | None = None
    ) -> list[tuple[vim.ManagedEntity, dict[str, Any]]]:
        """Selected properties of every ``kind`` under ``root`` in one round trip (inventory pages stay fast)."""
        pc = self.content.propertyCollector
        view = self.content.viewManager.CreateContainerView(root or self.content.rootFolder, [kind], True)
        try:
            traversal = vmodl.query.PropertyCollector.TraversalSpec(
                name="view", path="view", skip=False, type=vim.view.ContainerView
            )
            spec = vmodl.query.PropertyCollector.FilterSpec(
                objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traversal])],
                propSet=[vmodl.query.PropertyCollector.PropertySpec(type=kind, pathSet=list(props), all=False)],
            )
            out: list[tuple[vim.ManagedEntity, dict[str, Any]]] = []
            result = pc.RetrievePropertiesEx(specSet=[spec], options=vmodl.query.PropertyCollector.RetrieveOptions())
            while result is not None:
                for oc in result.objects:
                    out.append((oc.obj, {p.name: p.val for p in oc.propSet or []}))
                if not result.token:
                    break
                result = pc.ContinueRetrievePropertiesEx(token=result.token)
            return out
        finally:
            with contextlib.suppress(Exception):
                view.DestroyView()

    def datacenter(self) -> vim.Datacenter:
        name = self.settings.datacenter
        found = self.properties(vim.Datacenter, ["name"])  # names in the same round trip, not one call each
        for dc, props in found:
            if props.get("name") == name and isinstance(dc, vim.Datacenter):
                return dc
        raise _not_found("Datacenter", name, "provider.vsphere.datacenter", [str(p.get("name")) for _, p in found])

    def cluster(self, dc: vim.Datacenter | None = None) -> vim.ClusterComputeResource:
        dc = dc or self.datacenter()
        clusters = self.objects(vim.ClusterComputeResource, dc.hostFolder)
        name = self.settings.cluster
        if not name:
            if len(clusters) == 1:
                return clusters[0]
            raise VsphereError(
                "Cluster not chosen",
                f"datacenter {dc.name} has {len(clusters)} clusters and the project names none",
                remediation="set provider.vsphere.cluster to one of: " + ", ".join(c.name for c in clusters),
            )
        for c in clusters:
            if c.name == name:
                return c
        raise _not_found("Cluster", name, "provider.vsphere.cluster", [c.name for c in clusters])

    def resource_pool(self, cluster: vim.ClusterComputeResource) -> vim.ResourcePool:
        name = self.settings.resource_pool
        root = cluster.resourcePool
        if root is None:
            raise VsphereError("Cluster has no resource pool", f"cluster {cluster.name} has no root resource pool")
        if not name:
            return root
        pools = [root, *self.objects(vim.ResourcePool, root)]
        for p in pools:
            if p.name == name or _pool_path(p, root) == name.strip("/"):
                return p
        raise _not_found("Resource pool", name, "provider.vsphere.resource_pool", [_pool_path(p, root) for p in pools])

    def vm_folder(self, dc: vim.Datacenter | None = None) -> vim.Folder:
        dc = dc or self.datacenter()
        folder: vim.Folder = dc.vmFolder
        path = [p for p in self.settings.folder.split("/") if p]
        for part in path:
            child = next((c for c in folder.childEntity if isinstance(c, vim.Folder) and c.name == part), None)
            if child is None:
                raise _not_found(
                    "VM folder",
                    self.settings.folder,
                    "provider.vsphere.folder",
                    [c.name for c in folder.childEntity if isinstance(c, vim.Folder)],
                )
            folder = child
        return folder

    def datastore(self, dc: vim.Datacenter | None = None) -> vim.Datastore:
        dc = dc or self.datacenter()
        name = self.settings.datastore
        for ds in dc.datastore:
            if ds.name == name:
                return ds
        raise _not_found("Datastore", name, "provider.vsphere.datastore", [d.name for d in dc.datastore])

    def network(self, dc: vim.Datacenter | None = None) -> vim.Network:
        dc = dc or self.datacenter()
        name = self.settings.network
        seen: list[str] = []
        for n in dc.network:
            if n.name == name:
                return n
            seen.append(n.name)
        raise _not_found("Network", name, "provider.vsphere.network", sorted(set(seen)))

    def find_vms(self, name: str, dc: vim.Datacenter | None = None) -> list[vim.VirtualMachine]:
        """Every VM named ``name`` in the datacenter (vCenter allows equal names in different folders)."""
        dc = dc or self.datacenter()
        found = [
            obj
            for obj, props in self.properties(vim.VirtualMachine, ["name"], dc.vmFolder)
            if props.get("name") == name
        ]
        return [vm for vm in found if isinstance(vm, vim.VirtualMachine)]


def _pool_path(pool: vim.ResourcePool, root: vim.ResourcePool) -> str:
    parts: list[str] = []
    current: Any = pool
    while current is not None and current != root and isinstance(current, vim.ResourcePool):
        parts.append(current.name)
        current = current.parent
    return "/".join(reversed(parts))


def _not_found(what: str, name: str, field: str, available: Sequence[str]) -> VsphereError:
    choices = ", ".join(a for a in available if a) or "none"
    return VsphereError(
        f"{what} not found",
        f"vCenter has no {what.lower()} named {name!r}",
        remediation=f"correct {field}; available: {choices}",
    )


def login(
    settings: VsphereSettings,
    password: str,
    trust: TrustStore,
    confirm: Confirm | None,
    *,
    scheme: str = "https",
    timeout: float = 30.0,
) -> VsphereSession:
    """Connects and logs in; the caller must ``close()`` the session (see :func:`connect`)."""
    where = target(settings, scheme)
    ctx = tls_context(settings, trust, confirm, scheme=scheme)
    try:
        si = SmartConnect(
            protocol=scheme,
            host=settings.server,
            port=settings.port,
            user=settings.username,
            pwd=password,
            sslContext=ctx,
            httpConnectionTimeout=timeout,
            connectionPoolTimeout=-1,
        )
    except BaseException as exc:
        raise translate(exc, f"logging in to {where.host}:{where.port}", where.host, where.port, trust) from exc
    if si is None:
        raise VsphereError("vCenter login failed", f"{where.base_url} did not return a session")
    try:
        session = VsphereSession(si, settings, where, ctx, trust)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            Disconnect(si)
        raise translate(exc, "reading vCenter's service content", where.host, where.port, trust) from exc
    log.info("logged in to vCenter %s as %s", where.base_url, settings.username)
    return session


@contextmanager
def connect(
    settings: VsphereSettings,
    password: str,
    trust: TrustStore,
    confirm: Confirm | None,
    *,
    scheme: str = "https",
    timeout: float = 30.0,
) -> Iterator[VsphereSession]:
    """A logged-in session that logs out when the block ends, also on errors and cancellation.

    pyVmomi faults raised inside the block are translated too, so callers see only :class:`WizardError`.
    """
    session = login(settings, password, trust, confirm, scheme=scheme, timeout=timeout)
    try:
        yield session
    except WizardError:
        raise
    except (vmodl.MethodFault, OSError) as exc:
        raise translate(exc, "talking to vCenter", session.target.host, session.target.port, trust) from exc
    finally:
        session.close()
