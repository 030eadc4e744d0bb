"""The appliance SSH client against a real OpenSSH sshd: pinning, both login methods, commands, errors."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from tests.integration.sshd_peer import OpenSSHServer, free_port
from wizard.appliance.ssh import (
    Backoff,
    SSHAuthFailed,
    SSHClient,
    SSHCommandTimeout,
    SSHCredentials,
    SSHKeyError,
    SSHUnreachable,
)
from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled
from wizard.core.trust import TrustChanged, TrustKind, TrustRefused, TrustRequest, TrustStore, same_fingerprint

pytestmark = pytest.mark.ssh


@pytest.fixture
def sshd() -> Iterator[OpenSSHServer]:
    with OpenSSHServer() as server:
        yield server


@pytest.fixture
def store(tmp_path: Path) -> TrustStore:
    return TrustStore(tmp_path / "config")


class Asker:
    """Records what the operator is asked and answers as told."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.asked: list[TrustRequest] = []

    def __call__(self, request: TrustRequest) -> bool:
        self.asked.append(request)
        return self.answer


def client(sshd: OpenSSHServer, store: TrustStore, creds: SSHCredentials | None = None, **kw: object) -> SSHClient:
    creds = creds or SSHCredentials(sshd.user, password=sshd.password)
    kw.setdefault("connect_timeout", 5.0)
    return SSHClient(sshd.host, sshd.port, creds, trust=store, **kw)  # type: ignore[arg-type]


def test_first_contact_asks_then_pins_silently(sshd: OpenSSHServer, store: TrustStore) -> None:
    ask = Asker(True)
    with client(sshd, store, confirm=ask) as c:
        assert c.run("echo hi").stdout == "hi\n"
        assert same_fingerprint(c.host_fingerprint, sshd.fingerprint)
    assert len(ask.asked) == 1 and not ask.asked[0].changed
    assert same_fingerprint(ask.asked[0].presented, sshd.fingerprint)
    entry = store.pinned(TrustKind.SSH, sshd.host, sshd.port)
    assert entry is not None and same_fingerprint(entry["fingerprint"], sshd.fingerprint)
    # Next time the pinned key is accepted without asking, even with no one to ask.
    with client(sshd, store, confirm=None) as c:
        assert c.run("true").ok
    assert len(ask.asked) == 1


def test_refused_first_contact_sends_no_credentials(sshd: OpenSSHServer, store: TrustStore) -> None:
    with pytest.raises(TrustRefused):
        client(sshd, store, confirm=Asker(False)).connect()
    with pytest.raises(TrustRefused):
        client(sshd, store, confirm=None).connect()
    assert store.pinned(TrustKind.SSH, sshd.host, sshd.port) is None
    assert f"Accepted password for {sshd.user}" not in sshd.log.read_text()


def test_project_fingerprint_pins_without_asking(sshd: OpenSSHServer, store: TrustStore) -> None:
    ask = Asker(False)
    with client(sshd, store, confirm=ask, expected_fingerprint=sshd.fingerprint) as c:
        assert c.run("true").ok
    assert ask.asked == []
    with pytest.raises(TrustChanged):
        client(sshd, store, confirm=ask, expected_fingerprint="SHA256:" + "A" * 43).connect()


def test_changed_host_key_is_never_silent(sshd: OpenSSHServer, store: TrustStore) -> None:
    with client(sshd, store, confirm=Asker(True)) as c:
        assert c.run("true").ok
    old = sshd.fingerprint
    sshd.restart(new_host_key=True)
    new = sshd.fingerprint
    assert not same_fingerprint(old, new)
    with pytest.raises(TrustChanged) as info:
        client(sshd, store, confirm=None).connect()
    assert old.rstrip("=") in info.value.details and new.rstrip("=") in info.value.details
    assert info.value.remediation
    # Asked about the change and refused: still a change error, the old pin stays.
    ask = Asker(False)
    with pytest.raises(TrustChanged):
        client(sshd, store, confirm=ask).connect()
    assert ask.asked[0].changed
    entry = store.pinned(TrustKind.SSH, sshd.host, sshd.port)
    assert entry is not None and same_fingerprint(entry["fingerprint"], old)


