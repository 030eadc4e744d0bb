"""The Cluster page: the management cluster's profile variables, as a form generated from the profile itself.

The variables are defined by the cluster profile inside the content bundle, so they are known only once a node holds
it: "Read the profile" asks the leader's Local UI (on a worker, with the trust dialog, never during a run) for the
variables — name, label, default, required, sensitive, pattern and, as newer appliances describe them, the input
type (a text, a choice of options, several lines), whether the value is fixed or hidden, and the form section — and
builds one field per variable, grouped by section as the appliance groups them. Hidden variables keep the profile's
values and are not shown; immutable ones are shown read-only. Answers go to the project document
(``cluster.variables``); a sensitive answer goes to the keyring and the document keeps only its reference
(``cluster.secret_variables``). Before the profile is read, the answers the project already gives are shown, so they
can be edited too.

While the cluster is created (20–30 minutes on real nodes), the page follows the cluster's own conditions as the
leader reports them (``events/lifecycle``): a timeline of what is done (with what the node said), where the cluster
is now highlighted, and what is still to come.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.paths import AppPaths
from wizard.core.progress import TaskStatus
from wizard.core.project import SecretRef
from wizard.core.runner import JobFinished
from wizard.core.secrets import SecretStore
from wizard.core.trust import TrustRequest
from wizard.ui.bridge import RunController
from wizard.ui.forms import Background, InlineMessage, ProjectDocument
from wizard.ui.pages import WizardPage
from wizard.ui.theme import Status, status_hex
from wizard.ui.widgets import Banner, Tone, button, heading, paragraph

#: The job that creates the cluster and follows its conditions (``wizard.appliance.cluster.CreateClusterJob``).
CLUSTER_JOB = "cluster/create"
MARKS = {"done": "✓", "current": "●", "pending": "○"}

log = logging.getLogger(__name__)


TEXT, DROPDOWN, MULTILINE = "text", "dropdown", "multiline"


@dataclass(frozen=True)
class Variable:
    """One profile variable, as the form needs it (the appliance's ProfileVariable, or one the project names)."""

    name: str
    label: str
    default: str = ""
    required: bool = False
    sensitive: bool = False
    regex: str = ""
    input_type: str = TEXT
    options: tuple[tuple[str, str], ...] = ()  # (value, label)
    immutable: bool = False
    hidden: bool = False
    section: str = ""
    description: str = ""


def read_profile(
    project_file: Path,
    paths: AppPaths | None,
    secrets: SecretStore,
    ask: Callable[[TrustRequest, CancelToken | None], bool] | None,
) -> list[Variable]:
    """The profile variables the leader's content holds; raises a WizardError when they cannot be read."""
    # The engine is imported here, on the worker, not when the window is built.
    from wizard.install.session import Session
    from wizard.install.steps.nodes import Pacing, connector, endpoint, leader_and_followers

    cancel = CancelToken()
    confirm = (lambda request: ask(request, cancel)) if ask is not None else None
    session = Session.open(project_file, paths=paths, secrets=secrets, confirm=confirm)
    ctx = session.context
    leader, _ = leader_and_followers(ctx)
    with connector(ctx, Pacing()).open(endpoint(ctx, leader), cancel) as client:
        archive = client.archive_details()
    if archive is None:
        raise WizardError(
            "No cluster profile yet",
            f"{leader.name} holds no content bundle yet",
            remediation="run the install up to the content step (it uploads the bundle), then read the profile",
        )
    return [
        Variable(
            v.name,
            v.label,
            v.default or "",
            v.required,
            v.sensitive,
            v.regex,
            v.input_type,
            tuple((o.value, o.text) for o in v.options),
            v.immutable,
            v.hidden,
            v.section,
            v.description,
        )
        for v in archive.variables
    ]


def secret_name(variable: str) -> str:
    """The keyring name a sensitive answer is stored under when the project does not name one."""
    return "cluster-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", variable).strip("-").lower()


