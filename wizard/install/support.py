"""The support bundle: one zip with what it takes to diagnose a run, and no secret in any of it.

It holds the wizard's logs, the session's journal and the files in its folder (preflight report, run report,
kubeconfig), the project file, the settings folder (pinned fingerprints), and each node's own diagnostics from its
Local UI: the log archive (``generate-logs``, then ``download-logs`` once collection completes) and the latest
error events. What could not be collected is listed in ``manifest.json`` with the reason; the bundle is still
written.

Redaction covers every secret the session knows (its keyring values, and every value the process has seen), in
their plain, JSON-escaped, URL-encoded and base64 forms, plus credentials no one registered: Authorization and
Cookie headers, bearer and JWT tokens, password/token/key fields in JSON, YAML and query strings, passwords in URLs,
PEM and OpenSSH private keys, and kubeconfig client keys. Text is masked in place (inside node tar archives too,
member by member); a binary file that contains a known secret is left out. Before the zip is moved into place,
every member is checked again, so a bundle with a known secret in it is never written.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import json
import logging
import os
import platform
import re
import tarfile
import tempfile
import time
import urllib.parse
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wizard import __version__
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.fsutil import replace
from wizard.core.journal import list_sessions
from wizard.core.paths import AppPaths, app_paths
from wizard.core.redact import MASK, REDACTOR, Redactor

if TYPE_CHECKING:
    from wizard.appliance.localui import Endpoint, LocalUIClient
    from wizard.core.secrets import SecretStore

log = logging.getLogger(__name__)

FORMAT = "palette-wizard-support"
MAX_FILE = 64 * 1024 * 1024  # larger files (an ISO copied into a session folder) are listed, not included
ERROR_LOG_COUNT = 200

P_GENERATE_LOGS = "/v1/edge-mgmt/edgehosts/current/generate-logs"
P_GENERATE_STATUS = "/v1/edge-mgmt/edgehosts/current/generate-logs-status"
P_DOWNLOAD_LOGS = "/v1/edge-mgmt/edgehosts/current/download-logs"
P_ERROR_LOGS = "/v1/edge-mgmt/edgehosts/current/error-logs"


class SupportBundleError(WizardError):
    """The bundle cannot be written (no such session, the output folder refuses, a secret would leak)."""


# -- Redaction ---------------------------------------------------------------------------------------------------------

_PEM_KEY = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----"
    r"(?:.*?-----END \1PRIVATE KEY-----|(?:\s|\\[nr]|[A-Za-z0-9+/=:,-])*)",
    re.DOTALL,
)
_EXTRA_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # YAML (kubeconfig, project files, cloud-init): `client-key-data: …`, `token: …`, `password: …`. A keyring
    # reference (`password: {secret: NAME}`, or `secret: NAME` on the next line) names a secret without holding
    # it and stays readable; a bare `secret:` key is therefore left to the known-value masking.
    (
        re.compile(
            r"(?im)^([ \t]*-?[ \t]*(?:client-key(?:-data)?|token|id-token|refresh-token|auth-token|"
            r"[a-z_-]*password|passwd|client[-_]?secret|[a-z_-]*api[-_]?key|access[-_]?key|secret[-_]?key|"
            r"private[-_]?key)"
            r"[ \t]*:[ \t]*)(?!\{\s*secret\s*:)(?![ \t]*$)(?!\|)(?!>)(\S.*)$"
        ),
        r"\1" + MASK,
    ),
    # The same fields in JSON, where the generic pattern misses hyphenated names.
    (
        re.compile(
            r"(?i)([\"'](?:client-key(?:-data)?|id-token|refresh-token|private[-_]?key|access[-_]?key|"
            r"secret[-_]?key)[\"']\s*:\s*[\"'])[^\"']+"
        ),
        r"\1" + MASK,
    ),
    (re.compile(r"(?im)^(\s*(?:set-)?cookie\s*:\s*).+$"), r"\1" + MASK),
    (re.compile(r"(?i)([\"'](?:set-)?cookie[\"']\s*:\s*[\"'])[^\"']+"), r"\1" + MASK),
    (re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9\-._~+/]+=*"), r"\1" + MASK),
    # user:password@ in URLs (proxy settings, registry mirrors)
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@\"']+:)[^@\s/\"']+(@)"), r"\1" + MASK + r"\2"),
    # JSON Web Tokens wherever they appear
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"), MASK),
)


def _variants(value: str) -> set[str]:
    """The forms a secret takes in files: as is, JSON-escaped, URL-encoded, base64 (kubeconfig, Basic auth)."""
    forms = {value, json.dumps(value)[1:-1], urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
    raw = value.encode("utf-8")
    forms |= {base64.b64encode(raw).decode("ascii"), base64.urlsafe_b64encode(raw).decode("ascii")}
    forms |= {f.rstrip("=") for f in list(forms) if f.endswith("=")}
    return {f for f in forms if len(f) >= Redactor.MIN_LENGTH}


class BundleRedactor:
    """Masks the session's secrets (and the process's) and every credential pattern in text and bytes."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values = Redactor()
        self._raw: set[str] = set()
        for value in values:
            self.add(value)

    def add(self, value: str | None) -> None:
        if not value or len(value) < Redactor.MIN_LENGTH:
            return
        self._raw.add(value)
        for form in _variants(value):
            self._values.add(form)

    @property
    def known(self) -> int:
        return len(self._raw)

    def text(self, text: str) -> str:
        text = self._values.redact(text)
        text = REDACTOR.redact(text)
        text = _PEM_KEY.sub(lambda m: f"-----BEGIN {m.group(1)}PRIVATE KEY-----{MASK}", text)
        for pattern, replacement in _EXTRA_PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    def data(self, data: bytes) -> bytes | None:
        """Redacted bytes, or None for binary data that holds a secret (it cannot be masked safely)."""
        if b"\x00" not in data[:65536]:
            text = data.decode("utf-8", errors="surrogateescape")
            return self.text(text).encode("utf-8", errors="surrogateescape")
        return None if self.leaks(data) else data

    def leaks(self, data: bytes) -> bool:
        """True when ``data`` still holds a known secret (any form) or a private key."""
        if b"PRIVATE KEY-----\n" in data or b"PRIVATE KEY-----\r\n" in data:
            return True
        text = data.decode("utf-8", errors="replace")
        return self._values.contains_secret(text) or REDACTOR.contains_secret(text)


