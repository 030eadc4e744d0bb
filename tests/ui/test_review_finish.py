"""Before Start and after the end: the Review page lists what the project will touch and Start waits for its
confirmation; the Summary's Finish closes and its links carry their ports, open the run report, and say so when the
desktop has nothing to open them with; the manual boot checklist says what to do on each node and ticks it off."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from tests.ui.helpers import valid_doc, write_project
from wizard.core.progress import Progress, ProgressSnapshot, TaskStatus
from wizard.core.report import REPORT_HTML
from wizard.core.runner import ExitCode, RunFinished
from wizard.providers.manual import instruction, seed_instruction
from wizard.ui.bridge import RunController
from wizard.ui.pages.install import InstallPage
from wizard.ui.shell import MainWindow

pytestmark = pytest.mark.ui

MakeWindow = Callable[..., MainWindow]


def redfish_doc() -> dict[str, object]:
    doc = valid_doc()
    doc["provider"] = {"type": "redfish"}
    for i, node in enumerate(doc["nodes"], 1):  # type: ignore[attr-defined]
        node["bmc"] = {"address": f"10.20.0.{i}", "username": "root", "password": {"secret": "bmc-root"}}
    doc["appliance"] = {"password": {"secret": "node-password"}, "data_disk": "/dev/nvme1n1"}
    return doc


def test_the_review_lists_what_the_install_touches_and_start_waits_for_it(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path
) -> None:
    window = make_window()
    path = write_project(tmp_path, redfish_doc())
    window.open_project(path)
    review = window.review
    review.confirm_box.setChecked(False)  # the window's fixture confirms for the other tests; here it is asked
    assert not review.confirmed()
    lines = review.lines()
    assert any("BMC" in line and "restarts the machine" in line and "node-3 (BMC 10.20.0.3)" in line for line in lines)
    erase = next(t for t in review.touches if t.destructive)
    assert "/dev/nvme1n1" in erase.what and "node-1 (127.0.10.11)" in erase.items
    assert any("Replaces the default password" in line for line in lines)
    assert any("127.0.10.50" in line and "management cluster" in line for line in lines)

    # Start goes to the review first, and nothing runs until it is confirmed.
    window.go_to(MainWindow.RUN)
    assert "confirm" in window.run.review_label.text()
    window.run.start_button.click()
    assert window.current == MainWindow.REVIEW and not window.controller.running
    review.confirm_box.click()
    assert review.confirmed() and review.is_done()
    window.go_to(MainWindow.RUN)
    assert window.run.review_label.text().startswith("✓")
    # The list changes with the project: the confirmation was for the old one.
    window.document.set(("appliance", "data_disk"), "/dev/sdc")
    assert window.save()
    assert not review.confirmed() and any("/dev/sdc" in t.what for t in review.touches if t.destructive)


def test_the_summary_finishes_and_its_links_and_files_open(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path
) -> None:
    doc = valid_doc()
    doc["console"] = {"email": "admin@example.com", "password": {"secret": "console"}, "port": 8443}
    window = make_window()
    window.open_project(write_project(tmp_path, doc))
    summary = window.summary
    assert summary.urls_list()[0][1] == "https://127.0.10.50:8443/system"  # the console's port is kept
    assert summary.urls_list()[1][1] == "https://127.0.10.11:5080/"
    opened: list[str] = []
    summary.open_url = lambda url: opened.append(url.toLocalFile()) or True  # type: ignore[method-assign]
    assert summary.session_dir is not None
    summary.session_dir.mkdir(parents=True)
    for name in ("postboot-report.html", "preflight-report.html", REPORT_HTML):
        (summary.session_dir / name).write_text("<html></html>")
    (summary.session_dir / "kubeconfig").write_text("apiVersion: v1\n")
    window.go_to(MainWindow.SUMMARY)
    # The run's own report opens, not the post-boot one that sorts first by name.
    assert summary.report_button.isEnabled()
    summary.report_button.click()
    assert opened == [str(summary.session_dir / REPORT_HTML)]
    summary.kubeconfig_copy.click()
    assert QGuiApplication.clipboard().text() == str(summary.session_dir / "kubeconfig")
    # Nothing to open it with: said, and the path is offered instead.
    summary.open_url = lambda url: False  # type: ignore[method-assign]
    summary.report_button.click()
    assert summary.open_result.isVisible() and "nothing to open" in summary.open_result.text()
    assert QGuiApplication.clipboard().text() == str(summary.session_dir / REPORT_HTML)

    # The last page's button is Finish, and it closes the window; a second way out is not offered.
    assert window.next_button.text() == "&Finish" and window.next_button.isEnabled()
    assert not window.cancel_button.isVisible()
    window.next_button.click()
    qtbot.waitUntil(lambda: not window.isVisible())


def test_after_a_failed_run_the_summary_and_support_are_reachable(
    qtbot: QtBot, make_window: MakeWindow, project_file: Path
) -> None:
    window = make_window()
    window.open_project(project_file, goto=MainWindow.RUN)
    error = {"title": "Install failed", "message": "node-2: the installer stopped", "remediation": "retry it"}
    window.controller.finished.emit(RunFinished(ExitCode.INSTALL_FAILED, error))
    assert window.go_to(MainWindow.SUMMARY) and "did not finish" in window.summary.outcome.text()
    assert "exit code" not in window.summary.outcome.text()
    window.go_to(MainWindow.NETWORK)  # support from any page: the last error's details
    window.copy_error_details()
    copied = QGuiApplication.clipboard().text()
    assert "Install failed" in copied and "node-2: the installer stopped" in copied and "retry it" in copied
    assert window.notice.isVisible() and "clipboard" in window.notice.text()


class _Controller(RunController):
    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def snapshot(self) -> ProgressSnapshot | None:
        return self.progress.snapshot()


def test_the_manual_boot_checklist_says_what_to_do_on_each_node_and_ticks_it_off(qtbot: QtBot, tmp_path: Path) -> None:
    progress = Progress()
    page = InstallPage(_Controller(progress))
    qtbot.addWidget(page)
    page.resize(500, 600)  # narrow: the instructions wrap, the page does not widen
    page.show()
    nodes = ["node-1", "node-2"]
    page.set_project(tmp_path / "project.yaml", nodes)
    for i, node in enumerate(nodes, 1):
        key = f"boot/{node}"
        progress.add_task(key, node, "boot", node)
        text = instruction(node, f"edge-{node}", f"127.0.10.1{i}", "appliance.iso") + seed_instruction(f"{node}.iso")
        progress.set_status(key, TaskStatus.RUNNING, text)
    page.poll()
    page.draw(progress.snapshot())
    assert page.checklist.isVisible() and set(page.checklist_rows) == set(nodes)
    first = page.checklist_rows["node-1"].text()
    assert first.startswith("☐ node-1 — waiting for you")
    assert "one-time boot device in UEFI mode" in first and "Palette Edge Interactive Installer" in first
    assert "node-1.iso as a second CD/DVD drive" in first  # where the seed goes
    assert page.checklist_rows["node-1"].wordWrap() and page.width() <= 500
    progress.set_status("boot/node-1", TaskStatus.DONE, "node-1 answers on port 22")
    page.draw(progress.snapshot())
    ticked = page.checklist_rows["node-1"].text()
    assert ticked == "☑ node-1 — seen — it answered"  # done with: one line, the waiting node keeps its steps
    assert "Palette Edge Interactive Installer" in page.checklist_rows["node-2"].text()
    page.copy_instructions()
    copied = QGuiApplication.clipboard().text()
    assert copied.startswith("[x] node-1:") and "\n\n[ ] node-2:" in copied


def test_the_install_pages_log_header_names_the_node_clicked(qtbot: QtBot, tmp_path: Path) -> None:
    """The log's header and text follow the row clicked, whichever was selected before."""
    from PySide6.QtCore import Qt

    progress = Progress()
    page = InstallPage(_Controller(progress))
    qtbot.addWidget(page)
    page.resize(800, 600)
    page.show()
    page.set_project(tmp_path / "project.yaml", ["node-1", "node-2", "node-3"])
    for node in ("node-1", "node-2", "node-3"):
        progress.add_task(f"install/{node}", node, "install", node)
        progress.set_status(f"install/{node}", TaskStatus.RUNNING, f"{node} installing")
    page.draw(progress.snapshot())
    for row, node in ((1, "node-2"), (2, "node-3"), (0, "node-1")):
        item = page.table.item(row, 0)
        assert item is not None
        qtbot.mouseClick(page.table.viewport(), Qt.MouseButton.LeftButton, pos=page.table.visualItemRect(item).center())
        assert page.selected_node() == node and page.log_title.text() == f"Log of {node}"
        assert f"{node} installing" in page.log.toPlainText()


def test_a_run_stopped_by_a_missing_secret_says_where_to_enter_it(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, iso: Path
) -> None:
    doc = redfish_doc()
    window = make_window()
    window.open_project(write_project(tmp_path, doc), goto=MainWindow.RUN)
    with qtbot.waitSignal(window.controller.finished, timeout=60_000):
        window.run.start_button.click()
    panel = window.run.error_panel
    assert panel.isVisible()
    shown = "\n".join((panel.title_label.text(), panel.message_label.text(), panel.remediation_label.text()))
    # In the operator's words: the page where the value is typed, rows from 1, no field paths, no exit code.
    assert "Credentials page, row 1, BMC password" in shown and "Credentials page, New appliance password" in shown
    assert "nodes[" not in shown and "appliance.password" not in shown and "exit code" not in shown
    assert "exit code" not in window.run.overall_label.text() and "exit code" not in window.run.activity.toPlainText()
