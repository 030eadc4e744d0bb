"""Replacing the appliance's default password through the Local UI, against lab nodes, every exchange spec-checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_localui_client import Harness, make_harness
from wizard.appliance.localui import P_LOGIN, P_PASSWORD_RESET, LocalUILoginFailed
from wizard.appliance.password import ReplacePasswordJob
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.progress import Progress
from wizard.lab import Lab, ManualClock

pytestmark = pytest.mark.lab

NEW = "N3w-operator-Pass"  # a test value


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with Lab(1, tmp_path / "lab", ManualClock(), socket_timeout=10.0, tick_interval=None) as started:
        yield started


@pytest.fixture
def harness(lab: Lab, tmp_path: Path) -> Harness:
    return make_harness(lab, ManualClock(), tmp_path / "config")


def _login_ok(harness: Harness, password: str) -> bool:
    with harness.connector.open(harness.endpoint(0, password)) as client:
        try:
            client.login()
        except LocalUILoginFailed:
            return False
        return True


def test_default_password_replaced_and_proven(harness: Harness, lab: Lab) -> None:
    job = ReplacePasswordJob(harness.endpoint(0), NEW, harness.connector)
    assert job.id == "password/node-1" and NEW not in job.fingerprint()
    facts = job.run(Progress().root(), CancelToken())
    assert facts == {"replaced": True, "first_login": True}
    resets = harness.calls("POST", P_PASSWORD_RESET)
    assert len(resets) == 1 and resets[0].status == 204
    # The job itself proved it: one login with the new password and one refused with the default after the reset.
    logins = [e.status for e in harness.calls("POST", P_LOGIN)]
    assert logins == [200, 200, 401]
    assert _login_ok(harness, NEW) and not _login_ok(harness, "kairos")
    # The account is the SSH account too (the lab shares it): the new password is what SSH now checks.
    assert lab.nodes[0].state.check_password("kairos", NEW)


def test_rerun_after_an_unrecorded_change_tries_the_new_password_once(harness: Harness) -> None:
    ReplacePasswordJob(harness.endpoint(0), NEW, harness.connector).run(Progress().root(), CancelToken())
    before = len(harness.calls("POST", P_LOGIN))
    facts = ReplacePasswordJob(harness.endpoint(0), NEW, harness.connector).run(Progress().root(), CancelToken())
    assert facts == {"replaced": True, "earlier": True}
    assert [e.status for e in harness.calls("POST", P_LOGIN)[before:]] == [401, 200]
    assert len(harness.calls("POST", P_PASSWORD_RESET)) == 1


def test_unknown_password_stops_without_guessing(harness: Harness) -> None:
    ReplacePasswordJob(harness.endpoint(0), "someone-else-1", harness.connector).run(Progress().root(), CancelToken())
    before = len(harness.calls("POST", P_LOGIN))
    with pytest.raises(LocalUILoginFailed) as info:
        ReplacePasswordJob(harness.endpoint(0), NEW, harness.connector).run(Progress().root(), CancelToken())
    assert "refused both the default password and the new one" in info.value.message
    assert "console" in info.value.remediation
    assert len(harness.calls("POST", P_LOGIN)) - before == 2  # the default and the new one, nothing more


def test_refuses_the_default_as_the_new_password(harness: Harness) -> None:
    with pytest.raises(WizardError, match="default"):
        ReplacePasswordJob(harness.endpoint(0), "kairos", harness.connector).run(Progress().root(), CancelToken())
    assert not harness.calls("POST", P_PASSWORD_RESET)


def test_a_seeded_node_is_tried_with_the_new_password_first(harness: Harness) -> None:
    ReplacePasswordJob(harness.endpoint(0), NEW, harness.connector).run(Progress().root(), CancelToken())  # the seed
    before = len(harness.calls("POST", P_LOGIN))
    job = ReplacePasswordJob(harness.endpoint(0), NEW, harness.connector, seeded=True)
    assert job.run(Progress().root(), CancelToken()) == {"replaced": True, "seeded": True}
    # One login, the new password's: no refused attempt counted towards the node's lock.
    assert [e.status for e in harness.calls("POST", P_LOGIN)[before:]] == [200]


def test_a_seeded_node_that_kept_the_default_has_it_replaced(harness: Harness) -> None:
    """The node did not take its seed (installed by hand): the new password is refused once, then the default
    path runs as usual."""
    facts = ReplacePasswordJob(harness.endpoint(0), NEW, harness.connector, seeded=True).run(
        Progress().root(), CancelToken()
    )
    assert facts == {"replaced": True, "first_login": True}
    assert [e.status for e in harness.calls("POST", P_LOGIN)][:2] == [401, 200]
    assert _login_ok(harness, NEW) and not _login_ok(harness, "kairos")


def test_a_seeded_node_refusing_both_passwords_stops(harness: Harness) -> None:
    ReplacePasswordJob(harness.endpoint(0), "someone-else-1", harness.connector).run(Progress().root(), CancelToken())
    before = len(harness.calls("POST", P_LOGIN))
    with pytest.raises(LocalUILoginFailed) as info:
        ReplacePasswordJob(harness.endpoint(0), NEW, harness.connector, seeded=True).run(
            Progress().root(), CancelToken()
        )
    assert "refused both the password its seed set and the default" in info.value.message
    assert len(harness.calls("POST", P_LOGIN)) - before == 2
