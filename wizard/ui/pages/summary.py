"""The Summary page: where the installed Palette is, the kubeconfig, the reports, and a support bundle.

Everything comes from the project (addresses, with their ports), the session folder beside the journal (kubeconfig,
reports) and the run's events (the cluster job's result names the kubeconfig it wrote). "Open the run report" opens
the run's own report (the preflight and post-boot reports are listed beside it). Opening a file or folder says so
when the desktop has nothing to open it with, and offers the path to copy instead. Exporting a support bundle uses
the core's ``wizard.install.support.build_support_bundle`` when this build has it; the window's Support button starts
the same export from any page (:attr:`notice` tells it how the export went).
"""

from __future__ import annotations

import html
import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from wizard.core.cancel import CancelToken
from wizard.core.journal import journal_path, project_id
from wizard.core.paths import app_paths
from wizard.core.project import Project
from wizard.core.report import REPORT_HTML, read_journal_file
from wizard.core.runner import ExitCode, JobFinished, RunFinished
from wizard.core.secrets import SecretStore
from wizard.ui.bridge import RunController, SessionOpened
from wizard.ui.forms import Background
from wizard.ui.pages import WizardPage
from wizard.ui.units import KUBECONFIG
from wizard.ui.widgets import Banner, Tone, button, heading, paragraph
from wizard.ui.wording import outcome_text

log = logging.getLogger(__name__)

#: How long the bundle waits for each node's diagnostics; an unreachable node must not hold the export for long.
NODE_TIMEOUT = 60.0


def support_bundle_builder() -> Callable[..., Any] | None:
    """The core's support-bundle function, when this build has one."""
    try:
        module = importlib.import_module("wizard.install.support")
    except ImportError:
        return None
    fn = getattr(module, "build_support_bundle", None)
    return fn if callable(fn) else None


def _link(url: str, parent: QWidget) -> QLabel:
    label = QLabel(f'<a href="{html.escape(url)}">{html.escape(url)}</a>', parent)  # not translated: a link
    label.setOpenExternalLinks(True)
    label.setAccessibleName(url)
    return label


