"""The operator's certificate for the system console: installed as an install option, as a day-2 action
(``palette-wizard certificates``), and again after an upgrade that lost it; each time seen served at the VIP and
pinned as the operator's own."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest

from tests.core.helpers import cli_env, json_events, run_cli
from tests.integration.kept import install_kept, run_day2
from wizard.core.jobs import Step
from wizard.core.runner import ExitCode
from wizard.core.trust import TrustKind, TrustStore, fetch_certificate, tls_fingerprint
from wizard.install.upgrade import UpgradeBundle, upgrade_pipeline
from wizard.lab.certs import create_node_certificate
from wizard.rehearsal import CONSOLE_DOMAIN, Rehearsal, pacing_for

pytestmark = [pytest.mark.upgrade, pytest.mark.lab, pytest.mark.flow]


def _fingerprint(cert: Path) -> str:
    return tls_fingerprint(ssl.PEM_cert_to_DER_cert(cert.read_text()))


def _served(rehearsal: Rehearsal) -> str:
    assert rehearsal.console is not None
    return fetch_certificate(rehearsal.console.host, rehearsal.console.port).fingerprint


@pytest.mark.timeout(180)
def test_the_install_option_puts_the_operator_certificate_in_and_pins_it(tmp_path: Path) -> None:
    folder = install_kept(tmp_path / "r", knobs="version=4.9.38,console-certificate=on")
    cert = folder / "files" / "certificates" / "console.crt"
    journal = next((folder / "home" / "state" / "sessions").glob("*.json"))
    result = json.loads(journal.read_text())["jobs"]["console/certificate"]["result"]
    assert result["applied"] is True and result["domain"] == CONSOLE_DOMAIN
    assert result["fingerprint"] == _fingerprint(cert) and result["warnings"] == []
    with Rehearsal.reopen(folder) as rehearsal:  # the kept console still serves it
        assert _served(rehearsal) == _fingerprint(cert)
        assert rehearsal.console is not None and rehearsal.console.state.domain.root_domain == CONSOLE_DOMAIN
        pin = TrustStore(rehearsal.paths.config).pinned(TrustKind.TLS, rehearsal.console.host, rehearsal.console.port)
    assert pin is not None and pin["fingerprint"] == _fingerprint(cert)
    assert pin["how"].startswith("the operator's own certificate (console.crt), installed by the wizard")


@pytest.mark.timeout(180)
def test_certificates_as_a_day_2_action_through_the_cli(tmp_path: Path) -> None:
    folder = install_kept(tmp_path / "r")
    files = folder / "files" / "certificates"
    env = cli_env(tmp_path / "home")
    base = ["certificates", str(folder / "project.yaml"), "--cert", str(files / "console.crt")]
    # A key that is not the certificate's: refused before anything is sent (exit 2), naming the option and the fix.
    wrong = run_cli([*base, "--key", str(files / "ca.crt"), "--domain", CONSOLE_DOMAIN], env)
    assert wrong.returncode == int(ExitCode.INVALID_INPUT), wrong.stdout[-2000:]
    assert "--key:" in wrong.stdout and "is not a PEM private key" in wrong.stdout
    good = [*base, "--key", str(files / "console.key"), "--ca", str(files / "ca.crt"), "--domain", CONSOLE_DOMAIN]
    out = run_cli([*good, "--json"], env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    done = {e["job"]: e["result"] for e in json_events(out.stdout) if e["event"] == "job_finished"}
    assert done["console/certificate"]["applied"] is True
    assert done["console/certificate"]["names"] == [CONSOLE_DOMAIN, "127.0.10.10"]
    with Rehearsal.reopen(folder) as rehearsal:
        assert _served(rehearsal) == _fingerprint(files / "console.crt")
        assert rehearsal.console is not None
        settings = rehearsal.console.state.domain.get()
        assert settings["rootDomain"] == CONSOLE_DOMAIN and "keyBase64" not in settings["certificates"]
    # Without a domain the command says the address stays an IP (backup and restore need an FQDN), and goes on.
    again = run_cli([*base, "--key", str(files / "console.key")], env)
    assert again.returncode == 0 and "backup and restore need it to be an FQDN" in again.stderr


@pytest.mark.timeout(180)
def test_an_upgrade_puts_a_lost_certificate_back(tmp_path: Path) -> None:
    """Custom certificates are lost on upgrades from 4.8.47 up to 4.9.14. The lab cannot update from those releases
    (their trimmed API lacks the archive update), so the certificate is taken away by hand once the update ran."""
    folder = install_kept(tmp_path / "r", knobs="version=4.9.38,console-certificate=on")
    cert = folder / "files" / "certificates" / "console.crt"
    with Rehearsal.reopen(folder) as rehearsal:
        server = rehearsal.console
        assert server is not None and rehearsal.upgrade_bundle is not None
        bundle = UpgradeBundle.at(rehearsal.upgrade_bundle)
        steps = upgrade_pipeline(bundle, pacing_for(rehearsal.speed))
        code, jobs, _ = run_day2(rehearsal, "upgrade", bundle.key, steps[: steps.index(_step(steps, "follow")) + 1])
        assert code is ExitCode.DONE and jobs["update/follow"].result["version"] == "4.9.44"
        own = create_node_certificate(tmp_path / "self-signed", ip=server.host, hostname="palette")
        server.stop()
        server.certificate = own  # the updated console serves a self-signed certificate again
        server.state.domain.custom = None
        server.start()
        assert _served(rehearsal) == tls_fingerprint(ssl.PEM_cert_to_DER_cert(own.cert_path.read_text()))
        code, jobs, _ = run_day2(rehearsal, "upgrade", bundle.key, steps)  # the same session goes on
        assert code is ExitCode.DONE, {j: e.error for j, e in jobs.items() if e.error}
        assert jobs["update/follow"].status.value == "skipped"
        assert jobs["console/certificate"].result["applied"] is True
        assert _served(rehearsal) == _fingerprint(cert)
        # Where the upgrade kept it, the step finds it served and installs nothing.
        code, jobs, _ = run_day2(
            rehearsal, "upgrade", f"{bundle.key}-again", [*steps[:2], _step(steps, "certificates")]
        )
        assert code is ExitCode.DONE and jobs["console/certificate"].result["applied"] is False


def _step(steps: list[Step], step_id: str) -> Step:
    return next(s for s in steps if s.id == step_id)
