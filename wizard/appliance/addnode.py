"""A node added to an installed appliance: linked to the running cluster, then joined to one of its machine pools.

- :class:`JoinLinkJob`: once the cluster exists every control-plane node generates link tokens and can act as
  leader (the link docs), so the token comes from the project's leader, else from another control-plane node; the new
  node links to it, and the job waits until it is Ready and Healthy with the content synced (a host joins a pool only
  with the cluster's content on it).
- :class:`JoinPoolJob`: the new hosts go into a machine pool through the newer API (``clusters/current/machinepools``)
  in one request — the control plane must keep an odd number of nodes, so adding one node goes to the worker pool
  (made when missing), and the control-plane pool takes two at a time — then the job follows the cluster until each
  new node is Running and Healthy.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from wizard.appliance.archive import create_pool, machine_pools, pool_hosts, set_pool_hosts
from wizard.appliance.link import LinkJob
from wizard.appliance.localui import (
    P_CLUSTER_DETAILS,
    Clock,
    Connector,
    Endpoint,
    LocalUIServerError,
    LocalUIUnreachable,
)
from wizard.appliance.statuswords import CLUSTER_STATE, HEALTHY
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job
from wizard.core.progress import Reporter

log = logging.getLogger(__name__)

WORKER_POOL = "worker-pool"


class JoinLinkJob(Job):
    """Link ``new`` to the running cluster through one of its control-plane nodes (``issuers``, the leader first)."""

    weight = 1.0

    def __init__(
        self,
        new: Endpoint,
        issuers: Sequence[Endpoint],
        connector: Connector,
        *,
        poll_interval: float = 5.0,
        ready_timeout: float = 1800.0,
        clock: Clock = time.time,
    ) -> None:
        self.new = new
        self.issuers = list(issuers)
        self.connector = connector
        self.poll_interval = poll_interval
        self.ready_timeout = ready_timeout
        self.clock = clock
        self.id = f"join/{new.name}"
        self.name = f"{new.name}: link to the cluster"
        self.node = new.name

    def fingerprint(self) -> str:
        parts = [self.new.where, *(i.where for i in self.issuers)]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        notes: list[str] = []
        for issuer in self.issuers:
            cancel.raise_if_cancelled()
            link = LinkJob(
                issuer,
                [self.new],
                self.connector,
                poll_interval=self.poll_interval,
                ready_timeout=self.ready_timeout,
                clock=self.clock,
            )
            try:
                linked = link.run(report.child(0.0, 0.6), cancel)
            except LocalUIUnreachable as exc:
                notes.append(f"{issuer.name}: {exc.message}")
                log.info("%s cannot issue a link token (%s); trying the next control-plane node", issuer.name, exc)
                continue
            uid = str(dict((linked or {}).get("hosts") or {}).get(self.new.name) or "")
            self._wait_synced(issuer, uid, report.child(0.6, 0.4), cancel)
            report.finish(f"{self.new.name} linked to {issuer.name}, Ready and Healthy, content synced")
            return {"issuer": issuer.name, "uid": uid, "address": self.new.host}
        raise WizardError(
            "No control-plane node answers",
            f"none of {', '.join(i.name for i in self.issuers)} could link {self.new.name}",
            details="\n".join(notes),
            remediation="check that the cluster's nodes are powered on and their Local UI is reachable, then retry",
        )

    def _wait_synced(self, issuer: Endpoint, uid: str, report: Reporter, cancel: CancelToken) -> None:
        deadline = self.clock() + self.ready_timeout
        with self.connector.open(issuer, cancel) as client:
            while True:
                status = client.link_status()
                peer = status.peer(uid) if status is not None else None
                if peer is not None and peer.synced:
                    return
                word = peer.content_sync if peer is not None else "not listed"
                report.update(0.5, f"Content syncing to {self.new.name} ({word or 'no status'})")
                if self.clock() >= deadline:
                    raise WizardError(
                        "Content not synced",
                        f"{self.new.name} still has no content after {int(self.ready_timeout)} s ({word})",
                        remediation=f"check Linked Edge Hosts in {issuer.name}'s Local UI, then retry",
                    )
                cancel.sleep(self.poll_interval)


class JoinPoolJob(Job):
    """Add the new hosts to a machine pool in one request and follow them to Running and Healthy."""

    weight = 3.0

    def __init__(
        self,
        leader: Endpoint,
        new: Sequence[Endpoint],
        connector: Connector,
        *,
        pool: str = "",
        poll_interval: float = 15.0,
        timeout: float = 3600.0,
        outage_timeout: float = 1800.0,
        clock: Clock = time.time,
    ) -> None:
        self.leader = leader
        self.new = list(new)
        self.connector = connector
        self.pool = pool
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.outage_timeout = outage_timeout
        self.clock = clock
        self.id = f"pool/{pool or 'control-plane'}"
        self.name = f"Join {pool or 'the control plane'}"

    def fingerprint(self) -> str:
        parts = [self.leader.where, self.pool, *(n.where for n in self.new)]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        hosts: dict[str, dict[str, str]] = {}
        for ep in self.new:
            with self.connector.open(ep, cancel) as client:
                info = client.host_info()
            hosts[ep.name] = {"hostUid": info.uid, "hostAddress": ep.host, "hostName": info.name or ep.name}
        with self.connector.open(self.leader, cancel) as client:
            pools = machine_pools(client)
            placed = {uid for p in pools for uid in pool_hosts(p)}
            waiting = {name: h for name, h in hosts.items() if h["hostUid"] not in placed}
            chosen = self._pool(pools, len(waiting))
            if waiting:
                report.update(0.05, f"Adding {', '.join(waiting)} to {chosen}…")
                existing = next((p for p in pools if p.get("name") == chosen), None)
                arch = next((str((p.get("machinePoolProperties") or {}).get("archType") or "") for p in pools), "")
                if existing is None:
                    create_pool(client, chosen, list(waiting.values()), arch or "amd64")
                else:
                    set_pool_hosts(client, existing, list(waiting.values()))
            pool_of = {
                name: next((str(p.get("name")) for p in machine_pools(client) if h["hostUid"] in pool_hosts(p)), "")
                for name, h in hosts.items()
            }
            self._follow(client, hosts, report, cancel)
        report.finish(f"{', '.join(hosts)} Running and Healthy in {', '.join(sorted(set(pool_of.values())))}")
        return {
            "pool": chosen,
            "pools": pool_of,
            "added": sorted(waiting),
            "hosts": {n: h["hostUid"] for n, h in hosts.items()},
        }

    def _pool(self, pools: list[dict[str, Any]], adding: int) -> str:
        """The pool the hosts join: the one the project names, else the control plane, which must keep an odd
        number of nodes."""
        control = next((p for p in pools if p.get("isControlPlane")), None)
        if self.pool and (control is None or self.pool != control.get("name")):
            return self.pool
        if control is None:
            raise WizardError(
                "No control-plane pool",
                f"{self.leader.name} lists no control-plane machine pool",
                remediation="name the pool the nodes join (nodes[i].pool, e.g. worker-pool) in the project",
            )
        count = len(pool_hosts(control)) + adding
        if adding and count % 2 == 0:
            raise WizardError(
                "Control plane would be even",
                f"{control.get('name')} would have {count} nodes; etcd needs an odd number (3, 5 …)",
                remediation=f"add two nodes at once, or give the node `pool: {WORKER_POOL}` in the project to join "
                "as a worker",
            )
        return str(control.get("name"))

    def _follow(
        self, client: Any, hosts: Mapping[str, Mapping[str, str]], report: Reporter, cancel: CancelToken
    ) -> None:
        start = self.clock()
        down_since: float | None = None
        # A node shows by its host name; by its address where that is unique (nodes behind one NAT'd address).
        by_name = {h["hostName"]: name for name, h in hosts.items()}
        addresses = [h["hostAddress"] for h in hosts.values()]
        by_address = {h["hostAddress"]: name for name, h in hosts.items() if addresses.count(h["hostAddress"]) == 1}
        while True:
            now = self.clock()
            try:
                details = client.get_json(P_CLUSTER_DETAILS) or {}
            except (LocalUIUnreachable, LocalUIServerError) as exc:
                down_since = now if down_since is None else down_since
                if now - down_since > self.outage_timeout:
                    raise WizardError(
                        "Leader unreachable",
                        f"{self.leader.name} has not answered: {exc.message}",
                        remediation="check the leader, then retry to keep following",
                    ) from exc
                cancel.sleep(self.poll_interval)
                continue
            down_since = None
            states: dict[str, str] = {}
            for pool in (details.get("status") or {}).get("nodePools") or []:
                for node in pool.get("nodes") or []:
                    name = by_name.get(str(node.get("nodeName") or "")) or by_address.get(str(node.get("ipv4") or ""))
                    if name is not None:
                        health = str((node.get("health") or {}).get("status") or "")
                        states[name] = f"{node.get('nodeState') or '?'}/{health or '?'}"
                        if CLUSTER_STATE.is_done(node.get("nodeState")) and HEALTHY.is_done(health):
                            states[name] = "done"
            pending = {n: states.get(n, "not in a pool yet") for n in hosts if states.get(n) != "done"}
            done = len(hosts) - len(pending)
            report.update(
                0.1 + 0.9 * done / len(hosts),
                f"{done}/{len(hosts)} new node(s) Running and Healthy"
                + (f" (waiting: {', '.join(f'{n} {s}' for n, s in pending.items())})" if pending else ""),
            )
            if not pending:
                return
            if now - start > self.timeout:
                raise WizardError(
                    "Node did not join",
                    ", ".join(f"{n} is {s}" for n, s in pending.items()) + f" after {int((now - start) // 60)} min",
                    remediation="check Cluster → Overview and the node's logs in the Local UI, then retry to keep "
                    "following",
                )
            cancel.sleep(self.poll_interval)


__all__ = ["WORKER_POOL", "JoinLinkJob", "JoinPoolJob"]
