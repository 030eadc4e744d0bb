"""The jobs of an appliance upgrade (:mod:`wizard.appliance.upgrade` has the rules they apply).

- :class:`VerifyBundleJob`: the new content bundle's sha256 and signature, and the release its name spells.
- :class:`BackupJob`: what the release notes say an upgrade may lose, into the session folder — the cluster's
  configuration and profile values, its certificates' list, the system console's certificate and domain; a value the
  appliance or the project marks sensitive is never written (its keyring name is).
- :class:`SubmitUpdateJob`: once the uploaded bundle's update archive is parsed and the registry has no item pending
  ("Syncing content: (N) items are pending"), answer the archive's variables — the project's answers, the values the
  cluster has, the install's secrets — have the leader validate them and apply the archive.
- :class:`FollowUpdateJob`: follow the cluster until it runs the new release, Running and Healthy, through the
  nodes' reboots, and save the kubeconfig again (an upgrade may renew the cluster's certificates).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wizard.appliance.archive import (
    UpdateArchive,
    cluster_certificates,
    submit_update,
    update_archive,
    update_configuration,
)
from wizard.appliance.cluster import answer_variables, variable_for
from wizard.appliance.hostsync import sync_status
from wizard.appliance.localui import (
    Clock,
    ClusterStatus,
    Connector,
    Endpoint,
    LocalUIClient,
    LocalUIServerError,
    LocalUIUnreachable,
)
from wizard.appliance.upgrade import archive_version, path_problem, version_in_name
from wizard.appliance.versions import Version
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.fsutil import atomic_write_text
from wizard.core.integrity import hash_file, load_public_key, verify_signature
from wizard.core.jobs import Job
from wizard.core.progress import Reporter
from wizard.core.redact import REDACTOR
from wizard.core.trust import fetch_certificate

log = logging.getLogger(__name__)

REDACTED = "(sensitive: not written)"


@dataclass(frozen=True)
class UpgradeRequest:
    """The answers an update archive gets: the project's (by variable name or label) and its secrets."""

    cluster: str
    values: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: keyring name of each secret answer (for the backup: it names where a value is kept, never the value)
    secret_names: Mapping[str, str] = field(default_factory=dict)


class VerifyBundleJob(Job):
    """The new content bundle: sha256, signature against the project's public key, the release its name spells."""

    id = "bundle/verify"
    name = "New content bundle"
    weight = 2.0

    def __init__(self, bundle: Path, signature: Path | None, public_key: Path | None) -> None:
        self.bundle = bundle
        self.signature = signature
        self.public_key = public_key

    def fingerprint(self) -> str:
        parts = [str(self.bundle), str(self.signature or ""), str(self.public_key or "")]
        for path in (self.bundle, self.signature, self.public_key):
            st = path.stat() if path is not None and path.exists() else None
            parts.append(f"{st.st_size}:{st.st_mtime_ns}" if st else "-")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        if self.public_key is not None and self.signature is None:
            raise WizardError(
                "Signature missing",
                f"no signature beside {self.bundle.name} (the project verifies bundles with {self.public_key.name})",
                remediation="download the bundle's .sig.bin from Artifact Studio and put it beside the bundle "
                "(or give it with --signature)",
            )
        key = load_public_key(self.public_key) if self.public_key is not None else None
        report.update(0.0, f"Checking {self.bundle.name}…")
        digest = hash_file(self.bundle, report, cancel)
        if key is not None and self.signature is not None:
            try:
                sig = self.signature.read_bytes()
            except OSError as exc:
                raise WizardError("Signature unreadable", f"{self.signature}: {exc.strerror or exc}") from exc
            verify_signature(key, digest.digest, sig, what=self.bundle.name)
        named = version_in_name(self.bundle.name)
        said = f", named {named}" if named else ", its name spells no release"
        report.finish(f"{self.bundle.name}: sha256 {digest.sha256[:12]}…" + (" signature OK" if key else "") + said)
        return {
            "sha256": digest.sha256,
            "size": digest.size,
            "signature_verified": key is not None,
            "name_version": str(named) if named else "",
        }


def _write_json(path: Path, data: Any) -> None:
    text = json.dumps(data, indent=1, sort_keys=True, default=str)
    atomic_write_text(path, REDACTOR.redact(text), mode=0o600)


