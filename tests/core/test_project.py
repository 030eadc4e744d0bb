from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.projects import base_doc, make_key, write_project
from wizard.core import project as project_mod
from wizard.core.errors import ProjectInvalid
from wizard.core.problems import Problem
from wizard.core.project import (
    AddressMode,
    ProviderType,
    load_project,
    parse_project,
    project_to_dict,
    save_project,
)
from wizard.core.project import load as project_load


def problems_of(doc: Any, base: Path | None = None) -> list[str]:
    with pytest.raises(ProjectInvalid) as info:
        parse_project(doc, base=base)
    return [str(p) for p in info.value.problems if p.is_error]


def paths_of(doc: Any, base: Path | None = None) -> set[str]:
    with pytest.raises(ProjectInvalid) as info:
        parse_project(doc, base=base)
    return {p.path for p in info.value.problems if p.is_error}


def test_valid_document_builds_the_model() -> None:
    loaded = parse_project(base_doc())
    p = loaded.project
    assert p.name == "palette-mgmt"
    assert p.provider.type is ProviderType.MANUAL
    assert [n.name for n in p.nodes] == ["node-1", "node-2", "node-3"]
    assert p.nodes[0].address_mode is AddressMode.STATIC
    assert p.network.vip == "127.0.10.50"
    assert p.appliance.username == "kairos"
    # The default password is kept: that is a warning, not an error.
    assert any(w.path == "appliance.password" for w in loaded.warnings)


def test_bad_ipv4_names_field_path() -> None:
    doc = base_doc()
    doc["nodes"][2]["ip"] = "127.0.10.300"
    assert any(s.startswith('nodes[2].ip: "127.0.10.300" is not an IPv4 address') for s in problems_of(doc))


@pytest.mark.parametrize(
    ("mutate", "path", "fragment"),
    [
        (lambda d: d["nodes"][1].update(hostname="Edge-Node"), "nodes[1].hostname", "upper-case"),
        (lambda d: d["nodes"][1].update(hostname="-bad-"), "nodes[1].hostname", "not a valid host name"),
        (lambda d: d["nodes"][1].update(hostname="a" * 64), "nodes[1].hostname", "not a valid host name"),
        (lambda d: d["nodes"][1].update(ip="127.0.10.11"), "nodes[1].ip", "also used by nodes[0]"),
        (
            lambda d: d["nodes"][2].update(hostname="edge-node-1"),
            "nodes[2].hostname",
            "also used by nodes[0]",
        ),
        (lambda d: d["network"].update(vip="127.0.10.12"), "network.vip", "also the address of nodes[1]"),
        (lambda d: d["network"].update(vip="10.9.0.5"), "network.vip", "outside the node subnet 127.0.10.0/24"),
        (lambda d: d["network"].update(vip="127.0.10.1"), "network.vip", "gateway"),
        (lambda d: d["nodes"][0].update(gateway="10.1.0.1"), "nodes[0].gateway", "outside the node subnet"),
        (lambda d: d["nodes"][0].update(ip="127.0.10.0"), "nodes[0].ip", "network or broadcast"),
        (lambda d: d["nodes"][0].update(prefix=33), "nodes[0].prefix", "out of range"),
        (lambda d: d["nodes"][0].update(prefix="twenty"), "nodes[0].prefix", "expected a whole number"),
        (lambda d: d["nodes"][0].update(ip="127.0.10.11/24"), "nodes[0].ip", "includes a prefix length"),
        (lambda d: d["nodes"][0].update(hostnme="x"), "nodes[0].hostnme", "did you mean `hostname`"),
        (lambda d: d.update(nodez=[]), "nodez", "unknown field"),
        (lambda d: d["network"].update(dns=["dns.example.com"]), "network.dns[0]", "not an IPv4 address"),
        (lambda d: d["network"].update(ntp=["bad_host!"]), "network.ntp[0]", "not a valid host name"),
        (lambda d: d["network"].update(proxy={"http": "proxy:3128"}), "network.proxy.http", "not a URL"),
        (lambda d: d.update(nodes=d["nodes"][:2]), "nodes", "quorum"),
        (lambda d: d.update(nodes="node-1"), "nodes", "expected a list"),
        (lambda d: d.update(name="Palette Mgmt"), "name", "not a valid cluster name"),
        (lambda d: d["provider"].update(type="openstack"), "provider.type", "not a valid choice"),
        (
            lambda d: d.update(appliance={"password": "kairos2024!"}),
            "appliance.password",
            "secret value is written",
        ),
        (lambda d: d.update(appliance={"leader": "node-9"}), "appliance.leader", "not one of the nodes"),
        (lambda d: d.update(appliance={"data_disk": "sdb"}), "appliance.data_disk", "not a device path"),
        (lambda d: d["nodes"][0].update(ssh_host_key="abc"), "nodes[0].ssh_host_key", "fingerprint"),
        (lambda d: d["nodes"][0].pop("gateway"), "nodes[0].gateway", "is required"),
        (lambda d: d["nodes"][0].update(address_mode="bootp"), "nodes[0].address_mode", "not a valid choice"),
    ],
)
def test_each_rule_reports_its_field(mutate: Any, path: str, fragment: str) -> None:
    doc = base_doc()
    mutate(doc)
    found = problems_of(doc)
    assert any(s.startswith(f"{path}:") and fragment in s for s in found), found


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    doc = base_doc(files={"iso": "missing.iso"})
    doc["nodes"][0]["ip"] = "127.0.10.300"
    doc["nodes"][1]["hostname"] = "Bad_Name"
    doc["nodes"][2]["gatewya"] = "127.0.10.1"
    doc["network"]["vip"] = "192.168.1.5"
    paths = paths_of(doc, tmp_path)
    assert {"nodes[0].ip", "nodes[1].hostname", "nodes[2].gatewya", "network.vip", "files.iso"} <= paths


