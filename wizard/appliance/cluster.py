"""Creating the management cluster through the leader's Local UI and following it until Running and Healthy.

The profile's variables are read from the node (their names are not published; only UI labels are), answered from
their defaults plus the values the caller gives, and validated by the node before the create request. Deployment
takes 20–30 minutes and reboots every node, so while it runs an unreachable Local UI is expected: the monitor
retries with backoff and only gives up after a long outage. The kubeconfig is saved readable by the owner only.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wizard.appliance.localui import (
    ArchiveDetails,
    Clock,
    ClusterStatus,
    Connector,
    Endpoint,
    LocalUIClient,
    LocalUIError,
    LocalUIServerError,
    LocalUIUnreachable,
    ProfileVariable,
)
from wizard.appliance.statuswords import norm
from wizard.appliance.variables import check_answers
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.fsutil import atomic_write_text
from wizard.core.jobs import Job
from wizard.core.progress import Reporter
from wizard.core.redact import REDACTOR

log = logging.getLogger(__name__)

CONTROL_PLANE_POOL = "control-plane-pool"
P_CLUSTER_SETTINGS = "/v1/edge-mgmt/cluster/settings"


@dataclass(frozen=True)
class ClusterRequest:
    """What the operator chose; ``secrets`` holds sensitive variable values (never logged, masked everywhere)."""

    name: str
    vip: str
    ntp_servers: tuple[str, ...] = ()
    ssh_keys: tuple[str, ...] = ()
    values: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    arch: str = "amd64"
    #: Two-node high availability (``isTwoNodeCluster``); the caller has checked the appliance offers it.
    two_node: bool = False


def variable_for(archive: ArchiveDetails, key: str) -> ProfileVariable | None:
    """The profile variable a project key names: by its name, else by its label as the Local UI shows it (the names
    are not published and differ between appliances; ``ociPackRegistryPassword`` names the variable labelled "OCI
    Pack Registry Password" whatever it is called), compared by letters and digits only."""
    exact = next((v for v in archive.variables if v.name == key), None)
    if exact is not None:
        return exact
    wanted = norm(key)
    matches = [v for v in archive.variables if wanted in (norm(v.name), norm(v.display_name))]
    return matches[0] if len(matches) == 1 else None


def answer_variables(
    archive: ArchiveDetails, values: Mapping[str, str], secrets: Mapping[str, str]
) -> list[dict[str, str]]:
    """Every profile variable with its value: the caller's (named by the variable's name or its label), else the
    default; raises naming what is missing."""
    values = {(v.name if (v := variable_for(archive, k)) else k): value for k, value in values.items()}
    secrets = {(v.name if (v := variable_for(archive, k)) else k): value for k, value in secrets.items()}
    known = {v.name for v in archive.variables}
    unknown = sorted((set(values) | set(secrets)) - known)
    if unknown:
        raise WizardError(
            "Unknown cluster variable",
            f"the cluster profile has no variable {', '.join(unknown)}",
            details="the profile's variables: " + ", ".join(v.label for v in archive.variables),
            remediation="correct the variable names in the project file",
        )
    refused = check_answers(list(archive.variables), values)
    if refused:
        raise WizardError(
            "Cluster variable not accepted",
            "; ".join(f"{p.label} {p.message}" for p in refused),
            remediation="correct these answers under cluster.variables in the project file",
        )
    answers: list[dict[str, str]] = []
    missing: list[ProfileVariable] = []
    for var in archive.variables:
        given = secrets.get(var.name) if var.name in secrets else values.get(var.name)
        value = given if given else (var.default or "")
        if var.required and not value:
            missing.append(var)
        if var.sensitive or var.name in secrets:
            REDACTOR.add(value)
        answers.append({"name": var.name, "profileUid": var.profile_uid, "value": value})
    if missing:
        names = ", ".join(v.label for v in missing)
        raise WizardError(
            "Cluster variable missing",
            f"{names} {'is' if len(missing) == 1 else 'are'} required and {'has' if len(missing) == 1 else 'have'} "
            "no default",
            remediation="give a value in the project file (sensitive values are asked for and kept in the keyring)",
        )
    return answers


#: The docs' UI labels of the replica counts ("CSI Placement Count 1|3, must equal Mongo Replicas"); the variable
#: names behind them are not published, so they are found by their display names.
REPLICA_LABELS = ("CSI Placement Count", "Mongo Replicas")


def replica_problems(archive: ArchiveDetails, answers: Sequence[Mapping[str, str]], hosts: int) -> list[str]:
    """Replica counts a cluster of ``hosts`` nodes cannot hold, and the two that must be equal but are not."""
    by_name = {v.name: v for v in archive.variables}
    counts: dict[str, str] = {}
    for answer in answers:
        var = by_name.get(answer["name"])
        if var is not None and var.display_name in REPLICA_LABELS:
            counts[var.display_name] = answer["value"]
    problems = [
        f"{label} is {value} but the cluster has {hosts} node{'s' if hosts != 1 else ''}: answer 1"
        for label, value in counts.items()
        if value.isdigit() and int(value) > hosts
    ]
    if len(set(counts.values())) > 1:
        csi, mongo = (counts.get(label) for label in REPLICA_LABELS)
        problems.append(f"CSI Placement Count ({csi}) must equal Mongo Replicas ({mongo})")
    return problems


def cluster_configuration(
    request: ClusterRequest, archive_path: str, answers: Sequence[Mapping[str, str]], hosts: Sequence[Mapping[str, str]]
) -> dict[str, Any]:
    """The ``v1ClusterConfiguration`` the Local UI's Create cluster form sends: one control-plane pool with every
    linked host and worker capability on (the appliance runs Palette on its control plane)."""
    return {
        "metadata": {"name": request.name, "labels": {}},
        "spec": {
            "archiveUploadPath": archive_path,
            "profileVariables": [dict(a) for a in answers],
            "cloudConfig": {
                "spec": {
                    "clusterConfig": {
                        "controlPlaneEndpoint": {"type": "VIP", "host": request.vip},
                        "ntpServers": list(request.ntp_servers),
                        "sshKeys": list(request.ssh_keys),
                        "overlayNetworkConfiguration": {"enable": False, "cidr": ""},
                        "staticIp": False,
                        **({"isTwoNodeCluster": True} if request.two_node else {}),
                    },
                    "machinePoolConfig": [
                        {
                            "name": CONTROL_PLANE_POOL,
                            "isControlPlane": True,
                            "useControlPlaneAsWorker": True,
                            "machinePoolProperties": {"archType": request.arch},
                            "hosts": [dict(h) for h in hosts],
                        }
                    ],
                }
            },
            "scheduleAt": "",
        },
    }


class CreateClusterJob(Job):
    """Create the cluster on the leader (once), follow it to Running/Healthy and save its kubeconfig."""

    id = "cluster/create"
    name = "Management cluster"
    weight = 10.0

    def __init__(
        self,
        leader: Endpoint,
        request: ClusterRequest,
        connector: Connector,
        kubeconfig_path: Path,
        *,
        poll_interval: float = 15.0,
        expected_duration: float = 30 * 60.0,
        timeout: float = 2 * 3600.0,
        outage_timeout: float = 30 * 60.0,
        clock: Clock = time.time,
    ) -> None:
        self.leader = leader
        self.request = request
        self.connector = connector
        self.kubeconfig_path = kubeconfig_path
        self.poll_interval = poll_interval
        self.expected_duration = expected_duration
        self.timeout = timeout
        self.outage_timeout = outage_timeout
        self.clock = clock
        self.node = leader.name

    def fingerprint(self) -> str:
        r = self.request
        # Secret values are left out on purpose: the journal must not hold even a hash of a password.
        parts = [
            self.leader.where,
            r.name,
            r.vip,
            *r.ntp_servers,
            *r.ssh_keys,
            *sorted(f"{k}={v}" for k, v in r.values.items()),
        ]
        parts += sorted(r.secrets)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        for value in self.request.secrets.values():
            REDACTOR.add(value)
        client, existing = self._connect(report, cancel)
        with client:
            created = False
            if existing is not None:
                if existing.name != self.request.name:
                    raise WizardError(
                        "Another cluster exists",
                        f"{self.leader.name} is already part of cluster {existing.name!r}",
                        remediation="name that cluster in the project, or delete it in the Local UI first",
                    )
                report.update(0.1, f"Cluster {existing.name} already exists; following its deployment")
                settings = self._settings(client)
            else:
                self._create(client, report, cancel)
                created = True
                settings = ""
            status = self._follow(client, report, cancel)
        atomic_write_text(self.kubeconfig_path, status.kubeconfig, mode=0o600)
        report.finish(f"Cluster {status.name} is Running and Healthy")
        return {
            "cluster": status.name,
            "uid": status.uid,
            "vip": self.request.vip,
            "kubeconfig": str(self.kubeconfig_path),
            "created": created,
            **({"settings": settings} if settings else {}),
        }

    def _settings(self, client: LocalUIClient) -> str:
        """An existing cluster's NTP servers and SSH keys made those of the project, through ``cluster/settings``
        where the appliance has it (the newer API); what happened, or "" when nothing had to change."""
        config = client.cluster_configuration() or {}
        current = ((config.get("spec") or {}).get("cloudConfig") or {}).get("spec") or {}
        current = current.get("clusterConfig") or {}
        wanted = {"ntpServers": list(self.request.ntp_servers), "sshKeys": list(self.request.ssh_keys)}
        if all(sorted(current.get(k) or []) == sorted(v) for k, v in wanted.items()):
            return ""
        try:
            r = client.request("PUT", P_CLUSTER_SETTINGS, json=wanted, ok=(200, 202), missing_ok=True)
        except LocalUIError as exc:
            if exc.status != 405:
                raise
            r = None
        if r is None:
            log.warning("%s cannot change the cluster's NTP servers or SSH keys after creation", self.leader.name)
            return "unchanged: this appliance has no cluster/settings; change them in the Local UI"
        log.info("cluster %s: NTP servers and SSH keys updated", self.request.name)
        return "updated through cluster/settings"

    def _connect(self, report: Reporter, cancel: CancelToken) -> tuple[LocalUIClient, ClusterStatus | None]:
        """The leader's session and its cluster, if any. A rerun can meet the leader rebooting for a deployment an
        earlier run started, so an unreachable leader is waited for, as while following a deployment."""
        down_since: float | None = None
        while True:
            now = self.clock()
            client: LocalUIClient | None = None
            try:
                client = self.connector.open(self.leader, cancel)
                return client, client.cluster_status()
            except (LocalUIUnreachable, LocalUIServerError) as exc:
                if client is not None:
                    client.close()
                down_since = now if down_since is None else down_since
                outage = now - down_since
                if outage > self.outage_timeout:
                    raise WizardError(
                        "Leader unreachable",
                        f"{self.leader.name} has not answered for {int(outage // 60)} min",
                        details=exc.message,
                        remediation="check that the leader is powered on and its Local UI port is reachable, then "
                        "retry",
                    ) from exc
                report.update(0.0, f"{self.leader.name} not answering (it may be rebooting); retrying")
                cancel.sleep(self.poll_interval)  # not backed off: the leader coming back is seen within a poll

    def _create(self, client: LocalUIClient, report: Reporter, cancel: CancelToken) -> None:
        report.update(0.0, "Reading the cluster profile…")
        archive = client.archive_details()
        if archive is None:
            raise WizardError(
                "No cluster profile",
                f"{self.leader.name} has no cluster configuration yet",
                remediation="upload the content bundle to the leader first",
            )
        answers = answer_variables(archive, self.request.values, self.request.secrets)
        labels = {v.name: v.label for v in archive.variables}
        cancel.raise_if_cancelled()
        report.update(0.03, "Validating the profile variables…")
        invalid = [c for c in client.validate_variables(archive.path, answers) if not c.valid]
        if invalid:
            raise WizardError(
                "Invalid cluster variables",
                ", ".join(labels.get(c.name, c.name) for c in invalid) + " not accepted by the node",
                details="\n".join(f"{labels.get(c.name, c.name)}: {c.reason or 'invalid'}" for c in invalid),
                remediation="correct these values in the project file and retry",
            )
        hosts = self._hosts(client)
        replicas = replica_problems(archive, answers, len(hosts))
        if replicas:
            raise WizardError(
                "Cluster variables do not fit the nodes",
                "; ".join(replicas),
                remediation="answer them under cluster.variables in the project file (the Create cluster form's "
                "Cluster Profile Options and Registry Options)",
            )
        config = cluster_configuration(self.request, archive.path, answers, hosts)
        cancel.raise_if_cancelled()
        report.update(0.06, f"Creating cluster {self.request.name} on {len(hosts)} host(s)…")
        log.info("creating cluster %s (VIP %s) on %d host(s)", self.request.name, self.request.vip, len(hosts))
        client.create_cluster(config)

    def _hosts(self, client: LocalUIClient) -> list[dict[str, str]]:
        status = client.link_status()
        if status is None:
            info = client.host_info()
            return [{"hostUid": info.uid, "hostAddress": info.ip, "hostName": info.name}]
        # Leader first: it must be a control-plane host, and the UI lists it first too.
        peers = sorted(status.peers, key=lambda p: p.role != "leader")
        return [{"hostUid": p.id, "hostAddress": p.ip, "hostName": p.name} for p in peers]

    def _follow(self, client: LocalUIClient, report: Reporter, cancel: CancelToken) -> ClusterStatus:
        start = self.clock()
        down_since: float | None = None
        warned = False
        fraction = 0.0
        while True:
            now = self.clock()
            try:
                status = client.cluster_status()
                events = client.lifecycle_events()
            except (LocalUIUnreachable, LocalUIServerError) as exc:
                # Every node reboots once during deployment; its Local UI refuses connections for minutes.
                down_since = now if down_since is None else down_since
                outage = now - down_since
                report.update(
                    0.1 + 0.85 * fraction,
                    f"{self.leader.name} not answering (nodes reboot during deployment); retrying",
                )
                if outage > self.outage_timeout:
                    raise WizardError(
                        "Leader unreachable",
                        f"{self.leader.name} has not answered for {int(outage // 60)} min during cluster deployment",
                        details=exc.message,
                        remediation="check the nodes' consoles (did they boot back?), then retry to keep following",
                    ) from exc
                cancel.sleep(self.poll_interval)  # not backed off: the leader coming back is seen within a poll
                continue
            down_since = None
            if status is None:
                raise WizardError(
                    "Cluster gone",
                    f"{self.leader.name} no longer reports cluster {self.request.name}",
                    remediation="check the Local UI; the cluster may have been deleted",
                )
            if status.state == "Error":
                raise WizardError(
                    "Cluster deployment failed",
                    f"{status.name}: {status.reason or 'the cluster is in state Error'}",
                    remediation="look at Cluster → Overview and the node logs in the Local UI",
                )
            fraction = max(fraction, events.fraction)
            report.stages(events.timeline())  # the cluster's own conditions, for the operator to follow
            if status.done and status.kubeconfig:
                return status
            elapsed = now - start
            note = ""
            if elapsed > self.expected_duration:
                note = f" — taking longer than the usual {int(self.expected_duration // 60)} min"
                if not warned:
                    warned = True
                    log.warning("cluster %s still %s after %d min", status.name, status.state, elapsed // 60)
            report.update(
                0.1 + 0.85 * min(fraction, 0.99), f"{status.state}: {status.reason or status.health or '…'}{note}"
            )
            if elapsed > self.timeout:
                raise WizardError(
                    "Cluster deployment too slow",
                    f"{status.name} is still {status.state} after {int(elapsed // 60)} min",
                    remediation="check Cluster → Overview in the Local UI; retry to keep following",
                )
            cancel.sleep(self.poll_interval)
