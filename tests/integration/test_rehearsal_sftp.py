"""The whole rehearsal with ``files.transfer: sftp``: the content bundle and every pack bundle staged onto the leader
over SFTP (as the wizard's own seeded key) and submitted from the node to its own Local UI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.quickboot import quick
from wizard.core.runner import ExitCode
from wizard.install.session import Session
from wizard.rehearsal import Rehearsal

pytestmark = [pytest.mark.flow, pytest.mark.lab]


@pytest.mark.timeout(180)
def test_rehearsal_with_sftp_staging(tmp_path: Path) -> None:
    with Rehearsal(tmp_path / "rehearsal", nodes=1, speed=600, lab=quick()) as rehearsal:
        doc = yaml.safe_load(rehearsal.project_file.read_text())
        doc["files"]["transfer"] = "sftp"
        rehearsal.project_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        session = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
        code = session.engine(steps=rehearsal.steps(), on_event=rehearsal.on_event).run()
        assert code is ExitCode.DONE, session.journal.path.read_text()[-3000:]
        journal = session.journal
        content = journal.result("content/upload")
        assert content["transfer"] == "sftp" and content["uploaded"] is True
        # The rehearsal's bundles are a few MiB: the built-in client carries them, since starting ssh would cost
        # more than it saves (Tuning.openssh_from); bigger ones go through the jump host's ssh (test_staging).
        assert content["staging_client"] == "paramiko"
        packs = [j for j in journal.snapshot()["jobs"] if j.startswith("packs/") and j != "packs/registry-sync"]
        assert packs and all(journal.result(j)["transfer"] == "sftp" for j in packs)
        assert rehearsal.lab is not None
        leader = rehearsal.lab.nodes[0]
        uploaded = leader.state.uploaded
        assert uploaded is not None and uploaded.sha256 == journal.result(packs[-1])["sha256"]
        staged = leader.state.data_dir.parent / "home"
        # Nothing is left staged on the node once submitted (the default keeps no copy).
        assert not [p for p in staged.rglob("*") if p.is_file() and p.suffix in (".zst", ".part")]