# -- Node diagnostics through the Local UI ---------------------------------------------------------------------------


@dataclass
class NodeDiagnostics:
    node: str
    logs: bytes | None = None  # the node's log archive (tar, maybe gzip-compressed), as downloaded
    logs_name: str = "logs.tar"
    error_logs: Any = None  # the latest error events, as JSON
    problems: list[str] = field(default_factory=list)


def collect_node_diagnostics(
    client: LocalUIClient,
    node: str,
    cancel: CancelToken,
    *,
    timeout: float = 300.0,
    poll: float = 2.0,
    error_count: int = ERROR_LOG_COUNT,
    clock: Callable[[], float] = time.monotonic,
) -> NodeDiagnostics:
    """Ask the node to collect its logs, wait until it has, download the archive and the latest error events.

    A node that does not offer an endpoint (404) or fails one still yields what the others gave."""
    from wizard.appliance.localui import LocalUIError

    out = NodeDiagnostics(node)
    try:
        started = client.request("POST", P_GENERATE_LOGS, ok=(200, 201, 202), missing_ok=True)
        if started is None:
            out.problems.append("the node does not offer log collection (generate-logs: 404); downloading as is")
        else:
            deadline = clock() + timeout
            while True:
                cancel.raise_if_cancelled()
                r = client.request("GET", P_GENERATE_STATUS, missing_ok=True, retries=2)
                status = _status(r.json() if r is not None else {})
                if r is None or status in ("Completed", "Unknown"):
                    break
                if status == "Failed":
                    out.problems.append(f"the node's log collection failed: {_msg(r.json())}")
                    break
                if clock() >= deadline:
                    out.problems.append(f"log collection still {status or 'running'} after {timeout:.0f} s")
                    break
                cancel.sleep(poll)
        r = client.request("GET", P_DOWNLOAD_LOGS, missing_ok=True, retries=2)
        if r is None:
            out.problems.append("the node offers no log download (download-logs: 404)")
        elif r.headers.get("content-type", "").startswith("application/json"):
            out.problems.append(f"the node returned no log archive: {_msg(_safe_json(r.content))}")
        else:
            out.logs = r.content
            out.logs_name = _filename(r.headers.get("content-disposition", "")) or "logs.tar"
    except LocalUIError as exc:
        out.problems.append(f"node logs: {exc.title}: {exc.message}")
    try:
        r = client.request("GET", P_ERROR_LOGS, params={"logCount": str(error_count)}, missing_ok=True)
        if r is None:
            out.problems.append("the node offers no error events (error-logs: 404)")
        else:
            out.error_logs = _safe_json(r.content)
    except LocalUIError as exc:
        out.problems.append(f"error events: {exc.title}: {exc.message}")
    return out


