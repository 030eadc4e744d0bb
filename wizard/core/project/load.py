"""Loading a project file: schema migration, then every section read with all problems collected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from wizard.core.errors import ProjectInvalid
from wizard.core.problems import Problem
from wizard.core.project.model import MIGRATIONS, SCHEMA_VERSION, ActivationSettings, LoadedProject, Node, Project
from wizard.core.project.nodes import _cross_checks, _read_node
from wizard.core.project.provider import _read_provider
from wizard.core.project.reader import _kind, _Reader, _show, hostname_problem
from wizard.core.project.sections import (
    _boot_checks,
    _configure_checks,
    _read_activation,
    _read_appliance,
    _read_cluster,
    _read_console,
    _read_files,
    _read_network,
)

_TOP = (
    "schema_version",
    "name",
    "provider",
    "nodes",
    "network",
    "files",
    "appliance",
    "cluster",
    "console",
    "activation",
)


def migrate(doc: dict[str, Any]) -> dict[str, Any]:
    """Upgrade a raw document to :data:`SCHEMA_VERSION` by applying each migration in turn."""
    version = doc.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ProjectInvalid(
            [
                Problem(
                    "schema_version",
                    f"expected a whole number, got {_kind(version)}",
                    f"start the file with `schema_version: {SCHEMA_VERSION}`",
                )
            ]
        )
    if version > SCHEMA_VERSION:
        raise ProjectInvalid(
            [
                Problem(
                    "schema_version",
                    f"version {version} was written by a newer wizard (this one reads up to {SCHEMA_VERSION})",
                    "update the wizard",
                )
            ]
        )
    if version < 1:
        raise ProjectInvalid([Problem("schema_version", f"{version} is not a schema version", f"use {SCHEMA_VERSION}")])
    while version < SCHEMA_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise ProjectInvalid(
                [Problem("schema_version", f"no upgrade from version {version}", "recreate the project file")]
            )
        doc = step(dict(doc))
        version += 1
        doc["schema_version"] = version
    return doc


def parse_project(doc: object, *, base: Path | None = None, source: Path | None = None) -> LoadedProject:
    """Validate a raw document and build the project; raises :class:`ProjectInvalid` with every problem."""
    if not isinstance(doc, dict):
        raise ProjectInvalid(
            [
                Problem(
                    "(document)",
                    f"expected a mapping of fields at the top, got {_kind(doc)}",
                    "see the example project in the README",
                )
            ]
        )
    r = _Reader(base)
    if "schema_version" not in doc:
        # Said once, and the rest is read as the current schema: every other problem comes in the same pass.
        r.error("schema_version", "is missing", f"start the file with `schema_version: {SCHEMA_VERSION}`")
        doc = {**doc, "schema_version": SCHEMA_VERSION}
    doc = migrate(doc)
    top = r.mapping(doc, "", _TOP) or {}
    name = r.text(top, "name", "", required=True)
    if name and (hostname_problem(name) or "." in name or len(name) > 63):
        r.error(
            "name",
            f"{_show(name)} is not a valid cluster name",
            "use up to 63 lower-case letters, digits and '-'",
        )
    provider = _read_provider(r, top.get("provider")) if "provider" in top else None
    if "provider" not in top:
        r.error("provider", "is required", "add `provider:` with `type: vsphere | redfish | maas | manual`")
    ptype = provider.type if provider else None
    nodes: list[Node] = []
    raw_nodes = top.get("nodes")
    if raw_nodes is None:
        r.error("nodes", "is required", "list the nodes (3 recommended)")
    elif not isinstance(raw_nodes, list):
        r.error("nodes", f"expected a list, got {_kind(raw_nodes)}", "write one `- name: …` entry per node")
    elif not raw_nodes:
        r.error("nodes", "is empty", "list the nodes (3 recommended)")
    else:
        for i, item in enumerate(raw_nodes):
            node = _read_node(r, item, i, ptype)
            if node:
                nodes.append(node)
    network = None
    if "network" in top:
        network = _read_network(r, top["network"])
    else:
        r.error("network", "is required", "add `network:` with at least `vip:`")
    files = _read_files(r, top.get("files"), ptype)
    appliance = _read_appliance(r, top.get("appliance"), [n.name for n in nodes if n.name])
    cluster = _read_cluster(r, top.get("cluster"))
    vip = network.vip if network is not None else ""
    console = _read_console(r, top["console"], vip) if top.get("console") is not None else None
    activation = _read_activation(r, top["activation"]) if top.get("activation") is not None else ActivationSettings()
    if console is None:
        if top.get("activation") is not None:
            r.error("activation", "needs the system console", "add `console: {email: …, password: {secret: NAME}}`")
        if files is not None and files.pack_bundles:
            r.warning(
                "files.pack_bundles",
                "are verified but not uploaded: uploading packs ends with the registry sync in the system console",
                "add `console: {email: …, password: {secret: NAME}}`",
            )
    elif top.get("activation") is None:
        r.warning(
            "activation",
            "is not set: Palette stays on its 30-day trial",
            "write `activation: {defer: true}` to say so, or give the key as `activation: {key: {secret: NAME}}`",
        )
    if files is not None:
        seen: dict[str, int] = {}
        for i, ref in enumerate(files.pack_bundles):
            if ref.path.name in seen:
                r.error(
                    f"files.pack_bundles[{i}]",
                    f"has the same file name as files.pack_bundles[{seen[ref.path.name]}]",
                    "the Local UI keeps packs by name; give each bundle a distinct file name",
                )
            seen.setdefault(ref.path.name, i)
    _cross_checks(r, nodes, network, ptype, two_node=cluster is not None and cluster.two_node)
    if appliance is not None and network is not None:
        _configure_checks(r, appliance, nodes, network)
    if appliance is not None:
        _boot_checks(r, appliance, ptype, files)
    errors = [p for p in r.problems if p.is_error]
    if (
        errors
        or provider is None
        or network is None
        or files is None
        or appliance is None
        or cluster is None
        or activation is None
    ):
        raise ProjectInvalid(r.problems, str(source) if source else "")
    project = Project(
        name=name,
        provider=provider,
        nodes=tuple(nodes),
        network=network,
        files=files,
        appliance=appliance,
        cluster=cluster,
        source=source,
        console=console,
        activation=activation,
    )
    return LoadedProject(project, [p for p in r.problems if not p.is_error])


def load_project(path: Path) -> LoadedProject:
    """Read, migrate and validate a project file (YAML or JSON)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectInvalid([Problem("(file)", f"{path} does not exist", "check the path")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectInvalid([Problem("(file)", f"{path} cannot be read: {exc}", "check the file")]) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ProjectInvalid(
            [
                Problem(
                    "(file)",
                    f"not valid YAML or JSON at {where}: {getattr(exc, 'problem', exc)}",
                    "fix the syntax there",
                )
            ]
        ) from None
    except RecursionError:
        raise ProjectInvalid([Problem("(file)", "nested too deeply", "fix the file's structure")]) from None
    return parse_project(doc, base=path.resolve().parent, source=path)