def test_a_traceback_names_the_problems_not_only_their_count() -> None:
    doc = base_doc()
    doc["nodes"][0]["ip"] = "127.0.10.300"
    doc["nodes"][1]["hostname"] = "Bad_Name"
    with pytest.raises(ProjectInvalid) as info:
        parse_project(doc)
    text = str(info.value)
    assert text.startswith("Invalid project: ")
    assert "nodes[0].ip: " in text and "nodes[1].hostname: " in text
    # Many problems: the first few, then how many more; the dialog's details still hold every one.
    many = ProjectInvalid([Problem(f"nodes[{i}].ip", "bad") for i in range(5)])
    assert str(many).endswith("nodes[2].ip: bad; and 2 more")
    assert len(many.details.splitlines()) == 5


def test_provider_specific_requirements() -> None:
    doc = base_doc(provider={"type": "vsphere", "vsphere": {"server": "https://vc", "username": "u"}})
    paths = paths_of(doc)
    assert {
        "provider.vsphere.server",
        "provider.vsphere.password",
        "provider.vsphere.datacenter",
        "provider.vsphere.datastore",
        "provider.vsphere.network",
        "provider.vsphere.cluster",
        "nodes[0].vm",
        "files.iso",
    } <= paths
    doc = base_doc(provider={"type": "redfish"})
    assert {"nodes[0].bmc", "nodes[1].bmc", "nodes[2].bmc"} <= paths_of(doc)
    doc = base_doc(provider={"type": "maas", "maas": {"url": "maas.local", "api_key": {"secret": "maas"}}})
    assert {"provider.maas.url", "nodes[0].maas"} <= paths_of(doc)
    doc = base_doc(provider={"type": "manual", "vsphere": {"server": "vc"}})
    assert "provider.vsphere" in paths_of(doc)


def test_single_node_is_a_warning_and_dhcp_warns_about_reservations() -> None:
    doc = base_doc()
    doc["nodes"] = [{"name": "node-1", "hostname": "edge-node-1", "address_mode": "dhcp"}]
    loaded = parse_project(doc)
    warned = {w.path for w in loaded.warnings}
    assert "nodes" in warned
    assert "nodes[0].address_mode" in warned


