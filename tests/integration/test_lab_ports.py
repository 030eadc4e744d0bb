"""The lab's free ports: a port handed out is never handed out again in the same process, so two lab servers
cannot be given one port between finding it free and binding it (a rehearsal's project once named one address
twice: two nodes' SSH servers had been given the same port)."""

from __future__ import annotations

import socket
import threading

import pytest

from wizard.lab.ports import free_port

pytestmark = pytest.mark.lab


def test_ports_handed_out_one_after_another_are_all_different() -> None:
    # Each port is free again when the next is asked for: the kernel alone repeats itself within a few hundred.
    ports = [free_port("127.0.0.1") for _ in range(600)]
    assert len(set(ports)) == len(ports)


def test_ports_handed_out_from_threads_at_once_are_all_different() -> None:
    got: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        mine = [free_port("127.0.0.1", socket.SOCK_DGRAM) for _ in range(100)]
        with lock:
            got.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(got)) == len(got) == 400


def test_a_port_handed_out_is_free_to_bind() -> None:
    port = free_port("127.0.0.1")
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
