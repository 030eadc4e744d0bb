"""A pack bundle whose upload fails on the node is sent again and ends in the registry; the queue goes on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.quickboot import quick
from wizard.core.runner import Event, ExitCode, StepFinished
from wizard.install.session import Session
from wizard.rehearsal import Rehearsal

pytestmark = [pytest.mark.flow, pytest.mark.lab]

UPLOAD = "/v1/edge-mgmt/edgehosts/current/actions/upload-content"


@pytest.mark.timeout(180)
def test_a_failed_pack_upload_is_retried(tmp_path: Path) -> None:
    with Rehearsal(tmp_path / "rehearsal", nodes=1, speed=600, lab=quick()) as rehearsal:
        assert rehearsal.lab is not None
        leader = rehearsal.lab.nodes[0]

        def on_event(event: Event) -> None:
            rehearsal.on_event(event)
            if isinstance(event, StepFinished) and event.step == "cluster":
                leader.state.upload_errors = 1  # the first pack's upload arrives whole, then the node fails it

        session = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
        code = session.engine(steps=rehearsal.steps(), on_event=on_event).run()
        assert code is ExitCode.DONE, session.journal.path.read_text()[-3000:]
        uploads = [line.split()[-1] for line in leader.logs.audit_log().splitlines() if f"POST {UPLOAD} " in line]
        packs = [j for j in session.journal.snapshot()["jobs"] if j.startswith("packs/") and j != "packs/registry-sync"]
        # The content bundle, then the first pack twice (500, then stored), then the other packs once each.
        assert uploads == ["201", "500"] + ["201"] * len(packs), uploads
        assert leader.state.upload_errors == 0
        for job in packs:
            facts = session.journal.result(job)
            assert facts["uploaded"] is True and facts["registry_name"]
        assert session.journal.result("packs/registry-sync") is not None