class BackupJob(Job):
    """Save what an upgrade may lose into ``folder`` (owner-only files); sensitive values are left out."""

    id = "backup/appliance"
    name = "Backup before the upgrade"
    weight = 0.5

    def __init__(
        self,
        leader: Endpoint,
        connector: Connector,
        folder: Path,
        request: UpgradeRequest,
        *,
        console: tuple[str, int] | None = None,
        console_reader: Any = None,
    ) -> None:
        """``console``: where the system console answers (its served certificate is saved); ``console_reader``: a
        callable returning the console's domain settings (``rootDomain`` and certificates), or None."""
        self.leader = leader
        self.connector = connector
        self.folder = folder
        self.request = request
        self.console = console
        self.console_reader = console_reader
        self.node = leader.name

    def fingerprint(self) -> str:
        return f"{self.leader.where}|{self.folder}"

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        self.folder.mkdir(parents=True, exist_ok=True)
        written: list[str] = []
        notes: list[str] = []
        for value in self.request.secrets.values():
            REDACTOR.add(value)
        with self.connector.open(self.leader, cancel) as client:
            report.update(0.1, "Saving the cluster's configuration and profile values")
            embedded = client.get_json("/v1/edge-mgmt/clusters/archive/embedded/details", missing_ok=True) or {}
            sensitive = self._sensitive(client, embedded)
            config = client.cluster_configuration()
            if config is None:
                raise WizardError(
                    "No cluster",
                    f"{self.leader.name} reports no cluster to back up",
                    remediation="upgrade an installed appliance: run the install first",
                )
            variables = (config.get("spec") or {}).get("profileVariables") or []
            redacted = 0
            for item in variables:
                if isinstance(item, dict) and str(item.get("name")) in sensitive:
                    kept = sensitive[str(item.get("name"))]
                    item["value"] = f"{REDACTED}; keyring: {kept}" if kept else REDACTED
                    redacted += 1
            _write_json(self.folder / "cluster-configuration.json", config)
            written.append("cluster-configuration.json")
            values = {str(v.get("name")): v.get("value") for v in variables if isinstance(v, dict)}
            packs = [
                {"profile": p.get("profileName"), "version": p.get("profileVersion"), "packs": p.get("packs") or []}
                for p in embedded.get("clusterProfileDetails") or []
                if isinstance(p, dict)
            ]
            _write_json(self.folder / "profile-values.json", {"variables": values, "profiles": packs})
            written.append("profile-values.json")
            cancel.raise_if_cancelled()
            report.update(0.5, "Saving the cluster's certificate list")
            certificates = cluster_certificates(client)
            if certificates is not None:
                _write_json(self.folder / "cluster-certificates.json", certificates)
                written.append("cluster-certificates.json")
            else:
                notes.append("the appliance lists no cluster certificates (cluster/certificates)")
        if self.console is not None:
            report.update(0.7, "Saving the system console's certificate")
            host, port = self.console
            try:
                served = fetch_certificate(host, port, timeout=10.0)
                atomic_write_text(self.folder / "console-certificate.pem", served.pem, mode=0o600)
                written.append("console-certificate.pem")
                notes.append(f"the console served {served.fingerprint}")
            except WizardError as exc:
                notes.append(f"the console's certificate could not be read: {exc.message}")
            if self.console_reader is not None:
                domain = self.console_reader(cancel)
                if domain is not None:
                    _write_json(self.folder / "console-domain.json", domain)
                    written.append("console-domain.json")
                else:
                    notes.append("the console did not say its domain settings (an optional read)")
        report.finish(f"{len(written)} file(s) in {self.folder.name}, {redacted} sensitive value(s) left out")
        return {"folder": str(self.folder), "files": written, "redacted": redacted, "notes": notes}

    def _sensitive(self, client: LocalUIClient, embedded: Mapping[str, Any]) -> dict[str, str]:
        """Variable name → the keyring name that holds it ("" when none does), for every sensitive variable."""
        out: dict[str, str] = {}
        archive = client.archive_details()
        names = self.request.secret_names
        if archive is not None:
            for key, keyring in names.items():
                var = variable_for(archive, key)
                out[var.name if var is not None else key] = keyring
            for var in archive.variables:
                if var.sensitive:
                    out.setdefault(var.name, "")
        else:
            out.update(names)
        return out


