"""Linking the appliance nodes: the leader issues one-time tokens, each follower links with a fresh one.

Published behaviour: the leader's token carries its address and an OTP valid two minutes and spent by one follower;
link status on the leader lists every peer with its Ready/Healthy state. The job is idempotent: a follower that
already shows up as the leader's peer is skipped, so a resumed run only links what is missing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from wizard.appliance.localui import Clock, Connector, Endpoint, LinkStatus, LocalUIClient, LocalUIError
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job
from wizard.core.progress import Reporter

log = logging.getLogger(__name__)

# A token with less left than this may expire between generating and using it (the follower calls the leader).
MIN_TOKEN_SECONDS = 20
EXPIRED_CODES = ("LinkTokenExpired", "LinkTokenUsed", "InvalidLinkToken")


class LinkJob(Job):
    """Link every follower to the leader, then wait until the leader reports them all Ready and Healthy."""

    id = "link/hosts"
    name = "Linked hosts"

    def __init__(
        self,
        leader: Endpoint,
        followers: Sequence[Endpoint],
        connector: Connector,
        *,
        poll_interval: float = 5.0,
        ready_timeout: float = 600.0,
        clock: Clock = time.time,
    ) -> None:
        self.leader = leader
        self.followers = list(followers)
        self.connector = connector
        self.poll_interval = poll_interval
        self.ready_timeout = ready_timeout
        self.clock = clock
        self.node = leader.name

    def fingerprint(self) -> str:
        names = [f"{e.name}@{e.where}" for e in [self.leader, *self.followers]]
        return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        total = max(1, len(self.followers))
        clients: list[LocalUIClient] = []
        try:
            leader = self.connector.open(self.leader, cancel)
            clients.append(leader)
            leader_uid = leader.host_info().uid
            status = leader.link_status()
            uids: dict[str, str] = {}
            linked: list[str] = []
            skipped: list[str] = []
            for i, follower in enumerate(self.followers):
                cancel.raise_if_cancelled()
                client = self.connector.open(follower, cancel)
                clients.append(client)
                uid = client.host_info().uid
                uids[follower.name] = uid
                peer = status.peer(uid) if status is not None else None
                if peer is not None and peer.role == "follower":
                    skipped.append(follower.name)
                    report.update((i + 1) / total * 0.7, f"{follower.name} is already linked")
                    continue
                self._check_not_linked_elsewhere(client, follower, uid, leader_uid)
                report.update(i / total * 0.7, f"Linking {follower.name} to {self.leader.name}…")
                self._link_one(leader, client, follower, cancel)
                linked.append(follower.name)
                report.update((i + 1) / total * 0.7, f"{follower.name} linked ({i + 1}/{len(self.followers)})")
            final = self._wait_ready(leader, uids, report, cancel)
        finally:
            for c in clients:
                c.close()
        report.finish("Every host is linked, Ready and Healthy" if self.followers else "Single node: nothing to link")
        return {
            "leader_uid": leader_uid,
            "hosts": {self.leader.name: leader_uid, **uids},
            "linked": linked,
            "already_linked": skipped,
            "peers": len(final.peers) if final is not None else 1,
        }

    def _check_not_linked_elsewhere(self, client: LocalUIClient, follower: Endpoint, uid: str, leader_uid: str) -> None:
        own = client.link_status()
        if own is None:
            return
        head = next((p for p in own.peers if p.role == "leader"), None)
        if head is None or head.id == leader_uid:
            return
        if head.id != uid:
            raise WizardError(
                "Host linked elsewhere",
                f"{follower.name} is linked to another leader ({head.name or head.id} at {head.ip})",
                remediation=f"unlink {follower.name} in its Local UI (Linked Edge Hosts), then retry",
            )
        if any(p.role == "follower" for p in own.peers):
            raise WizardError(
                "Host is a leader",
                f"{follower.name} is itself the leader of other linked hosts",
                remediation=f"unlink the hosts that follow {follower.name} in its Local UI, then retry",
            )

    def _fresh_token(self, leader: LocalUIClient, cancel: CancelToken) -> str:
        """A token with time to spare: one about to expire is waited out, after which the leader issues a new one."""
        token = leader.generate_link_token()
        if token.remaining >= MIN_TOKEN_SECONDS or not token.interval:
            return token.token
        deadline = self.clock() + token.remaining + 1
        while self.clock() < deadline:
            cancel.sleep(min(self.poll_interval, 1.0))
        return leader.generate_link_token().token

    def _link_one(self, leader: LocalUIClient, client: LocalUIClient, follower: Endpoint, cancel: CancelToken) -> None:
        for attempt in range(3):
            token = self._fresh_token(leader, cancel)
            try:
                client.link(token)
                return
            except LocalUIError as exc:
                # Expired or spent between generation and use (slow network, clock skew): try with a new one.
                if exc.code in EXPIRED_CODES and attempt < 2:
                    log.info("link token for %s refused (%s); generating a new one", follower.name, exc.code)
                    continue
                raise WizardError(
                    "Linking failed",
                    f"{follower.name} could not link to {self.leader.name}: {exc.message}",
                    details=exc.details,
                    remediation=(
                        f"check that {follower.name} can reach {self.leader.where} and has no cluster; "
                        "then retry" + (f" ({exc.remediation})" if exc.remediation else "")
                    ),
                ) from exc

    def _wait_ready(
        self, leader: LocalUIClient, uids: Mapping[str, str], report: Reporter, cancel: CancelToken
    ) -> LinkStatus | None:
        if not uids:
            return None
        deadline = self.clock() + self.ready_timeout
        while True:
            status = leader.link_status()
            waiting: dict[str, str] = {}
            for name, uid in uids.items():
                peer = status.peer(uid) if status is not None else None
                if peer is None:
                    waiting[name] = "not listed by the leader"
                elif not peer.ready:
                    waiting[name] = f"{peer.status or '?'}, {peer.health or '?'}"
            ready = len(uids) - len(waiting)
            report.update(0.7 + 0.3 * ready / len(uids), f"{ready}/{len(uids)} linked hosts Ready and Healthy")
            if not waiting:
                return status
            if self.clock() >= deadline:
                raise WizardError(
                    "Linked hosts not ready",
                    f"after {int(self.ready_timeout)} s: " + ", ".join(f"{n} ({s})" for n, s in waiting.items()),
                    remediation="check the hosts' network and power, then retry (linked hosts are kept)",
                )
            cancel.sleep(self.poll_interval)
