"""The pieces of the SSH stream that need no peer: the node's command, how ssh's endings are read, when OpenSSH is
used, and the askpass FIFO that hands ssh a secret without a command line, an environment variable or a file."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import paramiko
import pytest

from wizard.appliance.ssh import SSHCredentials
from wizard.appliance.sshstream import (
    BLOCK,
    ClientUnusable,
    Login,
    OpenSSHStream,
    StreamDropped,
    StreamRefused,
    _Askpass,
    host_key_algorithms,
    known_hosts_line,
    write_command,
)


def test_write_command_writes_at_the_offset_without_truncating() -> None:
    assert write_command("stage/a b.part", 3 * BLOCK) == f"dd 'of=stage/a b.part' bs={BLOCK} seek=3 conv=notrunc"
    with pytest.raises(ValueError, match="multiple"):
        write_command("x", BLOCK + 1)


def _stream() -> OpenSSHStream:
    key = paramiko.ECDSAKey.generate(bits=256)
    login = Login("kairos", "password", secret="pw")
    return OpenSSHStream("127.0.0.1", 22, login, key, io_timeout=60, connect_timeout=5, client=("/usr/bin/ssh", (9, 2)))


@pytest.mark.parametrize(
    ("code", "position", "stderr", "expected"),
    [
        (0, 10 * BLOCK, "debug1: Exit status 0", None),
        (1, BLOCK, "dd: error writing 'x.part': No space left on device", StreamRefused),
        (255, 2 * BLOCK, "Connection to 127.0.0.1 closed by remote host.", StreamDropped),
        (255, 2 * BLOCK, "", StreamDropped),  # the stream had begun: whatever ended it is a drop
        (255, BLOCK, "ssh: connect to host 127.0.0.1 port 22: Connection refused", StreamDropped),
        (255, BLOCK, "kairos@127.0.0.1: Permission denied (publickey,password).", ClientUnusable),
        (255, BLOCK, "Host key verification failed.", ClientUnusable),
    ],
)
def test_how_an_ssh_ending_is_read(code: int, position: int, stderr: str, expected: type[Exception] | None) -> None:
    stream = _stream()
    if expected is None:
        assert stream._outcome(code, position, BLOCK, stderr).position == position
    else:
        with pytest.raises(expected):
            stream._outcome(code, position, BLOCK, "debug1: Reading configuration data /dev/null\n" + stderr)


def test_openssh_logs_in_only_as_the_session_did(tmp_path: Path) -> None:
    key = tmp_path / "id"
    assert Login.like(SSHCredentials("u", key_path=key), "publickey") == Login("u", "publickey", key)
    assert Login.like(SSHCredentials("u", password="pw"), "password") == Login("u", "password", secret="pw")
    in_memory = SSHCredentials("u", pkey=paramiko.Ed25519Key.from_private_key_file(str(_ed25519(tmp_path))))
    assert "in memory" in str(Login.like(in_memory, "publickey"))
    assert OpenSSHStream.unusable(Login("u", "password", secret="pw"), ("/usr/bin/ssh", (8, 2))).startswith(
        "OpenSSH 8.2 cannot"
    )
    assert OpenSSHStream.unusable(Login("u", "publickey", key), ("/usr/bin/ssh", (8, 2))) == ""
    assert "no OpenSSH client" in OpenSSHStream.unusable(Login("u", "publickey", key), None)


def _ed25519(folder: Path) -> Path:
    path = folder / "ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def test_known_hosts_holds_exactly_the_verified_key() -> None:
    key = paramiko.ECDSAKey.generate(bits=256)
    line = known_hosts_line(key)
    assert line.split() == ["palette-wizard-node", "ecdsa-sha2-nistp256", key.get_base64()]
    assert host_key_algorithms(key) == "ecdsa-sha2-nistp256"


def test_askpass_hands_the_secret_to_each_reader_once(tmp_path: Path) -> None:
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    askpass = _Askpass(folder, "S3cret pass")
    try:
        assert stat.S_ISFIFO(askpass.fifo.stat().st_mode) and stat.S_IMODE(askpass.fifo.stat().st_mode) == 0o600
        assert "S3cret" not in askpass.script.read_text() and "S3cret" not in str(askpass.env())
        env = {**os.environ, **askpass.env()}
        # ssh runs its askpass once per prompt and refuses one that fails: each run must print the secret and exit
        # 0. (Runs come one after another: OpenSSHStream never lets two of its ssh log in at once.)
        for _ in range(3):
            done = subprocess.run([str(askpass.script), "Password:"], env=env, capture_output=True, timeout=10)
            assert (done.returncode, done.stdout) == (0, b"S3cret pass\n")
    finally:
        askpass.close()
    assert not askpass._thread.is_alive()