@dataclass
class VariableField:
    variable: Variable
    edit: QWidget  # QLineEdit (text, sensitive, immutable), QComboBox (dropdown) or QPlainTextEdit (multiline)
    message: InlineMessage
    #: A sensitive answer is a new password: typed a second time here.
    again: QLineEdit | None = None


class ClusterPage(WizardPage):
    title = "Cluster"

    def __init__(
        self,
        document: ProjectDocument,
        controller: RunController,
        secrets: SecretStore,
        parent: QWidget | None = None,
        *,
        ask: Callable[[TrustRequest, CancelToken | None], bool] | None = None,
    ) -> None:
        super().__init__(parent)
        self.title = self.tr("Cluster")
        tr = self.tr
        self.document = document
        self.controller = controller
        self.store = secrets
        self.ask = ask
        self.background = Background(self)
        self.variables: list[Variable] = []
        self.from_profile = False
        self.fields: dict[str, VariableField] = {}
        self.reading = False
        #: The cluster step finished in this window's runs.
        self.cluster_created = False

        # The cluster's own conditions while it is created.
        self.timeline_box = QGroupBox(tr("Cluster deployment"), self)
        self.timeline_status = paragraph("", self.timeline_box)
        self.timeline_status.setAccessibleName(tr("Cluster deployment status"))
        self.timeline = QListWidget(self.timeline_box)
        self.timeline.setAccessibleName(tr("The cluster's conditions, in order"))
        self.timeline.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.timeline.setMinimumHeight(120)
        timeline = QVBoxLayout(self.timeline_box)
        timeline.addWidget(self.timeline_status)
        timeline.addWidget(self.timeline)
        self.timeline_box.hide()
        self.stages: tuple[tuple[str, str, str], ...] = ()
        self._follow = QTimer(self)
        self._follow.setInterval(500)
        self._follow.timeout.connect(self.follow)

        self.read_button = button(tr("&Read the profile from the leader"), tr("Read the cluster profile"), self)
        self.read_button.clicked.connect(self.read)
        self.read_result = Banner(Tone.INFO, self)
        self.box = QGroupBox(tr("Profile variables"), self)
        self.form = QFormLayout(self.box)
        self.empty = paragraph("", self.box)
        self.form.addRow(self.empty)
        #: One box per section the appliance groups its variables in (PCOM-757), below the general box.
        self.section_boxes: dict[str, QGroupBox] = {}
        self.sections_layout = QVBoxLayout()

        row = QHBoxLayout()
        row.addWidget(self.read_button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(heading(tr("Management cluster"), self))
        layout.addWidget(
            paragraph(
                tr(
                    "The cluster profile in the content bundle defines these variables. Required ones without a "
                    "default need an answer before the cluster is created; sensitive answers go to the keyring."
                ),
                self,
            )
        )
        layout.addWidget(self.timeline_box)
        layout.addLayout(row)
        layout.addWidget(self.read_result)
        layout.addWidget(self.box)
        layout.addLayout(self.sections_layout)
        layout.addStretch(1)
        document.loaded.connect(self._from_project)
        controller.running_changed.connect(self._running_changed)
        controller.event_received.connect(self._event)
        self._from_project()

    # -- variables -----------------------------------------------------------------------------------------
    def _from_project(self) -> None:
        if self.from_profile and self.document.doc is not None:
            self.set_variables(self.variables, from_profile=True)
            return
        plain = self.document.get(("cluster", "variables")) or {}
        secret = self.document.get(("cluster", "secret_variables")) or {}
        found = [Variable(str(k), str(k)) for k in plain if isinstance(plain, dict)]
        found += [Variable(str(k), str(k), sensitive=True) for k in secret if isinstance(secret, dict)]
        self.set_variables(found, from_profile=False)

    def set_variables(self, variables: Sequence[Variable], *, from_profile: bool = True) -> None:
        """Build one field per variable, grouped in the appliance's sections; ``from_profile`` says they came from the
        profile (so all are known)."""
        self.variables = list(variables)
        self.from_profile = from_profile
        while self.form.rowCount():
            self.form.removeRow(0)
        for box in self.section_boxes.values():
            box.setParent(None)
            box.deleteLater()
        self.section_boxes.clear()
        self.fields.clear()
        hidden = [v for v in self.variables if v.hidden]
        note = (
            self.tr("The profile has no variables.")
            if from_profile
            else self.tr("The project answers no variables yet. Read the profile from the leader to see them all.")
        )
        if hidden and from_profile:
            note = self.tr("{n} hidden variable(s) keep the profile's values.").format(n=len(hidden))
        self.empty = paragraph(note, self.box)
        self.empty.setVisible(not self.variables or not from_profile or bool(hidden))
        self.form.addRow(self.empty)
        for var in self.variables:
            if var.hidden:
                continue
            form = self._form_for(var.section)
            parent = form.parentWidget() or self.box
            edit = self._editor(var, parent)
            edit.setAccessibleName(self.tr("Cluster variable {label}").format(label=var.label))
            if var.description:
                edit.setToolTip(var.description)
            message = InlineMessage(Tone.ERROR, parent)
            fixed = self.tr(" (fixed by the profile)") if var.immutable else ""
            caption = QLabel(var.label + (" *" if var.required and not var.immutable else "") + fixed + ":", parent)
            again: QLineEdit | None = None
            if var.sensitive:
                again = QLineEdit(parent)
                again.setEchoMode(QLineEdit.EchoMode.Password)
                again.setAccessibleName(
                    self.tr("Cluster variable {label} again, to confirm it").format(label=var.label)
                )
                again.setPlaceholderText(self.tr("type it again: a new password cannot be read back"))
                again.editingFinished.connect(lambda v=var: self._store_secret(v))
            caption.setBuddy(edit)
            column = QVBoxLayout()
            column.setSpacing(2)
            column.addWidget(edit)
            if again is not None:
                column.addWidget(again)
            column.addWidget(message)
            form.addRow(caption, column)
            self.fields[var.name] = VariableField(var, edit, message, again)
        self.validate()

    def _form_for(self, section: str) -> QFormLayout:
        """The form of ``section``: the page's own box for variables without one, else a box per section."""
        if not section:
            return self.form
        box = self.section_boxes.get(section)
        if box is None:
            box = QGroupBox(section, self)
            box.setAccessibleName(self.tr("Section {name}").format(name=section))
            QFormLayout(box)
            self.sections_layout.addWidget(box)
            self.section_boxes[section] = box
        layout = box.layout()
        assert isinstance(layout, QFormLayout)
        return layout

    def _editor(self, var: Variable, parent: QWidget) -> QWidget:
        value = self.document.get(("cluster", "variables", var.name))
        text = "" if value is None else str(value)
        if var.sensitive:
            edit = QLineEdit(parent)
            edit.setClearButtonEnabled(False)
            edit.setEchoMode(QLineEdit.EchoMode.Password)
            stored = self.document.get(("cluster", "secret_variables", var.name))
            edit.setPlaceholderText(
                self.tr("stored in the keyring as {name}; type to replace it").format(name=stored.get("secret"))
                if isinstance(stored, dict) and stored.get("secret")
                else self.tr("kept in the keyring, never in the project file")
            )
            edit.editingFinished.connect(lambda v=var: self._store_secret(v))
            return edit
        if var.immutable:
            fixed = QLineEdit(var.default, parent)
            fixed.setReadOnly(True)
            fixed.setPlaceholderText(self.tr("fixed by the profile"))
            return fixed
        if var.input_type == DROPDOWN and var.options:
            combo = QComboBox(parent)
            for option_value, option_label in var.options:
                shown = option_label if option_label == option_value else f"{option_label} ({option_value})"
                combo.addItem(shown + (self.tr(" — default") if option_value == var.default else ""), option_value)
            values = [v for v, _ in var.options]
            current = text or var.default
            if current in values:
                combo.setCurrentIndex(values.index(current))
            else:
                combo.setCurrentIndex(-1)
            combo.currentIndexChanged.connect(lambda i, v=var, c=combo: self._chosen(v, c.itemData(i)))
            return combo
        if var.input_type == MULTILINE:
            area = QPlainTextEdit(text, parent)
            area.setPlaceholderText(self.tr("default: {d}").format(d=var.default) if var.default else "")
            area.setTabChangesFocus(True)
            area.setMaximumHeight(area.fontMetrics().lineSpacing() * 6)
            area.textChanged.connect(lambda v=var, a=area: self._edited(v, a.toPlainText()))
            return area
        edit = QLineEdit(text, parent)
        edit.setClearButtonEnabled(False)
        edit.setPlaceholderText(self.tr("default: {d}").format(d=var.default) if var.default else "")
        edit.textEdited.connect(lambda t, v=var: self._edited(v, t))
        return edit

    def _chosen(self, var: Variable, value: object) -> None:
        """A dropdown's choice: the profile's default needs no answer in the project."""
        chosen = "" if value is None else str(value)
        self._edited(var, "" if chosen == var.default else chosen)

    def answered(self, var: Variable) -> bool:
        if var.sensitive:
            return isinstance(self.document.get(("cluster", "secret_variables", var.name)), dict)
        value = self.document.get(("cluster", "variables", var.name))
        return value not in (None, "")

    def problem(self, var: Variable) -> str:
        """What is wrong with the variable's answer, or ''."""
        if var.sensitive:
            if var.required and not var.default and not self.answered(var):
                return self.tr("required: type it to store it in the keyring")
            return ""
        value = self.document.get(("cluster", "variables", var.name))
        text = "" if value is None else str(value)
        if not text:
            return self.tr("required and has no default") if var.required and not var.default else ""
        if var.immutable and text != var.default:
            return self.tr("fixed by the profile to {d}: remove the answer from the project").format(d=var.default)
        options = [v for v, _ in var.options]
        if var.input_type == DROPDOWN and options and text not in options:
            return self.tr("{value} is not one of the options ({options})").format(
                value=text, options=", ".join(options)
            )
        if var.input_type != MULTILINE and "\n" in text:
            return self.tr("takes a single line")
        if var.regex:
            try:
                if re.fullmatch(var.regex, text) is None:
                    return self.tr("does not match the profile's pattern {p}").format(p=var.regex)
            except re.error:
                return ""  # a pattern Python cannot read: the node validates the answer itself
        return ""

    def validate(self) -> None:
        for f in self.fields.values():
            problem = self.problem(f.variable)
            if problem:
                f.message.show_text(problem, Tone.ERROR)
            else:
                f.message.hide()
            f.edit.setAccessibleDescription(problem)
        self._update_buttons()
        self.changed.emit()

    def _edited(self, var: Variable, text: str) -> None:
        self.document.set(("cluster", "variables", var.name), text if text else None, prune=2)
        self.validate()

    def _store_secret(self, var: Variable) -> None:
        field = self.fields.get(var.name)
        if field is None or not isinstance(field.edit, QLineEdit) or not field.edit.text():
            return
        value = field.edit.text()
        if field.again is not None and field.again.text() != value:
            if field.again.text():
                field.message.show_text(self.tr("✗ The two entries differ."), Tone.ERROR)
            return
        ref = self.document.get(("cluster", "secret_variables", var.name))
        name = str(ref["secret"]) if isinstance(ref, dict) and ref.get("secret") else secret_name(var.name)
        store = self.store

        def done(_result: Any, error: BaseException | None) -> None:
            field = self.fields.get(var.name)
            if error is not None:
                if field is not None:
                    field.message.show_text(f"✗ {error}", Tone.ERROR)
                return
            self.document.set(("cluster", "secret_variables", var.name), {"secret": name})
            self.validate()
            if field is not None and isinstance(field.edit, QLineEdit):
                field.edit.clear()  # stored: the value leaves the window
                if field.again is not None:
                    field.again.clear()
                field.edit.setPlaceholderText(self.tr("stored in the keyring as {name}").format(name=name))
                field.message.show_text(self.tr("✓ Stored in the keyring as {name}.").format(name=name), Tone.SUCCESS)

        self.background.submit(lambda: store.set(SecretRef(name), value), done)

    # -- reading the profile -------------------------------------------------------------------------------
    def _update_buttons(self) -> None:
        self.read_button.setEnabled(not self.reading and not self.controller.running and self.document.path is not None)

    def read(self) -> None:
        path = self.document.path
        if path is None or self.reading or self.controller.running:
            return
        self.reading = True
        self.read_result.show_text(self.tr("Reading the cluster profile from the leader…"), Tone.INFO)
        self._update_buttons()
        paths, store, ask = self.controller.paths, self.store, self.ask

        def done(result: Any, error: BaseException | None) -> None:
            self.reading = False
            if error is None:
                self.set_variables(result, from_profile=True)
                self.read_result.show_text(
                    self.tr("✓ The profile has {n} variable(s).").format(n=len(result)), Tone.SUCCESS
                )
            elif isinstance(error, WizardError):
                self.read_result.show_text(f"✗ {error.title}: {error.message} — {error.remediation}", Tone.ERROR)
            else:
                log.error("reading the cluster profile failed", exc_info=error)
                self.read_result.show_text(f"✗ {type(error).__name__}: {error}", Tone.ERROR)
            self._update_buttons()

        self.background.submit(lambda: read_profile(path, paths, store, ask), done)

    # -- state ---------------------------------------------------------------------------------------------
    def blockers(self) -> list[str]:
        if self.cluster_created:
            return []  # the answers were used; what is typed now matters only for a new cluster
        return [f"{f.variable.label}: {p}" for f in self.fields.values() if (p := self.problem(f.variable))]

    # -- following the cluster's conditions -----------------------------------------------------------------
    def _running_changed(self, running: bool) -> None:
        if running:
            self._follow.start()
        else:
            self._follow.stop()
            self.follow()  # the last word
        self._update_buttons()

    def follow(self) -> None:
        """Draws the cluster job's conditions when they changed (cheap otherwise: one snapshot lookup)."""
        snap = self.controller.snapshot()
        task = snap.task(CLUSTER_JOB) if snap is not None else None
        if task is None:
            return
        status = task.message + (f" — {task.warning}" if task.warning else "")
        if self.timeline_status.text() != status:
            self.timeline_status.setText(status)
        if task.stages == self.stages:
            return
        self.stages = task.stages
        self.timeline_box.setVisible(bool(self.stages))
        self.timeline.clear()
        done, current = status_hex(Status.DONE), status_hex(Status.INFO)
        for label, state, detail in self.stages:
            text = f"{MARKS.get(state, '○')}  {label}" + (f" — {detail}" if detail else "")
            if state == "current":
                text += self.tr("  (now)")
            item = QListWidgetItem(text)
            item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{label}: {state}")
            if state == "current":
                font = QFont(item.font())
                font.setBold(True)
                item.setFont(font)
                item.setForeground(QBrush(QColor(current or "")))
            elif state == "done":
                item.setForeground(QBrush(QColor(done or "")))
            self.timeline.addItem(item)
            if state == "current":
                self.timeline.scrollToItem(item)

    def current_condition(self) -> str:
        """Where the cluster is now: its latest condition ('' before the first and once all are reached)."""
        return next((label for label, state, _ in self.stages if state == "current"), "")

    def _event(self, ev: object) -> None:
        if isinstance(ev, JobFinished) and ev.step == "cluster" and ev.status in (TaskStatus.DONE, TaskStatus.SKIPPED):
            self.cluster_created = True
            self.changed.emit()

    def is_done(self) -> bool:
        return self.cluster_created or (self.from_profile and not self.blockers())

    def entered(self) -> None:
        self._update_buttons()
        self.validate()

    def set_busy(self, busy: bool) -> None:
        self.box.setEnabled(not busy)
        for box in self.section_boxes.values():
            box.setEnabled(not busy)
        self._update_buttons()
