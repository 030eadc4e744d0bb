"""A file's bytes streamed onto a node over SSH into ``dd``, which writes them at their own offset in the part file.

Why a stream and not the SFTP protocol: SFTP frames every 32 KiB in a request the server acknowledges, and with
paramiko every frame costs Python work (measured: paramiko SFTP on four channels reached 0.4–0.6× OpenSSH's
``sftp``). One exec channel whose input goes straight into ``dd`` has no per-request framing and no replies.

Two clients carry the stream, one protocol on the node:

- :class:`OpenSSHStream` — the jump host's OpenSSH ``ssh``, reading the file itself (its standard input is the
  file), so no byte passes through Python: about 1.15–1.2× OpenSSH's own ``sftp`` and ``scp`` to the same sshd
  (the transfer benchmark). Trust comes from the session paramiko already verified: ``ssh`` gets a private
  ``known_hosts`` holding exactly the host key paramiko checked against the pin, with ``StrictHostKeyChecking=yes``,
  and logs in the way paramiko did — the wizard's key file, or the password (or key passphrase) through
  ``SSH_ASKPASS`` with ``SSH_ASKPASS_REQUIRE=force`` (OpenSSH ≥ 8.4), read from a FIFO in a private folder that a
  thread here writes to: the secret is never on a command line, in the environment or on disk. The user's
  ``~/.ssh/config``, agent and default keys are not consulted.
- :class:`ParamikoStream` — the same command on an exec channel of the paramiko session, fed from Python: for
  hosts without a usable OpenSSH client (Windows, a key only in memory, an ``ssh`` that fails to log in).

``dd … seek=N conv=notrunc`` (POSIX) writes each byte at its offset and never truncates, so a resume rewrites the
bytes it overlaps with the same bytes, and a writer from a dropped session that is still draining its input writes
correct bytes at correct offsets too. Every stream writes contiguously from its start, so the part file has no holes
below its size. The node's sha256 over the finished file is the proof either way.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import select
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import paramiko

from wizard.appliance.ssh import SSHCredentials
from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled

log = logging.getLogger(__name__)

#: ``dd``'s block size: resume points are multiples of it (``seek`` counts blocks).
BLOCK = 1024 * 1024
#: The order ``ssh`` offers ciphers in: AES-GCM first (it authenticates while it encrypts), then the rest it knows.
CIPHERS = (
    "aes128-gcm@openssh.com",
    "aes256-gcm@openssh.com",
    "chacha20-poly1305@openssh.com",
    "aes128-ctr",
    "aes192-ctr",
    "aes256-ctr",
)
#: What ``ssh`` prints when the connection itself failed (a drop to resume after, not a reason to give up on it).
_CONNECTION_FAILED = re.compile(
    r"Connection (refused|reset|closed|timed out)|closed by remote host|timed out|Broken pipe|No route to host|"
    r"Network is unreachable|kex_exchange_identification|Timeout, server|client_loop: send disconnect|"
    r"Connection to .* closed",
    re.IGNORECASE,
)
_CIPHER_LINE = re.compile(r"kex: client->server cipher: (\S+)")
_HOST_ALIAS = "palette-wizard-node"


def write_command(part: str, start: int) -> str:
    """The node's command: its input written into ``part`` from byte ``start`` (a multiple of :data:`BLOCK`)."""
    if start % BLOCK:
        raise ValueError(f"a resume point must be a multiple of {BLOCK}: {start}")
    return f"dd {shlex.quote('of=' + part)} bs={BLOCK} seek={start // BLOCK} conv=notrunc"


class StreamDropped(Exception):
    """The connection ended before the node confirmed the whole stream: reconnect and resume."""


class StreamRefused(Exception):
    """The node's ``dd`` failed (no space, no permission): sending the same bytes again will not help."""


class ClientUnusable(Exception):
    """This client cannot carry the stream here (no OpenSSH, a login it refuses): use the built-in one."""


@dataclass
class Sent:
    """Where a stream got to: ``position`` is how far the client read the file (the node may hold less)."""

    position: int
    cipher: str = ""


