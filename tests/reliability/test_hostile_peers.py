"""Reliability: every network client of the wizard against peers that misbehave.

The Local UI, system console, Redfish and MAAS clients talk to :class:`HostilePeer` (a raw-socket HTTP(S) server
that answers 500s, stalls, malformed or mislabelled JSON, truncated or dripped bodies, resets, redirect loops, 429s,
a changed certificate…); the SSH client talks to a real OpenSSH server and to sockets that never speak SSH. Each case
must end in its specific :class:`WizardError` (title and message checked) or in a correct retry, within a wall-clock
guard: a case still running after ``GUARD`` seconds is a hang and fails (its peer is stopped, which frees it).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.sshd_peer import OpenSSHServer
from tests.reliability.reliability_peers import (
    HostilePeer,
    drip,
    redirect_to_self,
    reply,
    reset,
    stall,
    truncated,
)
from wizard.appliance import console as con
from wizard.appliance import localui as lui
from wizard.appliance.ssh import SSHAuthFailed, SSHClient, SSHCommandTimeout, SSHCredentials, SSHUnreachable
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.http import RetryPolicy
from wizard.core.project import Bmc, SecretRef
from wizard.core.trust import TrustChanged, TrustStore
from wizard.lab.certs import NodeCertificate, create_node_certificate
from wizard.providers import maas
from wizard.providers.redfish.client import RedfishClient
from wizard.providers.redfish.errors import AuthRefused, BmcUnreachable, TaskFailed, UnexpectedAnswer

GUARD = 20.0  # no case may take longer; the clients' own timeouts below are 1-2 s
# The one retry policy, cut to one retry with short waits: a case sees "retried, then the error", within the guard.
RETRY = RetryPolicy(attempts=2, base=0.01, cap=0.02)
TIMEOUT = 1.0
PASSWORD = "Hostile-peer-pass-1"
MAAS_KEY = "consumer:token:secret"


@dataclass
class Env:
    tmp: Path
    cert: NodeCertificate
    other_cert: NodeCertificate
    sshd: OpenSSHServer | None = None
    peer: HostilePeer | None = None

    def hostile(self, tls: bool = True) -> HostilePeer:
        self.peer = HostilePeer(self.cert if tls else None).__enter__()
        return self.peer

    def trust(self) -> TrustStore:
        return TrustStore(self.tmp / "config")


@dataclass(frozen=True)
class Expect:
    """The outcome a case must end in: an error of ``kind`` with ``title`` and ``message`` in its message, or
    (``kind`` None) a result, after which ``check`` asserts the retry happened as it should."""

    kind: type[BaseException] | None
    title: str | tuple[str, ...] = ""  # a tuple where the moment the peer fails decides between equally good titles
    message: str = ""


@dataclass(frozen=True)
class Case:
    id: str
    mark: str
    run: Callable[[Env], Any]
    expect: Expect
    check: Callable[[Env, Any], None] | None = field(default=None)


CASES: list[Case] = []


def case(id: str, mark: str, expect: Expect, check: Callable[[Env, Any], None] | None = None) -> Callable[..., Any]:
    def register(fn: Callable[[Env], Any]) -> Callable[[Env], Any]:
        CASES.append(Case(id, mark, fn, expect, check))
        return fn

    return register


# -- Local UI ---------------------------------------------------------------------------------------------------------
LOGIN_OK = {"Token": {"Authorization": "token-1"}, "IsFirstLogin": False}
HOST = {"metadata": {"id": "uid-1", "name": "edge-1"}, "status": {"hostName": "edge-1"}, "spec": {"networkInfo": []}}


def localui(env: Env, peer: HostilePeer, **kw: Any) -> lui.LocalUIClient:
    connector = lui.Connector(env.trust(), None, timeout=TIMEOUT, retry=RETRY, **kw)
    endpoint = lui.Endpoint("edge-1", "127.0.0.1", "kairos", PASSWORD, port=peer.port, fingerprint=env.cert.fingerprint)
    return connector.open(endpoint, CancelToken())


def localui_host(env: Env, *actions: Any, login: Any = None) -> Any:
    peer = env.hostile().on("POST " + lui.P_LOGIN, login or reply(200, LOGIN_OK)).on("GET " + lui.P_HOST, *actions)
    with localui(env, peer) as client:
        return client.host_info()


@case("localui-500", "lab", Expect(lui.LocalUIServerError, "Local UI error", "failed to GET " + lui.P_HOST))
def _(env: Env) -> Any:
    return localui_host(env, reply(500, {"code": "Internal", "message": "boom"}))


@case("localui-stall", "lab", Expect(lui.LocalUIUnreachable, "Local UI unreachable", "did not answer in time"))
def _(env: Env) -> Any:
    return localui_host(env, stall())


@case("localui-malformed-json", "lab", Expect(lui.LocalUIError, "Unexpected Local UI answer", "not JSON"))
def _(env: Env) -> Any:
    return localui_host(env, reply(200, b'{"metadata": {"id": '))


@case("localui-wrong-content-type", "lab", Expect(lui.LocalUIError, "Unexpected Local UI answer", "not JSON"))
def _(env: Env) -> Any:
    return localui_host(env, reply(200, "<html><body>Welcome</body></html>", "text/html"))


@case("localui-bad-credentials", "lab", Expect(lui.LocalUILoginFailed, "Local UI login failed", "refused the cred"))
def _(env: Env) -> Any:
    return localui_host(env, reply(200, HOST), login=reply(401, {"code": "Unauthorized", "message": "bad"}))


@case("localui-reset", "lab", Expect(lui.LocalUIUnreachable, "Local UI unreachable", "dropped the connection"))
def _(env: Env) -> Any:
    return localui_host(env, reset())


@case("localui-truncated-body", "lab", Expect(lui.LocalUIUnreachable, "Local UI unreachable", "dropped the connection"))
def _(env: Env) -> Any:
    return localui_host(env, truncated(200, HOST))


@case("localui-slow-drip", "lab", Expect(lui.LocalUIUnreachable, "Local UI unreachable", "did not answer in time"))
def _(env: Env) -> Any:
    # Each byte comes well within the read timeout, so only a limit on the whole answer ends this.
    return localui_host(env, drip(200, {**HOST, "pad": "x" * 400}, TIMEOUT / 4))


REDIRECTED = Expect(lui.LocalUIError, "Local UI redirected the request", "answered 302 to GET " + lui.P_HOST)


@case("localui-redirect-loop", "lab", REDIRECTED)
def _(env: Env) -> Any:
    return localui_host(env, redirect_to_self())


def _relogged(env: Env, result: Any) -> None:
    assert result.uid == "uid-1"
    assert env.peer is not None and env.peer.hits["POST " + lui.P_LOGIN] == 2


@case("localui-token-expiry-race", "lab", Expect(None), _relogged)
def _(env: Env) -> Any:
    # The token expires between the client's check and the node's: a 401, one fresh login, the same request again.
    return localui_host(env, reply(401, {"code": "TokenExpired", "message": "token expired"}), reply(200, HOST))


def _waited_retry_after(env: Env, result: Any) -> None:
    assert result.uid == "uid-1"
    assert env.peer is not None and env.peer.hits["GET " + lui.P_HOST] == 2


@case("localui-429-retry-after", "lab", Expect(None), _waited_retry_after)
def _(env: Env) -> Any:
    return localui_host(env, reply(429, {"message": "slow down"}, Retry_After="1"), reply(200, HOST))


@case("localui-certificate-change", "lab", Expect(TrustChanged, "Certificate changed", "is not the one pinned"))
def _(env: Env) -> Any:
    peer = env.hostile().on("POST " + lui.P_LOGIN, reply(200, LOGIN_OK, Connection="close"))
    peer.on("GET " + lui.P_HOST, reply(200, HOST))
    with localui(env, peer) as client:
        client.login()  # pinned, logged in; the connection closes after the answer
        peer.present(env.other_cert)  # the next connection meets another certificate
        return client.host_info()


# -- System console ---------------------------------------------------------------------------------------------------
CONSOLE_LOGIN = {"Authorization": "console-token", "IsPasswordReset": False}


def activated(setup_id: str) -> dict[str, Any]:
    return {"spec": {"systemUid": setup_id}, "status": {"state": "Active"}}


def console_version(env: Env, *actions: Any, login: Any = None, retry: RetryPolicy = RETRY) -> Any:
    """A read the console step needs (the activation; the installed version is only informational and degrades to
    "unknown"), answered by ``actions``; returns the Product Setup ID it names."""
    peer = env.hostile().on("POST " + con.P_LOGIN, login or reply(200, CONSOLE_LOGIN))
    peer.on("GET " + con.P_ACTIVATION, *actions)
    connector = con.ConsoleConnector(env.trust(), None, timeout=TIMEOUT, retry=retry)
    with connector.open(con.ConsoleEndpoint("127.0.0.1", peer.port, env.cert.fingerprint), PASSWORD) as client:
        return client.activation().product_setup_id


@case("console-503", "lab", Expect(con.ConsoleUnreachable, "Palette not available", "answered 503"))
def _(env: Env) -> Any:
    return console_version(env, reply(503, {"message": "starting"}))


def _retried_5xx(env: Env, result: Any) -> None:
    assert result == "4.6.0"
    assert env.peer is not None and env.peer.hits["GET " + con.P_ACTIVATION] == 3


@case("console-500-then-ok", "lab", Expect(None), _retried_5xx)
def _(env: Env) -> Any:
    # Two different 5xx in a row: a policy of three attempts rides out both.
    three = RetryPolicy(attempts=3, base=0.01, cap=0.02)
    return console_version(env, reply(500, {}), reply(502, {}), reply(200, activated("4.6.0")), retry=three)


@case("console-bad-credentials", "lab", Expect(con.ConsoleLoginFailed, "System console login failed", "refused"))
def _(env: Env) -> Any:
    return console_version(env, reply(200, {}), login=reply(401, {"code": "Unauthorized", "message": "no"}))


@case("console-stall", "lab", Expect(con.ConsoleUnreachable, "System console unreachable", "did not answer in time"))
def _(env: Env) -> Any:
    return console_version(env, stall())


@case("console-malformed-json", "lab", Expect(con.ConsoleError, "Unexpected system console answer", "not JSON"))
def _(env: Env) -> Any:
    return console_version(env, reply(200, b"{'spec': 4.6}"))


@case("console-slow-drip", "lab", Expect(con.ConsoleUnreachable, "System console unreachable", "in time"))
def _(env: Env) -> Any:
    return console_version(env, drip(200, {**activated("4.6.0"), "pad": "x" * 400}, TIMEOUT / 4))


def _console_relogged(env: Env, result: Any) -> None:
    assert result == "4.6.0"
    assert env.peer is not None and env.peer.hits["POST " + con.P_LOGIN] == 2


@case("console-token-expiry-race", "lab", Expect(None), _console_relogged)
def _(env: Env) -> Any:
    return console_version(env, reply(401, {"message": "token expired"}), reply(200, activated("4.6.0")))


@case("console-certificate-change", "lab", Expect(TrustChanged, "Certificate changed", "is not the one pinned"))
def _(env: Env) -> Any:
    peer = env.hostile()
    trust = env.trust()
    connector = con.ConsoleConnector(trust, None, timeout=TIMEOUT, retry=RETRY)
    with connector.open(con.ConsoleEndpoint("127.0.0.1", peer.port, env.cert.fingerprint), PASSWORD):
        pass  # first contact pins the expected certificate
    peer.present(env.other_cert)
    return connector.open(con.ConsoleEndpoint("127.0.0.1", peer.port), PASSWORD)


# -- Redfish ----------------------------------------------------------------------------------------------------------
SERVICE_ROOT = {"RedfishVersion": "1.15.0", "Systems": {"@odata.id": "/redfish/v1/Systems"}, "Vendor": "Hostile"}
SYSTEMS = {"Members": [{"@odata.id": "/redfish/v1/Systems/1"}]}
RESET = "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset"
TASK = "/redfish/v1/TaskService/Tasks/7"


def redfish(env: Env, peer: HostilePeer, **kw: Any) -> RedfishClient:
    bmc = Bmc(f"127.0.0.1:{peer.port}", "root", SecretRef("bmc"), tls_fingerprint=env.cert.fingerprint)
    return RedfishClient.for_bmc(bmc, PASSWORD, trust=env.trust(), confirm=None, timeout=TIMEOUT, retry=RETRY, **kw)


def redfish_peer(env: Env) -> HostilePeer:
    return (
        env.hostile()
        .on("GET /redfish/v1/", reply(200, SERVICE_ROOT))
        .on("GET /redfish/v1/Systems", reply(200, SYSTEMS))
    )


def redfish_reset(env: Env, *task: Any) -> Any:
    peer = redfish_peer(env).on("POST " + RESET, reply(202, {}, Location=TASK)).on("GET " + TASK, *task)
    with redfish(env, peer) as client:
        r = client.action(RESET, {"ResetType": "On"}, what="Reset", cancel=CancelToken(), task_timeout=8, poll=0.05)
        return r.status_code


@case("redfish-bad-credentials", "redfish", Expect(AuthRefused, "BMC login refused", "user name or password"))
def _(env: Env) -> Any:
    peer = env.hostile().on("GET /redfish/v1/", reply(200, SERVICE_ROOT)).on("GET /redfish/v1/Systems", reply(401, {}))
    with redfish(env, peer):
        return None


@case("redfish-task-failure", "redfish", Expect(TaskFailed, "BMC task failed", "ended Exception"))
def _(env: Env) -> Any:
    running = reply(202, {"TaskState": "Running", "PercentComplete": 40})
    failed = {"TaskState": "Exception", "TaskStatus": "Critical", "Messages": [{"Message": "power fault"}]}
    return redfish_reset(env, running, reply(200, failed))


def _followed_reboot(env: Env, result: Any) -> None:
    assert result == 200
    assert env.peer is not None and env.peer.hits["GET " + TASK] == 5


@case("redfish-reboot-mid-poll", "redfish", Expect(None), _followed_reboot)
def _(env: Env) -> Any:
    # The BMC restarts while its task runs: a reset connection and a 503, then the task is found completed.
    done = {"TaskState": "Completed", "TaskStatus": "OK"}
    return redfish_reset(
        env, reply(202, {"TaskState": "Running"}), reset(), reply(503, {}), reply(202, {}), reply(200, done)
    )


@case("redfish-malformed-json", "redfish", Expect(UnexpectedAnswer, "Unexpected BMC answer", "other than JSON"))
def _(env: Env) -> Any:
    peer = env.hostile().on("GET /redfish/v1/", reply(200, b'{"RedfishVersion": "1.'))
    with redfish(env, peer):
        return None


@case("redfish-stall", "redfish", Expect(BmcUnreachable, "BMC unreachable", "did not answer in time"))
def _(env: Env) -> Any:
    peer = env.hostile().on("GET /redfish/v1/", reply(200, SERVICE_ROOT)).on("GET /redfish/v1/Systems", stall())
    with redfish(env, peer):
        return None


@case("redfish-slow-drip", "redfish", Expect(BmcUnreachable, "BMC unreachable", "did not answer in time"))
def _(env: Env) -> Any:
    peer = env.hostile().on("GET /redfish/v1/", drip(200, {**SERVICE_ROOT, "Pad": "x" * 400}, TIMEOUT / 4))
    with redfish(env, peer):
        return None


@case("redfish-500", "redfish", Expect(UnexpectedAnswer, "Unexpected BMC answer", "answered 500"))
def _(env: Env) -> Any:
    peer = redfish_peer(env).on("GET /redfish/v1/Systems/1", reply(500, {"error": {"message": "internal"}}))
    with redfish(env, peer) as client:
        return client.get("/redfish/v1/Systems/1")


@case("redfish-certificate-change", "redfish", Expect(TrustChanged, "Certificate changed", "is not the one pinned"))
def _(env: Env) -> Any:
    peer = redfish_peer(env)
    with redfish(env, peer):
        pass
    peer.present(env.other_cert)
    bmc = Bmc(f"127.0.0.1:{peer.port}", "root", SecretRef("bmc"))  # the pin in the trust store is what counts now
    return RedfishClient.for_bmc(bmc, PASSWORD, trust=env.trust(), confirm=None, timeout=TIMEOUT, retry=RETRY)


# -- MAAS -------------------------------------------------------------------------------------------------------------
def maas_whoami(env: Env, *actions: Any) -> Any:
    peer = env.hostile(tls=False).on("GET /MAAS/api/2.0/users/", *actions)
    with maas.MaasClient(peer.url + "/MAAS", MAAS_KEY, verify=True, timeout=TIMEOUT, retry=RETRY) as client:
        return client.whoami()


@case("maas-bad-credentials", "maas", Expect(WizardError, "MAAS refused the API key", "401"))
def _(env: Env) -> Any:
    return maas_whoami(env, reply(401, "Expired timestamp", "text/plain"))


@case("maas-stall", "maas", Expect(WizardError, "MAAS not answering", "did not answer in time"))
def _(env: Env) -> Any:
    return maas_whoami(env, stall())


@case("maas-wrong-content-type", "maas", Expect(WizardError, "Unexpected MAAS answer", "did not return JSON"))
def _(env: Env) -> Any:
    return maas_whoami(env, reply(200, "<html>MAAS login</html>", "text/html"))


def _maas_retried(env: Env, result: Any) -> None:
    assert result.username == "ops"
    assert env.peer is not None and env.peer.hits["GET /MAAS/api/2.0/users/"] == 2


@case("maas-503-retry-after", "maas", Expect(None), _maas_retried)
def _(env: Env) -> Any:
    busy = reply(503, "regiond busy", "text/plain", Retry_After="1")
    return maas_whoami(env, busy, reply(200, {"username": "ops", "is_superuser": True}))


@case("maas-slow-drip", "maas", Expect(WizardError, "MAAS not answering", "did not answer in time"))
def _(env: Env) -> Any:
    return maas_whoami(env, drip(200, {"username": "ops", "pad": "x" * 400}, TIMEOUT / 4))


@case("maas-reset", "maas", Expect(WizardError, "MAAS unreachable", "cannot connect"))
def _(env: Env) -> Any:
    return maas_whoami(env, reset())


# -- SSH --------------------------------------------------------------------------------------------------------------
def ssh(env: Env, port: int, credentials: SSHCredentials | None = None, expected: str = "") -> SSHClient:
    assert env.sshd is not None
    creds = credentials or SSHCredentials(env.sshd.user, key_path=env.sshd.client_key)
    return SSHClient(
        "127.0.0.1",
        port,
        creds,
        trust=env.trust(),
        expected_fingerprint=expected,
        connect_timeout=TIMEOUT * 2,
        command_timeout=TIMEOUT * 2,
    )


@case("ssh-bad-credentials", "ssh", Expect(SSHAuthFailed, "SSH login failed", "refused the password"))
def _(env: Env) -> Any:
    assert env.sshd is not None
    with ssh(env, env.sshd.port, SSHCredentials(env.sshd.user, password="wrong-password-1"), env.sshd.fingerprint) as c:
        c.connect()


@case("ssh-host-key-change", "ssh", Expect(TrustChanged, "Host key changed", "is not the one pinned"))
def _(env: Env) -> Any:
    with OpenSSHServer() as sshd:
        env.sshd = sshd
        with ssh(env, sshd.port, expected=sshd.fingerprint) as c:
            c.connect()  # pinned
        sshd.restart(new_host_key=True)
        with ssh(env, sshd.port) as c:
            c.connect()


@case("ssh-silent-port", "ssh", Expect(SSHUnreachable, "SSH handshake failed", "no SSH session"))
def _(env: Env) -> Any:
    peer = env.hostile(tls=False)  # accepts, then waits for an HTTP request that never comes: no SSH banner
    with ssh(env, peer.port) as c:
        c.connect()


# Reset as the connection opens: refused while connecting, or during the handshake, depending on the moment.
@case("ssh-reset", "ssh", Expect(SSHUnreachable, ("SSH handshake failed", "Cannot reach node over SSH"), "127.0.0.1:"))
def _(env: Env) -> Any:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def reset_one() -> None:
            conn, _ = listener.accept()
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            conn.close()

        threading.Thread(target=reset_one, daemon=True).start()
        with ssh(env, port) as c:
            c.connect()


@case(
    "ssh-command-stall",
    "ssh",
    Expect(SSHCommandTimeout, "Command timed out", "`sleep 30` on 127.0.0.1 did not finish within 2 s"),
)
def _(env: Env) -> Any:
    assert env.sshd is not None
    with ssh(env, env.sshd.port, expected=env.sshd.fingerprint) as c:
        c.run("sleep 30")


# -- The matrix -------------------------------------------------------------------------------------------------------
OUTCOMES: dict[str, str] = {}  # case id → "specific" | "hang" | "wrong: …"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[NodeCertificate, NodeCertificate]:
    folder = tmp_path_factory.mktemp("hostile-tls")
    return (
        create_node_certificate(folder / "a", ip="127.0.0.1", hostname="hostile.lab"),
        create_node_certificate(folder / "b", ip="127.0.0.1", hostname="hostile.lab"),
    )


@pytest.fixture(scope="module")
def sshd() -> Iterator[OpenSSHServer]:
    with OpenSSHServer() as server:
        yield server


@pytest.fixture(scope="module", autouse=True)
def summary(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not OUTCOMES:
        return
    specific = sum(v == "specific" for v in OUTCOMES.values())
    hangs = sum(v == "hang" for v in OUTCOMES.values())
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\nreliability hostile-peers: {specific}/{len(OUTCOMES)} specific, {hangs} hangs")


def test_the_matrix_is_wide_enough() -> None:
    assert len(CASES) >= 20 and len({c.id for c in CASES}) == len(CASES)
    assert {c.mark for c in CASES} == {"lab", "redfish", "maas", "ssh"}


@pytest.mark.parametrize("hostile", [pytest.param(c, id=c.id, marks=getattr(pytest.mark, c.mark)) for c in CASES])
def test_hostile_peer(
    hostile: Case, certificates: tuple[NodeCertificate, NodeCertificate], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    env = Env(tmp_path, *certificates)
    if hostile.mark == "ssh":
        env.sshd = request.getfixturevalue("sshd")
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            box["result"] = hostile.run(env)
        except BaseException as exc:  # judged below, in the test's thread
            box["error"] = exc

    worker = threading.Thread(target=body, name=f"case-{hostile.id}", daemon=True)
    began = time.monotonic()
    worker.start()
    worker.join(GUARD)
    hung = worker.is_alive()
    if env.peer is not None:
        env.peer.__exit__(None, None, None)  # frees a stalled case so its thread ends
    worker.join(5)
    took = time.monotonic() - began
    OUTCOMES[hostile.id] = "hang" if hung else "wrong"
    assert not hung, f"{hostile.id}: still running after {GUARD:g} s"
    error = box.get("error")
    expect = hostile.expect
    if expect.kind is None:
        assert error is None, f"{hostile.id}: expected a retry to succeed, got {error!r}"
        if hostile.check is not None:
            hostile.check(env, box.get("result"))
    else:
        assert error is not None, f"{hostile.id}: expected {expect.kind.__name__}, got result {box.get('result')!r}"
        assert isinstance(error, expect.kind), f"{hostile.id}: expected {expect.kind.__name__}, got {error!r}"
        assert isinstance(error, WizardError)
        titles = expect.title if isinstance(expect.title, tuple) else (expect.title,)
        assert error.title in titles, f"{hostile.id}: title {error.title!r}: {error.message}"
        assert expect.message in error.message, f"{hostile.id}: message {error.message!r}"
    OUTCOMES[hostile.id] = "specific"
    # Every client timeout here is 1-2 s; far longer means something waited without a bound.
    assert took < GUARD
