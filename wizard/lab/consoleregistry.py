"""The in-cluster OCI registry (Zot) as the system console records it: its packs, their imports and its sync."""

from __future__ import annotations

from dataclasses import dataclass, field

SYNC_IDLE, SYNC_IN_PROGRESS, SYNC_COMPLETED, SYNC_FAILED = "Idle", "InProgress", "Completed", "Failed"


@dataclass
class Sync:
    state: str = SYNC_IDLE
    started_at: float | None = None
    last_run: float | None = None
    last_synced: float | None = None
    fail_message: str | None = None  # captured when the run starts, so flipping the knob mid-run changes nothing
    message: str = ""
    total: int = 0


@dataclass(frozen=True)
class PackContent:
    """One pack bundle imported into the registry."""

    name: str
    version: str
    size: int
    sha256: str
    added_at: float


@dataclass
class PackImport:
    """A pack bundle being imported into the registry after its upload to a node's Local UI."""

    name: str
    version: str
    size: int
    sha256: str
    started_at: float
    done_at: float
    failure: str = ""  # set: the import ends failed with this message
    listed: bool = False  # in the registry's content since done_at


@dataclass
class Registry:
    uid: str
    name: str
    endpoint: str
    base_content_path: str
    sync: Sync = field(default_factory=Sync)
    packs: dict[tuple[str, str], PackContent] = field(default_factory=dict)
    imports: list[PackImport] = field(default_factory=list)