def test_files_must_exist_and_bundles_need_signatures(tmp_path: Path) -> None:
    (tmp_path / "appliance.iso").write_bytes(b"iso")
    (tmp_path / "content.tar.zst").write_bytes(b"content")
    doc = base_doc(files={"iso": "appliance.iso", "content_bundle": "content.tar.zst", "pack_bundles": ["nope.zst"]})
    found = problems_of(doc, tmp_path)
    assert any(s.startswith("files.public_key: is required") for s in found)
    assert any(s.startswith("files.pack_bundles[0]:") and "does not exist" in s for s in found)
    _, key = make_key(tmp_path)
    doc["files"]["public_key"] = key.name
    doc["files"]["pack_bundles"] = []
    found = problems_of(doc, tmp_path)
    assert any(s.startswith("files.content_bundle:") and "content.tar.sig.bin" in s for s in found)
    (tmp_path / "content.tar.sig.bin").write_bytes(b"sig")
    loaded = parse_project(doc, base=tmp_path)
    assert loaded.project.files.content_bundle is not None
    assert loaded.project.files.content_bundle.signature == tmp_path / "content.tar.sig.bin"


def test_secret_references_are_collected(tmp_path: Path) -> None:
    (tmp_path / "appliance.iso").write_bytes(b"iso")
    doc = base_doc(
        provider={"type": "redfish"},
        appliance={"password": {"secret": "node-password"}},
    )
    for i, node in enumerate(doc["nodes"]):
        node["bmc"] = {"address": f"10.0.9.{i + 1}", "username": "root", "password": {"secret": f"bmc-{i}"}}
    doc["files"] = {"iso": {"path": "appliance.iso"}}
    refs = parse_project(doc, base=tmp_path).project.secret_refs()
    assert [(path, ref.key) for path, ref in refs] == [
        ("nodes[0].bmc.password", "bmc-0"),
        ("nodes[1].bmc.password", "bmc-1"),
        ("nodes[2].bmc.password", "bmc-2"),
        ("appliance.password", "node-password"),
    ]
    doc["files"] = {"iso": {"path": "/dev"}}
    with pytest.raises(ProjectInvalid) as info:
        parse_project(doc)
    assert {p.path for p in info.value.problems if p.is_error} == {"files.iso.path"}


def test_round_trip_through_yaml(tmp_path: Path) -> None:
    (tmp_path / "appliance.iso").write_bytes(b"iso")
    doc = base_doc(
        provider={
            "type": "vsphere",
            "vsphere": {
                "server": "vc.example.com",
                "username": "administrator@vsphere.local",
                "password": {"secret": "vc"},
                "datacenter": "DC0",
                "cluster": "DC0_C0",
                "datastore": "LocalDS_0",
                "network": "VM Network",
            },
        },
        files={"iso": "appliance.iso"},
        appliance={"password": {"secret": "node-pw"}, "leader": "node-2"},
    )
    for n in doc["nodes"]:
        n["vm"] = f"palette-{n['name']}"
    first = parse_project(doc, base=tmp_path).project
    out = tmp_path / "saved.yaml"
    save_project(first, out)
    second = load_project(out).project
    assert project_to_dict(second, tmp_path) == project_to_dict(first, tmp_path)
    assert "secret: vc" in out.read_text()  # references only, never values
    assert out.stat().st_mode & 0o077 == 0


def test_json_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "project.json"
    path.write_text(json.dumps(base_doc()))
    assert load_project(path).project.name == "palette-mgmt"


def test_syntax_errors_and_missing_files_are_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ProjectInvalid) as info:
        load_project(bad)
    assert "line" in str(info.value.problems[0])
    with pytest.raises(ProjectInvalid):
        load_project(tmp_path / "absent.yaml")


