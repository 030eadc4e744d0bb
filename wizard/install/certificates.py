"""New certificates for the system console on an installed appliance (``palette-wizard certificates``): the
operator's certificate, key and CA, and the root domain (FQDN) of the system address.

The steps: ``credentials``, ``files`` (the certificate files checked, exit 2 with the field and the fix when they
cannot be used), ``certificates`` (installed through the console's API, then seen served at the VIP and pinned;
:mod:`wizard.appliance.certificates`). The same job runs at install time when the project names
``console.certificate``, and again after an upgrade that loses custom certificates.
"""

from __future__ import annotations

from dataclasses import dataclass

from wizard.appliance.certificates import CertificateFiles
from wizard.core.jobs import Job, Step, StepContext, StepKind
from wizard.core.problems import Problem, Severity
from wizard.core.tlsfiles import check_certificate_set, is_ip
from wizard.install.steps.console import console_certificate_job
from wizard.install.steps.credentials import CredentialsStep
from wizard.install.steps.nodes import Pacing

CERTIFICATE_STEP_IDS = ("credentials", "files", "certificates")
FQDN_NEEDED = "backup and restore need the system address to be an FQDN"


@dataclass(frozen=True)
class CertificateRequest:
    """What the command gives: the files, and the root domain ("" keeps the console's)."""

    files: CertificateFiles
    domain: str = ""

    @property
    def key(self) -> str:
        """What names the session's journal: the certificate file's name and the domain."""
        return f"{self.files.cert.stem}-{self.domain or 'vip'}"


def _field(name: str) -> str:
    return {"cert": "--cert", "key": "--key", "ca": "--ca", "domain": "--domain"}.get(name, name)


class CertificateFilesStep(Step):
    id = "files"
    title = "Check the certificate files"
    kind = StepKind.INPUT
    weight = 0.1

    def __init__(self, request: CertificateRequest) -> None:
        self.request = request

    def problems(self, ctx: StepContext) -> list[Problem]:
        if ctx.project.console is None:
            return [
                Problem(
                    "console",
                    "the project has no system console",
                    "add `console: {email: …, password: {secret: NAME}}` (the install set it up)",
                )
            ]
        files = self.request.files
        missing = [
            Problem(_field(name), f"{path} is not a file", "give the path of the PEM file")
            for name, path in (("cert", files.cert), ("key", files.key), ("ca", files.ca))
            if path is not None and not path.is_file()
        ]
        if missing:
            return missing
        domain = self.request.domain
        _, problems = check_certificate_set(
            files.cert, files.key, files.ca, domain=domain, address=ctx.project.network.vip
        )
        out = [Problem(_field(p.field), p.message, p.fix, severity=_severity(p.warning)) for p in problems]
        if not domain or is_ip(domain):
            out.append(
                Problem(
                    "--domain",
                    f"the system address stays an IP address: {FQDN_NEEDED}",
                    "give --domain with the FQDN the certificate names",
                    severity=_severity(True),
                )
            )
        return out

    def jobs(self, ctx: StepContext) -> list[Job]:
        return []


def _severity(warning: bool) -> Severity:
    return Severity.WARNING if warning else Severity.ERROR


class CertificatesStep(Step):
    id = "certificates"
    title = "Install the console certificate"
    kind = StepKind.INSTALL
    weight = 1.0

    def __init__(self, request: CertificateRequest, pacing: Pacing | None = None) -> None:
        self.request = request
        self.pacing = pacing or Pacing()

    def jobs(self, ctx: StepContext) -> list[Job]:
        # Asked for by the operator: installed (and checked served) again even after an identical earlier run.
        return [console_certificate_job(ctx, self.pacing, self.request.files, self.request.domain, rerun=True)]


def certificate_pipeline(request: CertificateRequest, pacing: Pacing | None = None) -> list[Step]:
    steps: list[Step] = [CredentialsStep(), CertificateFilesStep(request), CertificatesStep(request, pacing)]
    assert tuple(s.id for s in steps) == CERTIFICATE_STEP_IDS
    return steps
