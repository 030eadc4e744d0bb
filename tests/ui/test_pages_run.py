"""The pages that follow a run: Preflight, Install, Bundles, Cluster, Activation and Summary."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QComboBox, QLineEdit, QPlainTextEdit
from pytestqt.qtbot import QtBot

from tests.ui.helpers import PacedJob, valid_doc, write_project
from wizard.core.cancel import CancelToken
from wizard.core.checks.catalog import CheckResult, failed, passed
from wizard.core.checks.report import CheckReport
from wizard.core.errors import WizardError
from wizard.core.jobs import Job, Step, StepContext
from wizard.core.journal import journal_path, project_id
from wizard.core.paths import app_paths
from wizard.core.progress import Reporter, TaskStatus
from wizard.core.project import SecretRef
from wizard.core.runner import ExitCode, JobFinished
from wizard.core.secrets import SecretStore
from wizard.install.steps import pipeline
from wizard.install.steps.preflight import report_paths
from wizard.ui.pages.cluster import Variable
from wizard.ui.pages.live import BAR_SCALE
from wizard.ui.pages.summary import support_bundle_builder
from wizard.ui.shell import MainWindow

pytestmark = pytest.mark.ui

MakeWindow = Callable[..., MainWindow]


def _finished(qtbot: QtBot, window: MainWindow, timeout: int = 60_000) -> ExitCode:
    qtbot.waitUntil(lambda: window.run.last_result is not None and not window.controller.running, timeout=timeout)
    result = window.run.last_result
    assert result is not None
    return result.exit_code


# -- preflight ---------------------------------------------------------------------------------------------------


def test_preflight_page_runs_the_checks_and_shows_what_the_engine_reported(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path
) -> None:
    window = make_window()
    window.open_project(project_file)
    assert window.go_to(MainWindow.PREFLIGHT)  # never run: nothing blocks yet (the install runs the checks first)
    page = window.preflight
    assert page.rows == [] and "No results yet" in page.summary.text()
    qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    assert window.controller.until == "preflight" and not page.run_button.isEnabled()
    assert _finished(qtbot, window) is ExitCode.DONE
    report_json, report_html = report_paths(journal_path(app_paths().state, project_id(project_file, "palette-mgmt")))
    results = json.loads(report_json.read_text())["results"]
    assert len(page.rows) == len(results) > 5
    assert {(r.check, r.target) for r in page.rows} == {(r["check"], r["target"]) for r in results}
    assert page.bar.value() == BAR_SCALE and page.report_button.isEnabled() and report_html.exists()
    assert page.summary.text()[0] in "✓⚠" and "0 blocker(s)" in page.summary.text()
    assert "nothing blocks" in page.status.text() and page.status.accessibleName() == page.status.text()
    assert window.next_button.isEnabled() and page.is_done()
    # The Run and Summary pages followed the run and say how far it went.
    assert "up to preflight" in window.run.outcome.text() and not window.run.is_done()
    assert "stopped after the preflight step" in window.summary.outcome.text() and not window.summary.is_done()


def _write_report(project_file: Path, results: list[CheckResult]) -> Path:
    journal = journal_path(app_paths().ensure().state, project_id(project_file, "palette-mgmt"))
    report_json, _ = report_paths(journal)
    report_json.parent.mkdir(parents=True, exist_ok=True)
    report_json.write_text(CheckReport(tuple(results), (), "palette-mgmt").to_json())
    return journal


def test_blockers_gate_next_and_link_to_their_page_while_warnings_are_overridden_with_a_reason(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path
) -> None:
    journal = _write_report(
        project_file,
        [
            passed("host.free-space", "enough space", "state"),
            failed("files.signed", "no signature for the ISO", "files.iso"),
            failed("net.vip-free", "127.0.10.50 answers ping", "VIP (127.0.10.50)"),
        ],
    )
    window = make_window()
    window.open_project(project_file)
    assert window.go_to(MainWindow.PREFLIGHT)
    page = window.preflight
    assert [(r.check, r.blocking, r.open_warning) for r in page.rows] == [
        ("net.vip-free", True, False),
        ("files.signed", False, True),
        ("host.free-space", False, False),
    ]
    assert page.blockers() == ["1 preflight blocker(s) to fix"] and not window.next_button.isEnabled()
    # The run can be looked at (its Start runs the checks again first); the pages that set it up further cannot.
    assert window.reachable(MainWindow.RUN) and not window.reachable(MainWindow.CLUSTER)
    assert page.summary.tone.value == "error"

    page.table.selectRow(0)  # the blocker: cannot be overridden, but its page is one click away
    assert "cannot be overridden" in page.detail.text() and "What to do:" in page.detail.text()
    assert not page.reason_edit.isEnabled() and not page.override_button.isEnabled()
    assert page.table.item(0, 6).text() == "Network"
    qtbot.mouseClick(page.fix_button, Qt.MouseButton.LeftButton)
    assert window.current == MainWindow.NETWORK

    window.go_to(MainWindow.PREFLIGHT)
    page.table.selectRow(1)
    assert page.reason_edit.isEnabled() and not page.override_button.isEnabled()  # a reason is required
    qtbot.keyClicks(page.reason_edit, "the ISO came from our signed mirror")
    qtbot.mouseClick(page.override_button, Qt.MouseButton.LeftButton)
    overrides = json.loads(journal.read_text())["overrides"]
    assert [(o["check"], o["reason"]) for o in overrides] == [("files.signed", "the ISO came from our signed mirror")]
    row = next(r for r in page.rows if r.check == "files.signed")
    assert row.overridden == "the ISO came from our signed mirror" and not row.open_warning
    assert page.blockers() == ["1 preflight blocker(s) to fix"]  # the blocker still blocks

    # The operator frees the VIP and the checks pass: Next opens; the override is read back from the journal.
    _write_report(
        project_file,
        [passed("net.vip-free", "free", "VIP"), failed("files.signed", "no signature for the ISO", "files.iso")],
    )
    window.go_to(MainWindow.NETWORK)
    window.go_to(MainWindow.PREFLIGHT)
    assert page.blockers() == [] and window.next_button.isEnabled()
    assert next(r for r in page.rows if r.check == "files.signed").overridden
    assert "1 overridden" in page.summary.text()


# -- install monitor with a failing node and Retry -----------------------------------------------------------------


class _NodeInstall(Job):
    def __init__(self, node: str, marker: Path | None) -> None:
        self.id = f"install/{node}"
        self.name = "Install"
        self.node = node
        self._marker = marker

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any]:
        for i in range(1, 11):
            cancel.sleep(0.03)
            report.update(i / 10, f"Installing: stage {i} of 10")
            if i == 5 and self._marker is not None and not self._marker.exists():
                self._marker.touch()  # fails once; the retry finds the marker and goes on
                raise WizardError("Install failed", f"{self.node}: the installer stopped", remediation="retry")
        return {"stages": 10}


class _InstallStep(Step):
    id = "install"
    title = "Install the nodes"
    parallel = 4

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def jobs(self, ctx: StepContext) -> list[Job]:
        return [_NodeInstall(n.name, self.marker if n.name == "node-2" else None) for n in ctx.project.nodes]


def test_install_page_shows_each_node_and_retries_the_failed_one(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path, tmp_path: Path
) -> None:
    window = make_window(steps=lambda: [_InstallStep(tmp_path / "failed-once")])
    window.open_project(project_file)
    page = window.install
    assert page.table.rowCount() == 3 and page.table.item(0, 0).text() == "node-1"
    window.go_to(MainWindow.RUN)
    qtbot.mouseClick(window.run.start_button, Qt.MouseButton.LeftButton)
    window.go_to(MainWindow.INSTALL)
    assert _finished(qtbot, window) is ExitCode.INSTALL_FAILED
    assert page.failed_nodes == {"node-2"}
    bar1, bar2 = page.bar("node-1"), page.bar("node-2")
    assert bar1 is not None and bar1.value() == BAR_SCALE
    assert bar2 is not None and 0 < bar2.value() < BAR_SCALE
    assert page.table.item(1, 6).text() == "✗ Failed" and page.table.item(0, 6).text() == "✓ Done"
    assert not window.run.error_panel.isHidden() and "Install failed" in window.run.error_panel.title_label.text()
    page.table.selectRow(1)
    assert page.log_title.text() == "Log of node-2"
    log = page.log.toPlainText().splitlines()
    assert "[Install]" in log[0] and "%  Installing: stage " in log[0]
    assert "[Install]" in log[-1] and log[-1].endswith("%  node-2: the installer stopped")
    assert page.retry_button.isEnabled()

    qtbot.mouseClick(page.retry_button, Qt.MouseButton.LeftButton)
    assert _finished(qtbot, window) is ExitCode.DONE
    assert page.failed_nodes == set() and not page.retry_button.isEnabled()
    assert all((b := page.bar(n)) is not None and b.value() == BAR_SCALE for n in ("node-1", "node-2", "node-3"))
    assert page.table.item(0, 6).text() == "✓ Done before" and page.table.item(1, 6).text() == "✓ Done"
    assert page.is_done() and "installed" in page.announcer.text()
    assert page.announcer.accessibleName() == page.announcer.text()


# -- bundles and summary -------------------------------------------------------------------------------------------


class _ContentStep(Step):
    """Two uploads one after the other, like the content and pack bundles."""

    id = "content"
    title = "Upload the content bundle"
    parallel = 1

    def jobs(self, ctx: StepContext) -> list[Job]:
        return [
            PacedJob("content/bundle", "content.tar.zst", "", 0.6, total=64 * 1024 * 1024),
            PacedJob("content/packs", "packs.zst", "", 0.6, total=16 * 1024 * 1024),
        ]


def test_bundles_queue_progress_and_the_summary_after_a_finished_run(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path
) -> None:
    window = make_window(steps=lambda: [*pipeline(until="preflight"), _ContentStep()])
    window.open_project(project_file)
    window.go_to(MainWindow.RUN)
    qtbot.mouseClick(window.run.start_button, Qt.MouseButton.LeftButton)
    page = window.bundles
    assert window.go_to(MainWindow.BUNDLES)  # a hidden page draws nothing until it is shown
    qtbot.waitUntil(lambda: page.table.rowCount() == 2 and (page.bar("content/bundle") or page.overall).value() > 0)
    assert page.table.item(1, 1).text() == "○ Queued"  # one at a time: the second waits
    assert _finished(qtbot, window) is ExitCode.DONE
    assert page.overall.value() == BAR_SCALE and page.is_done()
    assert all((b := page.bar(k)) is not None and b.value() == BAR_SCALE for k in ("content/bundle", "content/packs"))
    assert page.table.item(0, 3).text() == "64.0 MiB / 64.0 MiB"
    assert "uploaded" in page.summary.text()

    summary = window.summary
    assert window.go_to(MainWindow.SUMMARY)
    assert summary.is_done() and summary.outcome.text().startswith("✓ Palette is installed")
    urls = [u for _, u in summary.urls_list()]
    assert urls == ["https://127.0.10.50/system", *(f"https://127.0.10.1{i}:5080/" for i in (1, 2, 3))]
    reports = summary.reports()
    # Listed, but "Open the run report" opens the run's own report only, which the validate step writes.
    assert [p.name for p in reports] == ["preflight-report.html"] and not summary.report_button.isEnabled()
    assert not summary.kubeconfig_button.isEnabled()  # no cluster step ran: no kubeconfig
    assert summary.support_button.isEnabled() == (support_bundle_builder() is not None)
    if support_bundle_builder() is not None:
        target = project_file.parent / "support.zip"
        summary.choose_bundle_path = lambda: target  # type: ignore[method-assign]
        qtbot.mouseClick(summary.support_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: summary.support_result.tone.value != "info", timeout=120_000)
        assert summary.support_result.tone.value == "success", summary.support_result.text()
        assert summary.exported == target and zipfile.is_zipfile(target)
    copy = summary.urls_box.findChildren(type(summary.report_button))[0]
    qtbot.mouseClick(copy, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == "https://127.0.10.50/system"


# -- cluster variables and activation ------------------------------------------------------------------------------


def test_cluster_form_is_generated_from_the_profile_variables(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path
) -> None:
    doc = valid_doc(cluster={"variables": {"domain": "example.com"}})
    window = make_window()
    window.open_project(write_project(tmp_path, doc))
    page = window.cluster
    assert list(page.fields) == ["domain"] and page.fields["domain"].edit.text() == "example.com"
    page.set_variables(
        [
            Variable("domain", "Domain (domain)", required=True, regex=r"[a-z0-9.-]+"),
            Variable("replicas", "Replicas", default="3", required=True),
            Variable("registry_password", "Registry password", required=True, sensitive=True),
        ]
    )
    assert list(page.fields) == ["domain", "replicas", "registry_password"]
    assert page.fields["replicas"].edit.placeholderText() == "default: 3"
    assert page.fields["registry_password"].edit.echoMode() is page.fields["registry_password"].edit.EchoMode.Password
    assert page.blockers() == ["Registry password: required: type it to store it in the keyring"]
    domain = page.fields["domain"]
    domain.edit.selectAll()
    qtbot.keyClicks(domain.edit, "Bad_Domain")
    assert window.document.get(("cluster", "variables", "domain")) == "Bad_Domain"
    assert not domain.message.isHidden() and "pattern" in domain.message.text()
    secret = page.fields["registry_password"]
    qtbot.keyClicks(secret.edit, "a-registry-password")
    assert secret.again is not None  # a new password: typed twice before it is stored
    qtbot.keyClicks(secret.again, "a-registry-passwort")
    secret.again.editingFinished.emit()
    assert "differ" in secret.message.text()
    assert not isinstance(window.document.get(("cluster", "secret_variables", "registry_password")), dict)
    secret.again.clear()
    qtbot.keyClicks(secret.again, "a-registry-password")
    secret.again.editingFinished.emit()
    qtbot.waitUntil(lambda: isinstance(window.document.get(("cluster", "secret_variables", "registry_password")), dict))
    assert window.document.get(("cluster", "secret_variables", "registry_password")) == {
        "secret": "cluster-registry_password"
    }
    assert SecretStore().get(SecretRef("cluster-registry_password")) == "a-registry-password"
    assert page.fields["registry_password"].edit.text() == ""  # the value left the window
    assert "Stored in the keyring as cluster-registry_password" in secret.message.text()
    assert [b.split(":")[0] for b in page.blockers()] == ["Domain (domain)"]
    domain.edit.selectAll()
    qtbot.keyClicks(domain.edit, "palette.example.com")
    assert page.blockers() == [] and page.is_done()
    assert all(f.edit.accessibleName() for f in page.fields.values())


def test_activation_page_shows_the_product_setup_id_and_copies_it(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path
) -> None:
    window = make_window()
    window.open_project(project_file)
    page = window.activation
    assert not page.copy_button.isEnabled()
    page.event_received(
        JobFinished(
            "activate",
            "activate/palette",
            "Activation",
            "",
            TaskStatus.DONE,
            result={"product_setup_id": "6543210fedcba", "deferred": True, "trial_ends": "2026-12-24"},
        )
    )
    assert page.id_edit.text() == "6543210fedcba" and page.copy_button.isEnabled()
    assert "trial ends 2026-12-24" in page.outcome.text() and page.is_done()
    qtbot.mouseClick(page.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == "6543210fedcba"
    assert page.announcer.accessibleName() == "Product Setup ID copied"


def test_the_summary_names_the_edition_the_appliance_step_read(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path
) -> None:
    window = make_window()
    window.open_project(project_file)
    summary = window.summary
    assert summary.product() == "Palette" and not summary.appliance_label.isVisibleTo(summary)
    facts = {"label": "VerteX 4.9.44", "product": "VerteX", "version": "4.9.44", "edition": "vertex"}
    result = {"appliance": facts}
    summary._event(JobFinished("appliance", "appliance/identify", "Appliance", "", TaskStatus.DONE, None, result))
    assert summary.appliance_label.text() == "Appliance: VerteX 4.9.44"
    assert summary.urls_box.title() == "Where VerteX is"
    assert summary.urls_list()[0][0] == "VerteX system console"


REPLICAS = (("1", "One"), ("3", "3"))
REGISTRY = "Registry Options"


def test_cluster_form_follows_the_appliance_description(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path
) -> None:
    """Sections as the appliance groups them, a choice of options, several lines, a fixed and a hidden value."""
    doc = valid_doc(cluster={"variables": {"replicas": "2"}})
    window = make_window()
    window.open_project(write_project(tmp_path, doc))
    page = window.cluster
    page.set_variables(
        [
            Variable("cidr", "Pod CIDR", default="100.64.0.0/18", section="Cluster Profile Options"),
            Variable(
                "replicas", "Mongo Replicas", "3", input_type="dropdown", options=REPLICAS, section="Registry Options"
            ),
            Variable("rules", "Image Replacement Rules", input_type="multiline", section="Registry Options"),
            Variable("root", "Root Domain", default="{{vip}}", immutable=True, section="Registry Options"),
            Variable("port", "Registry Port", default="30003", hidden=True, section="Registry Options"),
        ]
    )
    assert list(page.section_boxes) == ["Cluster Profile Options", "Registry Options"]
    assert "port" not in page.fields and "1 hidden variable(s) keep the profile's values." in page.empty.text()
    replicas = page.fields["replicas"]
    assert isinstance(replicas.edit, QComboBox) and replicas.edit.currentIndex() == -1  # "2" is no option
    assert page.blockers() == ["Mongo Replicas: 2 is not one of the options (1, 3)"]
    replicas.edit.setCurrentIndex(0)
    assert window.document.get(("cluster", "variables", "replicas")) == "1"
    replicas.edit.setCurrentIndex(1)  # the default: no answer needed in the project
    assert window.document.get(("cluster", "variables", "replicas")) is None
    rules = page.fields["rules"]
    assert isinstance(rules.edit, QPlainTextEdit)
    rules.edit.setPlainText("all: 10.0.0.10:30003/spectro-content\nghcr.io: 10.0.0.10:30003/ghcr")
    assert window.document.get(("cluster", "variables", "rules")).count("\n") == 1
    root = page.fields["root"]
    assert isinstance(root.edit, QLineEdit) and root.edit.isReadOnly() and root.edit.text() == "{{vip}}"
    window.document.set(("cluster", "variables", "root"), "palette.example.com")
    page.validate()
    assert page.blockers() == ["Root Domain: fixed by the profile to {{vip}}: remove the answer from the project"]
    assert all(f.edit.accessibleName() for f in page.fields.values())
