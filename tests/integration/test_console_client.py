"""The system console client and its jobs against the lab's console over real TLS: first login and password change,
activation (a wrong key, then the right one; deferring), token expiry, Palette not up yet, and the registry sync;
plus how pack bundles map to registry entries and the run report of a failed run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wizard.appliance.console import (
    DEFAULT_PASSWORD,
    ActivationKeyRejected,
    ConsoleConnector,
    ConsoleEndpoint,
    ConsoleError,
    ConsoleLoginFailed,
    ConsoleUnreachable,
)
from wizard.appliance.console_jobs import ActivateJob, ConsoleSetupJob, RegistrySyncJob, wait_for_console
from wizard.appliance.packs import RegistryEntry, find_pack, pack_identity
from wizard.appliance.sessions import SessionPool
from wizard.core.cancel import CancelToken
from wizard.core.http import DEFAULT_RETRY
from wizard.core.progress import Progress
from wizard.core.report import summarize, write_run_report
from wizard.core.trust import TrustChanged, TrustStore
from wizard.lab.certs import NodeCertificate, create_node_certificate
from wizard.lab.clock import ManualClock
from wizard.lab.console import TOKEN_TTL, TRIAL_DAYS, SystemConsoleServer, SystemConsoleState, iso8601
from wizard.lab.registry import pack_identity as lab_pack_identity
from wizard.lab.variants import Variant
from wizard.lab.variants import point as variation

pytestmark = pytest.mark.lab

FAST_RETRY = DEFAULT_RETRY.scaled(0.02)
EMAIL = "ops@example.com"
NEW_PASSWORD = "Console-Pass-1"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> NodeCertificate:
    return create_node_certificate(tmp_path_factory.mktemp("console-tls"), ip="127.0.0.1", hostname="palette.lab")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def state(clock: ManualClock) -> SystemConsoleState:
    return SystemConsoleState(clock, sync_duration=60.0, pack_count=3)


@pytest.fixture
def server(state: SystemConsoleState, certificate: NodeCertificate) -> Iterator[SystemConsoleServer]:
    with SystemConsoleServer(state, certificate, socket_timeout=5.0) as started:
        yield started


@pytest.fixture
def where(server: SystemConsoleServer, certificate: NodeCertificate) -> ConsoleEndpoint:
    return ConsoleEndpoint(server.host, server.port, certificate.fingerprint)


@pytest.fixture
def connector(tmp_path: Path, clock: ManualClock) -> ConsoleConnector:
    return ConsoleConnector(TrustStore(tmp_path / "trust"), None, timeout=5.0, retry=FAST_RETRY, clock=clock)


def _run(job: ConsoleSetupJob | ActivateJob | RegistrySyncJob) -> dict[str, object]:
    return dict(job.run(Progress().root(), CancelToken()) or {})


def _set_up(where: ConsoleEndpoint, connector: ConsoleConnector) -> dict[str, object]:
    return _run(ConsoleSetupJob(where, connector, EMAIL, NEW_PASSWORD, poll=0.01, available_timeout=5.0))


def test_first_login_changes_the_default_password(
    where: ConsoleEndpoint, connector: ConsoleConnector, state: SystemConsoleState
) -> None:
    assert state.password_reset_required
    facts = _set_up(where, connector)
    assert facts["password_changed"] is True
    assert facts["version"] == state.version
    assert not state.password_reset_required
    assert state.admin_email == EMAIL
    with connector.open(where, DEFAULT_PASSWORD) as client, pytest.raises(ConsoleLoginFailed):
        client.login()
    # Run again (a resumed run that lost the record): admin/admin is refused, the new password works, nothing changes.
    again = _set_up(where, connector)
    assert again["password_changed"] is False


def test_weak_new_password_is_a_clear_error(where: ConsoleEndpoint, connector: ConsoleConnector) -> None:
    job = ConsoleSetupJob(where, connector, EMAIL, "short", poll=0.01, available_timeout=5.0)
    with pytest.raises(ConsoleError) as info:
        _run(job)
    assert info.value.title == "New console password refused"
    assert "at least" in info.value.message


def test_wrong_activation_key_then_the_right_one(
    where: ConsoleEndpoint, connector: ConsoleConnector, state: SystemConsoleState, clock: ManualClock
) -> None:
    _set_up(where, connector)
    foreign = SystemConsoleState(clock).issue_activation_key()  # issued for another install
    with pytest.raises(ActivationKeyRejected) as info:
        _run(ActivateJob(where, connector, NEW_PASSWORD, key=foreign.key))
    assert "another system" in info.value.message
    assert "Product Setup ID" in info.value.remediation
    assert state.activation_state() == "Pending"
    with pytest.raises(ActivationKeyRejected):
        _run(ActivateJob(where, connector, NEW_PASSWORD, key="not-a-key"))
    right = state.issue_activation_key()
    facts = _run(ActivateJob(where, connector, NEW_PASSWORD, key=right.key))
    assert facts["activated"] is True and facts["state"] == "Active"
    assert facts["product_setup_id"] == state.system_uid
    assert state.activation_state() == "Active"
    # Idempotent: an activated install is left alone (the single-use key would be refused now).
    assert _run(ActivateJob(where, connector, NEW_PASSWORD, key=right.key))["activated"] is True


def test_defer_records_when_the_trial_ends(
    where: ConsoleEndpoint, connector: ConsoleConnector, state: SystemConsoleState
) -> None:
    _set_up(where, connector)
    facts = _run(ActivateJob(where, connector, NEW_PASSWORD, key=None))
    assert facts["deferred"] is True
    assert facts["state"] == "Pending"
    assert facts["trial_ends"] == iso8601(state.installed_at + TRIAL_DAYS * 86400)
    assert facts["product_setup_id"] == state.system_uid


def test_token_expiry_logs_in_again(
    where: ConsoleEndpoint, connector: ConsoleConnector, state: SystemConsoleState, clock: ManualClock
) -> None:
    _set_up(where, connector)
    with connector.open(where, NEW_PASSWORD) as client:
        client.login()
        first = client._token
        # Our clock says the 15 minutes are nearly up: a fresh login before the request.
        clock.advance(TOKEN_TTL - 30)
        assert client.activation().product_setup_id == state.system_uid
        second = client._token
        assert second != first
        # The server forgot the session (Palette restarted) while our clock says it is fresh: 401, then a login.
        with state.lock:
            state._sessions.clear()
        assert client.version() == state.version
        assert client._token not in (first, second)


def test_the_jobs_of_a_run_share_one_console_session(
    where: ConsoleEndpoint, connector: ConsoleConnector, state: SystemConsoleState, clock: ManualClock
) -> None:
    """Issue 20, finding 9: the system API has no logout, so every login left a session behind for 15 minutes (one per
    console job). With the run's pool the jobs after the first login share the operator's session."""
    pool = SessionPool()
    connector.pool = pool  # as the install's connector has the run's
    _set_up(where, connector)
    assert state.logins == 2  # admin/admin, then the proof that the new password is the one that works
    _run(ActivateJob(where, connector, NEW_PASSWORD, key=None))
    _run(ActivateJob(where, connector, NEW_PASSWORD, key=state.issue_activation_key().key))
    with connector.open(where, NEW_PASSWORD) as client:
        assert client.version() == state.version
    assert state.logins == 2
    # A kept session near its end is not handed out: the next client logs in (and keeps its own).
    clock.advance(TOKEN_TTL - 30)
    with connector.open(where, NEW_PASSWORD) as client:
        client.activation()
    assert state.logins == 3
    # The console forgot every session (Palette restarted): one 401, one login, the job goes on.
    with state.lock:
        state._sessions.clear()
    with connector.open(where, NEW_PASSWORD) as client:
        assert client.activation().active
    assert state.logins == 4
    # A session made with another password is never reused for this one.
    with connector.open(where, DEFAULT_PASSWORD) as client, pytest.raises(ConsoleLoginFailed):
        client.activation()
    pool.close()  # the run ends: nothing to send (no logout), nothing raised


def test_palette_not_up_yet_is_waited_out(
    state: SystemConsoleState, where: ConsoleEndpoint, connector: ConsoleConnector
) -> None:
    answers = iter([False, False, False])
    state.available = lambda: next(answers, True)  # 503 for the first three requests
    client = wait_for_console(
        connector, where, DEFAULT_PASSWORD, Progress().root(), CancelToken(), poll=0.01, timeout=30.0
    )
    with client:
        assert client.reset_still_required()


def test_palette_never_up_is_a_timeout(
    state: SystemConsoleState, where: ConsoleEndpoint, tmp_path: Path, clock: ManualClock
) -> None:
    state.available = lambda: False
    ticking = ConsoleConnector(
        TrustStore(tmp_path / "t2"), None, timeout=5.0, retry=FAST_RETRY, clock=lambda: clock.advance(1.0)
    )
    with pytest.raises(ConsoleUnreachable) as info:
        wait_for_console(ticking, where, DEFAULT_PASSWORD, Progress().root(), CancelToken(), poll=0.0, timeout=5.0)
    assert info.value.title == "Palette did not come up"


def test_changed_certificate_is_refused(server: SystemConsoleServer, connector: ConsoleConnector) -> None:
    wrong = ConsoleEndpoint(server.host, server.port, "ab" * 32)
    with pytest.raises(TrustChanged):
        connector.open(wrong, DEFAULT_PASSWORD)


def test_registry_sync_is_triggered_and_waited_for(certificate: NodeCertificate, tmp_path: Path) -> None:
    # Real time here: the job polls with real sleeps while the lab's sync runs for one second.
    state = SystemConsoleState(time.time, sync_duration=1.0, pack_count=2)
    state.import_pack("ubuntu", "22.04.5", 1024, "00" * 32)
    with SystemConsoleServer(state, certificate, socket_timeout=5.0) as server:
        where = ConsoleEndpoint(server.host, server.port, certificate.fingerprint)
        conn = ConsoleConnector(TrustStore(tmp_path / "trust"), None, timeout=5.0, retry=FAST_RETRY)
        _set_up(where, conn)
        facts = _run(RegistrySyncJob(where, conn, NEW_PASSWORD, poll=0.05, timeout=60.0))
        assert facts["synced_packs"] == 3  # the content's two packs and the uploaded one
        assert facts["registry"] == "Zot"
        with conn.open(where, NEW_PASSWORD) as client:
            uid = client.registries()[0].uid
            assert client.sync_status(uid).status == "Completed"
        # A failing sync is an error that says why.
        state.sync_fault = "registry disk full"
        with pytest.raises(ConsoleError) as info:
            _run(RegistrySyncJob(where, conn, NEW_PASSWORD, poll=0.05, timeout=60.0))
        assert info.value.title == "Registry sync failed"
        assert "registry disk full" in info.value.message


def test_registry_sync_timeout(where: ConsoleEndpoint, connector: ConsoleConnector, clock: ManualClock) -> None:
    _set_up(where, connector)
    # Every reading of the clock moves it a second: the 5 s budget runs out long before the lab's 60 s sync ends.
    connector.clock = lambda: clock.advance(1.0)
    job = RegistrySyncJob(where, connector, NEW_PASSWORD, poll=0.0, timeout=5.0)
    with pytest.raises(ConsoleError) as info:
        _run(job)
    assert info.value.title == "Registry sync not finished"


@pytest.mark.parametrize(
    ("file_name", "identity"),
    [
        ("ubuntu-22.04.5.zst", ("ubuntu", "22.04.5")),
        ("pxk-e-1.30.6.zst", ("pxk-e", "1.30.6")),
        ("cni-calico_v3.28.2.zst", ("cni-calico", "3.28.2")),
        ("spectro-mgmt.zst", ("spectro-mgmt", "")),
    ],
)
def test_pack_bundle_names_map_to_registry_entries(file_name: str, identity: tuple[str, str]) -> None:
    # The client and the lab read a pack's name and version from the file name the same way.
    assert pack_identity(Path(file_name)) == identity == lab_pack_identity(file_name)
    entries = [RegistryEntry("other", "1.0", "pack"), RegistryEntry(identity[0], identity[1], "pack")]
    assert find_pack(entries, Path(file_name)) == entries[1]
    assert find_pack(entries[:1], Path(file_name)) is None
    assert lab_pack_identity("core-content.tar.zst") is None  # the content bundle is not a pack


def test_run_report_of_a_failed_run(tmp_path: Path) -> None:
    journal = {
        "status": "failed",
        "jobs": {
            "cluster/create": {"status": "done", "runs": 1, "started": 10.0, "finished": 130.0,
                               "result": {"kubeconfig": "/s/kubeconfig", "vip": "10.0.0.5"}},
            "console/admin": {"status": "failed", "runs": 2, "started": 140.0, "finished": 150.0,
                              "error": {"title": "Palette did not come up", "message": "<10.0.0.5> silent"}},
        },
    }  # fmt: skip
    summary = summarize(
        journal, project="p", vip="10.0.0.5", journal_path=tmp_path / "j.json", log_dir=tmp_path / "logs",
        step_order=("cluster", "console"),
    )  # fmt: skip
    assert summary.headline == "The install stopped with an error; run again to resume"
    assert summary.palette_url == "https://10.0.0.5" and summary.kubeconfig == "/s/kubeconfig"
    assert [j.id for j in summary.jobs] == ["cluster/create", "console/admin"]
    html_path, text_path = write_run_report(summary, tmp_path / "session")
    page = html_path.read_text()
    assert "&lt;10.0.0.5&gt; silent" in page and "<10.0.0.5>" not in page  # escaped
    assert "2m 00s" in page  # how long the cluster took
    text = text_path.read_text()
    assert "Failed:      console/admin: Palette did not come up" in text
    assert str(tmp_path / "logs" / "wizard.log") in text


def test_run_report_says_which_default_credentials_were_replaced(tmp_path: Path) -> None:
    def done(result: dict[str, object]) -> dict[str, object]:
        return {"status": "done", "runs": 1, "started": 1.0, "finished": 2.0, "result": result}

    journal = {
        "status": "done",
        "jobs": {
            "password/node-1": done({"replaced": True, "first_login": True}),
            "password/node-2": done({"replaced": True, "earlier": True}),
            "console/admin": done({"url": "https://10.0.0.5", "password_changed": True}),
        },
    }
    summary = summarize(journal, project="p", vip="10.0.0.5", journal_path=tmp_path / "j", log_dir=tmp_path)
    assert summary.credentials == (
        "the default node password was replaced on node-1, node-2; the new one is the secret named by "
        "appliance.password, in the OS keyring",
        "the console's default admin password was changed; the new one is the secret named by console.password, "
        "in the OS keyring",
    )
    in_vault = summarize(
        journal, project="p", vip="v", journal_path=tmp_path / "j", log_dir=tmp_path, kept="in the vault /j.vault"
    )
    assert all(line.endswith(", in the vault /j.vault") for line in in_vault.credentials)
    html_path, text_path = write_run_report(summary, tmp_path / "session")
    assert "replaced on node-1, node-2" in html_path.read_text()
    assert "Credentials: the console's default admin password was changed" in text_path.read_text()
    untouched = summarize({"jobs": {}}, project="p", vip="v", journal_path=tmp_path / "j", log_dir=tmp_path)
    assert (
        untouched.credentials == () and "not replaced yet" in write_run_report(untouched, tmp_path / "u")[0].read_text()
    )


# -- Words and reads the public material leaves open (issue 20, findings 1 and 3) -----------------------------------

SYNC_WORDS = [a.value for a in variation("console.sync-words").alternatives]


def _sync_job(where: ConsoleEndpoint, connector: ConsoleConnector, **kw: object) -> RegistrySyncJob:
    return RegistrySyncJob(where, connector, NEW_PASSWORD, poll=0.0, timeout=600.0, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("words", SYNC_WORDS, ids=[w[0] for w in SYNC_WORDS])
def test_registry_sync_is_done_in_every_spelling(
    where: ConsoleEndpoint, connector: ConsoleConnector, state: SystemConsoleState, clock: ManualClock, words: object
) -> None:
    """Success and Completed in any case are done (the console reported Success; the client waited an hour)."""
    state.variant = Variant(0, {"console.sync-words": words})
    _set_up(where, connector)
    connector.clock = lambda: clock.advance(1.0)  # every poll moves the lab's clock on: its 60 s sync ends
    facts = _run(_sync_job(where, connector))
    assert facts["sync_supported"] is True and facts["status"] == words[0]  # type: ignore[index]


@pytest.mark.parametrize("failed", ["Failed", "Error", "error", "FAILED"])
def test_a_failed_sync_in_any_spelling_is_an_error(
    where: ConsoleEndpoint, connector: ConsoleConnector, state: SystemConsoleState, clock: ManualClock, failed: str
) -> None:
    state.variant = Variant(0, {"console.sync-words": ("Success", "Running", failed, "")})
    state.sync_fault = "registry disk full"
    _set_up(where, connector)
    connector.clock = lambda: clock.advance(1.0)
    with pytest.raises(ConsoleError) as info:
        _run(_sync_job(where, connector))
    assert info.value.title == "Registry sync failed" and "registry disk full" in info.value.message


def test_sync_not_supported_means_nothing_to_wait_for(
    where: ConsoleEndpoint, connector: ConsoleConnector, state: SystemConsoleState
) -> None:
    state.variant = Variant(0, {"console.sync-supported": False})
    _set_up(where, connector)
    facts = _run(_sync_job(where, connector))  # the lab's 60 s sync never ends on this clock: no wait at all
    assert facts["sync_supported"] is False


def test_an_unknown_sync_word_keeps_the_wait_going_shown_as_written_and_warned(
    where: ConsoleEndpoint, connector: ConsoleConnector, state: SystemConsoleState, clock: ManualClock
) -> None:
    state.variant = Variant(0, {"console.sync-words": ("Success", "Reticulating", "Error", "")})
    _set_up(where, connector)
    connector.clock = lambda: clock.advance(1.0)
    progress = Progress()
    progress.add_task("t", "sync", "packs")
    messages: list[str] = []
    progress._on_change = lambda: messages.append(progress.snapshot().message)
    job = _sync_job(where, connector, expected=10.0)
    facts = dict(job.run(progress.root().child(0.0, 1.0, task="t"), CancelToken()) or {})
    assert facts["status"] == "Success"  # waited through the unknown word to the known one
    assert any("'Reticulating'" in m for m in messages)
    task = progress.snapshot().task("t")
    assert task is not None and "'Reticulating'" in task.warning and "does not know" in task.warning


def test_a_console_without_the_version_endpoint_still_sets_up(
    where: ConsoleEndpoint, connector: ConsoleConnector, state: SystemConsoleState
) -> None:
    """GET /v1/system/version/installed answering 404 is "version unknown", not a failed console step."""
    state.variant = Variant(0, {"console.version-endpoint": False})
    facts = _set_up(where, connector)
    assert facts["password_changed"] is True and facts["version"] == ""
    with connector.open(where, NEW_PASSWORD) as client:
        assert client.version() == ""


@pytest.mark.parametrize("meaning", ["required", "done", "absent"])
@pytest.mark.parametrize("carrier", ["both", "header", "cookie"])
def test_first_login_and_activation_whatever_the_flag_means_and_the_token_travels_in(
    where: ConsoleEndpoint, connector: ConsoleConnector, state: SystemConsoleState, meaning: str, carrier: str
) -> None:
    state.variant = Variant(
        0,
        {"console.password-reset-flag": meaning, "console.token-carrier": carrier, "console.write-status": (204, 204)},
    )
    facts = _set_up(where, connector)
    assert facts["password_changed"] is True and not state.password_reset_required
    assert _set_up(where, connector)["password_changed"] is False  # a rerun changes nothing more
    key = state.issue_activation_key()
    assert _run(ActivateJob(where, connector, NEW_PASSWORD, key=key.key))["activated"] is True
