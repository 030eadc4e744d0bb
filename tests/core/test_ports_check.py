"""The port reachability check against real listeners on loopback."""

from __future__ import annotations

import socket

from wizard.core.checks.catalog import CATALOG, CheckSeverity, Outcome
from wizard.core.checks.ports import check_ports


def _closed_port() -> int:
    with socket.socket() as s:  # bound then closed: nothing listens there afterwards
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_open_ports_pass_and_a_closed_one_fails_naming_it() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        open_port = int(listener.getsockname()[1])
        closed = _closed_port()
        ok = check_ports("node.ports", "node-1", "127.0.0.1", [("SSH", open_port)], timeout=1.0)
        assert ok.outcome is Outcome.PASS and f"SSH {open_port} reachable" in ok.message
        bad = check_ports("node.ports", "node-1", "127.0.0.1", [("SSH", open_port), ("Local UI", closed)], timeout=1.0)
    assert bad.outcome is Outcome.FAIL
    assert f"Local UI ({closed}): refused" in bad.message and "SSH" not in bad.message.split("not reachable:")[1]
    assert bad.details == {f"SSH ({open_port})": "open", f"Local UI ({closed})": "refused"}
    assert bad.definition.severity is CheckSeverity.BLOCKER


def test_both_port_checks_are_in_the_catalog() -> None:
    assert {"node.ports", "cluster.ports"} <= set(CATALOG)
