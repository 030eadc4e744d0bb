"""Windows, macOS and Linux jump hosts: probe arguments per platform and no POSIX-only call on the way.

The builders are pure functions of ``sys.platform``'s value; the probes are run with ``sys.platform`` faked and the
commands captured, so each platform's arguments are proven on any machine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from wizard.core import fsutil
from wizard.core.checks import address
from wizard.core.checks.address import arping_command, ping_answered, ping_command, privileged, probe_address

WINDOWS_REPLY = """
Pinging 10.0.0.11 with 32 bytes of data:
Reply from 10.0.0.11: bytes=32 time<1ms TTL=64

Ping statistics for 10.0.0.11:
    Packets: Sent = 1, Received = 1, Lost = 0 (0% loss),
"""
# What Windows prints (exit code 0!) when a router answers for a host that does not exist.
WINDOWS_UNREACHABLE = """
Pinging 10.0.0.11 with 32 bytes of data:
Reply from 10.0.0.1: Destination host unreachable.

Ping statistics for 10.0.0.11:
    Packets: Sent = 1, Received = 1, Lost = 0 (0% loss),
"""


def test_linux_ping_waits_seconds() -> None:
    assert ping_command("10.0.0.11", 1.0, "linux") == ["ping", "-c", "1", "-n", "-W", "1", "10.0.0.11"]
    assert ping_command("10.0.0.11", 2.5, "linux") == ["ping", "-c", "1", "-n", "-W", "3", "10.0.0.11"]
    assert ping_command("fd00::11", 1.0, "linux") == ["ping", "-c", "1", "-n", "-W", "1", "fd00::11"]


def test_macos_ping_waits_milliseconds_and_uses_ping6_for_ipv6() -> None:
    assert ping_command("10.0.0.11", 1.0, "darwin") == ["ping", "-c", "1", "-n", "-W", "1000", "10.0.0.11"]
    assert ping_command("10.0.0.11", 0.3, "darwin") == ["ping", "-c", "1", "-n", "-W", "300", "10.0.0.11"]
    assert ping_command("fd00::11", 1.0, "darwin") == ["ping6", "-c", "1", "-n", "fd00::11"]
    assert ping_command("10.0.0.11", 1.0, "freebsd14") == ["ping", "-c", "1", "-n", "-W", "1000", "10.0.0.11"]


def test_windows_ping_counts_with_n_and_waits_milliseconds() -> None:
    argv = ping_command("10.0.0.11", 1.0, "win32")
    assert argv == ["ping", "-4", "-n", "1", "-w", "1000", "10.0.0.11"]
    assert argv is not None and "-c" not in argv and "-W" not in argv
    assert ping_command("fd00::11", 1.0, "win32") is None  # no TTL in IPv6 replies: cannot be read reliably


def test_a_windows_reply_needs_a_ttl_not_just_exit_code_zero() -> None:
    assert ping_answered(0, WINDOWS_REPLY, "win32")
    assert not ping_answered(0, WINDOWS_UNREACHABLE, "win32")
    assert not ping_answered(1, "Request timed out.", "win32")
    assert ping_answered(0, "", "linux") and not ping_answered(1, "", "linux")
    assert ping_answered(0, "", "darwin") and not ping_answered(2, "", "darwin")


def test_arping_only_on_linux() -> None:
    assert arping_command("10.0.0.11", 1.0, "linux") == ["arping", "-c", "1", "-w", "1", "10.0.0.11"]
    assert arping_command("10.0.0.11", 1.0, "darwin") is None
    assert arping_command("10.0.0.11", 1.0, "win32") is None
    assert arping_command("fd00::11", 1.0, "linux") is None  # IPv6 has no ARP


class _Commands:
    """Stands in for subprocess.run: records each command and answers like that platform's ping would."""

    def __init__(self, answer: tuple[int, str]) -> None:
        self.answer = answer
        self.argv: list[list[str]] = []

    def __call__(self, argv: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        self.argv.append(list(argv))
        code, out = self.answer
        return subprocess.CompletedProcess(argv, code, out.encode(), b"")


def _fake(
    monkeypatch: pytest.MonkeyPatch, platform: str, answer: tuple[int, str], *, geteuid: bool = True
) -> _Commands:
    commands = _Commands(answer)
    monkeypatch.setattr(address.sys, "platform", platform)
    monkeypatch.setattr(address.subprocess, "run", commands)
    monkeypatch.setattr(address.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(address, "_connect", lambda a, p, t: "silent")
    if not geteuid:
        monkeypatch.delattr(os, "geteuid", raising=False)
    return commands


def test_probe_on_windows_uses_windows_arguments_and_no_posix_call(monkeypatch: pytest.MonkeyPatch) -> None:
    commands = _fake(monkeypatch, "win32", (0, WINDOWS_REPLY), geteuid=False)  # Windows has no os.geteuid
    probe = probe_address("10.0.0.11", ports=(22,), timeout=1.0)
    assert probe.in_use and probe.evidence == ("answers ping",)
    assert commands.argv == [["ping", "-4", "-n", "1", "-w", "1000", "10.0.0.11"]]
    assert any("ARP not possible here (win32" in m for m in probe.method)
    # The router's "unreachable" (exit code 0) is not an answer from the address.
    commands.answer = (0, WINDOWS_UNREACHABLE)
    assert not probe_address("10.0.0.11", ports=(22,), timeout=1.0).in_use


def test_probe_on_macos_waits_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    commands = _fake(monkeypatch, "darwin", (0, "64 bytes from 10.0.0.11: icmp_seq=0 ttl=64 time=0.4 ms"))
    probe = probe_address("10.0.0.11", ports=(22,), timeout=1.0)
    assert probe.in_use
    assert commands.argv == [["ping", "-c", "1", "-n", "-W", "1000", "10.0.0.11"]]
    assert any("ARP not possible here (darwin" in m for m in probe.method)


def test_probe_on_linux_as_root_also_asks_arp(monkeypatch: pytest.MonkeyPatch) -> None:
    commands = _fake(monkeypatch, "linux", (1, ""))
    monkeypatch.setattr(os, "geteuid", lambda: 0, raising=False)
    probe = probe_address("10.0.0.11", ports=(22,), timeout=1.0)
    assert not probe.in_use
    assert commands.argv == [
        ["ping", "-c", "1", "-n", "-W", "1", "10.0.0.11"],
        ["arping", "-c", "1", "-w", "1", "10.0.0.11"],
    ]


def test_a_ping_that_never_ends_is_no_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, "darwin", (0, ""))

    def hangs(argv: list[str], **kw: Any) -> subprocess.CompletedProcess[bytes]:
        raise subprocess.TimeoutExpired(argv, kw.get("timeout", 0))

    monkeypatch.setattr(address.subprocess, "run", hangs)
    probe = probe_address("fd00::11", ports=(22,), timeout=0.5)  # ping6 has no reply timeout of its own
    assert not probe.in_use and any("ping6" in m for m in probe.method)


def test_privileged_without_geteuid_is_false(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "geteuid", raising=False)
    assert privileged() is False


def test_windows_replace_waits_out_a_file_held_open(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    src, dst = tmp_path / "new", tmp_path / "journal.json"
    src.write_text("new")
    dst.write_text("old")
    real = os.replace
    refusals = {"left": 2}

    def held(a: Any, b: Any) -> None:
        if refusals["left"]:
            refusals["left"] -= 1
            raise PermissionError(13, "The process cannot access the file because it is being used")
        real(a, b)

    monkeypatch.setattr(fsutil.os, "replace", held)
    fsutil.replace(src, dst, platform="win32")
    assert dst.read_text() == "new" and refusals["left"] == 0
    # Elsewhere a refusal is real and reported at once.
    src.write_text("again")
    refusals["left"] = 1
    with pytest.raises(PermissionError):
        fsutil.replace(src, dst, platform="linux")


# Calls and modules that exist only on POSIX (or only on Windows); the lab (a Linux-side simulator) may use them.
POSIX_ONLY_ATTRS = {
    ("os", "geteuid"), ("os", "getuid"), ("os", "getgid"), ("os", "getegid"), ("os", "setsid"), ("os", "killpg"),
    ("os", "getpgid"), ("os", "statvfs"), ("os", "fchmod"), ("os", "fork"), ("os", "uname"), ("os", "mkfifo"),
    ("signal", "SIGKILL"), ("signal", "SIGHUP"), ("signal", "SIGQUIT"), ("signal", "SIGUSR1"), ("signal", "SIGALRM"),
}  # fmt: skip
POSIX_ONLY_MODULES = {"fcntl", "pwd", "grp", "termios", "tty", "resource", "posix", "msvcrt", "winreg"}


def test_no_platform_only_call_outside_the_lab() -> None:
    import ast

    root = Path(__file__).resolve().parents[2] / "wizard"
    found = []
    for path in sorted(root.rglob("*.py")):
        if "lab" in path.relative_to(root).parts[:1]:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if (node.value.id, node.attr) in POSIX_ONLY_ATTRS:
                    found.append(f"{path.relative_to(root)}:{node.lineno}: {node.value.id}.{node.attr}")
            elif isinstance(node, ast.Import):
                found += [f"{path.relative_to(root)}:{node.lineno}: import {a.name}" for a in node.names
                          if a.name.split(".")[0] in POSIX_ONLY_MODULES]  # fmt: skip
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in POSIX_ONLY_MODULES:
                found.append(f"{path.relative_to(root)}:{node.lineno}: from {node.module}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("open", "Path"):
                # A node's /proc is read over SSH, inside a command string; opened here it would be this host's.
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and str(first.value).startswith(("/proc", "/sys", "/dev/")):
                    found.append(f"{path.relative_to(root)}:{node.lineno}: {node.func.id}({first.value!r})")
    assert not found, "platform-only calls outside wizard/lab (guard them as address.privileged does):\n" + "\n".join(
        found
    )
