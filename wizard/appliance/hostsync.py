"""Confirming that content reached every host, where the release needs the wizard to look for itself.

- :class:`ContentOnNodesJob`: the nodes hold the content already (a full ISO, before 4.9.36), so there is nothing
  to upload; the leader's Linked Edge Hosts list must still show every host ``Synced`` before the cluster is created.
- :class:`HostsSyncedJob`: before 4.9.46 content uploaded through the Local UI did not sync to linked hosts
  (PE-9263), so after the pack uploads every host's own registry sync status
  (``/cluster/registry/content/sync-status/details``) is read until none lists a pending item; a ``failed`` item,
  or items still pending at the deadline, stop the run naming the host and the defect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wizard.appliance.localui import (
    Clock,
    Connector,
    Endpoint,
    LocalUIClient,
    LocalUIError,
    LocalUIServerError,
    LocalUIUnreachable,
)
from wizard.appliance.statuswords import CONTENT_SYNC, REGISTRY_ITEM
from wizard.appliance.versions import LOCALUI_SYNC_FROM, PE_9263
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job
from wizard.core.progress import Reporter

log = logging.getLogger(__name__)

P_SYNC_STATUS = "/v1/edge-mgmt/cluster/registry/content/sync-status/details"


class ContentOnNodesJob(Job):
    """The content came with the ISO: confirm every linked host lists it as synced, upload nothing."""

    id = "content/on-nodes"
    name = "Content (from the ISO)"
    weight = 1.0

    def __init__(
        self,
        leader: Endpoint,
        connector: Connector,
        *,
        why: str,
        poll_interval: float = 10.0,
        timeout: float = 600.0,
        clock: Clock = time.time,
    ) -> None:
        self.leader = leader
        self.connector = connector
        self.why = why
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.clock = clock
        self.node = leader.name

    def fingerprint(self) -> str:
        return f"{self.leader.where}|{self.why}"

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        deadline = self.clock() + self.timeout
        with self.connector.open(self.leader, cancel) as client:
            if client.archive_details() is None:
                raise WizardError(
                    "No content on the nodes",
                    f"{self.leader.name} holds no cluster profile although its release ships the content in the ISO",
                    remediation="give the content bundle in the project (files.content_bundle) and run again",
                )
            while True:
                status = client.link_status()
                if status is None:
                    hosts = 1
                    break
                pending = [p.name or p.ip for p in status.peers if not CONTENT_SYNC.is_done(p.content_sync)]
                hosts = len(status.peers)
                report.update((hosts - len(pending)) / hosts, f"Content on {hosts - len(pending)}/{hosts} hosts")
                if not pending:
                    break
                if self.clock() >= deadline:
                    raise WizardError(
                        "Content not on every host",
                        f"{', '.join(pending)} do not list the content as synced",
                        remediation="check those hosts in the leader's Linked Edge Hosts; install them from the same "
                        "ISO as the leader, or give the content bundle in the project",
                    )
                cancel.sleep(self.poll_interval)
        report.finish(f"{self.why}: nothing to upload; the content is on {hosts} host(s)")
        return {"uploaded": False, "source": "iso", "synced_hosts": hosts, "reason": self.why}


@dataclass(frozen=True)
class Pending:
    host: str
    name: str
    status: str
    message: str


def sync_status(client: LocalUIClient) -> tuple[list[Pending], str]:
    """The host's registry sync items that are not completed, and its status message."""
    r = client.request("GET", P_SYNC_STATUS, ok=(200,))  # a read: the retry policy rides out transient faults
    assert r is not None
    try:
        data = r.json()
    except ValueError as exc:
        raise LocalUIError("Unexpected Local UI answer", f"{client.where}: sync status is not JSON") from exc
    if not isinstance(data, dict):
        return [], ""
    items = [
        Pending(
            client.host,
            f"{i.get('name') or '?'} {i.get('version') or ''}".strip(),
            str(i.get("status") or "pending").lower(),
            str(i.get("msg") or ""),
        )
        for i in data.get("pendingItems") or []
        if isinstance(i, dict) and not REGISTRY_ITEM.is_done(i.get("status") or "pending")
    ]
    errors = data.get("errors") if isinstance(data.get("errors"), dict) else {}
    items += [Pending(client.host, str(k), "failed", str(v)) for k, v in (errors or {}).items()]
    return items, str(data.get("statusMessage") or "")


class HostsSyncedJob(Job):
    """After Local UI uploads on a release with PE-9263: wait until no host's registry lists a pending item."""

    id = "packs/hosts-synced"
    name = "Uploads on every host"
    weight = 0.5

    def __init__(
        self,
        hosts: Sequence[Endpoint],
        connector: Connector,
        *,
        label: str,
        inputs: str,
        poll_interval: float = 10.0,
        timeout: float = 1800.0,
        clock: Clock = time.time,
    ) -> None:
        self.hosts = list(hosts)
        self.connector = connector
        self.label = label
        self.inputs = inputs
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.clock = clock

    def fingerprint(self) -> str:
        return self.inputs

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        deadline = self.clock() + self.timeout
        clients: dict[str, LocalUIClient] = {}
        try:
            for ep in self.hosts:
                clients[ep.name] = self.connector.open(ep, cancel)
            waited = 0
            while True:
                open_items: dict[str, list[Pending]] = {}
                for name, client in clients.items():
                    try:
                        items, _ = sync_status(client)
                    except (LocalUIUnreachable, LocalUIServerError) as exc:
                        log.info("sync status of %s not readable yet: %s", name, exc.message)
                        items = [Pending(client.host, "(sync status)", "pending", exc.message)]
                    if items:
                        open_items[name] = items
                failed = [(n, p) for n, items in open_items.items() for p in items if p.status == "failed"]
                if failed:
                    raise WizardError(
                        "Content did not sync",
                        "; ".join(f"{n}: {p.name} failed ({p.message or 'no reason given'})" for n, p in failed),
                        remediation=f"{self.label}: content uploaded through Local UI may not sync to linked hosts "
                        f"({PE_9263}, fixed in {LOCALUI_SYNC_FROM}); upgrade, or upload the packs to that host's "
                        "Local UI, then run again",
                    )
                done = len(clients) - len(open_items)
                report.update(done / len(clients), f"Uploads synced on {done}/{len(clients)} hosts")
                if not open_items:
                    break
                if self.clock() >= deadline:
                    listing = "; ".join(
                        f"{n}: {', '.join(p.name for p in items)}" for n, items in sorted(open_items.items())
                    )
                    raise WizardError(
                        "Content did not sync",
                        f"still pending after {int(self.timeout)} s — {listing}",
                        remediation=f"{self.label}: content uploaded through Local UI may not sync to linked hosts "
                        f"({PE_9263}, fixed in {LOCALUI_SYNC_FROM}); upgrade, or upload the packs to each listed "
                        "host's Local UI, then run again",
                    )
                waited += 1
                cancel.sleep(self.poll_interval)
        finally:
            for client in clients.values():
                client.close()
        report.finish(f"every host's registry has the uploads ({self.label}, {PE_9263})")
        return {"hosts": sorted(clients), "polls": waited, "reason": PE_9263}