def test_key_auth(sshd: OpenSSHServer, store: TrustStore) -> None:
    by_path = SSHCredentials(sshd.user, key_path=sshd.client_key)
    with client(sshd, store, by_path, expected_fingerprint=sshd.fingerprint) as c:
        assert c.run("id -un").stdout.strip() == sshd.user
    loaded = SSHCredentials(sshd.user, pkey=paramiko.Ed25519Key.from_private_key_file(str(sshd.client_key)))
    with client(sshd, store, loaded) as c:
        assert c.run("id -un").stdout.strip() == sshd.user
    assert "Accepted publickey" in sshd.log.read_text()
    assert "Accepted password" not in sshd.log.read_text()


def test_unreadable_key_is_its_own_error(sshd: OpenSSHServer, store: TrustStore, tmp_path: Path) -> None:
    bad = tmp_path / "not-a-key"
    bad.write_text("garbage\n")
    with pytest.raises(SSHKeyError):
        client(sshd, store, SSHCredentials(sshd.user, key_path=bad)).connect()


def test_password_auth_and_wrong_password_is_not_retried(sshd: OpenSSHServer, store: TrustStore) -> None:
    with client(sshd, store, expected_fingerprint=sshd.fingerprint) as c:
        assert c.run("id -un").stdout.strip() == sshd.user
    wrong = client(sshd, store, SSHCredentials(sshd.user, password="not-the-password"))
    start = time.monotonic()
    with pytest.raises(SSHAuthFailed) as info:
        wrong.connect_retrying(CancelToken(), within=30, backoff=Backoff(0.05, 0.1))
    assert time.monotonic() - start < 10, "a refused login must not be retried"
    assert info.value.remediation
    assert sshd.log.read_text().count("Failed password") == 1


def test_command_exit_codes_and_streams(sshd: OpenSSHServer, store: TrustStore) -> None:
    with client(sshd, store, expected_fingerprint=sshd.fingerprint) as c:
        result = c.run("echo out; echo err >&2; exit 3")
        assert (result.code, result.stdout, result.stderr) == (3, "out\n", "err\n")
        assert not result.ok
        big = c.run("seq 1 20000", timeout=10)  # more than one channel window of output
        assert big.ok and big.stdout.splitlines()[-1] == "20000"
        assert c.run("exit 0").ok


def test_command_timeout_keeps_the_session(sshd: OpenSSHServer, store: TrustStore) -> None:
    with client(sshd, store, expected_fingerprint=sshd.fingerprint) as c:
        start = time.monotonic()
        with pytest.raises(SSHCommandTimeout) as info:
            c.run("sleep 5", timeout=0.5)
        assert time.monotonic() - start < 2.5
        assert "sleep 5" in info.value.message
        assert c.run("echo still").stdout == "still\n"


def test_connection_refused_has_remediation(store: TrustStore) -> None:
    port = free_port()  # nothing listens there
    c = SSHClient("127.0.0.1", port, SSHCredentials("x", password="y"), trust=store, connect_timeout=2)
    with pytest.raises(SSHUnreachable) as info:
        c.connect()
    assert "refused" in info.value.message and "powered on" in info.value.remediation


def test_not_ssh_is_a_handshake_error(store: TrustStore) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        c = SSHClient("127.0.0.1", port, SSHCredentials("x", password="y"), trust=store, connect_timeout=0.5)
        with pytest.raises(SSHUnreachable) as info:
            c.connect()
    assert "handshake" in info.value.title.lower()


def test_reconnect_waits_for_the_node_with_backoff(sshd: OpenSSHServer, store: TrustStore) -> None:
    c = client(sshd, store, expected_fingerprint=sshd.fingerprint)
    sshd.stop()
    with pytest.raises(SSHUnreachable):
        c.connect_retrying(CancelToken(), within=0.3, backoff=Backoff(0.05, 0.1))
    import threading

    threading.Timer(0.3, sshd.start).start()
    c.connect_retrying(CancelToken(), within=10, backoff=Backoff(0.05, 0.2))
    assert c.run("true").ok
    c.close()


def test_cancel_interrupts_reconnect(store: TrustStore) -> None:
    c = SSHClient("127.0.0.1", free_port(), SSHCredentials("x", password="y"), trust=store, connect_timeout=1)
    token = CancelToken()
    import threading

    threading.Timer(0.2, token.cancel).start()
    start = time.monotonic()
    with pytest.raises(Cancelled):
        c.connect_retrying(token, backoff=Backoff(5, 5))
    assert time.monotonic() - start < 2


def test_backoff_grows_and_caps() -> None:
    b = Backoff(1, 8, 2)
    assert [b.next() for _ in range(5)] == [1, 2, 4, 8, 8]
    b.reset()
    assert b.next() == 1
    with pytest.raises(ValueError):
        Backoff(0, 1)
