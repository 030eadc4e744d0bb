"""Generated documents: validation raises nothing but ProjectInvalid, and every problem names a field path."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.projects import base_doc
from wizard.core.errors import ProjectInvalid
from wizard.core.project import parse_project

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "10.0.0.300",
            "10.0.0.5",
            "node-1",
            "dhcp",
            "static",
            "vsphere",
            "redfish",
            "maas",
            "manual",
            "",
            "-",
            "a" * 70,
            "http://x",
            "/dev/sdb",
            "auto",
            "SHA256:" + "A" * 43,
        ]
    ),
)
keys = st.one_of(
    st.sampled_from(
        [
            "name",
            "hostname",
            "ip",
            "prefix",
            "gateway",
            "vip",
            "dns",
            "ntp",
            "type",
            "vsphere",
            "bmc",
            "address",
            "password",
            "secret",
            "path",
            "files",
            "iso",
            "nodes",
            "network",
            "provider",
        ]
    ),
    st.text(max_size=12),
    st.integers(),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=5),
    ),
    max_leaves=25,
)

FIELD_PATHS = (
    "schema_version",
    "name",
    "provider",
    "nodes",
    "network",
    "files",
    "appliance",
    "(document)",
    "(file)",
)


def check(doc: Any) -> None:
    try:
        loaded = parse_project(doc)
    except ProjectInvalid as exc:
        assert exc.problems, "ProjectInvalid without problems"
        for p in exc.problems:
            assert p.path and p.path.split(".")[0].split("[")[0] in FIELD_PATHS + tuple(
                k for k in (doc if isinstance(doc, dict) else {}) if isinstance(k, str)
            ), p
            assert p.message
        return
    for w in loaded.warnings:
        assert w.path


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_arbitrary_documents(doc: Any) -> None:
    check(doc)
    if isinstance(doc, dict):
        check({"schema_version": 1, **{k: v for k, v in doc.items() if k != "schema_version"}})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    section=st.sampled_from(["name", "provider", "nodes", "network", "files", "appliance"]),
    path=st.lists(st.one_of(keys, st.integers(min_value=0, max_value=3)), max_size=3),
    value=values,
)
def test_valid_document_with_one_field_replaced(section: str, path: list[Any], value: Any) -> None:
    """Mostly-valid documents reach the deep checks; one field is replaced by anything (wrong type, typo key)."""
    doc = base_doc()
    doc["provider"] = {
        "type": "vsphere",
        "vsphere": {
            "server": "vc",
            "username": "u",
            "password": {"secret": "vc"},
            "datacenter": "DC0",
            "cluster": "C0",
            "datastore": "DS",
            "network": "VM Network",
        },
    }
    for n in doc["nodes"]:
        n["vm"] = n["name"]
    doc["files"] = {"iso": "/etc/hostname"}
    target: Any = doc
    keys_path = [section, *path]
    for key in keys_path[:-1]:
        if (isinstance(target, dict) and key in target and isinstance(target[key], dict | list)) or (
            isinstance(target, list)
            and isinstance(key, int)
            and 0 <= key < len(target)
            and isinstance(target[key], dict | list)
        ):
            target = target[key]
        else:
            break
    last = keys_path[-1]
    if isinstance(target, dict) or (isinstance(last, int) and 0 <= last < len(target)):
        target[last] = copy.deepcopy(value)
    else:
        target.append(copy.deepcopy(value))
    check(doc)


def test_every_problem_of_a_broken_document_names_a_path() -> None:
    doc = base_doc(nodes=[{"name": 5, "ip": ["x"], "prefix": True, "bmc": "x", "gateway": {}}], network=[1])
    try:
        parse_project(doc)
    except ProjectInvalid as exc:
        paths = {p.path for p in exc.problems}
        assert {"nodes[0].ip", "nodes[0].prefix", "nodes[0].gateway", "network", "nodes[0].hostname"} <= paths
    else:
        raise AssertionError("a broken document was accepted")