def _status(data: Any) -> str:
    return str(data.get("status") or "") if isinstance(data, dict) else ""


def _msg(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("msg") or data.get("message") or "no message")
    return "no message"


def _safe_json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", errors="replace")


def _filename(disposition: str) -> str:
    m = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', disposition)
    return Path(urllib.parse.unquote(m.group(1))).name if m else ""


def redact_tar(data: bytes, redactor: BundleRedactor) -> tuple[bytes, list[str]]:
    """The archive re-packed (uncompressed) with every text member redacted; gzip members are unpacked first.

    Returns the new archive and notes on members left out (binary ones holding a secret)."""
    notes: list[str] = []
    out = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as src, tarfile.open(fileobj=out, mode="w") as dst:
        for member in src:
            if member.isdir():
                dst.addfile(_clean(member))
                continue
            if member.issym() or member.islnk():
                m = _clean(member)
                m.linkname = redactor.text(m.linkname)
                dst.addfile(m)
                continue
            if not member.isfile():
                continue  # devices and fifos carry nothing to read
            f = src.extractfile(member)
            content = f.read() if f is not None else b""
            name = member.name
            if name.endswith(".gz"):
                with contextlib.suppress(OSError, EOFError):
                    content, name = gzip.decompress(content), name[:-3]
            clean = redactor.data(content)
            if clean is None:
                notes.append(f"{member.name}: binary with a secret in it, left out")
                continue
            m = _clean(member)
            m.name = redactor.text(name)
            m.size = len(clean)
            dst.addfile(m, io.BytesIO(clean))
    return out.getvalue(), notes


def _clean(member: tarfile.TarInfo) -> tarfile.TarInfo:
    m = tarfile.TarInfo(member.name)
    m.type, m.mode, m.mtime, m.linkname = member.type, member.mode, member.mtime, member.linkname
    return m  # uid/gid/user names dropped: they say nothing useful and can name people


# -- The bundle --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionFiles:
    """A session as found on disk: its journal, its folder, and the project file it was run from."""

    id: str
    journal: Path
    folder: Path
    project_file: Path | None
    data: dict[str, Any] | None  # the journal's content, when it parses


def find_session(paths: AppPaths, session: str | None = None) -> SessionFiles | None:
    """The session named ``session`` (its id, or a journal's path), else the most recently updated one."""
    folder = paths.state / "sessions"
    if session:
        candidate = Path(session)
        journal = candidate if candidate.suffix == ".json" and candidate.exists() else folder / f"{session}.json"
        if not journal.exists():
            known = ", ".join(sorted(p.stem for p in folder.glob("*.json"))) or "none"
            raise SupportBundleError(
                "No such session", f"there is no session {session!r} in {folder}", remediation=f"sessions: {known}"
            )
    else:
        newest = next((s for s in list_sessions(paths.state) if not isinstance(s, WizardError)), None)
        if newest is None:
            return None
        journal = newest.path
    data: dict[str, Any] | None = None
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(journal.read_text(encoding="utf-8"))
        data = loaded if isinstance(loaded, dict) else None
    project = str((data or {}).get("project_file") or "")
    return SessionFiles(journal.stem, journal, journal.with_suffix(""), Path(project) if project else None, data)


class _Zip:
    """Writes members, redacted, and remembers them for the manifest and the final leak check."""

    def __init__(self, zf: zipfile.ZipFile, redactor: BundleRedactor) -> None:
        self.zf = zf
        self.redactor = redactor
        self.members: list[dict[str, Any]] = []
        self.problems: list[str] = []

    def add_bytes(self, name: str, data: bytes, source: str = "") -> None:
        clean = self.redactor.data(data)
        if clean is None:
            self.problems.append(f"{source or name}: binary with a secret in it, left out")
            return
        self._write(name, clean, source)

    def add_text(self, name: str, text: str, source: str = "") -> None:
        self._write(name, self.redactor.text(text).encode("utf-8", errors="surrogateescape"), source)

    def add_file(self, name: str, path: Path) -> None:
        try:
            size = path.stat().st_size
            if size > MAX_FILE:
                self.problems.append(f"{path}: {size} bytes, too large to include")
                return
            data = path.read_bytes()
        except OSError as exc:
            self.problems.append(f"{path}: unreadable ({exc.strerror or exc})")
            return
        self.add_bytes(name, data, str(path))

    def add_tree(self, prefix: str, folder: Path) -> None:
        if not folder.is_dir():
            return
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                self.add_file(f"{prefix}/{path.relative_to(folder).as_posix()}", path)

    def _write(self, name: str, data: bytes, source: str) -> None:
        info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o600 << 16
        self.zf.writestr(info, data)
        entry: dict[str, Any] = {"name": name, "size": len(data)}
        if source:
            entry["source"] = source
        self.members.append(entry)


