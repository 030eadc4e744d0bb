"""The system console's certificate, headless: no project can name it (it is made with the cluster) and no one can
be asked, so the leader, over its pinned SSH session, says which certificate it sees at the VIP; a leader that cannot
tell leaves it to the cluster, whose TLS secrets the saved admin kubeconfig reads."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from tests.support.quickboot import quick
from wizard.cli import main as cli_main
from wizard.core.runner import ExitCode
from wizard.core.trust import TrustKind, TrustStore
from wizard.headless import run_headless
from wizard.install.session import Session
from wizard.rehearsal import Rehearsal

pytestmark = [pytest.mark.flow, pytest.mark.lab]


def _run(rehearsal: Rehearsal) -> tuple[int, str]:
    out = io.StringIO()  # not a terminal: no one can be asked
    code = run_headless(
        rehearsal.project_file,
        steps=rehearsal.steps(),
        paths=rehearsal.paths,
        secrets=rehearsal.secrets,
        on_event=rehearsal.on_event,
        out=out,
    )
    return code, out.getvalue()


def _console(rehearsal: Rehearsal) -> tuple[str, int]:
    doc = yaml.safe_load(rehearsal.project_file.read_text())
    assert "tls_fingerprint" not in doc["console"], "the project must not know the console's certificate"
    return doc["network"]["vip"], int(doc["console"]["port"])


@pytest.mark.timeout(240)
def test_console_certificate_pinned_in_the_first_headless_run_through_the_leader(tmp_path: Path) -> None:
    with Rehearsal(tmp_path / "rehearsal", nodes=1, speed=300, lab=quick()) as rehearsal:
        vip, port = _console(rehearsal)
        code, text = _run(rehearsal)
        assert code == ExitCode.DONE, text[-4000:]
        assert rehearsal.console is not None
        genuine = rehearsal.console.certificate.fingerprint
        pin = TrustStore(rehearsal.paths.config).pinned(TrustKind.TLS, vip, port)
        facts = Session.open(rehearsal.project_file, paths=rehearsal.paths).journal.result("console/admin")
    assert pin is not None and pin["fingerprint"].replace(":", "").lower() == genuine.replace(":", "").lower()
    assert pin["how"].startswith("verified: edge-node-1 (over SSH, host key SHA256:")
    assert pin["how"].endswith("sees the same certificate")
    assert facts["certificate"] == {"fingerprint": pin["fingerprint"], "how": pin["how"]}


@pytest.mark.timeout(240)
def test_another_certificate_at_the_vip_than_the_leader_sees_is_refused(tmp_path: Path) -> None:
    with Rehearsal(tmp_path / "rehearsal", nodes=1, speed=300, lab=quick(), console_intercepted=True) as rehearsal:
        vip, port = _console(rehearsal)
        code, text = _run(rehearsal)
        assert rehearsal.console is not None and rehearsal.console.presented is not None
        genuine = rehearsal.console.certificate.fingerprint.upper()
        shown = rehearsal.console.presented.fingerprint.upper()
        assert code == ExitCode.INSTALL_FAILED, text[-4000:]
        assert "Certificate not confirmed" in text and "something between this machine" in text
        flat = text.replace(":", "").upper()
        assert genuine in flat and shown in flat  # both fingerprints are shown
        assert TrustStore(rehearsal.paths.config).pinned(TrustKind.TLS, vip, port) is None
        assert rehearsal.console.state.admin_email == "", "no credential reached the impostor"


@pytest.mark.timeout(240)
def test_unverifiable_first_contact_refuses_headless_until_the_operator_adds_the_pin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cluster keeps no readable copy of the console's certificate either.
    with Rehearsal(tmp_path / "rehearsal", nodes=1, speed=300, lab=quick("console-secret=off")) as rehearsal:
        vip, port = _console(rehearsal)
        assert rehearsal.lab is not None and rehearsal.console is not None
        rehearsal.lab.nodes[0].ssh.shell.extra.pop("openssl")  # a node without openssl cannot testify
        code, text = _run(rehearsal)
        assert code == ExitCode.INSTALL_FAILED, text[-4000:]
        assert "Fingerprint not confirmed" in text and "openssl is not installed on the node" in text
        assert "none of the 1 certificate(s) it holds is the one presented" in text  # the API server's only
        assert f"trust add {vip}:{port}" in text
        # The operator checks the fingerprint out of band and pins it; the run then resumes to the end.
        monkeypatch.setenv("PALETTE_WIZARD_HOME", str(rehearsal.paths.config.parent))
        assert cli_main(["trust", "add", f"{vip}:{port}", rehearsal.console.certificate.fingerprint]) == 0
        code, text = _run(rehearsal)
        assert code == ExitCode.DONE, text[-4000:]
        pin = TrustStore(rehearsal.paths.config).pinned(TrustKind.TLS, vip, port)
        assert pin is not None and pin["how"] == "added by the operator (verified out of band)" and pin["pem"]


def test_the_witness_command_and_parser_match_real_openssl(tmp_path: Path) -> None:
    """What a node runs is a shell command line for the real openssl: run it here against a TLS server and read
    its output with the witness's parser (the lab only imitates that output)."""
    import shutil
    import ssl
    import subprocess
    import time

    from wizard.appliance.witness import first_certificate, s_client_command
    from wizard.core.trust import fetch_certificate, tls_fingerprint
    from wizard.lab import Lab

    assert shutil.which("openssl"), "openssl is part of the test machine's setup"
    with Lab(1, tmp_path / "lab", installed=True, tick_interval=0.1) as lab:
        node = lab.nodes[0]
        deadline = time.monotonic() + 10
        while not node.server.running:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        command = s_client_command("127.0.0.1", node.server.port)
        out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, check=False)
        pem = first_certificate(out.stdout)
        assert pem is not None, out.stdout + out.stderr
        seen = tls_fingerprint(ssl.PEM_cert_to_DER_cert(pem))
        assert seen == fetch_certificate("127.0.0.1", node.server.port).fingerprint
        # The lab node's own answer to the same command line reads the same way.
        code, lab_out, _ = node.ssh.shell.run(command)
        lab_pem = first_certificate(lab_out)
        assert code == 0 and lab_pem is not None
        assert tls_fingerprint(ssl.PEM_cert_to_DER_cert(lab_pem)) == seen