def test_schema_versions_and_migration_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = base_doc()
    del doc["schema_version"]
    assert paths_of(doc) == {"schema_version"}
    # Without it the file is read as the current schema: every other problem is listed in the same pass.
    doc["nodes"][1]["ip"] = "127.0.10.300"
    doc["network"].pop("vip")
    assert paths_of(doc) == {"schema_version", "nodes[1].ip", "network.vip"}
    assert paths_of(base_doc(schema_version=99)) == {"schema_version"}
    assert paths_of(base_doc(schema_version="1")) == {"schema_version"}
    # A future version 2 that renamed `network.vip`: the chain must apply each step in order.
    calls: list[int] = []

    def v1_to_v2(d: dict[str, Any]) -> dict[str, Any]:
        calls.append(1)
        d = dict(d)
        d["network"] = dict(d["network"], vip=d["network"].pop("virtual_ip"))
        return d

    monkeypatch.setattr(project_load, "SCHEMA_VERSION", 2)  # what migrate reads
    monkeypatch.setitem(project_mod.MIGRATIONS, 1, v1_to_v2)
    old = base_doc()
    old["network"] = {"virtual_ip": "127.0.10.60", "ntp": ["pool.ntp.org"]}
    migrated = project_mod.migrate(old)
    assert calls == [1]
    assert migrated["schema_version"] == 2
    assert migrated["network"]["vip"] == "127.0.10.60"


def test_validate_command_prints_five_mistakes_and_exits_2(tmp_path: Path) -> None:
    doc = base_doc(files={"iso": "missing.iso"})
    doc["nodes"][0]["ip"] = "127.0.10.300"
    doc["nodes"][1]["hostname"] = "Bad_Name"
    doc["nodes"][2]["gatewya"] = "127.0.10.1"
    doc["network"]["vip"] = "192.168.1.5"
    path = write_project(tmp_path, doc)
    run = subprocess.run(
        [sys.executable, "-m", "wizard", "validate", str(path)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 2, run.stdout + run.stderr
    for field in ("nodes[0].ip:", "nodes[1].hostname:", "nodes[2].gatewya:", "network.vip:", "files.iso:"):
        assert field in run.stdout, run.stdout


SSH_FP = "SHA256:" + "A" * 43
TLS_FP = ":".join(["AB"] * 32)


def test_node_ports_and_local_ui_fingerprint() -> None:
    plain = parse_project(base_doc()).project.nodes[0]
    assert (plain.ssh_port, plain.localui_port, plain.localui_fingerprint) == (22, 5080, "")
    doc = base_doc()
    for i, n in enumerate(doc["nodes"]):  # one forwarding address, distinct ports: allowed
        n.update(ip="127.0.10.11", ssh_port=2200 + i, localui_port=5100 + i, localui_fingerprint=TLS_FP)
    nodes = parse_project(doc).project.nodes
    assert [(n.ssh_port, n.localui_port) for n in nodes] == [(2200, 5100), (2201, 5101), (2202, 5102)]
    assert nodes[1].localui_fingerprint == TLS_FP
    doc["nodes"][2]["ssh_port"] = 2200  # the same address and SSH port as nodes[0]: not two machines
    assert any(s.startswith('nodes[2].ip: address "127.0.10.11" is also used by nodes[0]') for s in problems_of(doc))
    bad = base_doc()
    bad["nodes"][0].update(ssh_port=0, localui_port="x", localui_fingerprint="AB:CD")
    assert paths_of(bad) == {"nodes[0].ssh_port", "nodes[0].localui_port", "nodes[0].localui_fingerprint"}


def test_cluster_section() -> None:
    doc = base_doc(
        cluster={
            "variables": {"podCidr": "100.64.0.0/18", "inClusterRegistry": False, "mongoReplicas": 3},
            "secret_variables": {"ociPackRegistryPassword": {"secret": "oci-registry"}},
            "ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9k operator@wizard"],
            "kubeconfig": "out/kubeconfig",
        }
    )
    project = parse_project(doc, base=Path("/srv/palette")).project
    c = project.cluster
    assert dict(c.variables) == {"podCidr": "100.64.0.0/18", "inClusterRegistry": "False", "mongoReplicas": "3"}
    assert c.kubeconfig == Path("/srv/palette/out/kubeconfig") and len(c.ssh_keys) == 1
    assert ("cluster.secret_variables.ociPackRegistryPassword", project.cluster.secret_variables[0][1]) in (
        project.secret_refs()
    )
    assert parse_project(base_doc()).project.cluster.variables == ()


@pytest.mark.parametrize(
    ("cluster", "path", "fragment"),
    [
        ({"varables": {}}, "cluster.varables", "did you mean `variables`"),
        ({"variables": {"registryPassword": "hunter2"}}, "cluster.variables.registryPassword", "secret value"),
        ({"variables": {"podCidr": None}}, "cluster.variables.podCidr", "has no value"),
        ({"variables": {"podCidr": [1]}}, "cluster.variables.podCidr", "expected text"),
        ({"secret_variables": {"ociPackRegistryPassword": "plain"}}, "cluster.secret_variables.ociPackRegistryPassword",
         "secret value"),
        ({"variables": {"x": "1"}, "secret_variables": {"x": {"secret": "k"}}}, "cluster.variables.x", "once"),
        ({"ssh_keys": ["not a key"]}, "cluster.ssh_keys[0]", "not an SSH public key"),
        ({"variables": ["podCidr"]}, "cluster.variables", "expected a mapping"),
    ],
)  # fmt: skip
def test_cluster_rules_report_their_field(cluster: dict[str, Any], path: str, fragment: str) -> None:
    problems = problems_of(base_doc(cluster=cluster))
    assert any(s.startswith(f"{path}:") and fragment in s for s in problems), problems


def test_round_trip_keeps_ports_and_cluster(tmp_path: Path) -> None:
    doc = base_doc(
        cluster={
            "variables": {"podCidr": "100.64.0.0/18"},
            "secret_variables": {"ociPackRegistryPassword": {"secret": "oci"}},
            "ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9k operator@wizard"],
            "kubeconfig": "kubeconfig",
        }
    )
    doc["nodes"][0].update(ssh_port=2222, localui_port=15080, ssh_host_key=SSH_FP, localui_fingerprint=TLS_FP)
    first = parse_project(doc, base=tmp_path).project
    out = tmp_path / "saved.yaml"
    save_project(first, out)
    second = load_project(out).project
    assert second.nodes == first.nodes and second.cluster == first.cluster
    assert "secret: oci" in out.read_text() and "kubeconfig: kubeconfig" in out.read_text()
    assert "cluster" not in project_to_dict(parse_project(base_doc()).project)  # absent stays absent


