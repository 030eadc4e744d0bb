"""Known secret values never reach a file the wizard writes: logs, journal, saved project, terminal output."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.core.helpers import cli_env, run_cli
from tests.support.projects import appliance_iso, base_doc, signed_iso, write_project
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job, Step, StepContext
from wizard.core.logs import setup_logging
from wizard.core.paths import app_paths
from wizard.core.progress import Reporter
from wizard.core.project import SecretRef, save_project
from wizard.core.runner import ExitCode
from wizard.install.session import Session
from wizard.install.steps import pipeline

SECRETS = {"node-password": "Kx9!node-pass-7781", "bmc-0": "bmc-SECRET-0042", "vc": "vc-Adm1n-pw-5521"}


def scan(folder: Path, skip: set[Path]) -> list[str]:
    hits = []
    for f in folder.rglob("*"):
        if f.is_file() and f not in skip:
            data = f.read_bytes()
            hits += [f"{f}: {name}" for name, value in SECRETS.items() if value.encode() in data]
    return hits


class LeakyJob(Job):
    """Does what careless code might: logs, records and raises with a secret in the text."""

    id = "leak/job"
    name = "leaky"

    def __init__(self, secret: str, facts: Any) -> None:
        self.secret = secret
        self.facts = facts

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any]:
        log = logging.getLogger("wizard.test")
        log.info("connecting with password %s", self.secret)
        log.warning(f"login body {{'password': '{self.secret}'}}")
        try:
            raise RuntimeError(f"auth failed for {self.secret}")
        except RuntimeError:
            log.exception("trace")
        report.update(0.5, f"using {self.secret}")
        self.facts.set("token", f"Authorization: {self.secret}")
        raise WizardError("Login failed", f"rejected {self.secret}", details=f"password={self.secret}")


class LeakyStep(Step):
    id = "leak"
    title = "Leak"

    def jobs(self, ctx: StepContext) -> list[Job]:
        value = ctx.secrets.require(SecretRef("node-password"))
        return [LeakyJob(value, ctx.facts("leak/job"))]


def test_in_process_run_writes_no_secret(tmp_path: Path, wizard_home: Path) -> None:
    _, public = signed_iso(tmp_path, size=1024)
    project_file = write_project(
        tmp_path,
        base_doc(
            files={"iso": "appliance.iso", "public_key": public.name},
            appliance={"password": {"secret": "node-password"}},
        ),
    )
    paths = app_paths().ensure()
    setup_logging(paths.logs)
    session = Session.open(project_file, paths=paths)
    for name, value in SECRETS.items():
        session.secrets.set(SecretRef(name), value)
    code = session.engine(steps=[*pipeline(until="preflight"), LeakyStep()]).run()
    assert code is ExitCode.INSTALL_FAILED
    save_project(session.project, tmp_path / "exported.yaml")
    for h in logging.getLogger().handlers:
        h.flush()
    log_text = (paths.logs / "wizard.log").read_text()
    assert "«redacted»" in log_text and "connecting with password" in log_text, "the log lines must still be there"
    assert scan(wizard_home, set()) == []
    assert scan(tmp_path, set()) == []


def test_cli_run_writes_and_prints_no_secret(tmp_path: Path) -> None:
    appliance_iso(tmp_path / "appliance.iso", 1024)
    doc = base_doc(
        provider={"type": "redfish"},
        files={"iso": "appliance.iso"},
        appliance={"password": {"secret": "node-password"}},
    )
    for i, node in enumerate(doc["nodes"]):
        # Nothing listens on port 9 here: the BMC checks try (with the password in hand) and are refused.
        node["bmc"] = {"address": f"127.0.0.{i + 1}:9", "username": "root", "password": {"secret": "bmc-0"}}
    project_file = write_project(tmp_path, doc)
    home = tmp_path / "home"
    env = cli_env(home)
    for name in ("node-password", "bmc-0"):
        assert run_cli(["secret", "set", name, "--stdin"], env, stdin=SECRETS[name] + "\n").returncode == 0
    out = run_cli(["run", str(project_file), "--until", "preflight", "--json"], env)
    assert out.returncode == 3, out.stdout + out.stderr  # the unreachable BMCs block the install
    assert "redfish.reachable" in out.stdout
    assert not [v for v in SECRETS.values() if v in out.stdout + out.stderr]
    assert scan(home, {home / "keyring.json"}) == []
