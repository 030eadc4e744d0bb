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


def test_one_hash_serves_every_node_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The media step builds all seeds at once: bcrypt (slow on purpose) runs once for them, not once a node."""
    import threading

    from wizard.install.steps import boot

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
