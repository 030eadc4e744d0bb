"""A simulated node's logs as its Local UI serves them: the audit log, log collection (generate, status, download
a tar archive) and the error events an agent reports."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import re
import tarfile
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from wizard.lab.node import LocalUIError, NodeState, iso8601

log = logging.getLogger(__name__)


LOG_COLLECT_SECONDS = 3.0  # lab-clock seconds a generate-logs run takes
AUDIT_LINES = 2000  # the audit log is a ring: a long rehearsal must not grow it without bound

LogSource = Callable[[], str | None]  # a file's content now, or None when the node has no such file (yet)

_ERROR_LINE = re.compile(r"\b(ERROR|FATAL|error|failed)\b")
# ``Nov 23 23:40:10 edge-node-1 kairos-agent: message`` (journal) or ``2026-11-23T23:40:10Z stylus-agent: message``.
_JOURNAL_LINE = re.compile(r"^(?:\w{3} +\d+ [\d:]{8} \S+ |\S+Z )(?P<component>[\w.@-]+)(?:\[\d+\])?: (?P<message>.*)$")


class NodeLogs:
    """What the Local UI's log endpoints serve for one node: ``generate-logs`` starts a collection that completes
    ``collect_seconds`` later on the node's clock, ``download-logs`` returns the tar it made (the files of
    :attr:`sources` at completion time, under ``<hostname>-logs/``), and ``error-logs`` lists the latest error lines
    of those files as ``v1Event`` items. Every Local UI request is also appended to ``var/log/stylus-audit.log``.

    Knob: ``fail_reason`` (non-empty) makes the next collection end ``Failed`` with that message.
    Thread-safe; it outlives the node's Local UI server, as the files outlive a reboot.
    """

    def __init__(
        self,
        node: NodeState,
        sources: Mapping[str, LogSource] | None = None,
        *,
        collect_seconds: float = LOG_COLLECT_SECONDS,
    ) -> None:
        self.node = node
        self.collect_seconds = collect_seconds
        self.fail_reason = ""
        self.lock = threading.Lock()
        self._audit: deque[str] = deque(maxlen=AUDIT_LINES)
        # Archive path (relative, POSIX) → content; tests and lab add-ons may add files, e.g. under ``oem/``.
        self.sources: dict[str, LogSource] = {"var/log/stylus-audit.log": self.audit_log}
        self.sources.update(sources or {})
        self._started_at: float | None = None
        self._outcome: tuple[str, str] | None = None  # (status, msg) once finished
        self._archive: bytes | None = None
        self.collections = 0  # how many collections were requested

    # -- audit --
    def audit(self, user: str | None, method: str, path: str, status: int) -> None:
        line = f"{iso8601(self.node.wall_time())} user={user or '-'} {method} {path} {status}"
        with self.lock:
            self._audit.append(line)

    def audit_log(self) -> str:
        with self.lock:
            return "".join(line + "\n" for line in self._audit)

    # -- collection --
    def generate(self) -> dict[str, Any]:
        """Start a collection (v1AcceptedResponseWithMessage); one already running is not restarted."""
        now = self.node.clock()
        self._finish_due(now)
        with self.lock:
            if self._started_at is not None and self._outcome is None:
                return {"message": "log collection is already in progress"}
            self._started_at, self._outcome = now, None
            self.collections += 1
        return {"message": "log collection started"}

    def status(self) -> dict[str, Any]:
        """v1EdgeHostGenerateLogsStatus."""
        self._finish_due(self.node.clock())
        with self.lock:
            if self._started_at is None:
                return {"status": "Unknown", "msg": "no log collection has been requested"}
            if self._outcome is None:
                return {"status": "InProgress", "msg": "collecting logs"}
            status, msg = self._outcome
            return {"status": status, "msg": msg}

    def download(self) -> tuple[str, bytes]:
        """The last completed archive (file name, tar bytes); 404 when there is none."""
        self._finish_due(self.node.clock())
        with self.lock:
            if self._archive is None:
                running = self._started_at is not None and self._outcome is None
                why = "log collection is still in progress" if running else "no logs have been generated"
                raise LocalUIError(404, "NotFound", why)
            return f"{self.node.hostname}-logs.tar", self._archive

    def _finish_due(self, now: float) -> None:
        with self.lock:
            started = self._started_at
            if started is None or self._outcome is not None or now < started + self.collect_seconds:
                return
            reason = self.fail_reason
        if reason:
            outcome, archive = ("Failed", f"log collection failed: {reason}"), None
        else:
            # Built outside the lock: the sources take their own locks (the machine's, the audit's).
            archive = self._build_archive(started + self.collect_seconds)
            outcome = ("Completed", "logs are ready to download")
        with self.lock:
            if self._started_at == started and self._outcome is None:
                self._outcome = outcome
                if archive is not None:
                    self._archive = archive

    def _build_archive(self, at: float) -> bytes:
        root = f"{self.node.hostname}-logs"
        mtime = int(self.node.wall_time(at))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, source in sorted(self.sources.items()):
                try:
                    text = source()
                except Exception:  # a broken source must not cost the other files
                    log.exception("%s: log source %s failed", self.node.name, name)
                    continue
                if text is None:
                    continue
                data = text.encode("utf-8")
                info = tarfile.TarInfo(f"{root}/{name}")
                info.size, info.mtime, info.mode = len(data), mtime, 0o640
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    # -- error events --
    def error_events(self, count: int) -> dict[str, Any]:
        """v1Events: the last ``count`` error lines of the node's logs (the audit log excluded), oldest first."""
        if count <= 0:
            raise LocalUIError(400, "BadRequest", "logCount must be a positive integer")
        node = self.node
        found: list[tuple[str, str]] = []  # (component, message)
        for name, source in sorted(self.sources.items()):
            if name.endswith("stylus-audit.log"):
                continue
            with contextlib.suppress(Exception):
                for line in (source() or "").splitlines():
                    if _ERROR_LINE.search(line):
                        m = _JOURNAL_LINE.match(line)
                        component, message = (m["component"], m["message"]) if m else (name, line)
                        found.append((component, message))
        items = []
        seen: set[tuple[str, str]] = set()
        for index, (component, message) in enumerate(found):
            if (component, message) in seen:  # the same line in two files (journal and installer log) is one event
                continue
            seen.add((component, message))
            digest = hashlib.sha256(f"{node.uid}/{index}/{message}".encode()).hexdigest()[:16]
            items.append(
                {
                    "metadata": {"name": f"{node.hostname}.{digest}", "uid": digest},
                    "involvedObject": {"kind": "EdgeHost", "name": node.hostname, "uid": node.uid},
                    "reason": "InstallFailed" if "failed installing" in message else "Error",
                    "message": message,
                    "severity": "Error",
                    "source": {"component": component, "host": node.hostname},
                }
            )
        return {"items": items[-count:]}
