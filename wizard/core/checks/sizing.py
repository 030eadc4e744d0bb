"""The appliance's sizing table (4.9.38 docs, ``_size_guidelines-management-appliance.mdx``): per node of a three-node
appliance, Small 8 CPU / 16 GB (1000 workload nodes), Medium 16 / 32 (recommended, 3000), Large 32 / 64 (5000), and
750 GB of storage each.

The minimum (8 CPU, 16 GB) is a blocker elsewhere (the post-boot ``node.cpu``/``node.memory`` and the VM spec);
these checks warn below the recommended size so an operator knows what the nodes will carry. The same judging serves
the post-boot checks (what an installed node reports) and the vSphere checks (the VM spec), from plain numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from wizard.core.checks.catalog import Category, Check, CheckResult, CheckSeverity, failed, passed


@dataclass(frozen=True)
class SizeTier:
    name: str
    cpus: int
    memory_gb: int
    workload_nodes: int


SIZES = (SizeTier("Small", 8, 16, 1000), SizeTier("Medium", 16, 32, 3000), SizeTier("Large", 32, 64, 5000))
RECOMMENDED_SIZE = SIZES[1]
STORAGE_GB_PER_NODE = 750

NODE_SIZE = "node.size"
NODE_STORAGE = "node.storage-size"
_W = CheckSeverity.WARNING
CHECKS = (
    Check(
        NODE_SIZE,
        Category.NODE,
        _W,
        "Node is sized for a production appliance (Medium or larger)",
        "give each node at least 16 CPU and 32 GB of memory, the Medium size the appliance docs recommend (Small, "
        "8 CPU / 16 GB, manages up to 1000 workload nodes; Medium 3000; Large, 32 CPU / 64 GB, 5000)",
        "nodes",
    ),
    Check(
        NODE_STORAGE,
        Category.NODE,
        _W,
        "Node has the storage the sizing table asks for",
        "give each node 750 GB of storage in total, as the appliance sizing guidelines list for every size",
        "nodes",
    ),
)


def size_tier(cpus: int, memory_gb: float) -> SizeTier | None:
    """The largest tier a node with ``cpus`` and ``memory_gb`` meets; None below Small."""
    met = [t for t in SIZES if cpus >= t.cpus and memory_gb >= t.memory_gb]
    return met[-1] if met else None


def size_result(
    target: str, cpus: int, memory_gb: float, *, check: str = NODE_SIZE, tolerance: float = 0.08
) -> CheckResult:
    """Judge one node (or VM) against the table; ``memory_gb`` within ``tolerance`` of a tier counts (the kernel
    reports less than the installed memory)."""
    tier = size_tier(cpus, memory_gb * (1 + tolerance))
    have = f"{cpus} CPU, {memory_gb:.0f} GB"
    details = {"cpus": cpus, "memory_gb": round(memory_gb, 1), "size": tier.name if tier else ""}
    rec = RECOMMENDED_SIZE
    if tier is None:
        return failed(check, f"{have}: below the Small size (8 CPU / 16 GB)", target, details=details)
    if tier.cpus < rec.cpus:
        message = (
            f"{have}: {tier.name}, for up to {tier.workload_nodes} workload nodes; {rec.name} "
            f"({rec.cpus} CPU / {rec.memory_gb} GB) is recommended"
        )
        return failed(check, message, target, details=details)
    return passed(
        check, f"{have}: {tier.name}, for up to {tier.workload_nodes} workload nodes", target, details=details
    )


def storage_result(target: str, storage_gb: float, *, check: str = NODE_STORAGE) -> CheckResult:
    """Judge a node's (or VM's) total storage against the table's 750 GB."""
    text = f"{storage_gb:.0f} GB of storage"
    details = {"storage_gb": round(storage_gb)}
    # Disk sizes carry vendor and partition-table rounding: 1 % short still passes.
    if storage_gb < STORAGE_GB_PER_NODE * 0.99:
        message = f"{text}, the sizing table lists {STORAGE_GB_PER_NODE} GB per node"
        return failed(check, message, target, details=details)
    return passed(check, text, target, details=details)
