"""The operator's certificate for the system console, installed through the console's API (palette-sdk-go's
``PUT /v1/system/config/domain/certificates {rootDomain, certificates{certificateBase64, keyBase64,
caCertificateBase64}}``, reference §10.4) — at install time after the first login, or later as a day-2 action.

The files are checked first (:mod:`wizard.core.tlsfiles`): nothing is sent that the console would refuse or that
would lock the wizard out. After the change the wizard waits until the VIP serves exactly the operator's certificate
(a TLS handshake completes only with its private key), then pins it: it is the certificate the operator gave, so no
one needs to be asked, and the pin records that. Backup and restore need the system address to be an FQDN: without
a root domain the address stays the VIP, which the job's result and the project's validation warn about.

``only_if_lost``: after an upgrade that loses custom certificates (4.8.47 to 4.9.14) the job installs it again only
when the VIP no longer serves it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wizard.appliance.console import ConsoleConnector, ConsoleEndpoint
from wizard.appliance.console_jobs import wait_for_console
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job
from wizard.core.progress import Reporter
from wizard.core.tlsfiles import CertificateSet, check_certificate_set, is_ip
from wizard.core.trust import TrustKind, TrustMismatch, fetch_certificate, same_fingerprint

log = logging.getLogger(__name__)

IP_WARNING = "the system address is an IP address: backup and restore need an FQDN (give a root domain)"


@dataclass(frozen=True)
class CertificateFiles:
    """Where the operator's PEM files are (the key is read only when it is sent)."""

    cert: Path
    key: Path
    ca: Path | None = None


def _stat(path: Path | None) -> str:
    if path is None:
        return "-"
    try:
        st = path.stat()
    except OSError:
        return f"{path}:missing"
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


