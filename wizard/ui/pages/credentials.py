"""The credentials page: the secrets the project names, stored in the OS keyring, and a connection test.

The project file holds only ``{secret: NAME}`` references; the values typed here go straight to the keyring through
:class:`~wizard.core.secrets.SecretStore` and are never kept by the page once stored. Keyring calls and the
connection test run on the thread pool: a locked keyring that prompts for its password must not freeze the window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.paths import app_paths
from wizard.core.project import Project, ProviderType, SecretRef
from wizard.core.secrets import SecretStore
from wizard.core.trust import Confirm, TrustRequest, TrustStore
from wizard.ui.forms import Background, InlineMessage, InputPage, Parts, ProjectDocument, field_path
from wizard.ui.trust import retrying_changed_certificates
from wizard.ui.widgets import Banner, Tone, button, heading, paragraph

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionContext:
    """What a connection test needs besides the project and the secrets: TLS trust, the operator, cancellation."""

    trust: TrustStore
    confirm: Confirm | None
    cancel: CancelToken
    vsphere_scheme: str = "https"  # tests against a plain-HTTP simulator pass "http"


#: Checks that the provider's endpoint answers and accepts the stored credentials; returns what it found, raises a
#: WizardError otherwise. Runs on a worker thread.
ConnectionTest = Callable[[Project, SecretStore, ConnectionContext], str]

#: Asks the operator about a fingerprint (the trust dialog's ``TrustPrompter.ask``); safe from any thread.
Asker = Callable[[TrustRequest, CancelToken | None], bool]

#: One connection test per provider type; the manual provider has none.
CONNECTION_TESTS: dict[ProviderType, ConnectionTest] = {}


def register_connection_test(ptype: ProviderType, test: ConnectionTest) -> None:
    CONNECTION_TESTS[ptype] = test


def secret_refs(doc: object) -> list[tuple[str, str]]:
    """Every ``{secret: NAME}`` in a raw project document, as (field path, name), in document order."""
    out: list[tuple[str, str]] = []

    def walk(node: object, parts: Parts) -> None:
        if isinstance(node, dict):
            name = node.get("secret")
            if set(node) == {"secret"} and isinstance(name, str) and name.strip():
                out.append((field_path(parts), name.strip()))
                return
            for key, value in node.items():
                if isinstance(key, str):
                    walk(value, (*parts, key))
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, (*parts, i))

    walk(doc, ())
    return out


class Status:
    CHECKING = "checking"
    STORED = "stored"
    MISSING = "missing"
    UNKNOWN = "unknown"


@dataclass
class SecretRow:
    key: str
    uses: list[str]
    use_label: QLabel
    status_label: QLabel
    edit: QLineEdit
    store_button: QPushButton
    message: InlineMessage
    status: str = Status.CHECKING
    storing: bool = False


class CredentialsPage(InputPage):
    title = "Credentials"
    prefixes = ()  # the reference names are edited (and checked) where they are used

    def __init__(
        self,
        document: ProjectDocument,
        secrets: SecretStore,
        parent: QWidget | None = None,
        *,
        config_dir: Callable[[], Path] | None = None,
        ask: Asker | None = None,
    ) -> None:
        """``config_dir`` gives the folder of the trust store the tests pin into (the runs' own); ``ask`` is the
        trust dialog; without it a first-contact fingerprint fails the test unless the project pins it."""
        super().__init__(document, parent)
        self.title = self.tr("Credentials")
        self.store = secrets
        self.config_dir = config_dir or (lambda: app_paths().ensure().config)
        self.ask = ask
        self._test_cancel: CancelToken | None = None
        self.background = Background(self)
        self.rows: dict[str, SecretRow] = {}
        self._refs: list[tuple[str, str]] | None = None
        self._check_generation = 0
        self.testing = False
        tr = self.tr

        self.keyring_notice = Banner(Tone.WARNING, self)
        if secrets.notice:
            self.keyring_notice.show_text(f"⚠ {secrets.notice}")
        if secrets.vault is not None:  # `palette-wizard gui --vault FILE`: what is stored here goes there
            where = paragraph(tr("Encrypted vault: {path}").format(path=str(secrets.vault.path)), self)
        else:
            where = paragraph(tr("Keyring: {backend}").format(backend=secrets.backend_name), self)

        self.secrets_box = QGroupBox(tr("Secrets the project names"), self)
        self.grid = QGridLayout()
        self.grid.setColumnStretch(0, 2)
        self.grid.setColumnStretch(2, 3)
        self.empty_label = paragraph(tr("This project names no secrets."), self.secrets_box)
        self.recheck_button = button(self.mnemonics(tr("Check again")), tr("Check the keyring again"), self.secrets_box)
        self.recheck_button.clicked.connect(self.check)
        box_layout = QVBoxLayout(self.secrets_box)
        box_layout.addWidget(self.empty_label)
        box_layout.addLayout(self.grid)
        recheck_row = QHBoxLayout()
        recheck_row.addStretch(1)
        recheck_row.addWidget(self.recheck_button)
        box_layout.addLayout(recheck_row)

        test_box = QGroupBox(tr("Connection"), self)
        self._test_text = self.mnemonics(tr("Test connection"))
        self.test_button = button(self._test_text, tr("Test the connection"), test_box)
        self.test_button.clicked.connect(self.test_connection)
        self.test_hint = paragraph("", test_box)
        self.test_result = Banner(Tone.INFO, test_box)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_hint, 1)
        test_layout = QVBoxLayout(test_box)
        test_layout.addLayout(test_row)
        test_layout.addWidget(self.test_result)

        layout = QVBoxLayout(self)
        layout.addWidget(heading(tr("Credentials"), self))
        intro = (
            tr(
                "Passwords and API keys are kept in the encrypted vault this wizard was opened with, never in the "
                "project file, which names them only. Type each missing one and press Store (or Enter)."
            )
            if secrets.vault is not None
            else tr(
                "Passwords and API keys are kept in the operating system's keyring, never in the project file, "
                "which names them only. Type each missing one and press Store (or Enter)."
            )
        )
        layout.addWidget(paragraph(intro, self))
        layout.addWidget(where)
        layout.addWidget(self.keyring_notice)
        layout.addWidget(self.secrets_box)
        layout.addWidget(test_box)
        layout.addStretch(1)
        document.validated.connect(self._refs_maybe_changed)
        self._refs_maybe_changed()

    # -- rows ----------------------------------------------------------------------------------------------
    def _use_label(self, path: str) -> str:
        tr = self.tr
        if path == "provider.vsphere.password":
            return tr("vCenter password")
        if path == "provider.maas.api_key":
            return tr("MAAS API key")
        if path == "appliance.password":
            return tr("New node password")
        if path.startswith("nodes[") and path.endswith("].bmc.password"):
            index = int(path[len("nodes[") : path.index("]")])
            name = self.document.get(("nodes", index, "name"))
            return tr("BMC password of {node}").format(node=name if isinstance(name, str) and name else path)
        prefix = "cluster.secret_variables."
        if path.startswith(prefix):
            return tr("Cluster variable {name}").format(name=path[len(prefix) :])
        return path

    def _uses_label(self, paths: list[str]) -> str:
        """Where a secret is used, with the nodes sharing a BMC password named once."""
        bmc_nodes: list[str] = []
        others: list[str] = []
        for path in paths:
            if path.startswith("nodes[") and path.endswith("].bmc.password"):
                name = self.document.get(("nodes", int(path[len("nodes[") : path.index("]")]), "name"))
                bmc_nodes.append(name if isinstance(name, str) and name else path)
            else:
                others.append(self._use_label(path))
        if bmc_nodes:
            others.insert(0, self.tr("BMC password of {nodes}").format(nodes=", ".join(bmc_nodes)))
        return ", ".join(dict.fromkeys(others))

    def _refs_maybe_changed(self) -> None:
        refs = secret_refs(self.document.doc) if self.document.doc is not None else []
        if refs == self._refs:
            return
        self._refs = refs
        self._rebuild(refs)
        self.check()

    def _rebuild(self, refs: list[tuple[str, str]]) -> None:
        typed = {key: row.edit.text() for key, row in self.rows.items() if row.edit.text()}
        for row in self.rows.values():
            for widget in (row.use_label, row.status_label, row.edit, row.store_button, row.message):
                self.grid.removeWidget(widget)
                widget.deleteLater()
        self.rows.clear()
        uses: dict[str, list[str]] = {}
        for path, key in refs:
            uses.setdefault(key, []).append(path)
        parent = self.secrets_box
        for i, (key, paths) in enumerate(uses.items()):
            labels = self._uses_label(paths)
            use = QLabel(
                f"<b>{_escape(labels)}</b><br>{_escape(self.tr('keyring name: {key}').format(key=key))}", parent
            )
            use.setToolTip("\n".join(paths))
            use.setWordWrap(True)
            status = QLabel("", parent)
            status.setAccessibleName(self.tr("Status of secret {key}").format(key=key))
            edit = QLineEdit(parent)
            edit.setEchoMode(QLineEdit.EchoMode.Password)
            edit.setAccessibleName(self.tr("Value of secret {key} ({uses})").format(key=key, uses=labels))
            edit.setPlaceholderText(self.tr("type it to store or replace it"))
            edit.setText(typed.get(key, ""))
            use.setBuddy(edit)
            store = button(self.tr("Store"), self.tr("Store secret {key} in the keyring").format(key=key), parent)
            message = InlineMessage(Tone.ERROR, parent)
            row = SecretRow(key, paths, use, status, edit, store, message)
            edit.returnPressed.connect(lambda r=row: self.store_secret(r.key))
            edit.textChanged.connect(lambda _t, r=row: self._row_changed(r))
            store.clicked.connect(lambda _c=False, r=row: self.store_secret(r.key))
            self.grid.addWidget(use, 2 * i, 0)
            self.grid.addWidget(status, 2 * i, 1)
            self.grid.addWidget(edit, 2 * i, 2, 1, 2)
            self.grid.addWidget(store, 2 * i, 4)
            self.grid.addWidget(message, 2 * i + 1, 0, 1, 5)
            self.rows[key] = row
            self._show_row(row)
        self.empty_label.setVisible(not self.rows)
        self.recheck_button.setVisible(bool(self.rows))

    def _row_changed(self, row: SecretRow) -> None:
        row.message.hide()
        self._show_row(row)
        self.changed.emit()

    def _show_row(self, row: SecretRow) -> None:
        text = {
            Status.CHECKING: self.tr("… checking"),
            Status.STORED: self.tr("✓ stored"),
            Status.MISSING: self.tr("✗ not stored"),
            Status.UNKNOWN: self.tr("⚠ cannot check"),
        }[row.status]
        if row.storing:
            text = self.tr("… storing")
        row.status_label.setText(text)
        row.status_label.setAccessibleDescription(text)
        row.store_button.setEnabled(bool(row.edit.text()) and not row.storing)

    # -- keyring -------------------------------------------------------------------------------------------
    def check(self) -> None:
        """Ask the keyring (on a worker) which of the named secrets it holds."""
        keys = list(self.rows)
        self._check_generation += 1
        generation = self._check_generation
        for row in self.rows.values():
            row.status = Status.CHECKING
            self._show_row(row)
        if not keys:
            self.changed.emit()
            return
        store = self.store

        def work() -> dict[str, str | WizardError]:
            out: dict[str, str | WizardError] = {}
            for key in keys:
                try:
                    out[key] = Status.STORED if store.get(SecretRef(key)) is not None else Status.MISSING
                except WizardError as exc:
                    out[key] = exc
            return out

        def done(result: Any, error: BaseException | None) -> None:
            if generation != self._check_generation:
                return  # the secrets changed meanwhile; a newer check is on its way
            for key, row in self.rows.items():
                found = result.get(key) if isinstance(result, dict) else error
                if isinstance(found, str):
                    row.status = found
                else:
                    row.status = Status.UNKNOWN
                    row.message.show_text(_error_text(found), Tone.WARNING)
                self._show_row(row)
            self.changed.emit()

        self.background.submit(work, done)

    def store_secret(self, key: str) -> None:
        row = self.rows.get(key)
        if row is None or not row.edit.text() or row.storing:
            return
        value = row.edit.text()
        row.storing = True
        row.message.hide()
        self._show_row(row)
        store = self.store

        def work() -> bool:
            store.set(SecretRef(key), value)
            return store.get(SecretRef(key)) is not None

        def done(result: Any, error: BaseException | None) -> None:
            current = self.rows.get(key)
            if current is None:
                return
            current.storing = False
            if error is None:
                current.edit.clear()  # stored: the value leaves the window
                current.status = Status.STORED if result else Status.MISSING
            else:
                current.message.show_text(_error_text(error), Tone.ERROR)
            self._show_row(current)
            self.changed.emit()

        self.background.submit(work, done)

    # -- state ---------------------------------------------------------------------------------------------
    def blockers(self) -> list[str]:
        out = []
        for key, row in self.rows.items():
            if row.status != Status.MISSING:
                continue  # still checking, or the keyring cannot say: the install checks again before it starts
            if row.edit.text():
                out.append(self.tr("press Store to keep the secret {key}").format(key=key))
            else:
                out.append(self.tr("secret {key} is not in the keyring: type it and press Store").format(key=key))
        return out

    def populate(self) -> None:
        self._refs_maybe_changed()
        self._update_test()

    def entered(self) -> None:
        self._refs_maybe_changed()
        self.check()  # a secret may have been stored meanwhile (`palette-wizard secret set`)
        self._update_test()

    def show_problems(self) -> None:
        self._update_test()
        self.changed.emit()

    # -- connection test -----------------------------------------------------------------------------------
    def connection_test(self) -> ConnectionTest | None:
        project = self.document.project
        return CONNECTION_TESTS.get(project.provider.type) if project is not None else None

    def _update_test(self) -> None:
        project = self.document.project
        test = self.connection_test()
        if project is None:
            hint = self.tr("Fix the project's problems first; the test needs a valid project.")
        elif project.provider.type is ProviderType.MANUAL:
            hint = self.tr("The manual provider has nothing to connect to.")
        elif test is None:
            hint = self.tr("No connection test exists for {provider} yet.").format(provider=project.provider.type.value)
        else:
            hint = self.tr("Connects to {provider} with the stored credentials; nothing is changed.").format(
                provider=project.provider.type.value
            )
        self.test_hint.setText(hint)
        self.test_button.setEnabled(test is not None and not self.testing)
        self.test_button.setToolTip(hint)

    def test_connection(self) -> None:
        project = self.document.project
        test = self.connection_test()
        if project is None or test is None or self.testing:
            return
        self.testing = True
        self.test_button.setText(self.tr("Testing…"))
        self.test_result.show_text(self.tr("Testing the connection…"), Tone.INFO)
        self._update_test()
        store = self.store
        cancel = self._test_cancel = CancelToken()
        ask = self.ask
        # Changes the core already put to the operator (and they declined), so the test does not ask twice.
        asked_changes: set[tuple[str, int]] = set()

        def confirm(request: TrustRequest) -> bool:
            assert ask is not None
            if request.changed:
                asked_changes.add((request.host, request.port))
            return ask(request, cancel)

        conn = ConnectionContext(TrustStore(self.config_dir()), confirm if ask is not None else None, cancel)

        def done(result: Any, error: BaseException | None) -> None:
            self.testing = False
            self.test_button.setText(self._test_text)
            if error is None:
                self.test_result.show_text(f"✓ {result}", Tone.SUCCESS)
            else:
                if not isinstance(error, WizardError):
                    log.error("connection test failed unexpectedly", exc_info=error)
                self.test_result.show_text(f"✗ {_error_text(error)}", Tone.ERROR)
            self._update_test()

        def work() -> str:
            return retrying_changed_certificates(
                lambda: test(project, store, conn), conn.trust, ask, cancel, asked_changes
            )

        self.background.submit(work, done)

    def cancel_test(self) -> None:
        """Stop waiting for a trust answer of a running test (the window is closing)."""
        if self._test_cancel is not None:
            self._test_cancel.cancel("the wizard is closing")


def _error_text(error: object) -> str:
    if isinstance(error, WizardError):
        text = f"{error.title}: {error.message}"
        return text + (f" — what to do: {error.remediation}" if error.remediation else "")
    if isinstance(error, BaseException):
        return f"Unexpected error: {type(error).__name__}: {error}"
    return str(error)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
