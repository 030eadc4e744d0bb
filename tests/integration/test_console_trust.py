"""The system console's certificate, headless: no project can name it (it is made with the cluster) and no one can
be asked, so the leader, over its pinned SSH session, says which certificate it sees at the VIP."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

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
    with Rehearsal(tmp_path / "rehearsal", nodes=1, speed=300) as rehearsal:
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
    with Rehearsal(tmp_path / "rehearsal", nodes=1, speed=300, console_intercepted=True) as rehearsal:
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
    with Rehearsal(tmp_path / "rehearsal", nodes=1, speed=300) as rehearsal:
        vip, port = _console(rehearsal)
        assert rehearsal.lab is not None and rehearsal.console is not None
        rehearsal.lab.nodes[0].ssh.shell.extra.pop("openssl")  # a node without openssl cannot testify
        code, text = _run(rehearsal)
        assert code == ExitCode.INSTALL_FAILED, text[-4000:]
        assert "Fingerprint not confirmed" in text and "openssl is not installed on the node" in text
        assert f"trust add {vip}:{port}" in text
        # The operator checks the fingerprint out of band and pins it; the run then resumes to the end.
        monkeypatch.setenv("PALETTE_WIZARD_HOME", str(rehearsal.paths.config.parent))
        assert cli_main(["trust", "add", f"{vip}:{port}", rehearsal.console.certificate.fingerprint]) == 0
        code, text = _run(rehearsal)
        assert code == ExitCode.DONE, text[-4000:]
        pin = TrustStore(rehearsal.paths.config).pinned(TrustKind.TLS, vip, port)
        assert pin is not None and pin["how"] == "added by the operator (verified out of band)" and pin["pem"]