class SubmitUpdateJob(Job):
    """Answer the update archive's variables, have the leader check them, and apply the archive."""

    id = "update/submit"
    name = "Apply the update"
    weight = 1.0

    def __init__(
        self,
        leader: Endpoint,
        connector: Connector,
        request: UpgradeRequest,
        *,
        current: Version | None,
        bundle_version: Version | None,
        poll_interval: float = 10.0,
        details_timeout: float = 1800.0,
        clock: Clock = time.time,
    ) -> None:
        self.leader = leader
        self.connector = connector
        self.request = request
        self.current = current
        self.bundle_version = bundle_version
        self.poll_interval = poll_interval
        self.details_timeout = details_timeout
        self.clock = clock
        self.node = leader.name

    def fingerprint(self) -> str:
        r = self.request
        parts = [self.leader.where, r.cluster, str(self.current), str(self.bundle_version)]
        parts += sorted(f"{k}={v}" for k, v in r.values.items()) + sorted(r.secrets)  # never a secret's value
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        for value in self.request.secrets.values():
            REDACTOR.add(value)
        with self.connector.open(self.leader, cancel) as client:
            status = client.cluster_status()
            if status is None or status.name != self.request.cluster:
                raise WizardError(
                    "Cluster not found",
                    f"{self.leader.name} reports no cluster {self.request.cluster!r}",
                    remediation="run the upgrade against the project the appliance was installed from",
                )
            archive = self._wait_archive(client, report, cancel)
            target = archive_version(archive.raw, self.current)
            if target is not None and self.bundle_version is not None and target != self.bundle_version:
                raise WizardError(
                    "Bundle and archive disagree",
                    f"the bundle's name says {self.bundle_version} but the update archive it carries says {target}",
                    remediation="check that the file is the content bundle of the release you meant; rename nothing",
                )
            target = target or self.bundle_version
            if self.current is not None and target is not None and (problem := path_problem(self.current, target)):
                raise WizardError(
                    "Upgrade path not supported",
                    problem,
                    remediation="reject the uploaded update in the Local UI (Content) if you do not use it, and "
                    "upgrade in the hops listed",
                )
            self._wait_registry(client, report, cancel)
            report.update(0.6, "Answering the update's profile variables…")
            current = client.cluster_configuration() or {}
            answers, dropped = self._answers(archive, current)
            invalid = [c for c in client.validate_variables(archive.details.path, answers) if not c.valid]
            if invalid:
                labels = {v.name: v.label for v in archive.details.variables}
                raise WizardError(
                    "Update variables not accepted",
                    ", ".join(labels.get(c.name, c.name) for c in invalid) + " not accepted by the leader",
                    details="\n".join(f"{labels.get(c.name, c.name)}: {c.reason or 'invalid'}" for c in invalid),
                    remediation="correct these answers under cluster.variables / cluster.secret_variables, then run "
                    "the upgrade again",
                )
            cancel.raise_if_cancelled()
            report.update(0.8, f"Applying the update archive to {self.request.cluster}…")
            configuration = update_configuration(current, self.request.cluster, archive.details.path, answers)
            method = submit_update(client, self.request.cluster, archive.details.path, configuration)
        said = f" ({target})" if target else ""
        report.finish(f"Update{said} handed to {self.leader.name}; the cluster applies it now")  # the API call: logged
        log.info("update archive %s applied to %s through %s", archive.details.path, self.request.cluster, method)
        return {
            "archive": archive.details.path,
            "target": str(target) if target else "",
            "archive_version": str(archive_version(archive.raw, self.current) or ""),
            "method": method,
            "answered": sorted(a["name"] for a in answers),
            "dropped": dropped,
        }

    def _wait_archive(self, client: LocalUIClient, report: Reporter, cancel: CancelToken) -> UpdateArchive:
        deadline = self.clock() + self.details_timeout
        while True:
            archive = update_archive(client)
            if archive is not None:
                return archive
            if self.clock() >= deadline:
                raise WizardError(
                    "No update archive",
                    f"{self.leader.name} has not described an update archive {int(self.details_timeout)} s after "
                    "the upload",
                    remediation="the bundle may carry no update (a bundle of the installed release?) or the "
                    "appliance may predate archive updates through its API: check Cluster → Configuration → Update "
                    "in the Local UI",
                )
            report.update(0.1, "Waiting for the leader to parse the update archive…")
            cancel.sleep(self.poll_interval)

    def _wait_registry(self, client: LocalUIClient, report: Reporter, cancel: CancelToken) -> None:
        """The docs' "Syncing content: (N) items are pending" banner: wait until it is gone."""
        deadline = self.clock() + self.details_timeout
        while True:
            pending, message = sync_status(client)
            failed = [p for p in pending if p.status == "failed"]
            if failed:
                raise WizardError(
                    "Content did not sync",
                    f"{self.leader.name}: " + ", ".join(f"{p.name} ({p.message or p.status})" for p in failed),
                    remediation="look at Content in the leader's Local UI, upload the bundle again if it is "
                    "damaged, then run the upgrade again",
                )
            if not pending:
                return
            if self.clock() >= deadline:
                raise WizardError(
                    "Content still syncing",
                    f"{len(pending)} item(s) still pending on {self.leader.name}: {message}",
                    remediation="wait until the Content page shows no pending items, then run the upgrade again",
                )
            report.update(0.3, f"Syncing content: {len(pending)} item(s) pending")
            cancel.sleep(self.poll_interval)

    def _answers(self, archive: UpdateArchive, current: Mapping[str, Any]) -> tuple[list[dict[str, str]], list[str]]:
        """Every variable of the update: the project's answer, else the value the cluster has (the install's, so
        non-default settings survive even where an upgrade would reset them), else the default. A project answer
        the new profile no longer has is reported, not sent."""
        details = archive.details

        def known(key: str) -> bool:
            return variable_for(details, key) is not None

        dropped = sorted(k for k in [*self.request.values, *self.request.secrets] if not known(k))
        values = {k: v for k, v in self.request.values.items() if known(k)}
        secrets = {k: v for k, v in self.request.secrets.items() if known(k)}
        named = {variable_for(details, k).name for k in [*values, *secrets]}  # type: ignore[union-attr]
        sensitive = {v.name for v in details.variables if v.sensitive}
        for item in (current.get("spec") or {}).get("profileVariables") or []:
            name, value = str(item.get("name") or ""), str(item.get("value") or "")
            var = next((v for v in details.variables if v.name == name), None)
            # An answer the appliance blanks (sensitive) is not a value: the project's secret answers it.
            if var is None or name in named or name in sensitive or not value:
                continue
            if var.immutable and value != (var.default or ""):
                continue
            values[name] = value
        return answer_variables(details, values, secrets), dropped


