"""What each provider contributes to the steps: its preflight checks, and the values its jobs are built from.

Kept in one module so the steps stay provider-neutral: a step asks here for "the provider's checks" or "the MAAS
connection" and gets plain values (settings, resolved secrets, a trust store, the confirm callable).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from wizard.core.checks.catalog import CheckResult
from wizard.core.jobs import StepContext
from wizard.core.project import Bmc, MaasSettings, ProviderType, VsphereSettings
from wizard.core.trust import Confirm, TrustStore, system_or_pinned_tls_context


@dataclass(frozen=True)
class MaasAccess:
    """How to reach MAAS: plain values a job is built from (the API key resolved from the keyring)."""

    url: str
    api_key: str
    fingerprint: str
    trust: TrustStore
    confirm: Confirm | None

    def verify(self) -> ssl.SSLContext | bool:
        """The TLS context for an https MAAS (system store, else the pinned certificate); plain http needs none."""
        parts = urlsplit(self.url)
        if parts.scheme != "https":
            return True
        return system_or_pinned_tls_context(
            self.trust, self.confirm, parts.hostname or "", parts.port or 443, expected=self.fingerprint
        )


def maas_access(ctx: StepContext, settings: MaasSettings) -> MaasAccess:
    return MaasAccess(
        settings.url,
        ctx.secrets.require(settings.api_key, "provider.maas.api_key"),
        settings.tls_fingerprint,
        TrustStore(ctx.paths.config),
        ctx.confirm,
    )


@dataclass(frozen=True)
class VsphereAccess:
    """How to reach vCenter: the settings, the password from the keyring, trust and the confirm callable."""

    settings: VsphereSettings
    password: str
    trust: TrustStore
    confirm: Confirm | None
    scheme: str = "https"

    def args(self) -> tuple[VsphereSettings, str, TrustStore, Confirm | None]:
        return self.settings, self.password, self.trust, self.confirm


def vsphere_access(ctx: StepContext, settings: VsphereSettings) -> VsphereAccess:
    return VsphereAccess(
        settings,
        ctx.secrets.require(settings.password, "provider.vsphere.password"),
        TrustStore(ctx.paths.config),
        ctx.confirm,
        scheme=VSPHERE_SCHEME,
    )


#: Always https for operators; the vCenter simulator's plain-http mode is reachable only by tests that set this.
VSPHERE_SCHEME = "https"


@dataclass(frozen=True)
class BmcAccess:
    """One node's BMC with its password from the keyring."""

    node: str
    bmc: Bmc
    password: str
    trust: TrustStore
    confirm: Confirm | None


def bmc_accesses(ctx: StepContext) -> list[BmcAccess]:
    trust = TrustStore(ctx.paths.config)
    return [
        BmcAccess(
            node.name,
            node.bmc,
            ctx.secrets.require(node.bmc.password, f"nodes[{i}].bmc.password"),
            trust,
            ctx.confirm,
        )
        for i, node in enumerate(ctx.project.nodes)
        if node.bmc is not None
    ]


@dataclass(frozen=True)
class ProviderChecks:
    """One preflight job's worth of provider checks."""

    job_id: str
    name: str
    run: Callable[[], list[CheckResult]]
    inputs: str
    fallback_check: str


def provider_checks(ctx: StepContext) -> list[ProviderChecks]:
    """The provider's preflight checks, as jobs for the preflight step (none for ``manual``)."""
    project = ctx.project
    provider = project.provider
    if provider.type is ProviderType.MAAS and provider.maas is not None:
        from wizard.providers import maas

        access = maas_access(ctx, provider.maas)
        refs = [n.maas for n in project.nodes]

        def run() -> list[CheckResult]:
            return maas.run_checks(access.url, access.api_key, access.verify(), refs=refs)

        return [ProviderChecks("preflight/provider", "MAAS", run, f"{access.url}|{refs}", "maas.reachable")]
    if provider.type is ProviderType.VSPHERE and provider.vsphere is not None:
        from wizard.providers.vsphere import checks as vsphere_checks

        vs = vsphere_access(ctx, provider.vsphere)

        def run_vsphere() -> list[CheckResult]:
            return vsphere_checks.run_checks(*vs.args(), project, scheme=vs.scheme)

        inputs = f"{provider.vsphere}|{[(n.name, n.vm) for n in project.nodes]}"
        return [ProviderChecks("preflight/provider", "vCenter", run_vsphere, inputs, "vsphere.login")]
    if provider.type is ProviderType.REDFISH:
        from wizard.providers.redfish import checks as redfish_checks

        out: list[ProviderChecks] = []
        for bmc in bmc_accesses(ctx):

            def run_bmc(a: BmcAccess = bmc) -> list[CheckResult]:
                return redfish_checks.run_checks(a.node, a.bmc, a.password, trust=a.trust, confirm=a.confirm)

            out.append(
                ProviderChecks(
                    f"preflight/bmc/{bmc.node}",
                    f"BMC of {bmc.node}",
                    run_bmc,
                    f"{bmc.bmc}",
                    "redfish.reachable",
                )
            )
        return out
    return []
