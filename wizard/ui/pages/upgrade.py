"""Day 2: upgrade the installed appliance with a newer release's content bundle, reached from Welcome (or after the
Summary) once the project's appliance was installed by this wizard.

The page shows what is known before anything is touched — the release the appliance runs, the one the chosen bundle's
name spells, whether that hop is supported (the refusal spells the path), the signature beside the bundle and the
documented checks the run applies — and runs the upgrade (:mod:`wizard.install.upgrade`) as a session of its own
through the window's run controller, with the same progress model as the install. It never touches the engine from
the GUI thread: the checks shown here are the same pure functions the run applies again.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from functools import partial
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from wizard.appliance.upgrade import CHECKS, path_problem, spell_path, supported_path, version_in_name
from wizard.appliance.versions import Version
from wizard.core.paths import AppPaths
from wizard.core.progress import TaskStatus
from wizard.core.project import Project, signature_beside
from wizard.core.runner import ExitCode, RunFinished
from wizard.install.steps.nodes import Pacing
from wizard.ui.bridge import RunController
from wizard.ui.pages import WizardPage
from wizard.ui.widgets import Banner, ErrorPanel, Tone, button, heading, paragraph

BUNDLE_FILTER = "Content bundle (*.tar.zst *.zst *.tar);;All files (*)"
BAR_SCALE = 1000
MARKS = {
    TaskStatus.DONE: "✓",
    TaskStatus.SKIPPED: "↷",
    TaskStatus.FAILED: "✗",
    TaskStatus.RUNNING: "…",
    TaskStatus.CANCELLED: "■",
}


class UpgradePage(WizardPage):
    title = "Upgrade"

    def __init__(
        self,
        controller: RunController,
        parent: QWidget | None = None,
        *,
        pacing: Pacing | None = None,
        bundle: Path | None = None,
        paths: Callable[[], AppPaths | None] = lambda: None,
    ) -> None:
        """``pacing`` and ``bundle``: a rehearsal's polling and the newer release's bundle it wrote."""
        super().__init__(parent)
        self.controller = controller
        self.pacing = pacing
        self._paths = paths
        self.project_file: Path | None = None
        self.project: Project | None = None
        self.current: str | None = None  # None: not installed by this wizard; "": installed, release unknown
        self.last_result: RunFinished | None = None
        self._ours = False
        self._refused = False

        self.installed_label = paragraph("", self)
        self.installed_label.setAccessibleName(self.tr("Installed release"))
        self.bundle_edit = QLineEdit(self)
        self.bundle_edit.setAccessibleName(self.tr("New content bundle"))
        self.bundle_edit.setPlaceholderText(self.tr("The new release's content bundle (.tar.zst)"))
        self.bundle_edit.textChanged.connect(lambda _text: self._judge())
        self.browse_button = button(self.tr("Bro&wse…"), self.tr("Choose the new content bundle"), self)
        self.browse_button.clicked.connect(self.choose_bundle)
        bundle_label = QLabel(self.tr("New c&ontent bundle:"), self)
        bundle_label.setBuddy(self.bundle_edit)
        self.target_label = paragraph("", self)
        self.target_label.setAccessibleName(self.tr("Target release"))
        self.signature_label = paragraph("", self)
        self.signature_label.setAccessibleName(self.tr("Bundle signature"))
        self.path_banner = Banner(Tone.INFO, self)

        checks_heading = QLabel("<b>{}</b>".format(self.tr("Checked before anything is uploaded")), self)
        items = "".join(f"<li>{html.escape(c.title)}</li>" for c in CHECKS)
        self.checks = QLabel(f"<ul style='margin-left: -20px'>{items}</ul>", self)
        self.checks.setTextFormat(Qt.TextFormat.RichText)
        self.checks.setWordWrap(True)
        self.checks.setAccessibleName(self.tr("Checked before anything is uploaded"))
        checks_heading.setBuddy(self.checks)

        self.start_button = button(self.tr("&Start the upgrade"), self.tr("Start the upgrade"), self)
        self.start_button.setToolTip(
            self.tr("Verify the bundle, check the appliance, back up, upload, apply the update and follow it")
        )
        self.start_button.clicked.connect(self.start)
        self.cancel_button = button(self.tr("Cancel the &upgrade"), self.tr("Cancel the upgrade"), self)
        self.cancel_button.clicked.connect(self.cancel)
        self.overall = QProgressBar(self)
        self.overall.setRange(0, BAR_SCALE)
        self.overall.setAccessibleName(self.tr("Upgrade progress"))
        self.status_label = paragraph("", self)
        self.status_label.setAccessibleName(self.tr("Upgrade status"))
        self.jobs = QListWidget(self)
        self.jobs.setAccessibleName(self.tr("Upgrade steps"))
        self.jobs.setMinimumHeight(120)
        self.done_banner = Banner(Tone.SUCCESS, self)
        self.error_panel = ErrorPanel(self)
        self.error_panel.retry_requested.connect(self.start)

        row = QHBoxLayout()
        row.addWidget(bundle_label)
        row.addWidget(self.bundle_edit, 1)
        row.addWidget(self.browse_button)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.start_button)

        layout = QVBoxLayout(self)
        layout.addWidget(heading(self.tr("Upgrade"), self))
        layout.addWidget(
            paragraph(
                self.tr(
                    "Upgrade the installed appliance with the content bundle of a newer release (Artifact Studio → "
                    "Install Palette → the version → Content bundle). The wizard verifies the bundle's signature, "
                    "refuses a hop the release notes do not support, runs the documented pre-upgrade checks, backs "
                    "up what an upgrade may lose into the session folder, uploads the bundle to the leader, applies "
                    "the update through the Local UI and follows it until the cluster runs the new release. A run "
                    "that stops resumes where it stopped."
                ),
                self,
            )
        )
        layout.addWidget(self.installed_label)
        layout.addLayout(row)
        layout.addWidget(self.target_label)
        layout.addWidget(self.signature_label)
        layout.addWidget(self.path_banner)
        layout.addWidget(checks_heading)
        layout.addWidget(self.checks)
        layout.addLayout(buttons)
        layout.addWidget(self.overall)
        layout.addWidget(self.status_label)
        layout.addWidget(self.jobs, 1)
        layout.addWidget(self.done_banner)
        layout.addWidget(self.error_panel)

        self.timer = QTimer(self)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self.poll)
        controller.running_changed.connect(lambda _running: self._update_buttons())
        controller.finished.connect(self._finished)
        if bundle is not None:
            self.bundle_edit.setText(str(bundle))
        self._judge()

    # -- state ---------------------------------------------------------------------------------------------
    def set_project(self, path: Path | None, project: Project | None = None) -> None:
        self.project_file, self.project = path, project
        self.refresh()

    def refresh(self) -> None:
        """Read again which release the project's appliance runs (after an install or an upgrade)."""
        self.current = None
        if self.project_file is not None:
            from wizard.install.day2 import installed_release

            self.current = installed_release(self.project_file, self._paths())
        if self.project is None:
            self.installed_label.setText(self.tr("Open the project the appliance was installed from."))
        elif self.current is None:
            self.installed_label.setText(
                self.tr("{name} has not been installed by this wizard yet: install it first (Run page).").format(
                    name=self.project.name
                )
            )
        else:
            release = self.current or self.tr("release not recorded")
            self.installed_label.setText(
                self.tr("Installed: {name}, {release}").format(name=self.project.name, release=release)
            )
        self._judge()

    @property
    def installed(self) -> bool:
        return self.current is not None

    def bundle(self) -> Path | None:
        text = self.bundle_edit.text().strip()
        return Path(text).expanduser() if text else None

    def _judge(self) -> None:
        """What is known before the run: the bundle's release, its signature, the hop."""
        bundle = self.bundle()
        self.path_banner.hide()
        self._refused = False
        if bundle is None or not bundle.is_file():
            self.target_label.setText(self.tr("Choose the new release's content bundle."))
            self.signature_label.setText("")
            self._update_buttons()
            return
        target = version_in_name(bundle.name)
        if target is None:
            self.target_label.setText(
                self.tr(
                    "The bundle's name spells no release (no naming scheme is published): the appliance's update "
                    "archive names it after the upload, and the path is checked then."
                )
            )
        else:
            self.target_label.setText(
                self.tr("The bundle's name spells {target}; the update archive confirms it after the upload.").format(
                    target=target
                )
            )
        signature = signature_beside(bundle)
        if signature is not None:
            self.signature_label.setText(
                self.tr("Signature: {name}, verified against the project's public key first.").format(
                    name=signature.name
                )
            )
        else:
            self.signature_label.setText(self.tr("No signature beside the bundle: download its .sig.bin too."))
        current = Version.parse(self.current) if self.current else None
        self._refused = False
        if current is not None and target is not None:
            problem = path_problem(current, target)
            self._refused = problem is not None
            if target == current:  # after an upgrade, or the wrong file: nothing to do, not an error
                self.path_banner.show_text(
                    self.tr("The appliance runs {target} already: choose a newer release's bundle.").format(
                        target=target
                    ),
                    Tone.INFO,
                )
            elif problem:
                self.path_banner.show_text(self.tr("✗ {problem}").format(problem=problem), Tone.ERROR)
            else:
                hops = spell_path(supported_path(current, target))
                self.path_banner.show_text(self.tr("✓ {path}: a supported upgrade").format(path=hops), Tone.SUCCESS)
        self._update_buttons()

    def path_refused(self) -> bool:
        """The hop the bundle's name spells is refused (or there is nothing to upgrade)."""
        return self._refused

    def blockers(self) -> list[str]:
        return []  # the last page: nothing after it to block

    def is_done(self) -> bool:
        return self.last_result is not None and self.last_result.exit_code is ExitCode.DONE

    def entered(self) -> None:
        self.refresh()

    def _update_buttons(self) -> None:
        bundle = self.bundle()
        ready = self.installed and bundle is not None and bundle.is_file() and not self.path_refused()
        running = self.controller.running
        self.start_button.setEnabled(ready and not running)
        self.cancel_button.setEnabled(running and self._ours)
        self.browse_button.setEnabled(not running)
        self.bundle_edit.setEnabled(not running)

    # -- actions -------------------------------------------------------------------------------------------
    def choose_bundle(self) -> None:
        start = str(self.bundle().parent) if self.bundle() is not None else str(Path.home())  # type: ignore[union-attr]
        name, _ = QFileDialog.getOpenFileName(self, self.tr("Choose the new content bundle"), start, BUNDLE_FILTER)
        if name:
            self.bundle_edit.setText(name)

    def start(self) -> None:
        bundle = self.bundle()
        if self.project_file is None or bundle is None or self.controller.running:
            return
        from wizard.install.day2 import open_day2
        from wizard.install.upgrade import UpgradeBundle, upgrade_pipeline

        chosen = UpgradeBundle.at(bundle)
        self._ours = True
        self.last_result = None
        self.jobs.clear()
        self.done_banner.hide()
        self.error_panel.hide()
        self.overall.setValue(0)
        self.controller.start(
            self.project_file,
            steps=upgrade_pipeline(chosen, self.pacing),
            opener=partial(open_day2, action="upgrade", key=chosen.key),
        )
        self.timer.start()
        self._update_buttons()

    def cancel(self) -> None:
        if self._ours:
            self.controller.cancel("the operator cancelled the upgrade")

    # -- progress ------------------------------------------------------------------------------------------
    def poll(self) -> None:
        snap = self.controller.snapshot()
        if snap is None or not self._ours:
            return
        self.overall.setValue(round(snap.fraction * BAR_SCALE))
        running = [t for t in snap.tasks if t.status is TaskStatus.RUNNING]
        self.status_label.setText(running[-1].message if running and running[-1].message else snap.message)
        lines = [
            f"{MARKS.get(t.status, '○')} {t.label}" + (f" — {t.message}" if t.message else "")
            for t in snap.tasks
            if t.status is not TaskStatus.PENDING
        ]
        if [self.jobs.item(i).text() for i in range(self.jobs.count())] != lines:
            self.jobs.clear()
            self.jobs.addItems(lines)

    def _finished(self, ev: RunFinished) -> None:
        if not self._ours:
            return
        self.poll()
        self.timer.stop()
        self._ours = False
        self.last_result = ev
        if ev.exit_code is ExitCode.DONE:
            self.overall.setValue(BAR_SCALE)
            self.refresh()
            self.done_banner.show_text(
                self.tr("✓ The appliance runs {release}, Running and Healthy.").format(
                    release=self.current or self.tr("the new release")
                )
            )
        elif ev.error:
            self.error_panel.show_error(ev.error)
        self._update_buttons()
        self.changed.emit()
