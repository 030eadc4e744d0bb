"""The per-node NoCloud seed ISO: built with pycdlib and read back; no secret in plain text."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import pytest
import yaml

from wizard.appliance.seed import NodeSeed, build_seed_iso, hash_password, read_seed_iso, render_user_data

SECRET = "Op3rator-Secret-77"  # a test value


def _seed(**kw: object) -> NodeSeed:
    base: dict[str, object] = {
        "hostname": "edge-1",
        "instance_id": "palette-edge-1",
        "username": "kairos",
        "password_hash": hash_password(SECRET, rounds=4),
        "ssh_keys": ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEx wizard@jump",),
        "install_device": "/dev/sda",
        "address": "10.0.0.11",
        "prefix": 24,
        "gateway": "10.0.0.1",
        "dns": ("10.0.0.2", "10.0.0.3"),
        "search_domains": ("example.com",),
        "ntp": ("ntp.example.com",),
        "https_proxy": "http://proxy:3128",
        "no_proxy": ("10.0.0.0/24", ".example.com"),
    }
    base.update(kw)
    return NodeSeed(**base)  # type: ignore[arg-type]


def test_seed_iso_reads_back(tmp_path: Path) -> None:
    seed = _seed()
    path = build_seed_iso(seed, tmp_path / "seeds" / "edge-1.iso")
    volume, files = read_seed_iso(path)
    assert volume == "cidata"
    assert files["user-data"].startswith("#cloud-config\n")
    doc = yaml.safe_load(files["user-data"])
    assert doc["install"]["device"] == "/dev/sda" and doc["install"]["reboot"] is True
    site = doc["stylus"]["site"]
    assert site["hostName"] == "edge-1" and site["ntpServers"] == ["ntp.example.com"]
    iface = site["network"]["interfaces"]["eth0"]
    assert iface == {
        "type": "static",
        "ipAddress": "10.0.0.11",
        "mask": "255.255.255.0",
        "gateway": "10.0.0.1",
        "nameserver": "10.0.0.2",
    }
    assert site["network"]["httpsProxy"] == "http://proxy:3128"
    assert site["network"]["noProxy"] == "10.0.0.0/24,.example.com"
    user = site["users"][0]
    assert user["name"] == "kairos" and user["ssh_authorized_keys"][0].startswith("ssh-ed25519 ")
    assert bcrypt.checkpw(SECRET.encode(), user["passwd"].encode())
    assert yaml.safe_load(files["meta-data"]) == {"instance-id": "palette-edge-1", "local-hostname": "edge-1"}
    assert SECRET.encode() not in path.read_bytes()  # only the hash travels
    assert path.stat().st_mode & 0o077 == 0


def test_dhcp_and_post_install_choices() -> None:
    doc = yaml.safe_load(render_user_data(_seed(address="", prefix=None, gateway="", post_install="poweroff")))
    assert doc["stylus"]["site"]["network"]["interfaces"]["eth0"] == {"type": "dhcp"}
    assert doc["install"]["poweroff"] is True and doc["install"]["reboot"] is False
    assert "device" not in yaml.safe_load(render_user_data(_seed(install_device="auto")))["install"]


def test_bad_seeds_are_refused() -> None:
    with pytest.raises(ValueError, match="prefix and gateway"):
        render_user_data(_seed(gateway=""))
    with pytest.raises(ValueError, match="post_install"):
        render_user_data(_seed(post_install="shutdown"))
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


def test_a_seed_carries_more_nics_where_the_project_describes_them() -> None:
    """``stylus.site.network.interfaces`` is all a seed can say about networking: each NIC's addressing."""
    from tests.support.projects import base_doc
    from wizard.appliance.seed import seed_for_node
    from wizard.core.project import parse_project

    doc = base_doc()
    doc["nodes"][0]["network"] = {
        "interfaces": [{"name": "eth2", "addressing": "static", "ip": "192.168.50.11", "prefix": 24},
                       {"name": "eth3", "addressing": "dhcp"}],
    }  # fmt: skip
    project = parse_project(doc).project
    seed = seed_for_node(project, project.nodes[0], password_hash="$2b$04$x", ssh_keys=())
    interfaces = yaml.safe_load(render_user_data(seed).split("\n", 1)[1])["stylus"]["site"]["network"]["interfaces"]
    assert interfaces == {
        "eth0": {"type": "static", "ipAddress": "127.0.10.11", "mask": "255.255.255.0", "gateway": "127.0.10.1"},
        "eth2": {"type": "static", "ipAddress": "192.168.50.11", "mask": "255.255.255.0"},
        "eth3": {"type": "dhcp"},
    }


