"""The run's kept Local UI sessions: one login per node and password for a whole run, each session used by one
client at a time, a changed password never reusing an old session, everything logged out when the run ends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_localui_client import Harness, make_harness
from wizard.appliance.localui import P_LOGIN, P_LOGOUT
from wizard.appliance.sessions import PooledSession, SessionPool
from wizard.lab import Lab, ManualClock

pytestmark = pytest.mark.lab


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(2, tmp_path / "lab", ManualClock(), socket_timeout=10.0, tick_interval=None) as started:
        yield started


@pytest.fixture
def pooled(lab: Lab, tmp_path: Path) -> Iterator[tuple[Harness, SessionPool]]:
    harness = make_harness(lab, ManualClock(), tmp_path / "config")
    pool = SessionPool()
    harness.connector.pool = pool  # as the install's connector has the run's
    yield harness, pool
    pool.close()


def test_clients_one_after_another_share_one_login(pooled: tuple[Harness, SessionPool], lab: Lab) -> None:
    harness, pool = pooled
    for _ in range(3):
        with harness.connector.open(harness.endpoint(0)) as client:
            assert client.host_info().uid
    assert len(harness.calls("POST", P_LOGIN)) == 1 and not harness.calls("POST", P_LOGOUT)
    assert lab.nodes[0].state.open_sessions == 1
    # Each node and password has its own: the other node logs in by itself.
    with harness.connector.open(harness.endpoint(1)) as client:
        client.host_info()
    assert len(harness.calls("POST", P_LOGIN)) == 2
    pool.close()  # the run ends: nothing is left open on any node
    assert len(harness.calls("POST", P_LOGOUT)) == 2
    assert [n.state.open_sessions for n in lab.nodes] == [0, 0]


def test_clients_at_once_each_log_in_and_only_one_session_is_kept(
    pooled: tuple[Harness, SessionPool], lab: Lab
) -> None:
    harness, _ = pooled
    first = harness.connector.open(harness.endpoint(0))
    second = harness.connector.open(harness.endpoint(0))
    first.host_info()
    second.host_info()  # the first still holds its session: the second makes its own
    assert len(harness.calls("POST", P_LOGIN)) == 2 and lab.nodes[0].state.open_sessions == 2
    first.close()
    second.close()  # one is kept already: this one is logged out
    assert len(harness.calls("POST", P_LOGOUT)) == 1 and lab.nodes[0].state.open_sessions == 1


def test_a_changed_password_never_takes_the_old_session(pooled: tuple[Harness, SessionPool], lab: Lab) -> None:
    harness, _ = pooled
    with harness.connector.open(harness.endpoint(0)) as client:
        client.reset_password("N3w-operator-Pass")
    with harness.connector.open(harness.endpoint(0, "N3w-operator-Pass")) as client:
        client.host_info()
    assert [e.status for e in harness.calls("POST", P_LOGIN)] == [200, 200]  # a login with the new password


def test_a_session_the_node_forgot_costs_one_fresh_login(pooled: tuple[Harness, SessionPool], lab: Lab) -> None:
    harness, _ = pooled
    with harness.connector.open(harness.endpoint(0)) as client:
        client.host_info()
    lab.nodes[0].state.end_sessions()  # the node rebooted
    with harness.connector.open(harness.endpoint(0)) as client:
        assert client.host_info().uid
    assert [e.status for e in harness.calls("POST", P_LOGIN)] == [200, 200]


def test_an_expiring_session_is_not_handed_out() -> None:
    ended: list[str] = []
    pool = SessionPool()
    assert pool.give("k", PooledSession("t1", expires_at=100.0, logout=ended.append))
    assert pool.take("k", now=50.0, margin=60.0) is None and ended == ["t1"]  # 50 s left, 60 s wanted
    assert pool.give("k", PooledSession("t2", expires_at=1000.0, logout=ended.append))
    assert not pool.give("k", PooledSession("t3", expires_at=1000.0, logout=ended.append))  # the slot is taken
    taken = pool.take("k", now=50.0, margin=60.0)
    assert taken is not None and taken.token == "t2" and pool.take("k", now=50.0, margin=60.0) is None


def test_a_logout_that_fails_does_not_stop_the_others() -> None:
    ended: list[str] = []

    def broken(token: str) -> None:
        raise OSError("gone")

    pool = SessionPool()
    pool.give("a", PooledSession("ta", 1e9, broken))
    pool.give("b", PooledSession("tb", 1e9, ended.append))
    pool.close()
    assert ended == ["tb"]


def test_takers_on_many_threads_never_share_a_session() -> None:
    pool = SessionPool()
    pool.give("k", PooledSession("only", 1e9, lambda t: None))
    got: list[str] = []
    lock = threading.Lock()

    def take() -> None:
        found = pool.take("k", now=0.0, margin=0.0)
        if found is not None:
            with lock:
                got.append(found.token)

    threads = [threading.Thread(target=take) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["only"]