def session_secrets(project_file: Path, secrets: SecretStore) -> tuple[list[str], list[str]]:
    """The keyring values a project refers to (to mask them), and notes on those that could not be read."""
    from wizard.core.project import load_project

    values: list[str] = []
    notes: list[str] = []
    try:
        project = load_project(project_file).project
    except (WizardError, OSError) as exc:
        return values, [f"project {project_file}: {_describe(exc)}; its secrets are masked by pattern only"]
    for where, ref in project.secret_refs():
        try:
            value = secrets.get(ref)
        except WizardError as exc:
            notes.append(f"secret {ref.key} ({where}): {exc.message}; masked by pattern only")
            continue
        if value:
            values.append(value)
    return values, notes


def node_endpoints(found: SessionFiles, paths: AppPaths, secrets: SecretStore) -> list[Endpoint]:
    """Each node's Local UI with the password it has now (default or replaced, as the session's journal says).

    The journal is opened as it is (never created or rewritten): collecting diagnostics changes nothing."""
    from wizard.core.jobs import StepContext
    from wizard.core.journal import Journal
    from wizard.core.project import load_project
    from wizard.install.steps.nodes import endpoint

    if found.project_file is None or found.data is None:
        raise SupportBundleError("No project", f"session {found.id} names no readable project file")
    project = load_project(found.project_file).project
    journal = Journal.open(found.journal, str(found.data.get("project", "")))
    ctx = StepContext(project, secrets, journal, paths)
    return [endpoint(ctx, node) for node in project.nodes]


def _collect_nodes(
    endpoints: Sequence[Endpoint], paths: AppPaths, cancel: CancelToken, timeout: float, poll: float
) -> Iterator[NodeDiagnostics]:
    from wizard.appliance.localui import Connector
    from wizard.core.trust import TrustStore

    # No one is asked to trust anything here: only nodes whose certificates the install pinned are contacted.
    connector = Connector(TrustStore(paths.config), None, timeout=min(timeout, 30.0), retry_backoff=1.0)

    def one(ep: Endpoint) -> NodeDiagnostics:
        try:
            with connector.open(ep, cancel) as client:
                return collect_node_diagnostics(client, ep.name, cancel, timeout=timeout, poll=poll)
        except WizardError as exc:
            return NodeDiagnostics(ep.name, problems=[f"{exc.title}: {exc.message}"])

    if not endpoints:
        return
    with ThreadPoolExecutor(max_workers=min(8, len(endpoints)), thread_name_prefix="support") as pool:
        yield from pool.map(one, endpoints)


