"""Preflight checks against real peers on loopback: listeners, dnsmasq, an SNTP responder, and the whole run."""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.helpers import cli_env, run_cli
from tests.support.projects import appliance_iso, base_doc, make_key, sign_file, write_project
from wizard.core.cancel import CancelToken
from wizard.core.checks import NodeName, Outcome, check_address_free, check_dns, check_ntp, override, probe_address
from wizard.core.checks.address import _connect
from wizard.core.checks.ntp import from_ntp, to_ntp
from wizard.core.jobs import StepContext
from wizard.core.journal import Journal
from wizard.core.paths import app_paths
from wizard.core.progress import TaskStatus
from wizard.core.project import SecretRef, parse_project
from wizard.core.runner import Engine, Event, ExitCode, JobFinished, RunFinished
from wizard.core.secrets import SecretStore
from wizard.install.steps import pipeline
from wizard.install.steps.preflight import PreflightSettings, report_paths
from wizard.lab import ports

DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    return ports.free_port("127.0.0.1", kind)


class Listener:
    """A TCP listener that accepts and closes, making an address busy."""

    def __init__(self, host: str, port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener("127.0.0.2")
    yield lst
    lst.close()


# -- address in use ---------------------------------------------------------------------------------------------
def test_address_with_a_listener_is_in_use(listener: Listener) -> None:
    result = check_address_free("net.vip-free", "127.0.0.2", "VIP", ports=(listener.port, 1), timeout=0.5)
    assert result.outcome is Outcome.FAIL
    assert f"port {listener.port} accepted" in result.message
    assert any("ICMP not meaningful on loopback" in m for m in result.method)
    assert any("ARP not applicable" in m for m in result.method)


def test_address_without_a_listener_is_free(listener: Listener) -> None:
    # 127.0.0.3 refuses on every port (the kernel answers for all of 127/8): on loopback that proves nothing.
    assert _connect("127.0.0.3", listener.port, 0.5) == "refused"
    result = check_address_free("net.node-ip-free", "127.0.0.3", "node-1", ports=(listener.port,), timeout=0.5)
    assert result.outcome is Outcome.PASS, result
    assert any("refusal proves nothing" in m for m in result.method)


def test_a_wildcard_listener_is_the_jump_hosts_own_service() -> None:
    lst = Listener("0.0.0.0")
    try:
        probe = probe_address("127.0.0.4", ports=(lst.port,), timeout=0.5, icmp=False, arp=False)
    finally:
        lst.close()
    assert not probe.in_use
    assert any("wildcard listener" in m for m in probe.method)
    assert "ICMP not tried (disabled)" in probe.method and "ARP not tried (disabled)" in probe.method


# -- DNS ----------------------------------------------------------------------------------------------------------
@pytest.fixture
def dns_port() -> Iterator[int]:
    port = free_port(socket.SOCK_DGRAM)
    records = [
        "--host-record=edge-node-1.lab.test,127.0.10.11",
        "--host-record=edge-node-2.lab.test,127.0.10.99",  # wrong address
        "--host-record=somebody-else.lab.test,127.0.10.13",  # PTR for node-3 names another host
    ]
    proc = subprocess.Popen(
        [
            DNSMASQ,
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--pid-file=",
            f"--port={port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            *records,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            result = check_dns(["127.0.0.1"], [], port=port, timeout=0.2)
            if result[0].outcome is Outcome.PASS:
                break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


NODES = [
    NodeName("node-1", "edge-node-1", "127.0.10.11"),
    NodeName("node-2", "edge-node-2", "127.0.10.12"),
    NodeName("node-3", "edge-node-3", "127.0.10.13"),
    NodeName("node-4", "edge-node-4", ""),
]


def test_dns_forward_and_reverse_against_dnsmasq(dns_port: int) -> None:
    results = check_dns(["127.0.0.1"], NODES, ["lab.test"], port=dns_port, timeout=1.0)
    got = {(r.check, r.target.split(" ")[0]): r for r in results}
    assert got[("net.dns-server", "127.0.0.1")].outcome is Outcome.PASS
    assert got[("net.dns-forward", "node-1")].outcome is Outcome.PASS
    assert got[("net.dns-reverse", "node-1")].outcome is Outcome.PASS
    fwd2 = got[("net.dns-forward", "node-2")]
    assert fwd2.failed and "127.0.10.99" in fwd2.message and "127.0.10.12" in fwd2.message
    assert "no PTR record" in got[("net.dns-reverse", "node-2")].message
    assert got[("net.dns-forward", "node-3")].failed
    rev3 = got[("net.dns-reverse", "node-3")]
    assert rev3.failed and "somebody-else.lab.test" in rev3.message
    assert "not applicable" in got[("net.dns-reverse", "node-4")].message
    assert got[("net.dns-forward", "node-4")].failed  # DHCP node whose name does not resolve


def test_fqdn_host_names_need_no_search_domain(dns_port: int) -> None:
    nodes = [NodeName("node-1", "edge-node-1.lab.test", "127.0.10.11")]
    results = check_dns(["127.0.0.1"], nodes, port=dns_port, timeout=1.0)
    assert {r.outcome for r in results} == {Outcome.PASS}


def test_silent_dns_server_is_a_blocker_and_short_names_are_not_applicable(dns_port: int) -> None:
    silent = free_port(socket.SOCK_DGRAM)
    results = check_dns(["127.0.0.1"], NODES[:1], port=silent, timeout=0.3)
    assert [(r.check, r.outcome) for r in results] == [("net.dns-server", Outcome.FAIL)]
    assert results[0].definition.severity.value == "blocker"
    ok = check_dns(["127.0.0.1"], NODES[:1], port=dns_port, timeout=1.0)
    assert "not applicable" in ok[1].message  # short name, no search domains
    assert "not applicable" in check_dns([], NODES)[0].message


# -- NTP ----------------------------------------------------------------------------------------------------------
class SntpResponder:
    """An SNTP server on loopback whose clock is ``offset`` seconds from ours."""

    def __init__(self, offset: float = 0.0, *, stratum: int = 2) -> None:
        self.offset = offset
        self.stratum = stratum
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            received = to_ntp(time.time() + self.offset)
            originate = struct.unpack("!Q", data[40:48])[0]
            reply = struct.pack(
                "!BBbbII4sQQQQ", 0x24, self.stratum, 6, -20, 0, 0, b"GPS\0", received, originate,
                received, to_ntp(time.time() + self.offset),
            )  # fmt: skip
            self.sock.sendto(reply, peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def sntp() -> Iterator[list[SntpResponder]]:
    made: list[SntpResponder] = []
    yield made
    for r in made:
        r.close()


def test_ntp_server_in_sync_passes(sntp: list[SntpResponder]) -> None:
    sntp.append(SntpResponder(0.0))
    results = check_ntp(["127.0.0.1"], port=sntp[0].port, timeout=1.0)
    assert {r.outcome for r in results} == {Outcome.PASS}
    offset = next(r for r in results if r.check == "net.ntp-offset")
    assert abs(offset.details["offset"]) < 0.2


def test_ntp_offset_over_the_limit_is_a_blocker(sntp: list[SntpResponder]) -> None:
    sntp.append(SntpResponder(-7.5))
    results = {r.check: r for r in check_ntp(["127.0.0.1"], port=sntp[0].port, timeout=1.0, max_offset=2.0)}
    bad = results["net.ntp-offset"]
    assert bad.failed and "-7.5" in bad.message and abs(bad.details["offset"] + 7.5) < 0.2
    assert results["net.ntp-reachable"].outcome is Outcome.PASS


def test_no_ntp_server_answering_is_a_blocker_one_of_two_is_a_warning(sntp: list[SntpResponder]) -> None:
    silent = free_port(socket.SOCK_DGRAM)
    none = check_ntp(["127.0.0.1"], port=silent, timeout=0.3)
    assert none[0].check == "net.ntp-reachable" and none[0].failed
    sntp.append(SntpResponder(0.0, stratum=0))  # kiss-o'-death counts as not answering
    assert "kiss" in check_ntp(["127.0.0.1"], port=sntp[0].port, timeout=1.0)[1].message
    good = SntpResponder(0.0)
    sntp.append(good)
    # The responder listens on 127.0.0.1 only, so 127.0.0.5 on that port stays silent.
    mixed = check_ntp(["127.0.0.5", "127.0.0.1"], port=good.port, timeout=0.3)
    assert mixed[0].check == "net.ntp-reachable" and mixed[0].outcome is Outcome.PASS
    assert [(r.target, r.outcome) for r in mixed if r.check == "net.ntp-server"] == [
        ("127.0.0.5", Outcome.FAIL),
        ("127.0.0.1", Outcome.PASS),
    ]
    assert mixed[1].definition.severity.value == "warning"
    assert from_ntp(to_ntp(1_700_000_000.25)) == pytest.approx(1_700_000_000.25)


# -- the preflight step, in process and headless ------------------------------------------------------------------
def _engine_run(
    tmp_path: Path, doc: dict[str, object], settings: PreflightSettings
) -> tuple[ExitCode, Journal, list[Event]]:
    project = parse_project(doc, base=tmp_path).project
    journal = Journal.open(tmp_path / "sessions" / "p.json", "p")
    events: list[Event] = []
    ctx = StepContext(project, SecretStore(), journal, app_paths().ensure())
    return Engine(ctx, pipeline(settings, until="preflight"), on_event=events.append).run(), journal, events


def test_preflight_step_reports_blockers_overrides_and_rechecks(
    tmp_path: Path, dns_port: int, sntp: list[SntpResponder]
) -> None:
    appliance_iso(tmp_path / "appliance.iso", 64 * 1024)
    sntp.append(SntpResponder(30.0))
    # An unsigned ISO: the wizard's unattended copy needs a verified one, so this project boots at the console.
    doc = base_doc(files={"iso": "appliance.iso"}, appliance={"boot": "console"})
    doc["network"] = {"vip": "127.0.10.50", "dns": ["127.0.0.1"], "search_domains": ["lab.test"], "ntp": ["127.0.0.1"]}
    settings = PreflightSettings(ports=(free_port(),), connect_timeout=0.3, dns_port=dns_port, ntp_port=sntp[0].port)
    code, journal, events = _engine_run(tmp_path, doc, settings)
    assert code is ExitCode.PREFLIGHT_BLOCKED
    error = next(e for e in events if isinstance(e, RunFinished)).error or {}
    # The message names the root cause in words; the details keep the check's id and the page that fixes it.
    assert "Clock offset is small" in error["message"] and error["title"] == (
        "Preflight checks: 1 problem to fix before anything is touched"
    )
    assert "[net.ntp-offset]" in error["details"] and "fix (network page)" in error["details"]
    json_path, html_path = report_paths(journal.path)
    assert '"blockers": 1' in json_path.read_text() and "net.ntp-offset" in html_path.read_text()

    # Override the DNS warnings (node-2 and node-3 records are wrong); fix the clock; run again.
    override(journal, "net.dns-forward", "records are being fixed in change CHG-7")
    override(journal, "net.dns-reverse", "records are being fixed in change CHG-7")
    override(journal, "files.signed", "ISO checked by hand against the vendor's portal")
    sntp[0].offset = 0.0
    code, journal, events = _engine_run(tmp_path, doc, settings)
    assert code is ExitCode.DONE, next(e for e in events if isinstance(e, RunFinished)).error
    report = json_path.read_text()
    assert '"blockers": 0' in report and '"warnings": 0' in report and "CHG-7" in html_path.read_text()

    # A check that was blocked and then passed stays passed on resume: it is not probed again (its record carries
    # the same inputs a later run computes), so the clock drifting back does not block a resumed install.
    sntp[0].offset = 30.0
    code, journal, events = _engine_run(tmp_path, doc, settings)
    assert code is ExitCode.DONE, next(e for e in events if isinstance(e, RunFinished)).error
    ntp = [e for e in events if isinstance(e, JobFinished) and e.job == "preflight/ntp"]
    assert [e.status for e in ntp] == [TaskStatus.SKIPPED]


@pytest.mark.flow
def test_headless_run_exits_3_with_a_busy_vip_and_0_when_clear(tmp_path: Path) -> None:
    appliance_iso(tmp_path / "appliance.iso", 64 * 1024)
    path = write_project(tmp_path, base_doc(files={"iso": "appliance.iso"}, appliance={"boot": "console"}))
    vip = base_doc()["network"]["vip"]
    busy = Listener(vip, 6443)  # a default probe port, unprivileged
    try:
        out = run_cli(["run", str(path), "--until", "preflight"], cli_env(tmp_path / "home"))
    finally:
        busy.close()
    assert out.returncode == 3, out.stdout + out.stderr
    assert "net.vip-free" in out.stdout and "port 6443 accepted" in out.stdout
    clear = run_cli(["run", str(path), "--until", "preflight"], cli_env(tmp_path / "home"))
    assert clear.returncode == 0, clear.stdout + clear.stderr


def test_preflight_reports_the_gateway_checks(tmp_path: Path) -> None:
    # Project validation already refuses a gateway or VIP outside the nodes' subnet; preflight re-states it and
    # says which probes of the gateway were possible (a loopback gateway has no router behind it: not probed).
    appliance_iso(tmp_path / "appliance.iso", 64 * 1024)
    doc = base_doc(files={"iso": "appliance.iso"}, appliance={"boot": "console"})
    settings = PreflightSettings(ports=(free_port(),), connect_timeout=0.3)
    code, journal, events = _engine_run(tmp_path, doc, settings)
    assert code is ExitCode.DONE, next(e for e in events if isinstance(e, RunFinished)).error
    assert journal.result("preflight/gateway") is not None
    json_path, _html = report_paths(journal.path)
    report = json.loads(json_path.read_text())
    gateway = [r for r in report["results"] if r["check"].startswith("net.gateway")]
    assert {r["check"] for r in gateway} == {"net.gateway-consistent", "net.gateway-answers"}
    assert all(r["outcome"] == "pass" for r in gateway)
    answers = next(r for r in gateway if r["check"] == "net.gateway-answers")
    assert answers["details"] == {"skipped": True} and "loopback" in answers["message"]


def test_a_resumed_install_never_probes_again_what_it_changed(tmp_path: Path) -> None:
    """Once the session booted the nodes and asked for the cluster, their addresses and the VIP answer because of the
    install: a later run re-checks them (here its probe settings changed, as with a newer wizard) but does not probe
    them, so the cluster holding the VIP is no "VIP in use"."""
    appliance_iso(tmp_path / "appliance.iso", 64 * 1024)
    doc = base_doc(files={"iso": "appliance.iso"})
    doc["provider"] = {"type": "redfish"}  # the wizard boots the nodes: before the install nothing may answer
    for i, node in enumerate(doc["nodes"], 1):
        node["bmc"] = {"address": f"127.0.20.{i}", "username": "root", "password": {"secret": "bmc"}}
    port = free_port()
    settings = PreflightSettings(ports=(port,), connect_timeout=0.3, icmp=False, arp=False)
    project = parse_project(doc, base=tmp_path).project
    journal = Journal.open(tmp_path / "sessions" / "p.json", "p")
    ctx = StepContext(project, SecretStore(), journal, app_paths().ensure())
    ctx.secrets.set(SecretRef("bmc"), "a-bmc-password")
    from wizard.install.steps.preflight import PreflightStep

    def address_jobs(step: PreflightStep) -> dict[str, object]:
        return {j.id: j for j in step.jobs(ctx) if j.id.startswith("preflight/address/")}

    # The first run: nothing answers, every address check passes (the provider's own checks are not needed here).
    for job in address_jobs(PreflightStep(settings)).values():
        assert all(r["outcome"] == "pass" for r in job.run(_NullReporter(), CancelToken())["results"])  # type: ignore[attr-defined]
    # The install ran: the journal records every node's boot and the cluster's creation.
    for node in project.nodes:
        journal.job_started(f"boot/{node.name}", "f")
        journal.job_done(f"boot/{node.name}", "f", {})
    journal.job_started("cluster/create", "f")
    journal.job_done("cluster/create", "f", {"cluster": "palette-mgmt"})
    busy = [Listener(project.network.vip, port), *(Listener(n.ip, port) for n in project.nodes)]
    try:
        later = PreflightSettings(ports=(port,), connect_timeout=0.4, icmp=False, arp=False)
        results = {
            job_id: job.run(_NullReporter(), CancelToken())["results"]  # type: ignore[attr-defined]
            for job_id, job in address_jobs(PreflightStep(later)).items()
        }
    finally:
        for listener in busy:
            listener.close()
    assert set(results) == {f"preflight/address/{n.name}" for n in project.nodes} | {"preflight/address/vip"}
    for job_id, (result,) in results.items():
        assert result["outcome"] == "pass", (job_id, result)
        assert "not probed again" in result["message"] and result["details"]["skipped"] is True
    assert "this session's cluster holds it" in results["preflight/address/vip"][0]["message"]
    # Without that record the same listener is a blocker: the skip comes from the journal, not from the probe.
    fresh = StepContext(project, SecretStore(), Journal.open(tmp_path / "sessions" / "q.json", "q"), ctx.paths)
    vip_job = next(j for j in PreflightStep(settings).jobs(fresh) if j.id == "preflight/address/vip")
    busy = [Listener(project.network.vip, port)]
    try:
        (blocked,) = vip_job.run(_NullReporter(), CancelToken())["results"]  # type: ignore[attr-defined]
    finally:
        busy[0].close()
    assert blocked["outcome"] == "fail" and f"port {port} accepted" in blocked["message"]


class _NullReporter:
    """Enough of a Reporter for a check job run outside the engine."""

    fraction = 0.0

    def update(self, fraction: float, message: str | None = None) -> None:
        self.fraction = fraction

    def finish(self, message: str | None = None) -> None:
        self.fraction = 1.0


def test_preflight_says_what_each_node_boots_and_blocks_an_unverified_unattended_copy(tmp_path: Path) -> None:
    iso = appliance_iso(tmp_path / "appliance.iso", 64 * 1024)
    settings = PreflightSettings(ports=(free_port(),), connect_timeout=0.3)
    # Unsigned: the default strategy (the unattended copy) cannot be made from it: a blocker per node.
    code, journal, events = _engine_run(tmp_path, base_doc(files={"iso": "appliance.iso"}), settings)
    assert code is ExitCode.PREFLIGHT_BLOCKED
    error = next(e for e in events if isinstance(e, RunFinished)).error or {}
    # The operator reads the check's title, not its id.
    assert "boot reaches the automatic installer" in error["message"]
    assert "no signature was checked" in error["message"] and "media.boot-plan" not in error["message"]
    # Signed: each node's result says it boots the copy's automatic installer with its seed.
    signing, public = make_key(tmp_path)
    sign_file(signing, iso, iso.with_name(iso.name + ".sig.bin"))
    doc = base_doc(files={"iso": "appliance.iso", "public_key": public.name})
    code, journal, events = _engine_run(tmp_path, doc, settings)
    assert code is ExitCode.DONE, next(e for e in events if isinstance(e, RunFinished)).error
    report = json.loads(report_paths(journal.path)[0].read_text())
    plans = [r for r in report["results"] if r["check"] == "media.boot-plan"]
    assert [r["target"] for r in plans] == [f"node-{i} (manual, boot: unattended)" for i in (1, 2, 3)]
    assert all(r["outcome"] == "pass" and "unattended copy" in r["message"] for r in plans)
    assert "with its seed" in plans[0]["message"]