@pytest.mark.timeout(240)
@pytest.mark.parametrize("variant", [1, 2, 3])
def test_a_leader_without_openssl_leaves_it_to_the_cluster_through_the_kubeconfig(tmp_path: Path, variant: int) -> None:
    """Wherever the variant keeps the console's certificate, the cluster's TLS secrets hold it."""
    with Rehearsal(tmp_path / "rehearsal", nodes=1, speed=300, lab=quick(f"variant={variant}")) as rehearsal:
        vip, port = _console(rehearsal)
        assert rehearsal.lab is not None and rehearsal.console is not None
        rehearsal.lab.nodes[0].ssh.shell.extra.pop("openssl")
        code, text = _run(rehearsal)
        assert code == ExitCode.DONE, text[-4000:]
        pin = TrustStore(rehearsal.paths.config).pinned(TrustKind.TLS, vip, port)
        genuine = rehearsal.console.certificate.fingerprint
    assert pin is not None and pin["fingerprint"].replace(":", "").lower() == genuine.replace(":", "").lower()
    assert pin["how"] == (
        "verified: the cluster (its TLS secrets, read with the saved admin kubeconfig) holds the same certificate"
    )


@pytest.mark.timeout(240)
def test_an_interceptor_is_not_vouched_for_by_the_cluster(tmp_path: Path) -> None:
    with Rehearsal(tmp_path / "rehearsal", nodes=1, speed=300, lab=quick(), console_intercepted=True) as rehearsal:
        vip, port = _console(rehearsal)
        assert rehearsal.lab is not None and rehearsal.console is not None
        rehearsal.lab.nodes[0].ssh.shell.extra.pop("openssl")
        code, text = _run(rehearsal)
        assert code == ExitCode.INSTALL_FAILED, text[-4000:]
        assert "Fingerprint not confirmed" in text and "is the one presented" in text
        assert TrustStore(rehearsal.paths.config).pinned(TrustKind.TLS, vip, port) is None
        assert rehearsal.console.state.admin_email == "", "no credential reached the impostor"
