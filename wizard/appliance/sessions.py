"""Appliance sessions kept for the length of one run, so the jobs of an install do not each log in again.

Every Local UI login costs the node a check of the account's password hash (the seed sets a bcrypt hash: a fifth of a
second of the node's CPU each time), and an install opens a client per job — dozens per node. The system console
names no logout for its sessions (reference §4; palette-sdk-go has logouts for OIDC and SAML only), so each login
there leaves a session behind for its 15 minutes. A client opened through a connector that has a pool (the Local UI's
:class:`~wizard.appliance.localui.Connector`, the :class:`~wizard.appliance.console.ConsoleConnector`) takes a live
session of the same peer and account from it instead of logging in, and hands its own back when it closes instead of
logging out. A session is used by one client at a time (taken out, given back); two clients at once on one peer each
have their own, and the one given back second is ended. The run ends what is left when it ends (``RunResources``):
a Local UI session is logged out; a console session is dropped and expires by itself.

Sessions are keyed by peer, account and a digest of the password, so a changed password never reuses a session made
with the old one. A session the peer forgot (it rebooted) costs one 401 and a fresh login, as for any client.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PooledSession:
    token: str
    expires_at: float
    #: Ends this session (a logout through a client made for it alone, or nothing where the peer has no
    #: logout); called when the run ends or the slot is taken.
    logout: Callable[[str], None]


def session_key(host: str, port: int, username: str, password: str) -> str:
    digest = hashlib.sha256(password.encode()).hexdigest()[:16]  # never the password itself, even in memory keys
    return f"{host}:{port}|{username}|{digest}"


class SessionPool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: dict[str, PooledSession] = {}

    def take(self, key: str, now: float, margin: float) -> PooledSession | None:
        """A live session for ``key`` with more than ``margin`` seconds left, now the caller's alone; None if none."""
        with self._lock:
            found = self._free.pop(key, None)
        if found is None:
            return None
        if found.expires_at - now <= margin:
            self._end(found)
            return None
        return found

    def give(self, key: str, session: PooledSession) -> bool:
        """Keep ``session`` for the next client of ``key``; False when one is kept already (the caller logs its own
        out, so a peer never holds more sessions than clients ran on it at once)."""
        with self._lock:
            if key in self._free:
                return False
            self._free[key] = session
            return True

    def close(self) -> None:
        """End every session kept (the run ended)."""
        with self._lock:
            left = list(self._free.values())
            self._free.clear()
        for session in left:
            self._end(session)

    @staticmethod
    def _end(session: PooledSession) -> None:
        try:
            session.logout(session.token)
        except Exception as exc:  # a peer that went away lets the session expire by itself
            log.info("a kept session could not be logged out (%s); it expires by itself", exc)
