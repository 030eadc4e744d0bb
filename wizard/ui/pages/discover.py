"""The Nodes page's "Discover…" dialog: the provider's VMs, MAAS machines or a BMC's Systems, to pick nodes from.

Discovery runs on the thread pool (it logs in and reads an inventory; the window must stay responsive), with the
trust dialog answering first-contact and changed certificates exactly as the Credentials page's connection test
does. Candidates that cannot be used are listed but cannot be checked; their reason is the row's tooltip and
accessible description. Cancel (or Escape, or closing) stops the worker at its next item and drops its answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wizard.core.cancel import CancelToken
from wizard.core.errors import Cancelled, WizardError
from wizard.core.project import Bmc, Provider, ProviderType, SecretRef
from wizard.core.secrets import SecretStore
from wizard.core.trust import TrustRequest, TrustStore
from wizard.install.discovery import Candidate, Discovery, discover
from wizard.ui.forms import Background, Mnemonics, name_widget
from wizard.ui.trust import Asker, retrying_changed_certificates
from wizard.ui.widgets import Banner, ErrorPanel, Tone, button, heading, paragraph

log = logging.getLogger(__name__)

#: ``discover``'s signature: (provider, secrets, trust, confirm, cancel, *, bmc=, vsphere_scheme=) → Discovery.
DiscoverFunction = Callable[..., Discovery]

#: Where a row keeps its candidate's index in :attr:`DiscoverDialog.discovery`.
IndexRole = Qt.ItemDataRole.UserRole + 1


class DiscoverDialog(QDialog):
    """Lists what ``provider`` offers; :meth:`chosen` gives the checked candidates once accepted."""

    def __init__(
        self,
        provider: Provider,
        secrets: SecretStore,
        trust: TrustStore,
        ask: Asker | None,
        parent: QWidget | None = None,
        *,
        bmc: Mapping[str, Any] | None = None,
        discover_function: DiscoverFunction = discover,
        vsphere_scheme: str = "https",
    ) -> None:
        """``bmc`` prefills the Redfish form (a row's raw ``bmc`` mapping); ``discover_function`` replaces
        :func:`~wizard.install.discovery.discover` (tests); ``vsphere_scheme`` is "http" only for a simulator."""
        super().__init__(parent)
        tr = self.tr
        self.provider = provider
        self.secrets = secrets
        self.trust = trust
        self.ask = ask
        self.discover_function = discover_function
        self.vsphere_scheme = vsphere_scheme
        self.discovery: Discovery | None = None
        self.running = False
        self.closed = False
        self._cancel: CancelToken | None = None
        self.background = Background(self)
        mnemonics = Mnemonics()
        what = _WHAT.get(provider.type, ("nodes", ""))
        title = tr("Discover {what}").format(what=tr(what[0]))
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        self.setModal(True)
        self.resize(820, 520)

        intro = paragraph(tr(what[1]), self)

        # Redfish only: the BMC whose Systems are listed.
        self.bmc_box = QGroupBox(tr("BMC"), self)
        form = QFormLayout(self.bmc_box)
        raw = dict(bmc or {})
        secret = raw.get("password")
        self.address_edit = self._line(form, mnemonics, tr("BMC address"), _bare_address(str(raw.get("address") or "")))
        self.address_edit.setPlaceholderText(tr("https://10.0.0.5 or 10.0.0.5:8443"))
        self.user_edit = self._line(form, mnemonics, tr("BMC user"), str(raw.get("username") or ""))
        self.secret_edit = self._line(
            form,
            mnemonics,
            tr("BMC password keyring name"),
            str(secret.get("secret") or "") if isinstance(secret, Mapping) else "",
        )
        self.fingerprint = str(raw.get("tls_fingerprint") or "")
        self._prefilled_address = str(raw.get("address") or "")
        self.bmc_box.setVisible(provider.type is ProviderType.REDFISH)

        search = tr("List systems") if provider.type is ProviderType.REDFISH else tr("Search again")
        self.search_button = button(mnemonics(search), search, self)
        self.search_button.clicked.connect(self.start)
        self.status = Banner(Tone.INFO, self)
        self.error = ErrorPanel(self)
        self.error.retry_button.setAccessibleName(tr("Try the discovery again"))
        self.error.retry_button.setToolTip(tr("Ask the provider again"))
        self.error.retry_requested.connect(self.start)

        self.table = QTableWidget(0, 3, self)
        self.table.setHorizontalHeaderLabels([tr("Candidate"), tr("Details"), tr("Usable as a node?")])
        self.table.setAccessibleName(tr("Candidates"))
        self.table.setAccessibleDescription(tr("Space checks the current candidate; checked ones are added as nodes"))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTabKeyNavigation(False)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)  # the reasons
        self.table.setWordWrap(True)
        self.table.itemChanged.connect(lambda _item: self._update_buttons())
        table_label = QLabel(mnemonics(tr("Candidates")) + ":", self)
        table_label.setBuddy(self.table)

        self.select_button = button(mnemonics(tr("Check all usable")), tr("Check every usable candidate"), self)
        self.select_button.clicked.connect(self.check_all_usable)
        self.buttons = QDialogButtonBox(self)
        self.add_button = QPushButton(mnemonics(tr("Add selected")), self)
        self.add_button.setAccessibleName(tr("Add the checked candidates as nodes"))
        self.add_button.setDefault(True)
        self.cancel_button = QPushButton(tr("Cancel"), self)
        self.cancel_button.setAccessibleName(tr("Cancel the discovery and close"))
        self.buttons.addButton(self.add_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        top = QHBoxLayout()
        top.addWidget(intro, 1)
        top.addWidget(self.search_button, 0, Qt.AlignmentFlag.AlignTop)
        bottom = QHBoxLayout()
        bottom.addWidget(self.select_button)
        bottom.addStretch(1)
        bottom.addWidget(self.buttons)
        layout = QVBoxLayout(self)
        layout.addWidget(heading(title, self))
        layout.addLayout(top)
        layout.addWidget(self.bmc_box)
        layout.addWidget(self.status)
        layout.addWidget(self.error)
        layout.addWidget(table_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(bottom)
        self._update_buttons()

    def _line(self, form: QFormLayout, mnemonics: Mnemonics, label: str, text: str) -> QLineEdit:
        edit = QLineEdit(text, self.bmc_box)
        name_widget(edit, label)
        edit.returnPressed.connect(self.start)
        caption = QLabel(mnemonics(label) + ":", self.bmc_box)
        caption.setBuddy(edit)
        form.addRow(caption, edit)
        return edit

    # -- the worker ----------------------------------------------------------------------------------------------
    def typed_bmc(self) -> Bmc | None:
        """The Redfish form as a Bmc; None (and the reason shown) when a field is empty."""
        address, user, secret = (e.text().strip() for e in (self.address_edit, self.user_edit, self.secret_edit))
        missing = [
            name
            for name, value in (
                (self.tr("address"), address),
                (self.tr("user"), user),
                (self.tr("password keyring name"), secret),
            )
            if not value
        ]
        if missing:
            self.status.show_text(
                self.tr("Give the BMC's {fields} first.").format(fields=", ".join(missing)), Tone.WARNING
            )
            return None
        # The row's pinned fingerprint belongs to its BMC: kept only while the address still names that BMC.
        same = _host_port(address) == _host_port(self._prefilled_address)
        return Bmc(address, user, SecretRef(secret), self.fingerprint if same else "")

    def start(self) -> None:
        """Ask the provider (again) on a worker thread."""
        if self.running or self.closed:
            return
        bmc: Bmc | None = None
        if self.provider.type is ProviderType.REDFISH:
            bmc = self.typed_bmc()
            if bmc is None:
                return
        self.running = True
        self.error.hide()
        where = {ProviderType.VSPHERE: "vCenter", ProviderType.MAAS: "MAAS", ProviderType.REDFISH: "the BMC"}
        self.status.show_text(
            self.tr("Asking {where}…").format(where=where.get(self.provider.type, "the provider")), Tone.INFO
        )
        self._update_buttons()
        cancel = self._cancel = CancelToken()
        ask, trust, provider, secrets = self.ask, self.trust, self.provider, self.secrets
        function, scheme = self.discover_function, self.vsphere_scheme
        asked_changes: set[tuple[str, int]] = set()

        def confirm(request: TrustRequest) -> bool:
            assert ask is not None
            if request.changed:
                asked_changes.add((request.host, request.port))
            return ask(request, cancel)

        def work() -> Discovery:
            def once() -> Discovery:
                return function(
                    provider,
                    secrets,
                    trust,
                    confirm if ask is not None else None,
                    cancel,
                    bmc=bmc,
                    vsphere_scheme=scheme,
                )

            return retrying_changed_certificates(once, trust, ask, cancel, asked_changes)

        def done(result: Any, error: BaseException | None) -> None:
            if cancel is not self._cancel or self.closed:
                return  # cancelled or superseded: nobody waits for this answer
            self.running = False
            if error is None and isinstance(result, Discovery):
                self.show_discovery(result)
            elif isinstance(error, Cancelled):
                self.status.show_text(self.tr("Stopped."), Tone.WARNING)
            else:
                self.show_error(error)
            self._update_buttons()

        self.background.submit(work, done)

    def cancel(self) -> None:
        """Stop the worker at its next item (and a trust question it is waiting on)."""
        if self._cancel is not None:
            self._cancel.cancel("the discovery was cancelled")
        self.running = False

    def reject(self) -> None:
        self.cancel()
        self.closed = True
        super().reject()

    def accept(self) -> None:
        if not self.chosen():
            self.status.show_text(self.tr("Check the candidates to add first (Space checks one)."), Tone.WARNING)
            return
        self.cancel()
        self.closed = True
        super().accept()

    # -- results -------------------------------------------------------------------------------------------------
    def show_error(self, error: BaseException | None) -> None:
        if isinstance(error, WizardError):
            self.error.show_error(error.to_dict())
        else:
            log.error("discovery failed unexpectedly", exc_info=error)
            self.error.show_error({"title": self.tr("Unexpected error"), "message": f"{type(error).__name__}: {error}"})
        self.status.hide()

    def show_discovery(self, found: Discovery) -> None:
        self.discovery = found
        self.error.hide()
        self.table.blockSignals(True)
        try:
            self.table.setRowCount(len(found.candidates))
            for row, candidate in enumerate(found.candidates):
                name = QTableWidgetItem(candidate.label)
                name.setData(IndexRole, row)
                detail = QTableWidgetItem(candidate.detail)
                verdict = QTableWidgetItem("✓ " + self.tr("usable") if candidate.usable else "✗ " + candidate.why_not)
                description = (
                    candidate.detail if candidate.usable else f"{self.tr('cannot be used')}: {candidate.why_not}"
                )
                for item in (name, detail, verdict):
                    item.setFlags(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled)
                    item.setToolTip(description)
                    item.setData(Qt.ItemDataRole.AccessibleDescriptionRole, description)
                if candidate.usable:
                    name.setFlags(name.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                    name.setCheckState(Qt.CheckState.Unchecked)
                else:
                    for item in (name, detail, verdict):  # listed for the reason, but cannot be picked
                        item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
                self.table.setItem(row, 0, name)
                self.table.setItem(row, 1, detail)
                self.table.setItem(row, 2, verdict)
        finally:
            self.table.blockSignals(False)
        self.table.resizeColumnToContents(0)
        self.table.resizeColumnToContents(1)
        self.table.setColumnWidth(1, min(self.table.columnWidth(1), 380))
        self.table.resizeRowsToContents()
        if found.candidates:
            self.table.setCurrentCell(0, 0)
        if found.message:
            self.status.show_text(found.message, Tone.INFO)
        elif not found.candidates:
            self.status.show_text(self.tr("Nothing found at {where}.").format(where=found.source), Tone.WARNING)
        else:
            usable = len(found.usable)
            self.status.show_text(
                self.tr("{count} found at {where}; {usable} can be nodes.").format(
                    count=len(found.candidates), where=found.source, usable=usable
                ),
                Tone.SUCCESS if usable else Tone.WARNING,
            )
        self._update_buttons()

    def set_checked(self, row: int, checked: bool = True) -> None:
        item = self.table.item(row, 0)
        if item is not None and item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def check_all_usable(self) -> None:
        for row in range(self.table.rowCount()):
            self.set_checked(row)

    def source(self) -> str:
        """Where the listed candidates were found ("" before an answer)."""
        return self.discovery.source if self.discovery is not None else ""

    def chosen(self) -> list[Candidate]:
        """The checked candidates, in the order listed."""
        if self.discovery is None:
            return []
        out: list[Candidate] = []
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.checkState() == Qt.CheckState.Checked:
                out.append(self.discovery.candidates[int(item.data(IndexRole))])
        return out

    def _update_buttons(self) -> None:
        self.search_button.setEnabled(not self.running)
        has_usable = self.discovery is not None and bool(self.discovery.usable)
        self.select_button.setEnabled(has_usable)
        self.add_button.setEnabled(bool(self.chosen()))


_WHAT: dict[ProviderType, tuple[str, str]] = {
    ProviderType.VSPHERE: (
        "VMs",
        "The VMs in the project's datacenter and folder, checked against the VM spec as the install checks them. "
        "Check the ones to install onto.",
    ),
    ProviderType.MAAS: (
        "MAAS machines",
        "The machines MAAS shows the API key's user; Ready ones (or ones already allocated to you) with the "
        "appliance's CPU and memory can be nodes.",
    ),
    ProviderType.REDFISH: (
        "BMC systems",
        "A BMC has no list of servers to search, so name one: its Systems are listed (a chassis manager has "
        "several) and each checked as preflight does. Each node is one System.",
    ),
}


def _bare_address(address: str) -> str:
    """A BMC address without the System path a node's address may carry."""
    cut = address.find("/redfish/")
    return address[:cut] if cut >= 0 else address


def _host_port(address: str) -> tuple[str, int] | None:
    from wizard.providers.redfish.session import parse_address

    try:
        parsed = parse_address(address)
    except ValueError:
        return None
    return parsed.host.lower(), parsed.port
