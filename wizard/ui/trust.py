"""Trust dialogs: the engine's ``confirm`` callable, answered by the operator in a dialog on the GUI thread.

Jobs run on worker threads and call ``confirm(request)`` when a host is new or its fingerprint changed. The worker
posts the question through a queued signal and waits (waking every 100 ms to honour the run's cancel token); the GUI
thread shows a window-modal dialog (``open()``, never a nested ``exec()``) and hands the answer back. One question at
a time: node jobs run in parallel and each must see its own host's fingerprint.

A first contact shows what the host is (vCenter, a BMC, a node's SSH host key or Local UI), its address and the
SHA-256 fingerprint. A changed fingerprint is a warning whose safe choice (stop) is the default; trusting the new one
needs the host name typed, so it cannot happen by pressing Enter.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from PySide6.QtCore import QCoreApplication, QObject, Qt, QThread, Signal
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from wizard.core.cancel import CancelToken
from wizard.core.project import Project
from wizard.core.trust import TrustChanged, TrustKind, TrustRequest, TrustStore, fetch_certificate, normalize
from wizard.ui.widgets import Banner, Tone, heading, paragraph

log = logging.getLogger(__name__)

#: How a worker asks: the request and the run's cancel token (None when nothing can cancel the question).
Asker = Callable[[TrustRequest, CancelToken | None], bool]

POLL_SECONDS = 0.1


def _tr(text: str) -> str:
    return QCoreApplication.translate("TrustDialog", text)


def what_is(request: TrustRequest, project: Project | None) -> str:
    """What the host is, in the operator's words, found from the project's settings."""
    host = request.host.lower()
    nodes = project.nodes if project is not None else ()
    if request.kind is TrustKind.SSH:
        for node in nodes:
            if node.ip.lower() == host and node.ssh_port == request.port:
                return _tr("SSH host key of node {node}").format(node=node.name)
        return _tr("SSH host key of an appliance node")
    if project is not None:
        vs = project.provider.vsphere
        if vs is not None and vs.server.lower() == host and vs.port == request.port:
            return _tr("vCenter server certificate")
        maas = project.provider.maas
        if maas is not None:
            parts = urlsplit(maas.url)
            if (parts.hostname or "").lower() == host:
                return _tr("MAAS region certificate")
        # Loaded only when a BMC is involved: the Redfish provider is not needed for the first window.
        from wizard.providers.redfish.session import parse_address

        for node in nodes:
            if node.bmc is not None:
                try:
                    bmc = parse_address(node.bmc.address)
                except ValueError:
                    continue
                if bmc.host.lower() == host and bmc.port == request.port:
                    return _tr("BMC certificate of node {node}").format(node=node.name)
        for node in nodes:
            if node.ip.lower() == host and node.localui_port == request.port:
                return _tr("Local UI certificate of node {node}").format(node=node.name)
        if project.network.vip.lower() == host:
            return _tr("Palette system console certificate (the VIP)")
        for node in nodes:
            if node.ip.lower() == host:
                return _tr("TLS certificate of node {node}").format(node=node.name)
    return _tr("TLS certificate")


def _mono(text: str, parent: QWidget) -> QLabel:
    label = QLabel(text, parent)
    label.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    return label


def _grouped(fingerprint: str) -> str:
    """Colon hex in two lines of 16 bytes, so it can be compared by eye; SSH fingerprints stay as they are."""
    try:
        text = normalize(fingerprint)
    except ValueError:
        return fingerprint
    if text.startswith("SHA256:"):
        return text
    return text[:47] + "\n" + text[48:]


class TrustDialog(QDialog):
    """Asks whether to trust a presented fingerprint; ``accepted`` means trust (pin) it."""

    def __init__(self, request: TrustRequest, what: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.request = request
        changed = request.changed
        kind = _tr("certificate") if request.kind is TrustKind.TLS else _tr("host key")
        title = (
            _tr("The {kind} of {host} has changed").format(kind=kind, host=request.host)
            if changed
            else _tr("Trust this {kind}?").format(kind=kind)
        )
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        self.setMinimumWidth(720)  # an SSH fingerprint (50 characters) on one line

        self.warning = Banner(Tone.WARNING, self)
        if changed:
            self.warning.show_text(
                _tr(
                    "⚠ {what} is not the one trusted before. If the machine was reinstalled or its certificate "
                    "renewed this is expected; otherwise someone may be intercepting the connection. Stop unless you "
                    "know why it changed."
                ).format(what=what)
            )
        intro = paragraph(
            ""
            if changed
            else _tr(
                "First contact with this host. Compare the fingerprint with the one the machine shows (its console, "
                "its web UI or `ssh-keygen -lf`) before trusting it; it is then pinned and checked on every connection."
            ),
            self,
        )
        intro.setVisible(not changed)

        form = QFormLayout()
        self.what_label = paragraph(what, self)
        self.what_label.setAccessibleName(_tr("What it is"))
        form.addRow(_tr("What it is:"), self.what_label)
        self.address_label = paragraph(f"{request.host}:{request.port}", self)
        self.address_label.setAccessibleName(_tr("Address"))
        form.addRow(_tr("Address:"), self.address_label)
        if request.subject:
            subject = paragraph(request.subject, self)
            subject.setAccessibleName(_tr("Subject"))
            form.addRow(_tr("Subject:") if request.kind is TrustKind.TLS else _tr("Key type:"), subject)
        if changed and request.pinned:
            self.pinned_label = _mono(_grouped(request.pinned), self)
            self.pinned_label.setAccessibleName(_tr("Trusted before (SHA-256)"))
            form.addRow(_tr("Trusted before (SHA-256):"), self.pinned_label)
        self.fingerprint_label = _mono(_grouped(request.presented), self)
        self.fingerprint_label.setAccessibleName(_tr("Presented now (SHA-256)") if changed else _tr("SHA-256"))
        bold = QFont(self.fingerprint_label.font())
        bold.setBold(True)
        self.fingerprint_label.setFont(bold)
        shown_as = _tr("Presented now (SHA-256):") if changed else _tr("Fingerprint (SHA-256):")
        form.addRow(shown_as, self.fingerprint_label)

        self.buttons = QDialogButtonBox(self)
        self.confirm_edit: QLineEdit | None = None
        if changed:
            self.stop_button = QPushButton(_tr("&Stop"), self)
            self.stop_button.setAccessibleName(_tr("Stop: do not trust the new one"))
            self.trust_button = QPushButton(_tr("&Trust the new one"), self)
            self.trust_button.setAccessibleName(_tr("Trust the new one"))
            self.confirm_edit = QLineEdit(self)
            self.confirm_edit.setAccessibleName(_tr("Type the host name to trust the new one"))
            self.confirm_edit.setPlaceholderText(request.host)
            self.trust_button.setEnabled(False)
            self.confirm_edit.textChanged.connect(self._typed)
            form.addRow(_tr("To trust the new one, type {host}:").format(host=request.host), self.confirm_edit)
        else:
            self.stop_button = QPushButton(_tr("&Don't trust"), self)
            self.stop_button.setAccessibleName(_tr("Do not trust it"))
            self.trust_button = QPushButton(_tr("&Trust"), self)
            self.trust_button.setAccessibleName(_tr("Trust it and continue"))
        self.buttons.addButton(self.trust_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(self.stop_button, QDialogButtonBox.ButtonRole.RejectRole)
        # Enter must never trust: the default is the safe answer.
        self.trust_button.setAutoDefault(False)
        self.stop_button.setDefault(True)
        self.trust_button.clicked.connect(self.accept)
        self.stop_button.clicked.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(heading(title, self))
        layout.addWidget(self.warning)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        (self.confirm_edit or self.stop_button).setFocus()

    def _typed(self, text: str) -> None:
        self.trust_button.setEnabled(text.strip().lower() == self.request.host.lower())

    def accept(self) -> None:
        if self.request.changed and not self.trust_button.isEnabled():
            return  # a changed key is trusted only after the deliberate act
        super().accept()


@dataclass
class _Question:
    request: TrustRequest
    answered: threading.Event = field(default_factory=threading.Event)
    trusted: bool = False


class TrustPrompter(QObject):
    """Answers the engine's trust questions with a :class:`TrustDialog` over ``parent``.

    ``ask`` may be called from any thread; on a worker it blocks until the operator answers, the run is cancelled
    (raising :class:`~wizard.core.errors.Cancelled`) or the window goes away (not trusted)."""

    #: The dialog just shown, on the GUI thread (for the status bar, tests and screenshots).
    shown = Signal(object)

    _post = Signal(object)
    _withdraw = Signal(object)

    def __init__(self, parent: QWidget, project: Callable[[], Project | None] = lambda: None) -> None:
        super().__init__(parent)
        self._window = parent
        self._project = project
        self._one_at_a_time = threading.Lock()
        self.dialog: TrustDialog | None = None
        self._question: _Question | None = None
        self._post.connect(self._show, Qt.ConnectionType.QueuedConnection)
        self._withdraw.connect(self._close, Qt.ConnectionType.QueuedConnection)

    def ask(self, request: TrustRequest, cancel: CancelToken | None = None) -> bool:
        if QThread.currentThread() is self.thread():
            # Already on the GUI thread (nothing runs the engine here); a modal loop is the only way to wait.
            dialog = TrustDialog(request, what_is(request, self._project()), self._window)
            self.dialog = dialog
            self.shown.emit(dialog)
            trusted = dialog.exec() == QDialog.DialogCode.Accepted
            self.dialog = None
            return trusted
        question = _Question(request)
        with self._one_at_a_time:
            try:
                self._post.emit(question)
            except RuntimeError:
                return False  # the window is gone: nobody can answer
            while not question.answered.wait(POLL_SECONDS):
                if cancel is not None and cancel.cancelled:
                    with contextlib.suppress(RuntimeError):  # the window is gone; so is its dialog
                        self._withdraw.emit(question)
                    cancel.raise_if_cancelled()
        log.info(
            "%s %s:%s %s by the operator",
            request.kind.value,
            request.host,
            request.port,
            "trusted" if question.trusted else "not trusted",
        )
        return question.trusted

    # -- GUI thread ----------------------------------------------------------------------------------------
    def _show(self, question: _Question) -> None:
        if question.answered.is_set():
            return
        dialog = TrustDialog(question.request, what_is(question.request, self._project()), self._window)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def answered(code: int) -> None:
            question.trusted = code == QDialog.DialogCode.Accepted
            question.answered.set()
            if self.dialog is dialog:
                self.dialog = None
                self._question = None

        dialog.finished.connect(answered)
        self.dialog = dialog
        self._question = question
        dialog.open()
        self.shown.emit(dialog)

    def _close(self, question: _Question) -> None:
        if self.dialog is not None and self._question is question:
            self.dialog.reject()


def trust_changed_certificate(
    store: TrustStore, request: TrustRequest, ask: Asker, cancel: CancelToken | None = None
) -> bool:
    """After a pinned TLS certificate changed: show the change and, if the operator deliberately trusts the new
    one, pin exactly the certificate the server presents now. True when it was re-pinned.

    Worker threads only (it fetches the certificate and waits for the answer)."""
    if request.kind is not TrustKind.TLS:
        return False  # an SSH host key change is asked where the key is presented
    presented = fetch_certificate(request.host, request.port)
    # Ask about what is presented now (the error may say "unknown" when the certificate could not be fetched then).
    current = TrustRequest(
        TrustKind.TLS, request.host, request.port, presented.fingerprint, request.pinned, request.subject
    )
    if not current.changed or not ask(current, cancel):
        return False
    store.pin(TrustKind.TLS, request.host, request.port, presented.fingerprint, pem=presented.pem)
    log.warning("TLS certificate of %s:%s re-pinned by the operator", request.host, request.port)
    return True


T = TypeVar("T")


def retrying_changed_certificates(
    work: Callable[[], T], store: TrustStore, ask: Asker | None, cancel: CancelToken, asked: set[tuple[str, int]]
) -> T:
    """``work()``, again after each pinned certificate that changed and that the operator deliberately trusts anew.

    Each host is asked at most once (``asked`` also holds the changes the core already put to the operator), so a
    refusal cannot loop. Worker threads only."""
    while True:
        try:
            return work()
        except TrustChanged as exc:
            where = (exc.request.host, exc.request.port)
            if ask is None or where in asked or not trust_changed_certificate(store, exc.request, ask, cancel):
                raise
            asked.add(where)
