"""A kept rehearsal (``--keep``) started again for a day-2 action, and the operator who racks another machine.

:meth:`wizard.rehearsal.Rehearsal.reopen` and :meth:`~wizard.rehearsal.Rehearsal.rack` hand their work here; what a
kept lab records (never a secret) is :mod:`wizard.lab.keep`'s.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from wizard.core.project import load_project
from wizard.lab.keep import restore
from wizard.lab.knobs import LabKnobError
from wizard.lab.lab import Lab
from wizard.lab.node import CONFIGURE_SECONDS, DEFAULT_CLUSTER_TIMELINE, DEFAULT_UPGRADE_TIMELINE
from wizard.lab.variants import Variant

if TYPE_CHECKING:
    from wizard.rehearsal import Rehearsal

log = logging.getLogger("wizard.rehearsal")  # the rehearsal's own log lines


def restart(r: Rehearsal, state: dict[str, Any]) -> None:
    """Start the lab ``--keep`` left in ``r.folder`` again as it was (``Rehearsal.reopen``): its nodes installed, on
    the same ports with the same certificates and cluster, machines racked since still waiting; every secret the
    project names re-keyed for this session."""
    if r.netns or r.provider != "manual":
        raise LabKnobError(
            "Kept lab on loopback only",
            "a kept lab starts again on this machine's loopback with the manual provider",
            remediation="run the day-2 action without --netns or another provider",
        )
    r.paths.ensure()
    nodes = list(state.get("nodes") or [])
    if not nodes:
        raise LabKnobError("Kept lab empty", f"{r.folder} records no nodes", remediation="run a new rehearsal")
    project = load_project(r.project_file).project
    for _, ref in project.secret_refs():  # re-keyed: the kept lab records no secret (wizard.lab.keep)
        r.secrets.set(ref, secrets.token_urlsafe(18))
    password = r.secrets.get(project.appliance.password) if project.appliance.password else None
    answers = dict(project.cluster.secret_variables)
    oci = answers.get("ociPackRegistryPassword")
    registry = r.secrets.get(oci) if oci is not None else ""
    speed = r.speed
    racked = [n for n in nodes if n.get("installed") is False]  # machines racked, not installed yet
    nodes = [n for n in nodes if n.get("installed") is not False]
    r.lab = Lab(
        len(nodes),
        r.folder / "lab",
        ip=str(nodes[0]["ip"]),
        installed=True,
        speed=speed,
        cluster_timeline=float(r.knobs.get("cluster-seconds", DEFAULT_CLUSTER_TIMELINE)) / speed,
        upgrade_timeline=float(r.knobs.get("upgrade-seconds", DEFAULT_UPGRADE_TIMELINE)) / speed,
        content_sync_delay=max(0.2, 300 / speed),
        tick_interval=0.1,
        socket_timeout=15.0,
        log_collect_seconds=max(0.2, 120 / speed),
        appliance=r.appliance,
        faults=r.knobs.node_faults(len(nodes)) or None,
        variant=Variant(r.knobs.variant),
        http_5xx=r.knobs.http_5xx,
        seed=r.knobs.seed,
        ports=[(int(n["port"]), int(n["ssh_port"])) for n in nodes],
        reuse=True,
        media=r.media,
    )
    for entry in racked:
        r.lab.add_node(ports=(int(entry["port"]), int(entry["ssh_port"])), reuse=True)
    for node in r.lab.nodes:
        node.state.configure_seconds = max(0.2, CONFIGURE_SECONDS * 60 / speed)
        node.state.upgrade_error = str(r.knobs.get("upgrade-error") or "")
    restore(
        r.lab,
        state,
        passwords={project.appliance.username: password} if password else {},
        registry_password=registry or "",
    )
    r.lab.start()
    r.powered_on = True  # installed machines, running
    kept_console = state.get("console")
    if kept_console and project.console is not None:
        ports = (int(kept_console["port"]), int(state.get("kube_api_port") or 0))
        console = r._start_console(str(nodes[0]["ip"]), project.network.vip, ports=ports)
        if console is not None:
            admin = r.secrets.get(project.console.password) if project.console.password else None
            console.state.restore(kept_console, admin)
    bundle = Path(str(state.get("upgrade_bundle") or ""))
    r.upgrade_bundle = bundle if bundle.is_file() else None
    log.info("rehearsal: kept lab in %s started again (%s, %d node(s))", r.folder, r.appliance.label, len(nodes))


def rack(r: Rehearsal, names: list[str]) -> list[str]:
    """Play the operator who racks new machines and adds them to the project: for each name the project lacks,
    a node the lab adds (not installed yet) under that name, written into the project with its ports and pinned
    fingerprints (and, with a control plane, its BMC or the VM the wizard will create). No name: one machine, named
    as the lab names its next node. The names to add."""
    assert r.lab is not None
    doc = yaml.safe_load(r.project_file.read_text(encoding="utf-8"))
    known = [n["name"] for n in doc["nodes"]]
    missing = [n for n in names if n not in known] if names else [f"{r.lab.name_prefix}-{len(r.lab.nodes) + 1}"]
    for name in missing:
        expected = f"{r.lab.name_prefix}-{len(r.lab.nodes) + 1}"
        if name != expected:
            raise LabKnobError(
                "No such machine to rack",
                f"the rehearsal racks {expected} next, not {name!r}",
                remediation=f"name {expected} (or no node: the rehearsal racks the next one)",
            )
        node = r.lab.add_node()
        first = doc["nodes"][0]
        doc["nodes"].append(
            {
                "name": node.name,
                "hostname": node.name,
                "ip": node.state.ip,
                "prefix": first["prefix"],
                "gateway": first["gateway"],
                "ssh_port": node.ssh.port,
                "localui_port": node.server.port,
                "ssh_host_key": node.ssh.fingerprint,
                "localui_fingerprint": node.fingerprint,
                "pool": "worker-pool",  # the control plane keeps its odd count
                **(r._control(node) if r._control is not None else {}),  # its BMC or VM, watched from now on
            }
        )
        log.info("rehearsal: %s racked and added to the project", node.name)
    if missing:
        header = "".join(line for line in r.project_file.read_text().splitlines(keepends=True) if line.startswith("#"))
        r.project_file.write_text(header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    return names or missing