class FollowUpdateJob(Job):
    """Follow the cluster until it runs the target release, Running and Healthy; save its kubeconfig again."""

    id = "update/follow"
    name = "Upgrade"
    weight = 10.0

    def __init__(
        self,
        leader: Endpoint,
        connector: Connector,
        cluster: str,
        kubeconfig_path: Path,
        *,
        target: Version | None,
        previous: Version | None,
        poll_interval: float = 15.0,
        expected_duration: float = 45 * 60.0,
        timeout: float = 3 * 3600.0,
        outage_timeout: float = 30 * 60.0,
        clock: Clock = time.time,
    ) -> None:
        self.leader = leader
        self.connector = connector
        self.cluster = cluster
        self.kubeconfig_path = kubeconfig_path
        self.target = target
        self.previous = previous
        self.poll_interval = poll_interval
        self.expected_duration = expected_duration
        self.timeout = timeout
        self.outage_timeout = outage_timeout
        self.clock = clock
        self.node = leader.name

    def fingerprint(self) -> str:
        return f"{self.leader.where}|{self.cluster}|{self.target}|{self.previous}|{self.kubeconfig_path}"

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        start = self.clock()
        down_since: float | None = None
        delay = self.poll_interval
        seen_busy = False
        warned = False
        client = self._open(cancel)
        try:
            while True:
                now = self.clock()
                try:
                    status = client.cluster_status()
                    version = self._version(client, status)
                except (LocalUIUnreachable, LocalUIServerError) as exc:
                    # Every node reboots during an upgrade; its Local UI refuses connections for minutes.
                    down_since = now if down_since is None else down_since
                    seen_busy = True
                    if now - down_since > self.outage_timeout:
                        raise WizardError(
                            "Leader unreachable",
                            f"{self.leader.name} has not answered for {int((now - down_since) // 60)} min during "
                            "the upgrade",
                            details=exc.message,
                            remediation="check the nodes' consoles (did they boot back?), then run the upgrade "
                            "again to keep following it",
                        ) from exc
                    report.update(
                        self._fraction(now - start),
                        f"{self.leader.name} not answering (nodes reboot during the upgrade); retrying",
                    )
                    cancel.sleep(delay)
                    delay = min(delay * 2, self.poll_interval * 8)
                    continue
                down_since, delay = None, self.poll_interval
                if status is None or status.name != self.cluster:
                    raise WizardError(
                        "Cluster gone",
                        f"{self.leader.name} no longer reports cluster {self.cluster}",
                        remediation="check the Local UI; the cluster may have been deleted",
                    )
                if status.failed:
                    raise WizardError(
                        "Upgrade failed",
                        f"{status.name}: {status.reason or f'the cluster is in state {status.state}'}",
                        remediation="look at Cluster → Overview and the node logs in the Local UI; the backup is in "
                        "the session folder",
                    )
                seen_busy = seen_busy or not status.done
                if status.done and self._reached(version, seen_busy):
                    break
                elapsed = now - start
                note = ""
                if elapsed > self.expected_duration and not warned:
                    warned = True
                    log.warning("upgrade of %s still %s after %d min", status.name, status.state, elapsed // 60)
                if elapsed > self.expected_duration:
                    note = f" — taking longer than the usual {int(self.expected_duration // 60)} min"
                running = f", running {version}" if version else ""
                report.update(
                    self._fraction(elapsed),
                    f"{status.state or 'unknown'}: {status.reason or status.health or '…'}{running}{note}",
                )
                if elapsed > self.timeout:
                    raise WizardError(
                        "Upgrade too slow",
                        f"{status.name} is {status.state}{running} after {int(elapsed // 60)} min",
                        remediation="check Cluster → Overview in the Local UI; run the upgrade again to keep "
                        "following it",
                    )
                cancel.sleep(self.poll_interval)
        finally:
            client.close()
        if status.kubeconfig:
            atomic_write_text(self.kubeconfig_path, status.kubeconfig, mode=0o600)
        was = f"{self.previous} → " if self.previous else ""
        now_running = version or (str(self.target) if self.target else "the new release")
        report.finish(f"{status.name} runs {now_running}, Running and Healthy")
        return {
            "cluster": status.name,
            "version": version,
            "previous": str(self.previous or ""),
            "headline": f"Upgraded {was}{now_running}",
            "kubeconfig": str(self.kubeconfig_path) if status.kubeconfig else "",
        }

    def _open(self, cancel: CancelToken) -> LocalUIClient:
        """The leader's session; a rerun may meet it rebooting for the upgrade, so that is waited out."""
        down_since = self.clock()
        while True:
            try:
                return self.connector.open(self.leader, cancel)
            except LocalUIUnreachable as exc:
                if self.clock() - down_since > self.outage_timeout:
                    raise WizardError(
                        "Leader unreachable",
                        f"{self.leader.name} does not answer",
                        details=exc.message,
                        remediation="check that the leader is powered on, then run the upgrade again",
                    ) from exc
                cancel.sleep(self.poll_interval)

    def _version(self, client: LocalUIClient, status: ClusterStatus | None) -> str:
        """The release the cluster reports (its agent version), else the leader's own."""
        spelled = status.agent_version if status is not None else ""
        return str(Version.parse(spelled) or Version.parse(client.host_info().agent_version) or spelled)

    def _reached(self, version: str, seen_busy: bool) -> bool:
        found = Version.parse(version)
        if self.target is not None and found is not None:
            return found >= self.target
        if found is not None and self.previous is not None:
            return found > self.previous
        return seen_busy  # nothing tells the releases apart: the cluster went through the update and back

    def _fraction(self, elapsed: float) -> float:
        # The same model as the cluster's creation: time against the expected duration, never quite full.
        return min(0.95, elapsed / self.expected_duration) if self.expected_duration > 0 else 0.5
