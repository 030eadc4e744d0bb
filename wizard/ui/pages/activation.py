"""The Activation page: the Product Setup ID to send to Spectro Cloud, the activation key, or activating later.

The activation job reads the Product Setup ID from the system console and either activates with the key from the
keyring or defers (the trial runs on). This page shows what the job reported (its result, or the ID in its
progress message while it runs), copies the ID, stores a key in the keyring under the project's reference
(``activation.key``), and "Activate later" removes that reference so the next run defers. Key entry is offered
only when this build's project format has an ``activation`` section.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLineEdit, QVBoxLayout, QWidget

from wizard.core.progress import ProgressSnapshot
from wizard.core.project import Project, SecretRef
from wizard.core.redact import redact
from wizard.core.runner import JobFinished, RunFinished
from wizard.core.secrets import SecretStore
from wizard.ui.bridge import RunController
from wizard.ui.forms import Background, ProjectDocument
from wizard.ui.pages.live import LivePage, announce
from wizard.ui.widgets import Banner, Tone, button, heading, paragraph

#: Jobs whose ids start with this belong to activation.
JOB_PREFIX = "activate/"
KEY_PATH = ("activation", "key")
DEFAULT_KEY_NAME = "palette-activation-key"
_ID_IN_MESSAGE = re.compile(r"Product Setup ID ([A-Za-z0-9-]+)")


def has_activation_section() -> bool:
    """True when the project format has an ``activation`` section (the key's reference lives there)."""
    return "activation" in {f.name for f in dataclasses.fields(Project)}


class ActivationPage(LivePage):
    title = "Activation"

    def __init__(
        self, document: ProjectDocument, controller: RunController, secrets: SecretStore, parent: QWidget | None = None
    ) -> None:
        super().__init__(controller, parent)
        self.title = self.tr("Activation")
        tr = self.tr
        self.document = document
        self.store = secrets
        self.background = Background(self)
        self.product_setup_id = ""
        self.state: dict[str, Any] = {}

        id_box = QGroupBox(tr("Product Setup ID"), self)
        self.id_edit = QLineEdit(id_box)
        self.id_edit.setReadOnly(True)
        self.id_edit.setAccessibleName(tr("Product Setup ID"))
        self.id_edit.setPlaceholderText(tr("shown once the system console is set up"))
        self.copy_button = button(tr("Cop&y"), tr("Copy the Product Setup ID"), id_box)
        self.copy_button.clicked.connect(self.copy_id)
        id_row = QHBoxLayout()
        id_row.addWidget(self.id_edit, 1)
        id_row.addWidget(self.copy_button)
        id_layout = QVBoxLayout(id_box)
        id_layout.addWidget(
            paragraph(tr("Send this ID to Spectro Cloud support; they answer with an activation key for it."), id_box)
        )
        id_layout.addLayout(id_row)

        key_box = QGroupBox(tr("Activation key"), self)
        self.key_edit = QLineEdit(key_box)
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setAccessibleName(tr("Activation key"))
        self.key_edit.textChanged.connect(lambda _t: self._update_buttons())
        self.key_edit.returnPressed.connect(self.store_key)
        self.store_button = button(tr("&Store the key"), tr("Store the activation key in the keyring"), key_box)
        self.store_button.clicked.connect(self.store_key)
        self.defer_button = button(tr("Activate &later"), tr("Activate later; the trial runs on"), key_box)
        self.defer_button.clicked.connect(self.defer)
        self.key_status = Banner(Tone.INFO, key_box)
        key_form = QFormLayout()
        key_row = QHBoxLayout()
        key_row.addWidget(self.key_edit, 1)
        key_row.addWidget(self.store_button)
        key_form.addRow(tr("Key:"), key_row)
        key_layout = QVBoxLayout(key_box)
        key_layout.addLayout(key_form)
        key_layout.addWidget(self.defer_button)
        key_layout.addWidget(self.key_status)
        self.key_box = key_box

        self.outcome = Banner(Tone.INFO, self)
        self.announcer = paragraph("", self)
        self.announcer.setAccessibleName(tr("Activation status"))

        layout = QVBoxLayout(self)
        layout.addWidget(heading(tr("Activation"), self))
        layout.addWidget(
            paragraph(
                tr(
                    "Palette runs as a trial until it is activated. Activate now with a key, or later from the "
                    "system console (Administration → Activation) or by running the wizard again with a key."
                ),
                self,
            )
        )
        layout.addWidget(self.announcer)
        layout.addWidget(id_box)
        layout.addWidget(key_box)
        layout.addWidget(self.outcome)
        layout.addStretch(1)
        document.loaded.connect(self._update_buttons)
        self._update_buttons()

    # -- state ---------------------------------------------------------------------------------------------
    def blockers(self) -> list[str]:
        return []

    def is_done(self) -> bool:
        return bool(self.state.get("activated") or self.state.get("deferred"))

    def key_reference(self) -> str:
        ref = self.document.get(KEY_PATH) if self.document.doc is not None else None
        return str(ref["secret"]) if isinstance(ref, dict) and ref.get("secret") else ""

    def _update_buttons(self) -> None:
        supported = has_activation_section()
        self.key_box.setEnabled(supported and self.document.doc is not None and not self.controller.running)
        self.key_box.setToolTip("" if supported else self.tr("This build cannot activate from the wizard yet"))
        self.copy_button.setEnabled(bool(self.product_setup_id))
        self.store_button.setEnabled(bool(self.key_edit.text().strip()))
        ref = self.key_reference()
        if not supported:
            self.key_status.show_text(
                self.tr("Activate from the system console: Administration → Activation."), Tone.INFO
            )
        elif ref:
            self.key_status.show_text(
                self.tr("The next run activates with the key stored as {name}.").format(name=ref), Tone.INFO
            )
        else:
            self.key_status.show_text(self.tr("No key: the install defers activation (the trial runs on)."), Tone.INFO)

    def set_id(self, setup_id: str) -> None:
        if setup_id and setup_id != self.product_setup_id:
            self.product_setup_id = setup_id
            self.id_edit.setText(setup_id)
            announce(self.announcer, self.tr("Product Setup ID: {id}").format(id=setup_id))
        self._update_buttons()

    # -- actions -------------------------------------------------------------------------------------------
    def copy_id(self) -> None:
        if self.product_setup_id:
            QGuiApplication.clipboard().setText(self.product_setup_id)
            announce(self.announcer, self.tr("Product Setup ID copied"))

    def store_key(self) -> None:
        key = self.key_edit.text().strip()
        if not key or not has_activation_section() or self.document.doc is None:
            return
        name = self.key_reference() or DEFAULT_KEY_NAME
        store = self.store

        def done(_r: Any, error: BaseException | None) -> None:
            if error is not None:
                self.key_status.show_text(f"✗ {error}", Tone.ERROR)
                return
            self.key_edit.clear()  # stored: the key leaves the window
            self.document.set(KEY_PATH, {"secret": name})
            self._update_buttons()

        self.background.submit(lambda: store.set(SecretRef(name), key), done)

    def defer(self) -> None:
        if self.document.doc is not None and has_activation_section():
            self.document.set(KEY_PATH, None, prune=1)
        self._update_buttons()

    # -- the run -------------------------------------------------------------------------------------------
    def draw(self, snap: ProgressSnapshot) -> None:
        for t in snap.tasks:
            if t.key.startswith(JOB_PREFIX):
                found = _ID_IN_MESSAGE.search(t.message)
                if found:
                    self.set_id(found.group(1))

    def event_received(self, ev: object) -> None:
        if isinstance(ev, JobFinished) and ev.job.startswith(JOB_PREFIX) and ev.result:
            self.state = dict(ev.result)
            self.set_id(str(ev.result.get("product_setup_id") or ""))
            if ev.result.get("activated"):
                self.outcome.show_text(self.tr("✓ Palette is activated."), Tone.SUCCESS)
            elif ev.result.get("deferred"):
                ends = ev.result.get("trial_ends") or self.tr("in 30 days")
                self.outcome.show_text(
                    self.tr("Activation deferred: the trial ends {ends}.").format(ends=redact(str(ends))), Tone.WARNING
                )

    def running_changed(self, running: bool) -> None:
        self._update_buttons()

    def run_finished(self, ev: RunFinished) -> None:
        self._update_buttons()