def test_console_and_activation_sections(tmp_path: Path) -> None:
    fp = "ab" * 32
    doc = base_doc(
        console={
            "email": "ops@example.com",
            "password": {"secret": "palette-admin"},
            "port": 8443,
            "tls_fingerprint": fp,
        },
        activation={"key": {"secret": "palette-activation"}},
    )
    loaded = parse_project(doc)
    p = loaded.project
    assert p.console is not None
    assert (p.console.email, p.console.port, p.console.tls_fingerprint) == ("ops@example.com", 8443, fp)
    assert p.console.password is not None and p.console.password.key == "palette-admin"
    assert p.activation.key is not None and p.activation.key.key == "palette-activation"
    assert not p.activation.defer
    refs = dict(p.secret_refs())
    assert refs["console.password"].key == "palette-admin"
    assert refs["activation.key"].key == "palette-activation"
    path = tmp_path / "p.yaml"
    save_project(p, path)
    again = load_project(path).project
    assert again.console == p.console and again.activation == p.activation
    # Deferring round-trips too, and a default port is not written out.
    deferred = parse_project(
        base_doc(console={"email": "a@b.io", "password": {"secret": "x"}}, activation={"defer": True})
    )
    written = project_to_dict(deferred.project)
    assert written["activation"] == {"defer": True}
    assert written["console"] == {"email": "a@b.io", "password": {"secret": "x"}}
    assert parse_project(written).project == deferred.project


