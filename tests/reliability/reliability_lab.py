"""Kill-and-resume machinery: a ledger of what the lab's nodes did, and a headless run SIGKILLed at a chosen point.

The lab lives in the test process, so the ledger wraps the lab's own state-changing calls (an upload recorded on a
node, a follower linked or unlinked, a cluster created, the console activated) and counts the ones that changed
something. The run is a child process (:mod:`tests.reliability.reliability_child`) whose JSON events the test reads
line by line: it plays the manual provider's operator (powers the nodes on when the boot step starts) and arms the
kill when the run reaches the chosen step.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from tests.core.helpers import ROOT, cli_env
from wizard.core.progress import TaskStatus
from wizard.core.project import SecretRef
from wizard.core.runner import JobFinished, StepStarted
from wizard.core.secrets import SERVICE
from wizard.lab import cluster as lab_cluster
from wizard.lab.links import LinkRegistry
from wizard.lab.node import LinkRole, NodeState, UploadedContent
from wizard.rehearsal import Rehearsal

CHILD = "tests.reliability.reliability_child"


@dataclass
class Ledger:
    """What the lab saw, counted: a resumed run that repeats a side effect shows up as a count above one."""

    uploads: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (node, file name, sha256)
    links: Counter[str] = field(default_factory=Counter)  # follower name → times it became a follower
    unlinks: Counter[str] = field(default_factory=Counter)
    clusters: list[str] = field(default_factory=list)  # the names of the clusters created, in order
    activations: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def duplicates(self) -> list[str]:
        with self.lock:
            found = [f"{n} got {f} ({s[:12]}) {c} times" for (n, f, s), c in self.uploads.items() if c > 1]
            found += [f"{n} linked {c} times" for n, c in self.links.items() if c > 1]
            found += [f"{n} unlinked {c} times" for n, c in self.unlinks.items() if c]
            if len(self.clusters) > 1:
                found.append(f"{len(self.clusters)} clusters created: {self.clusters}")
            if self.activations > 1:
                found.append(f"the console was activated {self.activations} times")
            return found


@contextlib.contextmanager
def recording(rehearsal: Rehearsal) -> Iterator[Ledger]:
    """Count the lab's side effects while the block runs (the wrappers are removed afterwards)."""
    lab = rehearsal.lab
    assert lab is not None
    ledger = Ledger()
    by_uid = {node.state.uid: node.state for node in lab.nodes}

    def count_uploads(state: NodeState) -> Callable[[UploadedContent], None]:
        original = state.record_upload

        def record(content: UploadedContent) -> None:
            original(content)
            with ledger.lock:
                ledger.uploads[(state.name, content.file_name, content.sha256)] += 1

        return record

    for node in lab.nodes:
        node.state.record_upload = count_uploads(node.state)  # type: ignore[method-assign,assignment]

    registry = lab.registry
    link, unlink = registry.link, registry.unlink

    def counted_link(follower: NodeState, token: str) -> dict[str, Any]:
        before = follower.link.role
        status = link(follower, token)
        if before is not LinkRole.FOLLOWER and follower.link.role is LinkRole.FOLLOWER:
            with ledger.lock:
                ledger.links[follower.name] += 1
        return status

    def counted_unlink(node: NodeState, peer_id: str) -> dict[str, Any]:
        answer = unlink(node, peer_id)
        follower = by_uid.get(peer_id, node) if node.link.role is LinkRole.LEADER else node
        with ledger.lock:
            ledger.unlinks[follower.name] += 1
        return answer

    registry.link = counted_link  # type: ignore[method-assign]
    registry.unlink = counted_unlink  # type: ignore[method-assign]

    create = lab_cluster.create_cluster

    def counted_create(node: NodeState, registry: LinkRegistry, body: dict[str, Any]) -> dict[str, Any]:
        answer = create(node, registry, body)
        with ledger.lock:
            ledger.clusters.append(str((body.get("metadata") or {}).get("name")))
        return answer

    lab_cluster.create_cluster = counted_create  # the Local UI calls it through the module attribute

    def restore_console() -> None:
        return None

    if rehearsal.console is not None:
        state = rehearsal.console.state
        activate = state.activate

        def counted_activate(key: str) -> None:
            activate(key)
            with ledger.lock:
                ledger.activations += 1

        state.activate = counted_activate  # type: ignore[method-assign]

        def restore_console() -> None:
            del state.activate

    try:
        yield ledger
    finally:
        lab_cluster.create_cluster = create
        del registry.link, registry.unlink
        for node in lab.nodes:
            del node.state.record_upload
        restore_console()


def secret_refs(doc: Any) -> set[str]:
    """Every keyring name a project document refers to (``{secret: NAME}`` anywhere in it)."""
    if isinstance(doc, dict):
        found = {str(doc["secret"])} if set(doc) == {"secret"} else set()
        return found.union(*(secret_refs(v) for v in doc.values()))
    if isinstance(doc, list):
        return set().union(*(secret_refs(v) for v in doc))
    return set()


