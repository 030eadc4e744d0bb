"""Linking appliance nodes: the leader's one-time link tokens and the shared view of who answers where.

Published behaviour (Local UI "Link hosts" docs and the EMC spec): the leader generates a "Base64 encoded token
[that] contains the IP address of the leader … and an OTP that will expire in two minutes"; a follower given the
token contacts the leader and both record the link; the leader syncs uploaded content to its followers.

The registry stands in for the network: a follower finds its leader by the address in the token, and a node whose
server is stopped is unreachable.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import secrets
import threading
from dataclasses import dataclass
from typing import Any

from wizard.lab.node import LinkOTP, LinkRole, LinkState, LocalUIError, NodeState

LINK_OTP_TTL = 120.0
# OTPs older than this are forgotten; until then a late follower hears "expired" rather than "unknown".
_OTP_MEMORY = 3600.0


@dataclass(frozen=True)
class LinkClaims:
    ip: str
    port: int
    host_id: str
    otp: str


def encode_link_token(claims: LinkClaims) -> str:
    payload = {"ip": claims.ip, "port": claims.port, "hostId": claims.host_id, "otp": claims.otp}
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode("ascii")


def decode_link_token(token: str) -> LinkClaims:
    """Parse a link token; anything malformed is a 400, as for any other bad input."""
    text = token.strip()
    try:
        altchars = b"-_" if "-" in text or "_" in text else None
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=altchars, validate=True)
        data = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise LocalUIError(400, "InvalidLinkToken", "the link token is not valid base64-encoded JSON") from exc
    if not (
        isinstance(data, dict)
        and isinstance(data.get("ip"), str)
        and isinstance(data.get("port"), int)
        and isinstance(data.get("otp"), str)
        and isinstance(data.get("hostId", ""), str)
    ):
        raise LocalUIError(400, "InvalidLinkToken", "the link token does not name a leader address and an OTP")
    return LinkClaims(data["ip"], data["port"], data.get("hostId", ""), data["otp"])


def _cluster_control_plane(node: NodeState) -> bool:
    return node.has_cluster and node.node_role == "controlplane"


class LinkRegistry:
    """Which node answers at which address, and every link operation (they always touch two nodes).

    Lock order: the registry lock, then a node's own lock; node methods never call back into the registry.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._by_address: dict[tuple[str, int], NodeState] = {}
        self._by_uid: dict[str, NodeState] = {}
        self._up: set[str] = set()

    # -- Network view ----------------------------------------------------------------------------------------------

    def register(self, node: NodeState) -> None:
        """The node's Local UI is listening at ``node.address``."""
        with self._lock:
            for address in [a for a, n in self._by_address.items() if n is node]:
                del self._by_address[address]  # a restart on another port leaves no stale address behind
            self._by_address[node.address] = node
            self._by_uid[node.uid] = node
            self._up.add(node.uid)

    def set_reachable(self, node: NodeState, reachable: bool) -> None:
        with self._lock:
            if reachable:
                self._up.add(node.uid)
            else:
                self._up.discard(node.uid)

    def lookup(self, ip: str, port: int) -> NodeState | None:
        """The reachable node at ``ip:port``, or None."""
        with self._lock:
            node = self._by_address.get((ip, port))
            return node if node is not None and node.uid in self._up else None

    def node(self, uid: str) -> NodeState | None:
        with self._lock:
            return self._by_uid.get(uid)

    # -- Operations ------------------------------------------------------------------------------------------------

    def generate_token(self, leader: NodeState) -> dict[str, Any]:
        """v1LinkToken. The current OTP is returned until it is used or expires, so a UI polling this endpoint sees
        ``remainingTime`` count down; generating makes the node the leader."""
        with self._lock:
            state = leader.link
            # Once the cluster exists every control-plane node generates tokens and can act as leader (link docs).
            if state.role is LinkRole.FOLLOWER and not _cluster_control_plane(leader):
                raise LocalUIError(
                    400,
                    "AlreadyLinked",
                    f"this host is linked to leader {state.leader_uid}; unlink it before generating link tokens",
                )
            now = leader.clock()
            self._forget_old_otps(state, now)
            otp = state.otps.get(state.current_otp or "")
            if otp is None or otp.used_by is not None or now - otp.issued_at >= LINK_OTP_TTL:
                otp = LinkOTP(secrets.token_urlsafe(12), now)
                state.otps[otp.value] = otp
                state.current_otp = otp.value
            if state.role is not LinkRole.FOLLOWER:
                state.role = LinkRole.LEADER
            ip, port = leader.address
            return {
                "token": encode_link_token(LinkClaims(ip, port, leader.uid, otp.value)),
                "interval": int(LINK_OTP_TTL),
                "remainingTime": max(0, math.ceil(otp.issued_at + LINK_OTP_TTL - now)),
            }

    def link(self, follower: NodeState, token: str) -> dict[str, Any]:
        """Link ``follower`` to the leader named in ``token``; returns the follower's v1LinkStatus."""
        claims = decode_link_token(token)
        with self._lock:
            leader = self.lookup(claims.ip, claims.port)
            if leader is None:
                raise LocalUIError(
                    500, "LeaderUnreachable", f"cannot reach the leader at {claims.ip}:{claims.port} named in the token"
                )
            if claims.host_id and claims.host_id != leader.uid:
                raise LocalUIError(400, "InvalidLinkToken", "the link token was issued by a different host")
            if leader is follower:
                raise LocalUIError(400, "InvalidLinkToken", "a host cannot be linked to itself")
            state = follower.link
            # Checked before the OTP so a retried request (response lost, OTP spent) converges instead of failing.
            if state.role is LinkRole.FOLLOWER and state.leader_uid == leader.uid:
                return self._status(follower)
            if follower.has_cluster:
                raise LocalUIError(400, "HasCluster", "this host is part of a cluster and cannot be linked")
            if state.role is LinkRole.FOLLOWER:
                raise LocalUIError(
                    400, "AlreadyLinked", f"this host is linked to leader {state.leader_uid}; unlink it first"
                )
            if state.followers:
                raise LocalUIError(
                    400,
                    "IsLeader",
                    f"this host is the leader of {len(state.followers)} linked host(s); unlink them first",
                )
            lstate = leader.link
            if lstate.role is not LinkRole.LEADER and not _cluster_control_plane(leader):
                raise LocalUIError(400, "InvalidLinkToken", "the host named in the token is not a link leader")
            now = leader.clock()
            otp = lstate.otps.get(claims.otp)
            if otp is None:
                raise LocalUIError(400, "InvalidLinkToken", "unknown link token: generate a new one on the leader")
            if otp.used_by is not None:
                raise LocalUIError(
                    400, "LinkTokenUsed", "this link token was already used: generate a new one on the leader"
                )
            if now - otp.issued_at >= LINK_OTP_TTL:
                raise LocalUIError(
                    400,
                    "LinkTokenExpired",
                    f"this link token expired (valid {int(LINK_OTP_TTL)} s): generate a new one on the leader",
                )
            otp.used_by = follower.uid
            if lstate.current_otp == otp.value:
                lstate.current_otp = None
            follower.link = LinkState(role=LinkRole.FOLLOWER, leader_uid=leader.uid, linked_at=now)
            lstate.followers[follower.uid] = now
            return self._status(follower)

    def unlink(self, node: NodeState, peer_id: str) -> dict[str, Any]:
        """On the leader ``peer_id`` is a follower; on a follower it is the leader (or the follower itself)."""
        with self._lock:
            state = node.link
            if node.has_cluster:
                raise LocalUIError(400, "HasCluster", "a host that is part of a cluster cannot be unlinked")
            if state.role is LinkRole.LEADER and peer_id in state.followers:
                follower = self._by_uid[peer_id]
                leader = node
            elif state.role is LinkRole.FOLLOWER and state.leader_uid and peer_id in (state.leader_uid, node.uid):
                follower = node
                leader = self._by_uid[state.leader_uid]
            else:
                raise LocalUIError(400, "NotLinked", f"host {peer_id!r} is not linked to this host")
            leader.link.followers.pop(follower.uid, None)
            follower.link = LinkState()
            return {"message": f"host {follower.uid} unlinked from leader {leader.uid}"}

    def status(self, node: NodeState) -> dict[str, Any]:
        """v1LinkStatus; 404 (documented for this operation) when the host is neither leader nor follower."""
        with self._lock:
            return self._status(node)

    def _status(self, node: NodeState) -> dict[str, Any]:
        state = node.link
        completed = node.variant("localui.link-words")
        if state.role is LinkRole.LEADER:
            peers = [self._peer(node, node, "leader")]
            peers += [self._peer(node, self._by_uid[uid], "follower") for uid in state.followers]
            return {"status": completed if state.followers else "Pending", "peers": peers}
        if state.role is LinkRole.FOLLOWER and state.leader_uid:
            leader = self._by_uid[state.leader_uid]
            peers = [self._peer(leader, leader, "leader"), self._peer(leader, node, "follower")]
            # A cluster's control-plane node that issued tokens lists the hosts it linked too.
            peers += [self._peer(node, self._by_uid[uid], "follower") for uid in state.followers]
            return {"status": completed, "peers": peers}
        raise LocalUIError(404, "NotLinked", "this host is not linked to other hosts")

    def _peer(self, leader: NodeState, peer: NodeState, role: str) -> dict[str, Any]:
        up = peer.uid in self._up
        ready, healthy, _ = leader.variant("localui.peer-words")
        health = {"status": healthy} if up else {"status": "Unhealthy", "reason": "host is not reachable"}
        return {
            "id": peer.uid,
            "ip": peer.ip,
            "localUIPort": str(peer.port),
            "role": role,
            "nodeRole": peer.node_role,
            "status": ready if up else "NotReady",
            "health": health,
            "contentSyncStatus": self._content_sync_status(leader, peer),
            "config": peer.host_info(),
        }

    def content_sync_status(self, leader: NodeState, peer: NodeState) -> str:
        """``contentSyncStatus`` of ``peer`` as ``leader`` reports it."""
        return self._content_sync_status(leader, peer)

    @staticmethod
    def _content_sync_status(leader: NodeState, peer: NodeState) -> str:
        # v1LinkPeer.contentSyncStatus is a free string; the Local UI shows "Synced" once content has reached the host.
        if leader.profile.content_in_iso and peer.profile.content_in_iso:
            return "Synced"  # a full ISO: every host installed its own copy of the content
        upload = leader.uploaded
        synced = str(leader.variant("localui.peer-words")[2])
        if upload is None:
            return "NotSynced"
        if peer is leader:
            return synced
        start = max(upload.uploaded_at, leader.link.followers.get(peer.uid, upload.uploaded_at))
        if leader.timeline is not None:  # decided by the upload and the link: recorded when first asked about
            end = start + leader.content_sync_delay
            leader.timeline.record("content-sync", peer.name, start, end, key=("content-sync", peer.uid, start))
        return synced if leader.clock() >= start + leader.content_sync_delay else "Syncing"

    @staticmethod
    def _forget_old_otps(state: LinkState, now: float) -> None:
        for value in [v for v, otp in state.otps.items() if now - otp.issued_at > _OTP_MEMORY]:
            del state.otps[value]