# -- paramiko ------------------------------------------------------------------------------------------------------


class ParamikoStream:
    """The stream on an exec channel of the (already verified and logged-in) paramiko session."""

    name = "paramiko"

    def __init__(
        self, open_channel: Callable[[], paramiko.Channel], *, io_timeout: float, cipher: str = "", buffer: int = 0
    ) -> None:
        self.open_channel = open_channel
        self.io_timeout = io_timeout
        self.cipher = cipher
        self.buffer = buffer or 256 * 1024

    def start(self) -> None:
        """Nothing to prepare: the channel opens with the stream."""

    def close(self) -> None:
        """Nothing to release: the channel closes with the stream."""

    def send(
        self, fd: int, part: str, start: int, size: int, *, progress: Callable[[int], None], cancel: CancelToken
    ) -> Sent:
        try:
            channel = self.open_channel()
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise StreamDropped(f"no channel for the stream: {exc}") from exc
        pos = start
        try:
            channel.settimeout(self.io_timeout)
            channel.exec_command(write_command(part, start))
            while pos < size and not channel.exit_status_ready():  # dd ending early (no space): stop and say why
                if cancel.cancelled:
                    raise Cancelled(cancel.reason)
                data = os.pread(fd, min(self.buffer, size - pos), pos)
                if not data:
                    break  # shorter than it was: the caller's check names the changed file
                channel.sendall(data)
                pos += len(data)
                progress(pos)
            channel.shutdown_write()
            code = _exit_status(channel, self.io_timeout, cancel)
            if code == 0:
                return Sent(pos, self.cipher)
            why = _stderr(channel)
            if code == -1:
                raise StreamDropped(f"the channel closed without an exit status {why}".strip())
            raise StreamRefused(why or f"dd exited with {code}")
        except (paramiko.SSHException, EOFError, OSError) as exc:
            if channel.exit_status_ready() and channel.recv_exit_status() not in (0, -1):
                raise StreamRefused(_stderr(channel) or str(exc)) from exc
            raise StreamDropped(f"{type(exc).__name__}: {exc}") from exc
        finally:
            with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
                channel.close()


def _exit_status(channel: paramiko.Channel, timeout: float, cancel: CancelToken) -> int:
    """The remote command's exit status once it has written everything; a silent link ends in a drop."""
    deadline = time.monotonic() + timeout
    while not channel.exit_status_ready():
        if cancel.cancelled:
            raise Cancelled(cancel.reason)
        if channel.closed or time.monotonic() > deadline:
            raise StreamDropped("no exit status from the node's dd")
        channel.status_event.wait(0.2)
    return channel.recv_exit_status()


def _stderr(channel: paramiko.Channel) -> str:
    chunks: list[bytes] = []
    with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
        while channel.recv_stderr_ready():
            chunks.append(channel.recv_stderr(65536))
    return b"".join(chunks).decode("utf-8", "replace").strip()[-2000:]


# -- OpenSSH -------------------------------------------------------------------------------------------------------


@cache
def openssh_client() -> tuple[str, tuple[int, int]] | None:
    """The jump host's ``ssh`` and its version, or None when there is none (or it is not OpenSSH)."""
    path = shutil.which("ssh")
    if path is None:
        return None
    try:
        out = subprocess.run([path, "-V"], check=False, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"OpenSSH_(\d+)\.(\d+)", out.stderr + out.stdout)
    return (path, (int(m.group(1)), int(m.group(2)))) if m else None


def known_hosts_line(key: paramiko.PKey) -> str:
    return f"{_HOST_ALIAS} {key.get_name()} {key.get_base64()}\n"


def host_key_algorithms(key: paramiko.PKey) -> str:
    """The signature algorithms that prove ``key``: only they are offered, so the node shows this very key."""
    name = key.get_name()
    return "rsa-sha2-512,rsa-sha2-256,ssh-rsa" if name == "ssh-rsa" else name


