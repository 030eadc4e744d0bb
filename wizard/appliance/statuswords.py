"""Status words the appliance and Palette report, read tolerantly.

The public material names few of them and never their exact spelling: the Local UI spec gives enums for some fields
(link ``Pending/InProgress/Completed/Failed``, registry items ``pending/completed/failed``, configurations
``Not Configured/In Progress/Configured/Failed``) and free strings for others (a peer's ``status`` and
``contentSyncStatus``); the system console's OCI registry sync words are not documented at all, and Spectro's own
Terraform provider treats ``Success`` and ``Completed`` in any case as done and ``Failed``/``Error`` as failure
(reference §10.4). So every word is compared by its letters only (case, spaces, ``-`` and ``_`` ignored) against
the known variants of each meaning, and a word that matches none is :attr:`Outcome.UNKNOWN`: callers keep waiting
on it and show it as the peer wrote it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Outcome(Enum):
    DONE = "done"
    FAILED = "failed"
    RUNNING = "running"
    UNKNOWN = "unknown"


def norm(word: object) -> str:
    """``"In Progress"``, ``"in_progress"`` and ``"INPROGRESS"`` all become ``"inprogress"``."""
    return re.sub(r"[^a-z0-9]", "", str(word or "").lower())


@dataclass(frozen=True)
class Words:
    """The spellings of one field's outcomes (given already normalised)."""

    done: frozenset[str]
    failed: frozenset[str] = frozenset({"failed", "failure", "error", "errored"})
    running: frozenset[str] = frozenset()

    def classify(self, word: object) -> Outcome:
        key = norm(word)
        if key in self.done:
            return Outcome.DONE
        if key in self.failed:
            return Outcome.FAILED
        if key in self.running:
            return Outcome.RUNNING
        return Outcome.UNKNOWN

    def is_done(self, word: object) -> bool:
        return self.classify(word) is Outcome.DONE


def _w(*words: str) -> frozenset[str]:
    return frozenset(norm(w) for w in words)


_BUSY = _w("Pending", "InProgress", "Running", "Syncing", "Started", "Starting", "Queued", "Processing", "Importing")

#: The system console's OCI registry sync (``…/basic/sync/status`` ``status``); Terraform's reading plus the SDK's.
REGISTRY_SYNC = Words(
    done=_w("Success", "Succeeded", "Successful", "Completed", "Complete"), running=_BUSY | _w("Idle")
)
#: A linked peer's ``contentSyncStatus`` (free string; the Local UI shows "Synced").
CONTENT_SYNC = Words(done=_w("Synced", "Completed", "Complete", "Success", "Done"), running=_BUSY | _w("NotSynced"))
#: A Local UI registry item's ``status`` (spec enum ``pending/completed/failed``).
REGISTRY_ITEM = Words(done=_w("completed", "complete", "success", "succeeded", "synced", "done"), running=_BUSY)
#: A linked peer's ``status`` (free string; the link docs say hosts are "Ready").
PEER_READY = Words(done=_w("Ready", "Active", "Running", "Linked", "Online"), running=_w("NotReady", "Pending"))
#: ``health.status`` (v1Health).
HEALTHY = Words(done=_w("Healthy"), failed=_w("Unhealthy", "Degraded"))
#: ``configurations/status`` ``state`` (spec enum ``Not Configured/In Progress/Configured/Failed``).
CONFIGURATION = Words(
    done=_w("Configured", "Completed", "Success", "Applied"),
    running=_BUSY | _w("Configuring", "Applying"),
)
CONFIGURATION_IDLE = _w("Not Configured", "Unconfigured", "None", "")
#: ``cluster/details`` ``clusterState`` (spec enum ``Provisioning/Running/Deleting/Error``; an archive update's state
#: is outside the enum and not published: ``Upgrading``, ``Updating`` or the enum's ``Provisioning``).
CLUSTER_STATE = Words(
    done=_w("Running"),
    failed=_w("Error", "Failed"),
    running=_w("Provisioning", "Pending", "Upgrading", "Updating", "Upgrade", "Update", "InProgress"),
)
