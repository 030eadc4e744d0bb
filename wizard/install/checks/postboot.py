"""Post-boot node checks: what an installed node has, read over SSH, against the appliance's requirements.

Run once each node's installed system is up (the ``postboot`` step, right after ``install``), before anything is
built on the nodes: CPU, RAM and disks against the documented minimum (8 CPU, 16 GB RAM, an OS disk of at least
300 GB and a storage-pool disk of at least 500 GB), the node's clock against this jump host's (skew logs users out
of Palette), NTP configured and synchronised, and disks other than the OS disk still carrying an earlier install's
Kairos partitions (their ``COS_*`` labels duplicate the new install's, and Kairos finds its partitions by label).

The appliance OS keeps time with ``systemd-timesyncd``, so NTP is read with ``timedatectl show``; disks with
``lsblk -J``; memory from ``/proc/meminfo``; CPUs with ``nproc``; the clock with ``date +%s.%N``, timed on the
jump host so the round trip bounds the error. Reading the facts (:func:`read_facts`) and judging them
(:func:`evaluate`) are separate, so the judging is a pure function of plain values.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wizard.appliance.ssh import Backoff, SSHClient, SSHCredentials, SSHDisconnected, SSHError, SSHUnreachable
from wizard.core.checks.catalog import Category, Check, CheckResult, CheckSeverity, errored, failed, passed
from wizard.core.trust import Confirm, TrustStore

log = logging.getLogger(__name__)

READ_ATTEMPTS = 3  # fresh sessions tried when one drops while the node's facts are read
GB = 1000**3  # disk sizes are sold and documented in decimal gigabytes
GIB = 1024**3
COS_LABELS = frozenset(
    {"COS_GRUB", "COS_OEM", "COS_RECOVERY", "COS_STATE", "COS_PERSISTENT", "COS_ACTIVE", "COS_PASSIVE"}
)

_B, _W = CheckSeverity.BLOCKER, CheckSeverity.WARNING
CHECKS = (
    Check(
        "node.cpu",
        Category.NODE,
        _B,
        "Node has enough CPU cores",
        "give the node at least 8 CPU cores (for a VM: raise its vCPU count while it is off), then run again",
        "nodes",
    ),
    Check(
        "node.memory",
        Category.NODE,
        _B,
        "Node has enough memory",
        "give the node at least 16 GB of RAM (for a VM: raise its memory while it is off), then run again",
        "nodes",
    ),
    Check(
        "node.disks",
        Category.NODE,
        _B,
        "Node has the disks the appliance needs",
        "give the node two disks: one of at least 300 GB for the system and one of at least 500 GB for the "
        "storage pool (wiped during the install), then install the node again",
        "nodes",
    ),
    Check(
        "node.clock-skew",
        Category.NODE,
        _W,
        "Node clock agrees with the jump host",
        "configure NTP for the nodes (and this machine) so their clocks agree; skew logs users out of Palette",
        "network",
    ),
    Check(
        "node.clock-skew-large",
        Category.NODE,
        _B,
        "Node clock is not far off",
        "set the node's time (configure NTP servers it can reach, or fix its firmware clock) and reboot it; a "
        "clock this far off breaks certificates and logs users out",
        "network",
    ),
    Check(
        "node.ntp",
        Category.NODE,
        _W,
        "Node synchronises its clock with NTP",
        "give the nodes NTP servers they can reach (project network settings); without NTP, clocks drift apart",
        "network",
    ),
    Check(
        "node.stale-partitions",
        Category.NODE,
        _B,
        "No leftover install partitions",
        "wipe the listed disk (the installer's pre-check offers it, or `wipefs -a` on it) and install the node "
        "again: duplicate COS_* labels can make the node boot or mount the old system",
        "nodes",
    ),
)
CHECK_IDS = tuple(c.id for c in CHECKS)


@dataclass(frozen=True)
class Requirements:
    """The documented minimum per node (reference §1.4)."""

    cpus: int = 8
    memory_gib: float = 16.0
    os_disk_gb: int = 300
    storage_disk_gb: int = 500
    #: MemTotal is what the kernel manages, below the installed RAM by its own reservations (firmware, crash
    #: kernel): a 16 GiB machine shows about 15.6 GiB. Anything within this fraction of the minimum passes.
    memory_tolerance: float = 0.08
    skew_warn: float = 2.0
    skew_block: float = 30.0


@dataclass(frozen=True)
class Disk:
    name: str
    size: int
    labels: tuple[str, ...] = ()  # file system labels of its partitions
    mounted: bool = False  # one of its partitions is mounted


@dataclass(frozen=True)
class ClockReading:
    offset: float  # node minus jump host, seconds
    uncertainty: float  # half the round trip of the best sample


@dataclass(frozen=True)
class NodeFacts:
    """What the node said; a fact that could not be read is None, with the reason in ``problems``."""

    cpus: int | None = None
    memory_kib: int | None = None
    disks: tuple[Disk, ...] | None = None
    clock: ClockReading | None = None
    ntp: dict[str, str] | None = None  # ``timedatectl show`` properties
    ntp_servers: tuple[str, ...] = ()
    problems: dict[str, str] = field(default_factory=dict)  # fact name -> why it could not be read


def parse_meminfo(text: str) -> int | None:
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1])
    return None


def parse_lsblk(text: str) -> tuple[Disk, ...]:
    """Disks from ``lsblk -J -b -o NAME,SIZE,TYPE,FSTYPE,LABEL,MOUNTPOINT`` (CD drives, loops and RAM disks are
    not disks the appliance can use)."""
    doc = json.loads(text)
    disks = []
    for dev in doc.get("blockdevices") or []:
        if dev.get("type") != "disk":
            continue
        labels: list[str] = []
        mounted = bool(dev.get("mountpoint"))
        stack = list(dev.get("children") or [])
        while stack:
            child = stack.pop(0)
            if child.get("label"):
                labels.append(str(child["label"]))
            mounted = mounted or bool(child.get("mountpoint"))
            stack.extend(child.get("children") or [])
        disks.append(Disk(str(dev.get("name")), int(dev.get("size") or 0), tuple(labels), mounted))
    return tuple(disks)


def parse_properties(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def read_clock(client: SSHClient, clock: Callable[[], float], samples: int = 3) -> ClockReading:
    """The node's clock against ``clock``, from the sample with the shortest round trip (its midpoint is the best
    estimate of when the node read its clock)."""
    best: ClockReading | None = None
    for _ in range(samples):
        before = clock()
        result = client.run("date +%s.%N")
        after = clock()
        if not result.ok:
            raise ValueError(f"`date +%s.%N` failed: {result.stderr.strip() or result.code}")
        node_time = float(result.stdout.strip())
        reading = ClockReading(node_time - (before + after) / 2, (after - before) / 2)
        if best is None or reading.uncertainty < best.uncertainty:
            best = reading
    assert best is not None
    return best


def read_facts(client: SSHClient, clock: Callable[[], float] = time.time) -> NodeFacts:
    """Everything the checks need, over one SSH session. A command that fails leaves its fact unknown; a lost
    session (:class:`~wizard.appliance.ssh.SSHError`) propagates, since nothing further could be read."""
    problems: dict[str, str] = {}
    values: dict[str, Any] = {}

    def attempt(name: str, read: Callable[[], Any]) -> None:
        try:
            values[name] = read()
        except SSHError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            problems[name] = str(exc) or type(exc).__name__

    def output(command: str) -> str:
        result = client.run(command)
        if not result.ok:
            raise ValueError(f"`{command}` exited {result.code}: {result.stderr.strip()[:200]}")
        return result.stdout

    attempt("cpus", lambda: int(output("nproc").strip()))
    attempt("memory_kib", lambda: parse_meminfo(output("cat /proc/meminfo")))
    attempt("disks", lambda: parse_lsblk(output("lsblk -J -b -o NAME,SIZE,TYPE,FSTYPE,LABEL,MOUNTPOINT")))
    attempt("clock", lambda: read_clock(client, clock))
    attempt("ntp", lambda: parse_properties(output("timedatectl show")))
    servers: tuple[str, ...] = ()
    timesync = client.run("timedatectl show-timesync")
    if timesync.ok:
        servers = tuple(parse_properties(timesync.stdout).get("SystemNTPServers", "").split())
    if values.get("memory_kib") is None and "memory_kib" not in problems:
        problems["memory_kib"] = "/proc/meminfo has no MemTotal line"
    return NodeFacts(
        cpus=values.get("cpus"),
        memory_kib=values.get("memory_kib"),
        disks=values.get("disks"),
        clock=values.get("clock"),
        ntp=values.get("ntp"),
        ntp_servers=servers,
        problems=problems,
    )


def _os_disk(disks: tuple[Disk, ...]) -> Disk | None:
    """The disk the system runs from: the one with a mounted COS partition, else the one holding COS_STATE."""
    for disk in disks:
        if disk.mounted and COS_LABELS & set(disk.labels):
            return disk
    return next((d for d in disks if "COS_STATE" in d.labels), None)


def evaluate(node: str, facts: NodeFacts, req: Requirements | None = None) -> list[CheckResult]:
    """Judge ``facts`` of ``node``: one result per check id in :data:`CHECK_IDS`, in that order."""
    r = req or Requirements()
    results: list[CheckResult] = []

    def unknown(check: str, fact: str) -> CheckResult:
        return errored(check, f"could not read it from the node: {facts.problems.get(fact, 'no answer')}", node)

    # CPU
    if facts.cpus is None:
        results.append(unknown("node.cpu", "cpus"))
    elif facts.cpus < r.cpus:
        results.append(
            failed(
                "node.cpu", f"{facts.cpus} CPU cores, the appliance needs {r.cpus}", node, details={"cpus": facts.cpus}
            )
        )
    else:
        results.append(passed("node.cpu", f"{facts.cpus} CPU cores", node, details={"cpus": facts.cpus}))

    # Memory
    if facts.memory_kib is None:
        results.append(unknown("node.memory", "memory_kib"))
    else:
        gib = facts.memory_kib * 1024 / GIB
        details: dict[str, Any] = {"mem_total_kib": facts.memory_kib}
        if gib < r.memory_gib * (1 - r.memory_tolerance):
            results.append(
                failed(
                    "node.memory", f"{gib:.1f} GiB of RAM, the appliance needs {r.memory_gib:g}", node, details=details
                )
            )
        else:
            results.append(passed("node.memory", f"{gib:.1f} GiB of RAM", node, details=details))

    # Disks
    if facts.disks is None:
        results.append(unknown("node.disks", "disks"))
    else:
        results.append(_disk_result(node, facts.disks, r))

    # Clock
    if facts.clock is None:
        results.append(unknown("node.clock-skew", "clock"))
        results.append(unknown("node.clock-skew-large", "clock"))
    else:
        skew = facts.clock.offset
        direction = "ahead of" if skew > 0 else "behind"
        text = f"{abs(skew):.1f} s {direction} this machine (±{facts.clock.uncertainty:.2f} s)"
        clock_details: dict[str, Any] = {"offset": round(skew, 3), "uncertainty": round(facts.clock.uncertainty, 3)}
        # Only skew beyond the measuring error counts, so a slow link does not make a good clock look bad.
        sure = max(0.0, abs(skew) - facts.clock.uncertainty)
        warn = failed if sure >= r.skew_warn else passed
        block = failed if sure >= r.skew_block else passed
        results.append(warn("node.clock-skew", text, node, details=clock_details))
        results.append(block("node.clock-skew-large", text, node, details=clock_details))

    # NTP
    if facts.ntp is None:
        results.append(unknown("node.ntp", "ntp"))
    else:
        enabled = facts.ntp.get("NTP") == "yes"
        synced = facts.ntp.get("NTPSynchronized") == "yes"
        servers = ", ".join(facts.ntp_servers) or "none configured"
        ntp_details: dict[str, Any] = {"ntp": enabled, "synchronized": synced, "servers": list(facts.ntp_servers)}
        method = ("timedatectl show (systemd-timesyncd)",)
        if not enabled:
            results.append(failed("node.ntp", "NTP is off on the node", node, details=ntp_details, method=method))
        elif not synced:
            results.append(
                failed(
                    "node.ntp",
                    f"NTP is on but the clock is not synchronised (servers: {servers})",
                    node,
                    details=ntp_details,
                    method=method,
                )
            )
        else:
            results.append(
                passed("node.ntp", f"synchronised (servers: {servers})", node, details=ntp_details, method=method)
            )

    # Stale partitions
    if facts.disks is None:
        results.append(unknown("node.stale-partitions", "disks"))
    else:
        os_disk = _os_disk(facts.disks)
        stale = [d for d in facts.disks if d is not os_disk and COS_LABELS & set(d.labels)]
        if stale:
            listing = "; ".join(f"/dev/{d.name}: {', '.join(sorted(COS_LABELS & set(d.labels)))}" for d in stale)
            results.append(
                failed(
                    "node.stale-partitions",
                    f"leftover install partitions on {listing}",
                    node,
                    details={"disks": [d.name for d in stale]},
                )
            )
        else:
            results.append(passed("node.stale-partitions", "no leftover install partitions", node))
    return results


def _disk_result(node: str, disks: tuple[Disk, ...], r: Requirements) -> CheckResult:
    sizes = {d.name: d.size for d in disks}
    details: dict[str, Any] = {"disks": {name: size for name, size in sizes.items()}}
    listing = ", ".join(f"/dev/{d.name} {d.size / GB:.0f} GB" for d in disks) or "no disks"
    os_disk = _os_disk(disks)

    # Disk sizes carry rounding from partition tables and vendors: 1 % short of the minimum still passes.
    def enough(size: int, gb: int) -> bool:
        return size >= gb * GB * 0.99

    problems = []
    if os_disk is None:
        problems.append("no disk holds the installed system")
    elif not enough(os_disk.size, r.os_disk_gb):
        problems.append(f"the system disk /dev/{os_disk.name} has {os_disk.size / GB:.0f} GB, needs {r.os_disk_gb}")
    others = [d for d in disks if d is not os_disk]
    if not others:
        problems.append(f"there is no second disk for the storage pool (needs {r.storage_disk_gb} GB)")
    elif not any(enough(d.size, r.storage_disk_gb) for d in others):
        biggest = max(others, key=lambda d: d.size)
        problems.append(
            f"the largest other disk /dev/{biggest.name} has {biggest.size / GB:.0f} GB, the storage pool needs "
            f"{r.storage_disk_gb}"
        )
    if os_disk is not None:
        details["os_disk"] = os_disk.name
    if problems:
        return failed("node.disks", f"{'; '.join(problems)} ({listing})", node, details=details)
    return passed("node.disks", listing, node, details=details)


def check_node(
    node: str,
    host: str,
    port: int,
    credentials: SSHCredentials,
    *,
    trust: TrustStore,
    confirm: Confirm | None = None,
    expected_fingerprint: str = "",
    requirements: Requirements | None = None,
    clock: Callable[[], float] = time.time,
    connect_timeout: float = 10.0,
    command_timeout: float = 30.0,
    retry_delay: float = 1.0,
) -> list[CheckResult]:
    """Connect to ``node`` over SSH, read its facts and judge them. Reading is idempotent, so a session that drops
    or cannot be opened is tried again on a fresh one (:data:`READ_ATTEMPTS` in all, with backoff): one lost packet
    must not turn into a column of blockers. When the node cannot be read at all, every check is an error result
    naming why (an unread node proves nothing)."""
    client = SSHClient(
        host,
        port,
        credentials,
        trust=trust,
        confirm=confirm,
        expected_fingerprint=expected_fingerprint,
        connect_timeout=connect_timeout,
        command_timeout=command_timeout,
    )
    backoff = Backoff(initial=retry_delay, maximum=8 * retry_delay)
    try:
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                facts = read_facts(client, clock)
                break
            except (SSHDisconnected, SSHUnreachable) as exc:
                if attempt == READ_ATTEMPTS:
                    return _unread(node, exc)
                log.info("%s: reading the node over SSH failed (%s), trying again", node, exc.message)
                client.close()
                time.sleep(backoff.next())
            except SSHError as exc:  # refused credentials or a changed key: trying again changes nothing
                return _unread(node, exc)
    finally:
        client.close()
    return evaluate(node, facts, requirements)


def _unread(node: str, exc: SSHError) -> list[CheckResult]:
    why = f"{exc.title}: {exc.message}" + (f" ({exc.details})" if exc.details else "")
    return [errored(check, f"could not read the node over SSH ({why})", node, remediation=exc.remediation or "")
            for check in CHECK_IDS]  # fmt: skip


def summary(results: list[CheckResult]) -> Mapping[str, int]:
    return {
        "passed": sum(1 for r in results if not r.failed),
        "failed": sum(1 for r in results if r.failed),
    }
