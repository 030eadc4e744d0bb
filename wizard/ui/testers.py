"""The Credentials page's "Test connection": log in to the provider with the stored secrets and change nothing.

Each tester runs on a worker thread with plain values: the project, the secret store, the trust store and the
``confirm`` callable of the trust dialog. They reuse the providers' own clients, so what passes here is what the
install will see (same TLS trust, same error translation); the clients are imported when a test runs, so the
window opens without loading them.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from wizard.core.errors import WizardError
from wizard.core.project import Project, ProviderType
from wizard.core.secrets import SecretStore
from wizard.core.trust import TrustChanged, TrustRefused, system_or_pinned_tls_context
from wizard.ui.pages.credentials import CONNECTION_TESTS, ConnectionContext, ConnectionTest, register_connection_test


def test_vsphere(project: Project, secrets: SecretStore, conn: ConnectionContext) -> str:
    settings = project.provider.vsphere
    if settings is None:
        raise WizardError("No vCenter settings", "the project names no vCenter", remediation="fill the Provider page")
    from wizard.providers.vsphere.session import connect  # pyVmomi loads slowly: only when a test needs it

    password = secrets.require(settings.password, "provider.vsphere.password")
    conn.cancel.raise_if_cancelled()
    with connect(settings, password, conn.trust, conn.confirm, scheme=conn.vsphere_scheme) as session:
        about = session.content.about
        user = session.user_name
        datacenters = [dc.name for dc in session.content.rootFolder.childEntity if hasattr(dc, "hostFolder")]
    found = f"; datacenter{'s' if len(datacenters) != 1 else ''} {', '.join(datacenters)}" if datacenters else ""
    return f"connected to {about.fullName} at {settings.server} as {user}{found}"


def test_redfish(project: Project, secrets: SecretStore, conn: ConnectionContext) -> str:
    """Every node's BMC: its service root, a login, and the system it boots. Stops at the first that fails."""
    from wizard.providers.redfish.client import RedfishClient

    lines: list[str] = []
    for i, node in enumerate(project.nodes):
        conn.cancel.raise_if_cancelled()
        if node.bmc is None:
            raise WizardError(
                "No BMC", f"node {node.name} has no BMC", remediation="give each node's BMC on the Nodes page"
            )
        password = secrets.require(node.bmc.password, f"nodes[{i}].bmc.password")
        try:
            with RedfishClient.for_bmc(node.bmc, password, trust=conn.trust, confirm=conn.confirm) as client:
                _, system = client.find_system()
                version = client.root.get("RedfishVersion", "?")
                model = " ".join(str(system.get(k) or "") for k in ("Manufacturer", "Model")).strip()
                lines.append(
                    f"{node.name}: Redfish {version}, {client.auth_mode} login, {model or system.get('Id', 'system')}"
                )
        except (TrustChanged, TrustRefused):
            raise  # the trust decision is the caller's (the page offers to trust a changed certificate)
        except WizardError as exc:
            raise WizardError(
                exc.title,
                f"{node.name} ({node.bmc.address}): {exc.message}",
                details="\n".join([*lines, exc.details]).strip(),
                remediation=exc.remediation,
            ) from exc
    return f"{len(lines)} BMC{'s' if len(lines) != 1 else ''} answered and accepted the login — " + "; ".join(lines)


def test_maas(project: Project, secrets: SecretStore, conn: ConnectionContext) -> str:
    settings = project.provider.maas
    if settings is None:
        raise WizardError("No MAAS settings", "the project names no MAAS", remediation="fill in the Provider page")
    from wizard.providers.maas import MaasClient

    api_key = secrets.require(settings.api_key, "provider.maas.api_key")
    parts = urlsplit(settings.url)
    verify = (
        system_or_pinned_tls_context(
            conn.trust, conn.confirm, parts.hostname or "", parts.port or 443, expected=settings.tls_fingerprint
        )
        if parts.scheme == "https"
        else True
    )
    conn.cancel.raise_if_cancelled()
    with MaasClient(settings.url, api_key, verify=verify) as client:
        version = client.version().get("version", "") or "(version unknown)"
        user = client.whoami()
        machines = client.machines()
    ready = sum(1 for m in machines if m.status_name.lower() == "ready")
    return (
        f"MAAS {version} accepts the key of {user.username}; {len(machines)} machine"
        f"{'s' if len(machines) != 1 else ''} visible, {ready} ready"
    )


TESTERS: dict[ProviderType, ConnectionTest] = {
    ProviderType.VSPHERE: test_vsphere,
    ProviderType.REDFISH: test_redfish,
    ProviderType.MAAS: test_maas,
}


def register_all() -> None:
    """Register the testers for the providers that have none registered (an explicit registration wins)."""
    for ptype, test in TESTERS.items():
        if ptype not in CONNECTION_TESTS:
            register_connection_test(ptype, test)