class ConsoleCertificateJob(Job):
    """Install the operator's certificate (and root domain) on the system console; pin it once the VIP serves it."""

    id = "console/certificate"
    name = "Console certificate"
    weight = 0.5

    def __init__(
        self,
        endpoint: ConsoleEndpoint,
        connector: ConsoleConnector,
        password: str,
        files: CertificateFiles,
        *,
        domain: str = "",
        only_if_lost: bool = False,
        poll: float = 10.0,
        timeout: float = 600.0,
        available_timeout: float = 1800.0,
    ) -> None:
        self.endpoint = endpoint
        self.connector = connector
        self.password = password
        self.files = files
        self.domain = domain
        self.only_if_lost = only_if_lost
        self.poll = poll
        self.timeout = timeout
        self.available_timeout = available_timeout

    def fingerprint(self) -> str:
        parts = [self.endpoint.url, self.domain, *(_stat(p) for p in (self.files.cert, self.files.key, self.files.ca))]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        certs, warnings = self._check()
        host, port = self.endpoint.host, self.endpoint.port
        if self.only_if_lost:
            served = self._served(host, port)
            if served and same_fingerprint(served, certs.fingerprint):
                self._pin(certs)
                report.finish(f"{self.endpoint.url} still serves the operator's certificate")
                return self._result(certs, warnings, applied=False)
            if served:
                self._trust_replacement(host, port)
        report.update(0.1, f"Logging in to {self.endpoint.url}/system")
        client = wait_for_console(
            self.connector, self.endpoint, self.password, report, cancel, poll=self.poll, timeout=self.available_timeout
        )
        with client:
            domain = self.domain or self._current_domain(client)
            cancel.raise_if_cancelled()
            report.update(0.4, f"Installing the certificate for {domain}")
            log.info(
                "installing the operator's certificate %s on %s (root domain %s)",
                certs.fingerprint,
                self.endpoint.url,
                domain,
            )
            client.set_domain_certificates(domain, certs.cert_pem, certs.key_pem, certs.ca_pem)
        self._wait_served(certs, report, cancel)
        self._pin(certs)
        if is_ip(domain):
            warnings.append(IP_WARNING)
        for warning in warnings:
            report.warn(warning)
        headline = f"{self.endpoint.url} serves the operator's certificate ({certs.fingerprint[:17]}…), pinned"
        report.finish(headline)
        noted = "".join(f"; warning: {w}" for w in warnings)
        return {**self._result(certs, warnings, applied=True), "domain": domain, "headline": headline + noted}

    def _check(self) -> tuple[CertificateSet, list[str]]:
        certs, problems = check_certificate_set(
            self.files.cert, self.files.key, self.files.ca, domain=self.domain, address=self.endpoint.host
        )
        errors = [p for p in problems if not p.warning]
        if certs is None or errors:
            raise WizardError(
                "Certificate not usable",
                "; ".join(p.message for p in errors),
                details="\n".join(f"{p.field}: {p.message} — {p.fix}" for p in problems),
                remediation=errors[0].fix if errors else "check the certificate files",
            )
        return certs, [f"{p.message} ({p.fix})" for p in problems if p.warning]

    def _trust_replacement(self, host: str, port: int) -> None:
        """The upgrade replaced the operator's certificate (the release notes say it does): the console presents one
        of its own now. To log in and put the operator's back, that one must be trusted first: the nodes, over their
        pinned SSH sessions, must see the same one at the VIP (nobody else is asked)."""
        presented = fetch_certificate(host, port, timeout=10.0)
        witness = self.connector.witness
        sighting = witness(host, port) if witness is not None else None
        if sighting is None or sighting.fingerprint is None:
            raise WizardError(
                "Certificate not confirmed",
                f"{host}:{port} presents {presented.fingerprint} instead of the operator's certificate, and no node "
                "could confirm it" + (f" ({sighting.note})" if sighting is not None else ""),
                remediation=f"check it on a node (openssl s_client -connect {host}:{port}), then `palette-wizard trust "
                f"forget {host}:{port}` and run again",
            )
        if not same_fingerprint(sighting.fingerprint, presented.fingerprint):
            raise TrustMismatch(
                "Certificate not confirmed",
                f"{host}:{port} presents {presented.fingerprint} to this machine, but {sighting.witness} sees "
                f"{sighting.fingerprint} there: something between this machine and {host} answers in its place",
                remediation="find what intercepts the traffic from this machine to the VIP before going on",
            )
        self.connector.trust.pin(
            TrustKind.TLS,
            host,
            port,
            presented.fingerprint,
            pem=presented.pem,
            how=f"verified: {sighting.witness} sees the same certificate (the upgrade replaced the operator's)",
        )
        log.warning("%s:%d lost the operator's certificate in the upgrade; putting it back", host, port)

    def _current_domain(self, client: Any) -> str:
        """The root domain the console has (kept as it is), else the address it is reached at."""
        settings = client.domain_settings() or {}
        return str(settings.get("rootDomain") or self.endpoint.host)

    @staticmethod
    def _served(host: str, port: int) -> str:
        try:
            return fetch_certificate(host, port, timeout=10.0).fingerprint
        except WizardError as exc:
            log.info("%s:%d serves no certificate yet: %s", host, port, exc.message)
            return ""

    def _wait_served(self, certs: CertificateSet, report: Reporter, cancel: CancelToken) -> None:
        """Until the VIP completes a handshake with the operator's certificate (the console reloads its ingress)."""
        host, port = self.endpoint.host, self.endpoint.port
        deadline = time.monotonic() + self.timeout
        while True:
            served = self._served(host, port)
            if served and same_fingerprint(served, certs.fingerprint):
                return
            if time.monotonic() >= deadline:
                raise WizardError(
                    "Certificate not served",
                    f"{self.endpoint.url} still presents {served or 'nothing'} {int(self.timeout)} s after the "
                    f"console took {certs.fingerprint}",
                    remediation="check the system console (Administration → System Address) and run again: the "
                    "certificate is sent again and checked",
                )
            report.update(0.7, f"Waiting for {self.endpoint.url} to serve the new certificate…")
            cancel.sleep(self.poll)

    def _pin(self, certs: CertificateSet) -> None:
        trust = self.connector.trust
        host, port = self.endpoint.host, self.endpoint.port
        entry = trust.pinned(TrustKind.TLS, host, port)
        if entry is not None and same_fingerprint(str(entry["fingerprint"]), certs.fingerprint):
            return
        how = f"the operator's own certificate ({self.files.cert.name}), installed by the wizard and served at {host}"
        trust.pin(TrustKind.TLS, host, port, certs.fingerprint, pem=certs.cert_pem, how=how)

    def _result(self, certs: CertificateSet, warnings: list[str], *, applied: bool) -> dict[str, Any]:
        return {
            "fingerprint": certs.fingerprint,
            "names": list(certs.names),
            "expires": certs.not_after.strftime("%Y-%m-%d"),
            "applied": applied,
            "warnings": warnings,
        }
