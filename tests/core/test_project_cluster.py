"""The project's cluster settings: a VIP control-plane endpoint only, and two-node clusters where asked for."""

from __future__ import annotations

import pytest

from tests.support.projects import base_doc
from wizard.core.errors import ProjectInvalid
from wizard.core.project import parse_project, project_to_dict


def errors(doc: dict) -> dict[str, str]:
    with pytest.raises(ProjectInvalid) as info:
        parse_project(doc)
    return {p.path: f"{p.message} — {p.fix}" for p in info.value.problems if p.is_error}


def two_nodes(**cluster: object) -> dict:
    doc = base_doc(cluster=cluster) if cluster else base_doc()
    doc["nodes"] = doc["nodes"][:2]
    return doc


def test_ddns_is_refused_with_the_reason() -> None:
    found = errors(base_doc(cluster={"control_plane_endpoint": "DDNS"}))
    message = found["cluster.control_plane_endpoint"]
    assert "control plane endpoint is its VIP" in message and "network.vip" in message
    parse_project(base_doc(cluster={"control_plane_endpoint": "VIP"}))  # saying the only choice is fine


def test_two_nodes_need_two_node_ha() -> None:
    assert "`cluster.two_node: true` for two" in errors(two_nodes())["nodes"]
    loaded = parse_project(two_nodes(two_node=True))
    assert loaded.project.cluster.two_node
    warning = next(w for w in loaded.warnings if w.path == "cluster.two_node")
    assert "PostgreSQL instead of etcd" in warning.message and "isTwoNodeCluster" in warning.message
    assert project_to_dict(loaded.project)["cluster"]["two_node"] is True
    assert "exactly two nodes; this project has 3" in errors(base_doc(cluster={"two_node": True}))["cluster.two_node"]
    assert "expected true or false" in errors(two_nodes(two_node="yes"))["cluster.two_node"]