class SummaryPage(WizardPage):
    title = "Summary"

    #: What an export (or an open that found nothing to open with) has to say, for the window's banner.
    notice = Signal(str, object)

    def __init__(
        self, controller: RunController, secrets: SecretStore | None = None, parent: QWidget | None = None
    ) -> None:
        """``secrets`` are masked in the support bundle (the window's store, which may hold in-memory secrets)."""
        super().__init__(parent)
        self.title = self.tr("Summary")
        self.secrets = secrets
        self._bundle_cancel: CancelToken | None = None
        tr = self.tr
        self.controller = controller
        self.background = Background(self)
        self.project_file: Path | None = None
        self.project: Project | None = None
        self.session_dir: Path | None = None
        self.kubeconfig: Path | None = None
        self.last_result: RunFinished | None = None
        self.until: str | None = None  # the last run's last step, when it was not the whole install
        self.exported: Path | None = None
        #: The appliance as the run read it (the appliance step's facts): its label and the product name.
        self.appliance: dict[str, str] = {}
        self._exporting = False

        self.outcome = Banner(Tone.INFO, self)
        self.appliance_label = paragraph("", self)
        self.appliance_label.setAccessibleName(tr("Appliance"))
        self.urls_box = QGroupBox(tr("Where Palette is"), self)
        self.urls = QGridLayout(self.urls_box)

        files_box = QGroupBox(tr("Files"), self)
        self.kubeconfig_label = paragraph("", files_box)
        self.kubeconfig_label.setAccessibleName(tr("Kubeconfig"))
        self.kubeconfig_button = button(tr("Open the &kubeconfig folder"), tr("Open the kubeconfig folder"), files_box)
        self.kubeconfig_button.clicked.connect(self.open_kubeconfig_folder)
        self.kubeconfig_copy = button(tr("Copy its &path"), tr("Copy the kubeconfig's path"), files_box)
        self.kubeconfig_copy.clicked.connect(self.copy_kubeconfig_path)
        self.report_label = paragraph("", files_box)
        self.report_label.setAccessibleName(tr("Reports"))
        self.report_button = button(tr("Open the run &report"), tr("Open the run report"), files_box)
        self.report_button.clicked.connect(self.open_report)
        self.session_button = button(tr("Open the &session folder"), tr("Open the session folder"), files_box)
        self.session_button.clicked.connect(lambda: self._open(self.session_dir))
        self.open_result = Banner(Tone.INFO, files_box)
        files = QGridLayout(files_box)
        files.addWidget(self.kubeconfig_label, 0, 0)
        files.addWidget(self.kubeconfig_button, 0, 1)
        files.addWidget(self.kubeconfig_copy, 0, 2)
        files.addWidget(self.report_label, 1, 0)
        files.addWidget(self.report_button, 1, 1)
        files.addWidget(self.session_button, 2, 1)
        files.addWidget(self.open_result, 3, 0, 1, 3)
        files.setColumnStretch(0, 1)

        support_box = QGroupBox(tr("Support"), self)
        self.support_button = button(tr("E&xport a support bundle…"), tr("Export a support bundle"), support_box)
        self.support_button.clicked.connect(self.export_support_bundle)
        self.support_result = Banner(Tone.INFO, support_box)
        support_row = QHBoxLayout()
        support_row.addWidget(
            paragraph(
                tr("The journal, logs and reports with every secret removed, to attach to a support request."),
                support_box,
            ),
            1,
        )
        support_row.addWidget(self.support_button)
        support = QVBoxLayout(support_box)
        support.addLayout(support_row)
        support.addWidget(self.support_result)

        layout = QVBoxLayout(self)
        layout.addWidget(heading(tr("Summary"), self))
        layout.addWidget(self.outcome)
        layout.addWidget(self.appliance_label)
        layout.addWidget(self.urls_box)
        layout.addWidget(files_box)
        layout.addWidget(support_box)
        layout.addStretch(1)

        controller.session_opened.connect(self._session)
        controller.event_received.connect(self._event)
        controller.finished.connect(self._finished)
        self.refresh()

    # -- state ---------------------------------------------------------------------------------------------
    def blockers(self) -> list[str]:
        return []

    def is_done(self) -> bool:
        result = self.last_result
        return result is not None and result.exit_code is ExitCode.DONE and self.until is None

    def set_project(self, path: Path | None, project: Project | None = None) -> None:
        if self.controller.running:
            return
        self.project_file, self.project = path, project
        self.session_dir = None
        self.kubeconfig = None
        self.appliance = {}
        if path is not None and project is not None:
            state = (self.controller.paths or app_paths()).state
            self.session_dir = journal_path(state, project_id(path, project.name)).with_suffix("")
        self.refresh()

    def entered(self) -> None:
        self.refresh()

    # -- run signals ---------------------------------------------------------------------------------------
    def _session(self, info: SessionOpened) -> None:
        self.session_dir = info.journal.with_suffix("")

    def _event(self, ev: object) -> None:
        if isinstance(ev, JobFinished) and ev.result.get("kubeconfig"):
            self.kubeconfig = Path(str(ev.result["kubeconfig"]))
        facts = ev.result.get("appliance") if isinstance(ev, JobFinished) else None
        if isinstance(facts, dict) and facts.get("label"):
            self.appliance = {"label": str(facts["label"]), "product": str(facts.get("product") or "Palette")}
            self.refresh()

    def product(self) -> str:
        """The product name the texts use: Palette, or VerteX once the appliance said so."""
        return self.appliance.get("product") or "Palette"

    def _read_appliance(self) -> None:
        """The appliance facts of an earlier run, from the session journal (the window may have been reopened)."""
        if self.appliance or self.session_dir is None:
            return
        journal = self.session_dir.with_suffix(".json")
        try:
            facts = read_journal_file(journal)["jobs"]["appliance/identify"]["result"]["appliance"]
        except (OSError, ValueError, KeyError, TypeError):
            return
        if isinstance(facts, dict) and facts.get("label"):
            self.appliance = {"label": str(facts["label"]), "product": str(facts.get("product") or "Palette")}

    def _finished(self, ev: RunFinished) -> None:
        self.last_result = ev
        self.until = self.controller.until
        self.refresh()
        self.changed.emit()

    # -- drawing -------------------------------------------------------------------------------------------
    def kubeconfig_path(self) -> Path | None:
        if self.kubeconfig is not None:
            return self.kubeconfig
        if self.project is not None and self.project.cluster.kubeconfig is not None:
            return Path(self.project.cluster.kubeconfig)
        return self.session_dir / KUBECONFIG if self.session_dir is not None else None

    def reports(self) -> list[Path]:
        """Every report of the session: the run's own first, then the check reports (self-contained HTML)."""
        if self.session_dir is None or not self.session_dir.is_dir():
            return []
        return sorted(self.session_dir.glob("*.html"), key=lambda p: (p.name != REPORT_HTML, p.name))

    def run_report(self) -> Path | None:
        path = self.session_dir / REPORT_HTML if self.session_dir is not None else None
        return path if path is not None and path.is_file() else None

    def urls_list(self) -> list[tuple[str, str]]:
        """Where Palette answers: the system console (its port when not 443) and each node's Local UI."""
        if self.project is None:
            return []
        console = self.project.console
        port = console.port if console is not None else 443
        where = self.project.network.vip + (f":{port}" if port != 443 else "")
        out = [(self.tr("{product} system console").format(product=self.product()), f"https://{where}/system")]
        out += [
            (self.tr("Local UI of {node}").format(node=n.name), f"https://{n.ip}:{n.localui_port}/")
            for n in self.project.nodes
            if n.ip
        ]
        return out

    def refresh(self) -> None:
        tr = self.tr
        self._read_appliance()
        product = self.product()
        label = self.appliance.get("label")
        self.appliance_label.setText(tr("Appliance: {label}").format(label=label) if label else "")
        self.appliance_label.setVisible(bool(label))
        self.urls_box.setTitle(tr("Where {product} is").format(product=product))
        ev = self.last_result
        if ev is None:
            self.outcome.show_text(tr("The install has not finished in this window yet."), Tone.INFO)
        elif ev.exit_code is ExitCode.DONE and self.until is not None:
            self.outcome.show_text(
                tr("The last run stopped after the {step} step, as asked; start the install on the Run page.").format(
                    step=self.until
                ),
                Tone.INFO,
            )
        elif ev.exit_code is ExitCode.DONE:
            self.outcome.show_text(
                tr("✓ {product} is installed. Sign in to the system console below.").format(product=product),
                Tone.SUCCESS,
            )
        else:
            self.outcome.show_text(
                tr(
                    "The last run did not finish: {outcome}. The Run page says why; Support (below, or at the "
                    "bottom of every page) exports a support bundle or copies the error."
                ).format(outcome=outcome_text(ev.exit_code)),
                Tone.WARNING,
            )
        while self.urls.count():
            item = self.urls.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.hide()  # gone from the tab order at once, deleted later
                widget.deleteLater()
        for i, (what, url) in enumerate(self.urls_list()):
            self.urls.addWidget(QLabel(what, self.urls_box), i, 0)
            self.urls.addWidget(_link(url, self.urls_box), i, 1)
            copy = button(tr("Copy"), tr("Copy the address of {what}").format(what=what), self.urls_box)
            copy.clicked.connect(lambda _c=False, u=url: QGuiApplication.clipboard().setText(u))
            self.urls.addWidget(copy, i, 2)
        self.urls.setColumnStretch(1, 1)

        kube = self.kubeconfig_path()
        if kube is not None and kube.exists():
            self.kubeconfig_label.setText(tr("Kubeconfig: {path}").format(path=kube))
        else:
            self.kubeconfig_label.setText(tr("The kubeconfig is saved when the cluster is created."))
        self.kubeconfig_button.setEnabled(kube is not None and kube.exists())
        self.kubeconfig_copy.setEnabled(kube is not None and kube.exists())
        reports = self.reports()
        self.report_label.setText(
            "\n".join(str(p) for p in reports)
            if reports
            else tr("No report yet: the run writes its report when it ends.")
        )
        report = self.run_report()
        self.report_button.setEnabled(report is not None)
        self.report_button.setToolTip(
            str(report) if report is not None else tr("The run report is written when the install's last step ends")
        )
        self.session_button.setEnabled(self.session_dir is not None and self.session_dir.is_dir())
        builder = support_bundle_builder()
        self.support_button.setEnabled(builder is not None)
        self.support_button.setToolTip(
            tr("Write a .zip for a support request")
            if builder is not None
            else tr("This build cannot export support bundles; attach the session folder and the log folder instead")
        )

    # -- actions -------------------------------------------------------------------------------------------
    def _open(self, path: Path | None) -> bool:
        """Open ``path`` with the desktop's handler; say so (and offer the path) when there is none."""
        if path is None or not path.exists():
            self._say(self.tr("✗ {path} does not exist (any more).").format(path=path), Tone.WARNING)
            return False
        if self.open_url(QUrl.fromLocalFile(str(path))):
            self.open_result.hide()
            return True
        QGuiApplication.clipboard().setText(str(path))
        self._say(
            self.tr("This desktop has nothing to open {path} with; its path is on the clipboard.").format(path=path),
            Tone.WARNING,
        )
        return False

    @staticmethod
    def open_url(url: QUrl) -> bool:
        """The desktop's handler for ``url``; False when there is none (a bare X server, a headless session)."""
        return QDesktopServices.openUrl(url)

    def _say(self, text: str, tone: Tone) -> None:
        self.open_result.show_text(text, tone)
        if not self.isVisible():
            self.notice.emit(text, tone)

    def open_kubeconfig_folder(self) -> None:
        kube = self.kubeconfig_path()
        self._open(kube.parent if kube is not None else None)

    def copy_kubeconfig_path(self) -> None:
        kube = self.kubeconfig_path()
        if kube is not None:
            QGuiApplication.clipboard().setText(str(kube))
            self._say(self.tr("✓ The kubeconfig's path is on the clipboard."), Tone.SUCCESS)

    def open_report(self) -> None:
        self._open(self.run_report())

    @property
    def exporting(self) -> bool:
        return self._exporting

    def choose_bundle_path(self) -> Path | None:
        name = f"palette-wizard-support-{self.project.name if self.project else 'session'}.zip"
        chosen, _ = QFileDialog.getSaveFileName(
            self, self.tr("Export a support bundle"), str(Path.home() / name), self.tr("Zip archive (*.zip)")
        )
        return Path(chosen) if chosen else None

    def export_support_bundle(self) -> None:
        builder = support_bundle_builder()
        if builder is None:
            self._report_export(
                self.tr("This build cannot export support bundles; attach the session folder and the log folder."),
                Tone.WARNING,
            )
            return
        if self._exporting:
            return
        target = self.choose_bundle_path()
        if target is None:
            return
        paths = self.controller.paths or app_paths()
        journal = self.session_dir.with_suffix(".json") if self.session_dir is not None else None
        cancel = self._bundle_cancel = CancelToken()
        store = self.secrets
        self.support_button.setEnabled(False)
        self._exporting = True
        self._report_export(self.tr("Writing the support bundle…"), Tone.INFO)

        def done(result: Any, error: BaseException | None) -> None:
            self._exporting = False
            self.support_button.setEnabled(True)
            if error is not None:
                log.warning("support bundle failed: %s", error)
                self._report_export(f"✗ {error}", Tone.ERROR)
                return
            written = Path(str(result)) if isinstance(result, (str, Path)) else target
            self.exported = written
            self._report_export(self.tr("✓ Support bundle written to {path}").format(path=written), Tone.SUCCESS)

        self.background.submit(
            lambda: builder(
                target,
                paths=paths,
                session=str(journal) if journal is not None and journal.exists() else None,
                secrets=store,
                node_timeout=NODE_TIMEOUT,
                cancel=cancel,
            ),
            done,
        )

    def _report_export(self, text: str, tone: Tone) -> None:
        self.support_result.show_text(text, tone)
        self.notice.emit(text, tone)

    def cancel_export(self) -> None:
        """Stop collecting node diagnostics (the window is closing)."""
        if self._bundle_cancel is not None:
            self._bundle_cancel.cancel("the wizard is closing")