def test_seed_keeps_the_isos_config_and_adds_the_nodes_settings(tmp_path: Path) -> None:
    """The automatic installer reads the seed instead of (or over) the ISO's own config.yaml: the seed keeps every
    ISO setting and adds, per node, what the module's table names (and nothing else changes)."""
    import copy

    from wizard.appliance.media import CONFIG_PATH, read_member
    from wizard.appliance.seed import iso_user_data, user_data
    from wizard.lab.artifacts import APPLIANCE_CONFIG, appliance_iso

    config = copy.deepcopy(APPLIANCE_CONFIG)
    config["stylus"]["site"] = {
        "users": [{"name": "kairos", "passwd": "iso-hash"}, {"name": "support", "passwd": "support-hash"}],
        "network": {"interfaces": {"eth1": {"type": "dhcp"}}, "httpProxy": "http://iso-proxy:3128"},
        "caCerts": ["-----BEGIN CERTIFICATE-----"],
    }
    config["install"]["device"] = "/dev/nvme0n1"
    iso = appliance_iso(tmp_path / "a.iso", config=config)
    base = iso_user_data(read_member(iso, CONFIG_PATH))
    assert base == config
    doc = user_data(_seed(base=base))
    # From the ISO, unchanged: the stylus settings, the install options, the stages, the other users, the CA.
    assert doc["stylus"]["managementMode"] == "local" and doc["stylus"]["applianceType"] == "palette"
    assert doc["stylus"]["skipStylusUpgrade"] is True and doc["stylus"]["includeTui"] is True
    assert doc["install"]["grub_options"] == {"extra_cmdline": "selinux=0"}
    assert doc["stages"] == config["stages"]
    site = doc["stylus"]["site"]
    assert site["caCerts"] == ["-----BEGIN CERTIFICATE-----"]
    assert [u["name"] for u in site["users"]] == ["support", "kairos"] and site["users"][0]["passwd"] == "support-hash"
    # From the project, per node: the install disk, host name, the operator's account, the network, NTP.
    assert doc["install"]["device"] == "/dev/sda"
    assert site["hostName"] == "edge-1" and site["users"][1]["passwd"] != "iso-hash"
    assert site["network"]["interfaces"]["eth0"]["ipAddress"] == "10.0.0.11"
    assert site["network"]["interfaces"]["eth1"] == {"type": "dhcp"}, "the ISO's other NICs stay"
    assert site["network"]["httpProxy"] == "http://iso-proxy:3128" and site["network"]["httpsProxy"]
    assert site["ntpServers"] == ["ntp.example.com"]
    # From the wizard: reboot after the install (the ISO said poweroff), the storage-pool mounts added to the ISO's.
    assert doc["install"]["reboot"] is True and doc["install"]["poweroff"] is False
    mounts = doc["install"]["bind_mounts"]
    assert mounts[:4] == config["install"]["bind_mounts"] and "/var/lib/calico" in mounts
    assert len(mounts) == len(set(mounts))
    # "auto" leaves the ISO's own device choice in place.
    assert user_data(_seed(base=base, install_device="auto"))["install"]["device"] == "/dev/nvme0n1"
    # The base is not changed in place, and without one the seed is what it always was.
    assert base == config
    assert "managementMode" not in user_data(_seed())["stylus"]


def test_a_node_configured_later_gets_a_seed_with_only_the_post_install_action(tmp_path: Path) -> None:
    """``configure: localui``/``console`` with the automatic installer: the ISO's own config says ``poweroff``, which
    would leave the node switched off after its install; its seed keeps that config and changes only the post-install
    action (and adds the storage-pool mounts), with no host name, account or network of the node's."""
    import copy

    from wizard.appliance.seed import build_seed_iso, parse_seed, user_data
    from wizard.lab.artifacts import APPLIANCE_CONFIG

    base = copy.deepcopy(APPLIANCE_CONFIG)
    seed = _seed(base=base, identity=False)
    doc = user_data(seed)
    assert doc["install"]["reboot"] is True and doc["install"]["poweroff"] is False
    assert doc["install"]["device"] == "/dev/sda"
    assert doc["stylus"] == base["stylus"] and doc["stages"] == base["stages"]
    assert "site" not in doc["stylus"]
    path = build_seed_iso(seed, tmp_path / "seed.iso")
    read = parse_seed(path.read_bytes())  # a real installer reads it: so does the lab, and so do the checks
    assert read.post_install == "reboot" and not read.users and not read.hostname


def test_one_hash_serves_every_node_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The media step builds all seeds at once: bcrypt (slow on purpose) runs once for them, not once a node."""
    import threading

    from wizard.install.steps import media as boot

    calls: list[str] = []
    real = boot.hash_password

    def counted(password: str) -> str:
        calls.append(password)
        return real(password)

    monkeypatch.setattr(boot, "hash_password", counted)
    shared = boot.SharedHash("Node-pass-1")
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(shared())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["Node-pass-1"] and len(set(got)) == 1 and len(got) == 3
    assert bcrypt.checkpw(b"Node-pass-1", got[0].encode())