def build_support_bundle(
    out_path: Path | None = None,
    *,
    paths: AppPaths | None = None,
    session: str | None = None,
    secrets: SecretStore | None = None,
    nodes: bool = True,
    node_diagnostics: Sequence[NodeDiagnostics] | None = None,
    extra_secrets: Iterable[str] = (),
    node_timeout: float = 300.0,
    node_poll: float = 2.0,
    cancel: CancelToken | None = None,
) -> Path:
    """Write the support bundle zip and return its path (default: ``palette-wizard-support-<time>.zip`` here).

    ``session`` is a session id or journal path (default: the most recent session). ``nodes`` asks each node of
    the session's project for its diagnostics through its Local UI; ``node_diagnostics`` supplies them instead
    (already collected). ``extra_secrets`` are further values to mask. Raises :class:`SupportBundleError` when the
    bundle cannot be written; anything that cannot be collected is listed in the manifest instead."""
    from wizard.core.secrets import SecretStore

    paths = paths or app_paths()
    cancel = cancel or CancelToken()
    secrets = secrets or SecretStore()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(out_path) if out_path is not None else Path.cwd() / f"palette-wizard-support-{stamp}.zip"
    if out.is_dir():
        out = out / f"palette-wizard-support-{stamp}.zip"

    found = find_session(paths, session)
    redactor = BundleRedactor(extra_secrets)
    problems: list[str] = []
    if found is not None and found.project_file is not None and found.project_file.exists():
        values, notes = session_secrets(found.project_file, secrets)
        for value in values:
            redactor.add(value)
        problems += notes
    elif found is not None:
        problems.append(f"project file {found.project_file or '(unknown)'} not found; secrets masked by pattern only")

    collected: list[NodeDiagnostics] = list(node_diagnostics or [])
    if nodes and node_diagnostics is None and found is not None and found.project_file is not None:
        try:
            endpoints = node_endpoints(found, paths, secrets)
        except (WizardError, OSError) as exc:
            problems.append(f"node diagnostics skipped: {_describe(exc)}")
        else:
            from wizard.install.steps.nodes import DEFAULT_PASSWORD

            for ep in endpoints:  # the ISO's documented default is public, and also the user name: not masked
                if ep.password != DEFAULT_PASSWORD:
                    redactor.add(ep.password)
            collected = list(_collect_nodes(endpoints, paths, cancel, node_timeout, node_poll))

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".support-", suffix=".zip", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:
            z = _Zip(zf, redactor)
            z.add_tree("logs", paths.logs)
            cancel.raise_if_cancelled()
            z.add_tree("config", paths.config)
            if found is not None:
                z.add_file("session/journal.json", found.journal)
                z.add_tree("session/files", found.folder)
                if found.project_file is not None and found.project_file.is_file():
                    z.add_file(f"session/project/{found.project_file.name}", found.project_file)
            for diag in collected:
                cancel.raise_if_cancelled()
                _add_node(z, diag)
            z.problems[:0] = problems
            manifest = {
                "format": FORMAT,
                "version": 1,
                "wizard_version": __version__,
                "created": time.time(),
                "host": {
                    "system": platform.system(),
                    "release": platform.release(),
                    "python": platform.python_version(),
                },
                "session": _session_summary(found),
                "nodes": [{"node": d.node, "problems": d.problems} for d in collected],
                "members": z.members,
                "not_collected": z.problems,
                "redaction": {"known_secrets": redactor.known, "mask": MASK},
            }
            z.add_text("manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
        _verify(tmp, redactor)
        tmp.chmod(0o600)
        replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("support bundle written: %s", out)
    return out


def _add_node(z: _Zip, diag: NodeDiagnostics) -> None:
    prefix = f"nodes/{_safe_name(diag.node)}"
    if diag.logs is not None:
        try:
            clean, notes = redact_tar(diag.logs, z.redactor)
        except (tarfile.TarError, OSError, EOFError) as exc:
            diag.problems.append(f"the log archive is not a tar file ({exc}); included as a single file")
            z.add_bytes(f"{prefix}/{_safe_name(diag.logs_name)}.bin", diag.logs, f"{diag.node} log download")
        else:
            diag.problems.extend(notes)
            name = _safe_name(diag.logs_name)
            for suffix in (".gz", ".tgz"):
                if name.endswith(suffix):
                    name = name[: -len(suffix)] + (".tar" if suffix == ".tgz" else "")
            z._write(f"{prefix}/{name if name.endswith('.tar') else name + '.tar'}", clean, f"{diag.node} log download")
    if diag.error_logs is not None:
        z.add_text(f"{prefix}/error-logs.json", json.dumps(diag.error_logs, indent=1), f"{diag.node} error events")
    if diag.problems:
        z.add_text(f"{prefix}/problems.txt", "\n".join(diag.problems) + "\n")


def _describe(exc: Exception) -> str:
    return f"{exc.title}: {exc.message}" if isinstance(exc, WizardError) else f"{type(exc).__name__}: {exc}"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "node"


def _session_summary(found: SessionFiles | None) -> dict[str, Any] | None:
    if found is None:
        return None
    data = found.data or {}
    return {
        "id": found.id,
        "status": data.get("status"),
        "step": data.get("step"),
        "project_file": str(found.project_file) if found.project_file else None,
        "journal_readable": found.data is not None,
    }


def _verify(bundle: Path, redactor: BundleRedactor) -> None:
    """Read the zip back; refuse it if any member (or any file inside a node's tar) still holds a secret."""
    with zipfile.ZipFile(bundle) as zf:
        for name in zf.namelist():
            data = zf.read(name)
            blobs = [data]
            if name.endswith(".tar"):
                with contextlib.suppress(tarfile.TarError), tarfile.open(fileobj=io.BytesIO(data)) as tf:
                    for m in tf:
                        f = tf.extractfile(m) if m.isfile() else None
                        if f is not None:
                            blobs.append(f.read())
            if any(redactor.leaks(b) for b in blobs):
                raise SupportBundleError(
                    "Support bundle refused",
                    f"{name} would still hold a secret after redaction; nothing was written",
                    remediation="report this as a bug (without the bundle)",
                )
