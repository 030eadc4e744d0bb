"""A support bundle from a rehearsal session: each node's logs come from its Local UI, with every secret masked."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.support.quickboot import quick
from wizard.core.project import SecretRef
from wizard.core.redact import MASK
from wizard.core.runner import ExitCode
from wizard.install.session import Session
from wizard.install.support import build_support_bundle
from wizard.rehearsal import NODE_PASSWORD_KEY, Rehearsal

pytestmark = [pytest.mark.flow, pytest.mark.lab]


@pytest.mark.timeout(180)
def test_support_bundle_holds_each_nodes_logs_redacted(tmp_path: Path) -> None:
    with Rehearsal(tmp_path / "rehearsal", nodes=3, speed=300, lab=quick()) as rehearsal:
        lab = rehearsal.lab
        assert lab is not None
        session = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
        # Up to the password step: the nodes run the installed OS and their default password has been replaced.
        engine = session.engine(steps=rehearsal.steps(until="password"), on_event=rehearsal.on_event)
        assert engine.run() is ExitCode.DONE
        password = rehearsal.secrets.get(SecretRef(NODE_PASSWORD_KEY))
        assert password and lab.nodes[0].state.check_password("kairos", password)
        for node in lab.nodes:
            # Seed the secret where a node really keeps it (its /oem cloud-config, collected by the node's log
            # bundle) and in free text only the known-value masking can catch.
            node.logs.sources["oem/99_userdata.yaml"] = lambda: (
                f"#cloud-config\nstylus:\n  users:\n  - name: kairos\n    passwd: {password}\n"
            )
            node.logs.sources["var/log/operator-notes.log"] = lambda: f"set the account to {password} today\n"

        bundle = build_support_bundle(
            tmp_path / "bundle.zip", paths=rehearsal.paths, secrets=rehearsal.secrets, node_timeout=60, node_poll=0.05
        )

        with zipfile.ZipFile(bundle) as zf:
            names = zf.namelist()
            manifest = json.loads(zf.read("manifest.json"))
            assert [n["node"] for n in manifest["nodes"]] == [n.name for n in lab.nodes]
            assert all(n["problems"] == [] for n in manifest["nodes"]), manifest["nodes"]
            for node in lab.nodes:
                tar_name = f"nodes/{node.name}/{node.name}-logs.tar"
                assert tar_name in names, names
                with tarfile.open(fileobj=io.BytesIO(zf.read(tar_name))) as tar:
                    files = {m.name.split("/", 1)[1]: tar.extractfile(m).read().decode() for m in tar if m.isfile()}  # type: ignore[union-attr]
                # The node's real logs: the installer ran, the installed OS booted, the wizard's calls are audited.
                assert (
                    "Installation finished" in files["usr/local/installer.log"]
                    or "Rebooting" in files["usr/local/installer.log"]
                )
                assert "local UI ready" in files["var/log/stylus-agent.log"]
                # The seed set the operator's password: the wizard's login with it is audited (never the password).
                assert "POST /v1/users/default/login 200" in files["var/log/stylus-audit.log"]
                assert f"passwd: {MASK}" in files["oem/99_userdata.yaml"]
                assert MASK in files["var/log/operator-notes.log"]
                errors = json.loads(zf.read(f"nodes/{node.name}/error-logs.json"))
                assert errors == {"items": []}
                assert node.logs.collections == 1
            for name in names:  # not anywhere, in any member
                assert password.encode() not in zf.read(name), name
