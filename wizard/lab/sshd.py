"""The lab node's SSH server: a real SSH endpoint (paramiko's server side) with the node's own host key.

It listens only while the simulated machine has an OS up that runs sshd (the live installer after it has booted,
the installed system after it has booted), so a client sees "connection refused" while the node is off or
rebooting, and its session drops when the machine reboots. Commands are answered by :class:`NodeShell` from the
machine's state: the handful of read-only commands the wizard's install monitor and post-boot checks run, as a
node would print them.

Fault knobs: ``drop_every`` (seconds on the lab clock, None: never) makes the server cut every live session that
often, ``drop_next_commands`` (N) cuts the session of each of the next N commands instead of answering it (a link
that fails mid-command), and :meth:`LabSSHServer.drop_sessions` cuts them once; the listener stays up, so clients
can reconnect.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import shlex
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import paramiko
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)

from wizard.core.trust import ssh_fingerprint as key_blob_fingerprint
from wizard.lab.machine import LIVE_STAGES, Machine
from wizard.lab.ports import free_port

log = logging.getLogger(__name__)


def ssh_fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's ``SHA256:…`` fingerprint of a public key, as ``ssh-keygen -lf`` prints it."""
    return key_blob_fingerprint(key.asbytes())


def load_or_create_host_key(path: Path) -> paramiko.PKey:
    """The node's host key: created once, then kept, so the node's identity survives lab restarts."""
    if path.exists():
        return paramiko.ECDSAKey.from_private_key_file(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = paramiko.ECDSAKey.generate(bits=256)
    key.write_private_key_file(str(path))
    path.chmod(0o600)
    return key


class Accounts(Protocol):
    """The node's OS accounts, shared by sshd and the Local UI (the same ``kairos`` login serves both)."""

    def check_password(self, username: str, password: str) -> bool: ...

    def ssh_keys(self, username: str) -> list[str]: ...


def key_allowed(accounts: Accounts, username: str, key: paramiko.PKey) -> bool:
    blob = key.get_base64()
    return any(line.split()[1:2] == [blob] for line in accounts.ssh_keys(username))


class NodeShell:
    """Answers the monitor's commands from the machine's state, with the exit codes a shell would give."""

    def __init__(self, machine: Machine, hostname: Callable[[], str], files: dict[str, Callable[[], str]]) -> None:
        self.machine = machine
        self.hostname = hostname
        self.files = files  # extra readable files, e.g. /opt/spectrocloud/.upload-auth-token
        # Commands added by lab add-ons, by name (staging adds sha256sum and curl: wizard.lab.sftp).
        self.extra: dict[str, Callable[[list[str]], tuple[int, str, str]]] = {}
        # Add-on commands that read their standard input, given a read(n) that returns b"" at its end (staging
        # adds dd).
        self.streaming: dict[str, Callable[[list[str], Callable[[int], bytes]], tuple[int, str, str]]] = {}

    def streaming_command(self, command: str) -> Callable[[Callable[[int], bytes]], tuple[int, str, str]] | None:
        """The handler for ``command`` when it is one that reads its input, else None."""
        try:
            argv = shlex.split(command)
        except ValueError:
            return None
        if argv == ["cat"]:  # no file: it copies its input until that ends (an ssh connection master waits so)
            return lambda read: (0, b"".join(iter(lambda: read(1 << 16), b"")).decode("utf-8", "replace"), "")
        handler = self.streaming.get(argv[0]) if argv else None
        return None if handler is None else (lambda read: handler(argv[1:], read))

    def run(self, command: str) -> tuple[int, str, str]:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            return 2, "", f"bash: syntax error: {exc}\n"
        while argv and argv[0] == "sudo":  # accounts on the appliance may sudo without a password
            # Only sudo's own options go (those before the command): `sudo -n tail -n 200 …` keeps tail's -n.
            argv = argv[1:]
            while argv and argv[0] in ("-n", "--non-interactive"):
                argv = argv[1:]
        argv, refused = _without_redirections(argv)
        if refused:
            return 2, "", f"bash: {refused}: redirection not supported by the lab\n"
        if not argv:
            return 0, "", ""
        handler = getattr(self, "_cmd_" + argv[0].replace("-", "_"), None) or self.extra.get(argv[0])
        if handler is None:
            return 127, "", f"bash: {argv[0]}: command not found\n"
        code, out, err = handler(argv[1:])
        return int(code), str(out), str(err)

    # Files the monitor reads.
    def _read(self, path: str) -> str | None:
        m = self.machine
        if path == "/proc/sys/kernel/random/boot_id":
            return (m.boot_id or "") + "\n"
        if path == "/proc/cmdline":
            line = m.cmdline()
            return line + "\n" if line is not None else None
        if path == "/etc/hostname":
            return self.hostname() + "\n"
        if path.startswith("/run/cos/"):
            return "" if path.rsplit("/", 1)[1] in m.cos_markers() else None
        if path == "/var/log/stylus-agent.log":
            return "".join(line + "\n" for line in m.service_log()) if m.installed and not self._live() else None
        if path == "/proc/meminfo":
            return f"MemTotal:       {m.memory_mb * 1024} kB\nMemAvailable:   {m.memory_mb * 1024 * 3 // 4} kB\n"
        if path in self.files:
            return self.files[path]()
        return None

    def _live(self) -> bool:
        return self.machine.stage in LIVE_STAGES

    def _cmd_cat(self, args: list[str]) -> tuple[int, str, str]:
        out, code, err = [], 0, []
        for path in args:
            text = self._read(path)
            if text is None:
                code = 1
                err.append(f"cat: {path}: No such file or directory\n")
            else:
                out.append(text)
        return code, "".join(out), "".join(err)

    def _cmd_test(self, args: list[str]) -> tuple[int, str, str]:
        if len(args) == 2 and args[0] in ("-e", "-f"):
            return (0 if self._read(args[1]) is not None else 1), "", ""
        return 2, "", "test: unsupported expression\n"

    def _cmd_ls(self, args: list[str]) -> tuple[int, str, str]:
        paths = [a for a in args if not a.startswith("-")]
        if paths in (["/run/cos"], ["/run/cos/"]):
            return 0, "".join(f"{name}\n" for name in self.machine.cos_markers()), ""
        return 2, "", f"ls: cannot access '{' '.join(paths)}': No such file or directory\n"

    def _cmd_tail(self, args: list[str]) -> tuple[int, str, str]:
        count = 10
        paths = []
        it = iter(args)
        for a in it:
            if a == "-n":
                count = int(next(it, "10"))
            elif a.startswith("-n"):
                count = int(a[2:])
            else:
                paths.append(a)
        if len(paths) != 1:
            return 1, "", "tail: one file expected\n"
        text = self._read(paths[0])
        if text is None:
            return 1, "", f"tail: cannot open '{paths[0]}' for reading: No such file or directory\n"
        lines = text.splitlines(keepends=True)
        return 0, "".join(lines[-count:] if count else []), ""

    def _cmd_journalctl(self, args: list[str]) -> tuple[int, str, str]:
        count: int | None = None
        it = iter(args)
        for a in it:
            if a == "-n":
                count = int(next(it, "10"))
            elif a.startswith("--lines="):
                count = int(a.split("=", 1)[1])
        lines = self.machine.journal(count)
        return 0, "".join(line + "\n" for line in lines), ""

    def _cmd_kairos_agent(self, args: list[str]) -> tuple[int, str, str]:
        if args[:3] == ["state", "get", "boot"]:
            return 0, self.machine.kairos_boot_state() + "\n", ""
        return 1, "", f"kairos-agent: unsupported arguments {' '.join(args)}\n"

    def _cmd_hostname(self, args: list[str]) -> tuple[int, str, str]:
        return 0, self.hostname() + "\n", ""

    def _cmd_nproc(self, args: list[str]) -> tuple[int, str, str]:
        return 0, f"{self.machine.cpus}\n", ""

    def _cmd_lsblk(self, args: list[str]) -> tuple[int, str, str]:
        if "-J" in args or "--json" in args:
            # lsblk -J -b -o NAME,SIZE,TYPE,FSTYPE,LABEL,MOUNTPOINT: disks with their partitions as children
            return 0, json.dumps({"blockdevices": self.machine.block_devices()}, indent=3) + "\n", ""
        # lsblk -b -d -n -o NAME,SIZE,TYPE
        return 0, "".join(f"{name} {size} disk\n" for name, size in self.machine.disks), ""

    def _cmd_date(self, args: list[str]) -> tuple[int, str, str]:
        """GNU date for the formats a script uses: ``+%s``, ``+%s.%N``, ``-u``, ``-Iseconds`` and the default."""
        now = self.machine.local_time()
        when = dt.datetime.fromtimestamp(now, dt.UTC)
        fmt = next((a[1:] for a in args if a.startswith("+")), None)
        if fmt is not None:
            nanos = f"{round((now % 1) * 1e9):09d}"
            out = fmt.replace("%s", str(int(now))).replace("%N", nanos)
            return 0, when.strftime(out) + "\n", ""
        if any(a.startswith(("-I", "--iso-8601")) for a in args):
            return 0, when.strftime("%Y-%m-%dT%H:%M:%S+00:00") + "\n", ""
        return 0, when.strftime("%a %b %d %H:%M:%S UTC %Y") + "\n", ""

    def _cmd_timedatectl(self, args: list[str]) -> tuple[int, str, str]:
        """systemd-timesyncd's view, which the appliance OS uses for time sync (``show``, ``show-timesync``)."""
        m = self.machine
        synced = m.ntp_enabled and bool(m.ntp_servers)
        now = dt.datetime.fromtimestamp(m.local_time(), dt.UTC).strftime("%a %Y-%m-%d %H:%M:%S UTC")
        verb = next((a for a in args if not a.startswith("-")), "status")
        yes = {True: "yes", False: "no"}
        if verb == "show":
            lines = [
                "Timezone=Etc/UTC",
                "LocalRTC=no",
                "CanNTP=yes",
                f"NTP={yes[m.ntp_enabled]}",
                f"NTPSynchronized={yes[synced]}",
                f"TimeUSec={now}",
                f"RTCTimeUSec={now}",
            ]
        elif verb == "show-timesync":
            lines = [
                f"SystemNTPServers={' '.join(m.ntp_servers)}",
                "FallbackNTPServers=",
                f"ServerName={m.ntp_servers[0] if synced else ''}",
                "PollIntervalUSec=32s" if synced else "PollIntervalUSec=0",
            ]
        elif verb == "status":
            lines = [
                f"               Local time: {now}",
                f"           Universal time: {now}",
                "                Time zone: Etc/UTC (UTC, +0000)",
                f"System clock synchronized: {yes[synced]}",
                f"              NTP service: {'active' if m.ntp_enabled else 'inactive'}",
                "          RTC in local TZ: no",
            ]
        else:
            return 1, "", f"Unknown command verb {verb}.\n"
        return 0, "".join(line + "\n" for line in lines), ""

    def _cmd_true(self, args: list[str]) -> tuple[int, str, str]:
        return 0, "", ""


_REDIRECT = re.compile(r"^(?:[0-2]?[<>]|&>)(?P<target>.*)$")


def _without_redirections(argv: list[str]) -> tuple[list[str], str]:
    """``argv`` without the redirections a command line may carry to or from /dev/null (``</dev/null``,
    ``2>/dev/null``, ``> /dev/null``, ``2>&1``): the lab's commands read no input and their output is captured
    whole. Any other redirection is returned as refused."""
    out: list[str] = []
    it = iter(argv)
    for token in it:
        match = _REDIRECT.match(token)
        if match is None:
            out.append(token)
            continue
        target = match.group("target") or next(it, "")
        if target not in ("/dev/null", "&1", "&2"):
            return argv, token
    return out, ""


class _ServerInterface(paramiko.ServerInterface):
    def __init__(self, accounts: Accounts, on_exec: Callable[[paramiko.Channel, str], None]) -> None:
        self.accounts = accounts
        self.on_exec = on_exec

    def get_allowed_auths(self, username: str) -> str:
        return "publickey,password"

    def check_auth_password(self, username: str, password: str) -> int:
        ok = self.accounts.check_password(username, password)
        return AUTH_SUCCESSFUL if ok else AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return AUTH_SUCCESSFUL if key_allowed(self.accounts, username, key) else AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return OPEN_SUCCEEDED if kind == "session" else OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        text = command.decode("utf-8", "replace")
        threading.Thread(target=self.on_exec, args=(channel, text), daemon=True, name="lab-ssh-exec").start()
        return True


class LabSSHServer:
    """One node's SSH endpoint on loopback; listens only while the machine's OS runs sshd."""

    POLL = 0.05

    def __init__(
        self,
        machine: Machine,
        host_key: paramiko.PKey,
        accounts: Accounts,
        shell: NodeShell,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        offline: Callable[[], bool] | None = None,
        live_host_key: paramiko.PKey | None = None,
    ) -> None:
        self.machine = machine
        self.offline = offline  # extra downtime the machine model does not know of (cluster deployment reboots)
        self.host_key = host_key
        #: The live installer's own host key, when it differs from the installed system's (as on real nodes: the
        #: ISO's live system generates its keys at boot). None: both present ``host_key``.
        self.live_host_key = live_host_key
        # A seed the machine boots with sets the accounts this server checks (the node's OS accounts).
        apply_seed = getattr(accounts, "apply_seed", None)
        if callable(apply_seed) and apply_seed not in machine.seed_listeners:
            machine.seed_listeners.append(apply_seed)
        self.accounts = accounts
        self.shell = shell
        self.sftp_root: Path | None = None  # set by wizard.lab.sftp.attach_staging: the SFTP subsystem's root
        self.host = host
        self.port = port or free_port(host)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._transports: list[paramiko.Transport] = []
        self._lock = threading.Lock()
        self._drop_every: float | None = None
        self.drops = 0  # how many times live sessions were cut by the knob or drop_sessions()
        self._last_drop: float | None = None
        self.drop_next_commands = 0  # fault knob: the next N commands cut their session instead of answering

    @property
    def fingerprint(self) -> str:
        """The installed system's host key fingerprint."""
        return ssh_fingerprint(self.host_key)

    @property
    def live_fingerprint(self) -> str:
        """The live installer's host key fingerprint."""
        return ssh_fingerprint(self.live_host_key or self.host_key)

    def presented_key(self) -> paramiko.PKey:
        """The key the system running now presents: the live installer's while it runs, else the installed one's."""
        if self.live_host_key is not None and self.machine.kairos_boot_state() == "livecd_boot":
            return self.live_host_key
        return self.host_key

    def start(self) -> LabSSHServer:
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"lab-sshd-{self.machine.name}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._drop_sessions()

    def __enter__(self) -> LabSSHServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _listen(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(32)
        sock.settimeout(self.POLL)
        return sock

    def _drop_sessions(self) -> None:
        with self._lock:
            transports, self._transports = self._transports, []
        for t in transports:
            with contextlib.suppress(Exception):
                t.close()

    def drop_sessions(self) -> int:
        """Cut every live session now (the network dropped them); returns how many were cut."""
        with self._lock:
            live = sum(1 for t in self._transports if t.is_active())
            self.drops += 1
        self._drop_sessions()
        return live

    @property
    def drop_every(self) -> float | None:
        """Fault knob: cut live sessions every N seconds of the lab clock, counted from when it is set."""
        return self._drop_every

    @drop_every.setter
    def drop_every(self, seconds: float | None) -> None:
        with self._lock:
            self._drop_every = seconds if seconds is not None and seconds > 0 else None
            self._last_drop = self.machine.clock()

    def _maybe_drop(self) -> None:
        with self._lock:
            every, last = self._drop_every, self._last_drop
            now = self.machine.clock()
            due = every is not None and last is not None and now - last >= every
            if due:
                self._last_drop = now
        if due:
            self.drop_sessions()

    def _serve(self) -> None:
        listener: socket.socket | None = None
        boot_id: str | None = None
        try:
            while not self._stop.is_set():
                self._maybe_drop()
                up = self.machine.ssh_up and not (self.offline is not None and self.offline())
                current_boot = self.machine.boot_id
                if boot_id is not None and current_boot != boot_id:
                    self._drop_sessions()  # the machine rebooted or powered off: its sessions are gone
                # Followed while the node is unreachable too: a reboot during a network outage ends its sessions.
                boot_id = current_boot
                if not up:
                    if listener is not None:
                        listener.close()
                        listener = None
                    self._stop.wait(self.POLL)
                    continue
                if listener is None:
                    try:
                        listener = self._listen()
                    except OSError as exc:
                        log.warning("lab sshd %s cannot bind %s:%d: %s", self.machine.name, self.host, self.port, exc)
                        self._stop.wait(0.5)
                        continue
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    continue
                if self.offline is not None and self.offline():  # cut off since the last look: nothing gets through
                    conn.close()
                    continue
                conn.settimeout(30)
                threading.Thread(target=self._session, args=(conn,), daemon=True, name="lab-ssh-session").start()
        finally:
            if listener is not None:
                listener.close()

    def _session(self, conn: socket.socket) -> None:
        # OpenSSH's sshd writes a reply's packets (output, exit status, EOF, close) together; paramiko writes each on
        # its own, and Nagle's algorithm would hold the later ones for the client's delayed ACK (40 ms a command).
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(conn)
        transport.add_server_key(self.presented_key())
        if self.sftp_root is not None:
            from wizard.lab.sftp import LabSFTPServer  # only nodes with staging attached load the SFTP add-on

            transport.set_subsystem_handler("sftp", paramiko.SFTPServer, LabSFTPServer, root=self.sftp_root)
        with self._lock:
            self._transports.append(transport)
        try:
            transport.start_server(server=_ServerInterface(self.accounts, self._exec))
        except (paramiko.SSHException, EOFError, OSError) as exc:
            log.debug("lab sshd %s: handshake failed: %s", self.machine.name, exc)
            transport.close()

    def _exec(self, channel: paramiko.Channel, command: str) -> None:
        with self._lock:
            drop = self.drop_next_commands > 0
            if drop:
                self.drop_next_commands -= 1
        if drop:
            # Cut once the client has seen the command start (paramiko replies to the exec request only after this
            # thread is started), as when the link fails mid-command.
            time.sleep(0.05)
            log.debug("lab sshd %s: cutting the session instead of running %r", self.machine.name, command)
            self.drop_sessions()
            return
        try:
            streaming = self.shell.streaming_command(command)
            code, out, err = streaming(channel.recv) if streaming is not None else self.shell.run(command)
            if out:
                channel.sendall(out.encode())
            if err:
                channel.sendall_stderr(err.encode())
            channel.send_exit_status(code)
            channel.shutdown_write()
            # paramiko sends the exec request's success reply only after check_channel_exec_request returns; a
            # close sent before it makes the client report "Channel closed". Give the client the chance to close
            # first (OpenSSH does once it has the exit status and EOF), then close ourselves.
            deadline = time.monotonic() + 0.3
            while not channel.closed and time.monotonic() < deadline:
                time.sleep(0.01)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            log.debug("lab sshd %s: exec %r ended: %s", self.machine.name, command, exc)
        finally:
            with contextlib.suppress(Exception):
                channel.close()