@dataclass(frozen=True)
class Login:
    """How ``ssh`` logs in: as the paramiko session did (``method`` is what the node accepted there)."""

    username: str
    method: str  # "publickey" or "password"
    key_path: Path | None = None
    secret: str | None = None  # the password, or the key's passphrase; only ever written into the askpass FIFO

    @classmethod
    def like(cls, credentials: SSHCredentials, method: str) -> Login | str:
        """The login for ``ssh``, or why ``ssh`` cannot log in this way (then the built-in client is used)."""
        if method == "publickey":
            if credentials.key_path is None:
                return "the key is held in memory only (no key file to give ssh)"
            return cls(credentials.username, method, credentials.key_path, credentials.key_passphrase)
        if method == "password" and credentials.password is not None:
            return cls(credentials.username, method, secret=credentials.password)
        return f"the session logged in by {method or 'an unknown method'}"


class OpenSSHStream:
    """The stream through the jump host's ``ssh``, which reads the file itself."""

    name = "openssh"

    def __init__(
        self,
        host: str,
        port: int,
        login: Login,
        host_key: paramiko.PKey,
        *,
        io_timeout: float,
        connect_timeout: float,
        client: tuple[str, tuple[int, int]],
    ) -> None:
        self.host = host
        self.port = port
        self.login = login
        self.host_key = host_key
        self.io_timeout = io_timeout
        self.connect_timeout = connect_timeout
        self.path, self.version = client
        self.cipher = ""
        self._folder: Path | None = None
        self._env: dict[str, str] = {}
        self._askpass: _Askpass | None = None
        self._master: subprocess.Popen[bytes] | None = None
        self._master_lines: _Lines | None = None

    @staticmethod
    def unusable(login: Login | str, client: tuple[str, tuple[int, int]] | None) -> str:
        """Why this client cannot be used here ("" when it can)."""
        if os.name != "posix":
            return "the OpenSSH client is used on Linux and macOS only"
        if client is None:
            return "no OpenSSH client (ssh) on this machine"
        if isinstance(login, str):
            return login
        if login.secret is not None and client[1] < (8, 4):
            return f"OpenSSH {client[1][0]}.{client[1][1]} cannot take a secret from SSH_ASKPASS_REQUIRE (8.4+)"
        return ""

    def argv(self, folder: Path, command: str, *, master: bool = False) -> list[str]:
        """``ssh`` for ``command``: as the ControlMaster (``master``), or as a session on it — which connects by
        itself, logging in the same way, should the master not be up."""
        login = self.login
        alive = max(1, round(self.io_timeout / 4))
        argv = [
            self.path, "-F", "/dev/null", "-T", "-x", "-a", "-v", "-p", str(self.port), "-l", login.username,
            "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={folder / 'known_hosts'}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", f"HostKeyAlias={_HOST_ALIAS}",
            "-o", f"HostKeyAlgorithms={host_key_algorithms(self.host_key)}", "-o", "UpdateHostKeys=no",
            "-o", "CheckHostIP=no", "-o", f"ConnectTimeout={max(1, round(self.connect_timeout))}",
            "-o", f"ServerAliveInterval={alive}", "-o", "ServerAliveCountMax=4",
            "-o", f"Ciphers={','.join(CIPHERS)}", "-o", "Compression=no",
            "-o", f"ControlMaster={'yes' if master else 'no'}", "-o", f"ControlPath={folder / 'control'}",
            "-o", "ControlPersist=no", "-o", "IdentityAgent=none",
            "-o", "IdentitiesOnly=yes", "-o", "ProxyCommand=none", "-o", "PermitLocalCommand=no",
            "-o", "ClearAllForwardings=yes", "-o", "NumberOfPasswordPrompts=1",
            "-o", f"BatchMode={'no' if login.secret is not None else 'yes'}",
        ]  # fmt: skip
        if login.method == "publickey":
            assert login.key_path is not None
            argv += ["-o", "PreferredAuthentications=publickey", "-i", str(login.key_path)]
        else:
            argv += ["-o", "PreferredAuthentications=password,keyboard-interactive", "-o", "PubkeyAuthentication=no"]
        return [*argv, "--", self.host, command]

    def start(self) -> None:
        """Connects ``ssh`` in the background, so its handshake, login and the server's setup of a first session
        (together ~0.2 s, about what the whole SFTP reference spends before its first byte) overlap the paramiko
        session's work. It is a ControlMaster whose own session is a ``cat`` that waits on a pipe held here; the
        stream is a second session on it. Should it not come up, the stream connects by itself."""
        folder = Path(tempfile.mkdtemp(prefix="palette-wizard-ssh-"))  # 0700: known_hosts, control socket, FIFO
        self._folder = folder
        (folder / "known_hosts").write_text(known_hosts_line(self.host_key))
        self._env = {k: v for k, v in os.environ.items() if not k.startswith(("SSH_", "DISPLAY"))}
        if self.login.secret is not None:
            self._askpass = _Askpass(folder, self.login.secret)
            self._env.update(self._askpass.env())
        self._master = subprocess.Popen(
            self.argv(folder, "cat", master=True),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=self._env,
            start_new_session=True,  # no terminal to prompt on, and a Ctrl-C in the terminal is ours to handle
        )
        self._master_lines = _Lines(self._master)

    def close(self) -> None:
        master, self._master = self._master, None
        if master is not None:
            with contextlib.suppress(OSError):
                assert master.stdin is not None
                master.stdin.close()  # the master's own session ends; so does the master, its sessions done
            try:
                master.wait(timeout=2)
            except subprocess.TimeoutExpired:
                master.kill()
                master.wait()
            if self._master_lines is not None:
                self._master_lines.join()
        if self._askpass is not None:
            self._askpass.close()
            self._askpass = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _master_ready(self, cancel: CancelToken) -> None:
        """Waits until the master accepts sessions, has ended, or had its time to connect; a master still not up
        then is stopped, so the stream's own login never runs beside its (the askpass FIFO serves one at a time)."""
        assert self._folder is not None
        deadline = time.monotonic() + self.connect_timeout
        while self._master is not None and self._master.poll() is None:
            if (self._folder / "control").exists() or cancel.cancelled:
                return
            if time.monotonic() > deadline:
                self._master.kill()
                self._master.wait()
                return
            time.sleep(0.002)

    def send(
        self, fd: int, part: str, start: int, size: int, *, progress: Callable[[int], None], cancel: CancelToken
    ) -> Sent:
        if self._folder is None:
            self.start()
        assert self._folder is not None
        self._master_ready(cancel)
        own = os.dup(fd)  # ssh's standard input: shares this descriptor's offset, which shows how far it read
        try:
            os.lseek(own, start, os.SEEK_SET)
            proc = subprocess.Popen(
                self.argv(self._folder, write_command(part, start)),
                stdin=own,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=self._env,
                start_new_session=True,
            )
            errors = _Lines(proc)
            try:
                code = self._wait(proc, own, size, progress, cancel)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                errors.join()
            position = min(size, os.lseek(own, 0, os.SEEK_CUR))
            master = self._master_lines.cipher() if self._master_lines is not None else ""
            self.cipher = errors.cipher() or master
            return self._outcome(code, position, start, errors.text())
        finally:
            os.close(own)

    @staticmethod
    def _wait(
        proc: subprocess.Popen[bytes], fd: int, size: int, progress: Callable[[int], None], cancel: CancelToken
    ) -> int:
        while True:
            try:
                return proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
            if cancel.cancelled:
                proc.terminate()  # the node's dd gets an end of input and keeps what it wrote
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
                raise Cancelled(cancel.reason)
            progress(min(size, os.lseek(fd, 0, os.SEEK_CUR)))

    def _outcome(self, code: int, position: int, start: int, stderr: str) -> Sent:
        ssh_lines = "\n".join(line for line in stderr.splitlines() if not _is_debug(line))
        if code == 0:
            return Sent(position, self.cipher)
        if code != 255:
            raise StreamRefused(ssh_lines[-2000:] or f"dd exited with {code}")
        # 255 is ssh's own failure. Once it read from the file the session was up: whatever ended it is a drop.
        if position > start or _CONNECTION_FAILED.search(ssh_lines):
            raise StreamDropped(ssh_lines[-500:] or "ssh ended the session")
        raise ClientUnusable(ssh_lines[-1000:] or "ssh failed before the stream started")