def test_no_console_section_keeps_the_old_behaviour() -> None:
    p = parse_project(base_doc()).project
    assert p.console is None
    assert not p.activation.defer and p.activation.key is None
    assert "console" not in project_to_dict(p) and "activation" not in project_to_dict(p)
    # Without activation the trial is kept, said as a warning.
    loaded = parse_project(base_doc(console={"email": "a@b.io", "password": {"secret": "x"}}))
    assert any(w.path == "activation" and "trial" in w.message for w in loaded.warnings)


@pytest.mark.parametrize(
    ("extra", "path", "fragment"),
    [
        ({"console": {"email": "nobody", "password": {"secret": "x"}}}, "console.email", "not an email address"),
        ({"console": {"password": {"secret": "x"}}}, "console.email", "is required"),
        ({"console": {"email": "a@b.io"}}, "console.password", "is required"),
        ({"console": {"email": "a@b.io", "password": "admin2"}}, "console.password", "secret value"),
        ({"console": {"email": "a@b.io", "password": {"secret": "x"}, "port": 0}}, "console.port", "out of range"),
        ({"console": {"email": "a@b.io", "password": {"secret": "x"}, "tls_fingerprint": "nope"}},
         "console.tls_fingerprint", ""),
        ({"console": {"email": "a@b.io", "pasword": {"secret": "x"}}}, "console.pasword", "did you mean `password`"),
        ({"activation": {"defer": True}}, "activation", "needs the system console"),
        ({"console": {"email": "a@b.io", "password": {"secret": "x"}}, "activation": {}}, "activation", "neither"),
        ({"console": {"email": "a@b.io", "password": {"secret": "x"}},
          "activation": {"defer": True, "key": {"secret": "k"}}}, "activation", "both"),
        ({"console": {"email": "a@b.io", "password": {"secret": "x"}}, "activation": {"defer": "yes"}},
         "activation.defer", "true or false"),
        ({"console": {"email": "a@b.io", "password": {"secret": "x"}}, "activation": {"key": "ACT-123"}},
         "activation.key", "secret value"),
    ],
)  # fmt: skip
def test_console_rules_report_their_field(extra: dict[str, Any], path: str, fragment: str) -> None:
    found = [s for s in problems_of(base_doc(**extra)) if s.startswith(f"{path}:")]
    assert found, problems_of(base_doc(**extra))
    assert any(fragment in s for s in found)


def test_pack_bundles_need_distinct_names_and_the_console(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "ubuntu.zst").write_bytes(b"x")
        (tmp_path / folder / "ubuntu.sig.bin").write_bytes(b"s")
    _, key = make_key(tmp_path)
    doc = base_doc(files={"pack_bundles": ["a/ubuntu.zst", "b/ubuntu.zst"], "public_key": key.name})
    assert any(s.startswith("files.pack_bundles[1]:") and "same file name" in s for s in problems_of(doc, tmp_path))
    alone = parse_project(base_doc(files={"pack_bundles": ["a/ubuntu.zst"], "public_key": key.name}), base=tmp_path)
    assert any(w.path == "files.pack_bundles" and "not uploaded" in w.message for w in alone.warnings)


def test_maas_filters_round_trip(tmp_path: Path) -> None:
    (tmp_path / "appliance.iso").write_bytes(b"iso")
    maas = {"url": "http://maas:5240/MAAS", "api_key": {"secret": "maas"}, "tags": ["palette"], "zone": "rack-1"}
    doc = base_doc(provider={"type": "maas", "maas": maas}, files={"iso": "appliance.iso"})
    for i, n in enumerate(doc["nodes"]):
        n["maas"] = f"abc{i}de"
    first = parse_project(doc, base=tmp_path).project
    written = project_to_dict(first, tmp_path)["provider"]["maas"]
    assert written["tags"] == ["palette"] and written["zone"] == "rack-1" and "pool" not in written
    assert parse_project({**doc, "provider": {"type": "maas", "maas": written}}, base=tmp_path).project == first