def child_env(rehearsal: Rehearsal) -> dict[str, str]:
    """The child's environment: the rehearsal's secrets in a file keyring (the child has no other way to get them)."""
    home = rehearsal.folder / "home"
    keyring_file = rehearsal.folder / "keyring.json"
    values = {}
    for key in secret_refs(yaml.safe_load(rehearsal.project_file.read_text())):
        value = rehearsal.secrets.get(SecretRef(key))
        if value is not None:
            values[f"{SERVICE}\x00{key}"] = value
    keyring_file.write_text(json.dumps(values))
    keyring_file.chmod(0o600)
    return cli_env(home, keyring_file)


@dataclass(frozen=True)
class KillPoint:
    """Kill the run ``delay`` seconds after the first job of ``step`` (or a later step) starts — or, with
    ``after_finish``, right after such a job is journaled done (the window between two jobs)."""

    step: str
    delay: float
    after_finish: bool = False

    def __str__(self) -> str:
        return f"{self.step}+{self.delay:.2f}s" + (" after a job finished" if self.after_finish else "")


@dataclass
class Outcome:
    returncode: int | None
    killed: bool
    killed_in: str  # the job whose start armed the kill, or that had just finished when it was sent
    hung: bool
    events: list[dict[str, Any]]
    stderr: str

    def jobs(self, status: str) -> set[str]:
        return {e["job"] for e in self.events if e["event"] == "job_finished" and e["status"] == status}


def run_child(
    rehearsal: Rehearsal,
    env: dict[str, str],
    order: list[str],
    point: KillPoint | None,
    *,
    until: str = "",
    limit: float = 120.0,
) -> Outcome:
    """Run the headless install once; SIGKILL it at ``point`` (None: let it finish). A run still going after
    ``limit`` seconds is killed too and reported as hung."""
    home = rehearsal.folder / "home"
    stderr_path = rehearsal.folder / "child.stderr"
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", CHILD, str(rehearsal.project_file), str(home), str(rehearsal.speed), until],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            cwd=ROOT,
        )
        state = {"killed": False, "hung": False, "in": ""}
        lock = threading.Lock()

        def kill(reason: str) -> None:
            with lock:
                if proc.poll() is None and not state["killed"] and not state["hung"]:
                    os.kill(proc.pid, signal.SIGKILL)
                    state[reason] = True

        watchdog = threading.Timer(limit, kill, args=("hung",))
        watchdog.daemon = True
        watchdog.start()
        timer: threading.Timer | None = None
        armed = False
        armed_by = ""
        events: list[dict[str, Any]] = []
        target = order.index(point.step) if point is not None else len(order)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if not line.startswith("{"):
                    continue
                event = json.loads(line)
                events.append(event)
                kind = event.get("event")
                if kind == "step_started":
                    # The rehearsal plays the operator (the manual provider's power button) from the step events.
                    rehearsal.on_event(StepStarted(str(event["step"]), str(event.get("title") or ""), ()))
                elif kind == "job_finished" and event.get("status") in ("done", "skipped"):
                    # ... and learns from the wizard's output which files to attach (the boot ISO, the seeds).
                    rehearsal.on_event(
                        JobFinished(
                            str(event["step"]),
                            str(event["job"]),
                            str(event.get("name") or ""),
                            str(event.get("node") or ""),
                            TaskStatus(event["status"]),
                            result=dict(event.get("result") or {}),
                        )
                    )
                if armed and kind == "job_finished" and event.get("job") == armed_by:
                    # The job ended before the delay did: kill now, between jobs, rather than miss the point.
                    kill("killed")
                if point is None or armed or event.get("step") not in order:
                    continue
                reached = order.index(event["step"]) >= target
                if point.after_finish and kind == "job_finished" and event.get("status") == "done" and reached:
                    armed = True
                    state["in"] = f"after {event['job']}"
                    kill("killed")
                elif not point.after_finish and kind == "job_started" and reached:
                    armed, armed_by = True, str(event["job"])
                    state["in"] = f"armed as {armed_by} started"
                    timer = threading.Timer(point.delay, kill, args=("killed",))
                    timer.daemon = True
                    timer.start()
            proc.wait()
        finally:
            watchdog.cancel()
            if timer is not None:
                timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return Outcome(
        proc.returncode,
        bool(state["killed"]) and proc.returncode == -signal.SIGKILL,
        str(state["in"]),
        bool(state["hung"]),
        events,
        stderr_path.read_text(errors="replace")[-4000:],
    )


def vsphere_vms(rehearsal: Rehearsal) -> Counter[str]:
    """The VMs in the rehearsal's vCenter, by name (a name counted twice is a duplicate VM)."""
    from pyVmomi import vim

    from wizard.core.trust import TrustStore
    from wizard.install.session import Session
    from wizard.providers.vsphere.session import connect

    settings = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets).project
    vsphere = settings.provider.vsphere
    assert vsphere is not None
    password = rehearsal.secrets.require(vsphere.password)
    with connect(vsphere, password, TrustStore(rehearsal.folder / "counting-trust"), None) as session:
        content = session.si.RetrieveContent()
        assert content.viewManager is not None
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        try:
            return Counter(str(vm.name) for vm in view.view)
        finally:
            view.Destroy()