def _is_debug(line: str) -> bool:
    return line.startswith(("debug1:", "debug2:", "debug3:", "OpenSSH_", "Authenticated to", "Transferred:")) or (
        line.startswith("Bytes per second")
    )


class _Lines:
    """Reads ``ssh``'s stderr in the background (its ``-v`` lines and the node's ``dd`` messages)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._lines: deque[str] = deque(maxlen=400)
        self._cipher = ""
        assert proc.stderr is not None
        self._stream = proc.stderr
        self._thread = threading.Thread(target=self._read, daemon=True, name="ssh-stderr")
        self._thread.start()

    def _read(self) -> None:
        with self._stream:
            for raw in self._stream:
                line = raw.decode("utf-8", "replace").rstrip()
                if not self._cipher and (m := _CIPHER_LINE.search(line)):
                    self._cipher = m.group(1)
                self._lines.append(line)

    def join(self) -> None:
        self._thread.join(timeout=5)

    def text(self) -> str:
        return "\n".join(self._lines)

    def cipher(self) -> str:
        return self._cipher


class _Askpass:
    """``SSH_ASKPASS`` for one ``ssh``: a script that reads a FIFO, and a thread that writes the secret into it
    whenever the script opens it. Both live in the caller's private folder; the secret stays in pipe buffers."""

    # Exactly one line: the shell's read takes a byte at a time, so it never consumes past its line. The secret
    # stays in a shell variable; printf is a builtin, so it is on no command line.
    SCRIPT = '#!/bin/sh\nIFS= read -r secret < "$PALETTE_WIZARD_ASKPASS_FIFO" && printf \'%s\\n\' "$secret"\n'

    def __init__(self, folder: Path, secret: str) -> None:
        self.script = folder / "askpass"
        self.fifo = folder / "secret"
        self.script.write_text(self.SCRIPT)
        self.script.chmod(0o700)
        mkfifo = getattr(os, "mkfifo", None)  # POSIX only; OpenSSHStream.unusable keeps Windows on paramiko
        if mkfifo is None:
            raise ClientUnusable("no FIFOs on this system to hand ssh a secret")
        mkfifo(self.fifo, 0o600)
        self._secret = secret.encode() + b"\n"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._feed, daemon=True, name="ssh-askpass")
        self._thread.start()

    def env(self) -> dict[str, str]:
        return {
            "SSH_ASKPASS": str(self.script),
            "SSH_ASKPASS_REQUIRE": "force",
            "PALETTE_WIZARD_ASKPASS_FIFO": str(self.fifo),
        }

    def _feed(self) -> None:
        while True:
            try:
                fd = os.open(self.fifo, os.O_WRONLY)  # blocks until the script (or close()) opens the other end
            except OSError:
                return
            try:
                if self._stop.is_set():
                    return
                with contextlib.suppress(OSError):  # the reader went away: it gets the secret next time
                    os.write(fd, self._secret)
                self._until_reader_gone(fd)
            finally:
                os.close(fd)

    def _until_reader_gone(self, fd: int) -> None:
        """Holds the write end until the reader has closed its end, so each reader gets one line and the loop
        does not spin offering more to a reader that is still exiting (at most 2 s: then it offers again)."""
        poller = select.poll()
        poller.register(fd, select.POLLERR | select.POLLHUP)
        deadline = time.monotonic() + 2.0
        while not self._stop.is_set() and time.monotonic() < deadline:
            if poller.poll(50):
                return

    def close(self) -> None:
        self._stop.set()
        try:
            reader = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)  # wakes the feeder's open
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            return
        try:
            self._thread.join(timeout=5)
        finally:
            os.close(reader)
