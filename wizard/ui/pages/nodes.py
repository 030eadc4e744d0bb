"""The nodes page: a table of the nodes (addresses, and per provider their BMC, VM or MAAS machine), CSV import.

Every cell edit goes into the project document; the core's problems come back by field path (``nodes[1].ip``) and
are shown on the cell they name, under the table for the current cell, and in a list of every problem in the table.
"""

from __future__ import annotations

import copy
import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wizard.core.errors import WizardError
from wizard.core.paths import app_paths
from wizard.core.problems import Problem
from wizard.core.project import AddressMode, ProviderType
from wizard.core.secrets import SecretStore
from wizard.core.trust import TrustStore
from wizard.install.discovery import Candidate, discover, provider_settings, taken_by
from wizard.ui.forms import (
    InlineMessage,
    InputPage,
    Kind,
    Parts,
    ProjectDocument,
    claim,
    describe,
    from_text,
    name_widget,
    to_text,
)
from wizard.ui.pages.discover import DiscoverDialog, DiscoverFunction
from wizard.ui.trust import Asker
from wizard.ui.widgets import Banner, Tone, button, heading, paragraph
from wizard.ui.wording import label, problem_text

#: Where a cell keeps the text of its problems (also its tooltip and accessible description).
ProblemRole = Qt.ItemDataRole.UserRole + 1


@dataclass(frozen=True)
class Column:
    key: str  # also the CSV header
    header: str
    parts: Parts  # inside the node
    kind: Kind = Kind.TEXT
    claims: tuple[str, ...] = ()  # field paths inside the node whose problems the cell shows
    providers: tuple[ProviderType, ...] = ()  # empty: shown for every provider
    prune: int = 0


_BMC = (ProviderType.REDFISH,)
COLUMNS: tuple[Column, ...] = (
    Column("name", "Name", ("name",)),
    Column("hostname", "Hostname", ("hostname",)),
    Column("address_mode", "Addressing", ("address_mode",), Kind.CHOICE),
    Column("ip", "IP address", ("ip",)),
    Column("prefix", "Prefix", ("prefix",), Kind.INT),
    Column("gateway", "Gateway", ("gateway",)),
    Column("bmc_address", "BMC address", ("bmc", "address"), claims=("bmc",), providers=_BMC, prune=1),
    Column("bmc_username", "BMC user", ("bmc", "username"), providers=_BMC, prune=1),
    Column("bmc_password", "BMC password keyring name", ("bmc", "password"), Kind.SECRET, providers=_BMC, prune=1),
    Column("bmc_tls_fingerprint", "BMC TLS fingerprint", ("bmc", "tls_fingerprint"), providers=_BMC, prune=1),
    Column("vm", "VM name", ("vm",), providers=(ProviderType.VSPHERE,)),
    Column("maas", "MAAS system id", ("maas",), providers=(ProviderType.MAAS,)),
)
#: Columns a CSV file may have besides the table's.
CSV_EXTRA: tuple[Column, ...] = (
    Column("ssh_port", "SSH port", ("ssh_port",), Kind.INT),
    Column("localui_port", "Local UI port", ("localui_port",), Kind.INT),
    Column("ssh_host_key", "SSH host key", ("ssh_host_key",)),
    Column("localui_fingerprint", "Local UI fingerprint", ("localui_fingerprint",)),
)
CSV_ALIASES = {
    "ip_address": "ip",
    "address": "ip",
    "addressing": "address_mode",
    "mode": "address_mode",
    "host_name": "hostname",
    "bmc_user": "bmc_username",
    "bmc_password_keyring_name": "bmc_password",
    "bmc_password_ref": "bmc_password",
    "vm_name": "vm",
    "maas_system_id": "maas",
    "maas_id": "maas",
}
#: What a duplicated row leaves empty: what must differ from node to node.
_IDENTITY = ("name", "hostname", "ip", "vm", "maas", "ssh_host_key", "localui_fingerprint")


def _claims(column: Column) -> tuple[str, ...]:
    return column.claims or (".".join(str(p) for p in column.parts),)


def _normalise(header: str) -> str:
    key = header.strip().lower().replace(" ", "_").replace("-", "_")
    return CSV_ALIASES.get(key, key)


@dataclass
class CsvRows:
    nodes: list[tuple[int, dict[str, Any]]]  # (line number, node)
    errors: list[str]


def read_nodes_csv(text: str) -> CsvRows:
    """Nodes from CSV text with a header row naming the columns (the table's keys or headers, in any order)."""
    known = {c.key: c for c in (*COLUMNS, *CSV_EXTRA)}
    reader = csv.reader(io.StringIO(text))
    header: list[Column] | None = None
    nodes: list[tuple[int, dict[str, Any]]] = []
    errors: list[str] = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                names = [_normalise(c) for c in cells]
                unknown = [c for c, n in zip(cells, names, strict=True) if n not in known]
                if unknown:
                    allowed = ", ".join(known)
                    errors.append(f"line {line}: unknown column {', '.join(map(repr, unknown))} (known: {allowed})")
                    return CsvRows([], errors)
                doubled = sorted({n for n in names if names.count(n) > 1})
                if doubled:
                    errors.append(f"line {line}: column {', '.join(doubled)} appears twice")
                    return CsvRows([], errors)
                if "name" not in names:
                    errors.append(f"line {line}: the header has no name column")
                    return CsvRows([], errors)
                header = [known[n] for n in names]
                continue
            if len(cells) != len(header):
                errors.append(f"line {line}: {len(cells)} values, but the header has {len(header)}; row skipped")
                continue
            node: dict[str, Any] = {}
            for column, cell in zip(header, cells, strict=True):
                value = from_text(cell, column.kind)
                if value is None:
                    continue
                target = node
                for part in column.parts[:-1]:
                    target = target.setdefault(str(part), {})
                target[str(column.parts[-1])] = value
            nodes.append((line, node))
    except csv.Error as exc:
        errors.append(f"line {reader.line_num}: {exc}")
    if header is None and not errors:
        errors.append("the file is empty: it needs a header row and one row per node")
    return CsvRows(nodes, errors)


class _Delegate(QStyledItemDelegate):
    """Editors with accessible names; a drop-down for the addressing mode."""

    def __init__(self, page: NodesPage) -> None:
        super().__init__(page.table)
        self.page = page

    def createEditor(
        self, parent: QWidget, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QWidget:
        column = self.page.columns[index.column()]
        editor: QWidget
        if column.kind is Kind.CHOICE:
            combo = QComboBox(parent)
            combo.addItems([m.value for m in AddressMode])
            editor = combo
        else:
            editor = super().createEditor(parent, option, index)
        name = self.page.tr("{column} of row {row}").format(column=self.page.tr(column.header), row=index.row() + 1)
        name_widget(editor, name)
        return editor

    def setModelData(
        self, editor: QWidget, model: QAbstractItemModel, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        if isinstance(editor, QComboBox):
            model.setData(index, editor.currentText(), Qt.ItemDataRole.EditRole)
            return
        super().setModelData(editor, model, index)


class NodesPage(InputPage):
    title = "Nodes"
    prefixes = ("nodes",)

    def __init__(
        self,
        document: ProjectDocument,
        parent: QWidget | None = None,
        *,
        secrets: SecretStore | None = None,
        ask: Asker | None = None,
        config_dir: Callable[[], Path] | None = None,
    ) -> None:
        """``secrets``, ``ask`` (the trust dialog) and ``config_dir`` (the trust store's folder) serve discovery;
        left out, the window's own are used when the discovery dialog opens."""
        super().__init__(document, parent)
        self.title = self.tr("Nodes")
        tr = self.tr
        self.secrets = secrets
        self.ask = ask
        self.config_dir = config_dir
        #: Replaced in tests; "http" reaches a plain-HTTP vCenter simulator.
        self.discover_function: DiscoverFunction = discover
        self.vsphere_scheme = "https"
        self.discover_dialog: DiscoverDialog | None = None
        self.columns: list[Column] = []
        self._filling = False
        self.import_lines: list[str] = []

        self.table = QTableWidget(0, 0, self)
        self.table.setAccessibleName(tr("Nodes"))
        self.table.setAccessibleDescription(tr("One row per node; F2 or typing edits the current cell"))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectItems)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked
            | QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.AnyKeyPressed
        )
        self.table.setTabKeyNavigation(False)  # Tab moves on to the next control; the arrows move between cells
        self.table.setAlternatingRowColors(True)
        self.table.setMinimumHeight(170)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 12)
        self.table.setItemDelegate(_Delegate(self))
        self.table.itemChanged.connect(self._cell_edited)
        self.table.currentCellChanged.connect(lambda *_: self._show_current())
        table_label = QLabel(self.mnemonics(tr("Nodes")) + ":", self)
        table_label.setBuddy(self.table)

        self.add_button = button(self.mnemonics(tr("Add node")), tr("Add a node"), self)
        self.duplicate_button = button(self.mnemonics(tr("Duplicate")), tr("Duplicate the current node"), self)
        self.remove_button = button(self.mnemonics(tr("Remove")), tr("Remove the current node"), self)
        self.import_button = button(self.mnemonics(tr("Import CSV…")), tr("Import nodes from a CSV file"), self)
        self.import_button.setToolTip(
            tr("A header row naming the columns ({columns}), then one row per node; replaces the table").format(
                columns=", ".join(c.key for c in (*COLUMNS, *CSV_EXTRA))
            )
        )
        self.discover_button = button(
            self.mnemonics(tr("Discover…")), tr("Discover nodes from the provider's inventory"), self
        )
        self.discover_button.clicked.connect(self.open_discovery)
        self.add_button.clicked.connect(self.add_node)
        self.duplicate_button.clicked.connect(self.duplicate_node)
        self.remove_button.clicked.connect(self.remove_node)
        self.import_button.clicked.connect(self.choose_csv)

        self.cell_message = InlineMessage(Tone.ERROR, self)
        self.import_report = Banner(Tone.INFO, self)
        self.problem_list = QListWidget(self)
        self.problem_list.setAccessibleName(tr("Problems in the node table"))
        self.problem_list.setAccessibleDescription(tr("Activate a problem to go to its cell"))
        self.problem_list.setWordWrap(True)
        self.problem_list.setMaximumHeight(130)
        self.problem_list.itemActivated.connect(self._go_to_problem)
        self.problems_label = QLabel(self.mnemonics(tr("Problems")) + ":", self)
        self.problems_label.setBuddy(self.problem_list)

        buttons = QHBoxLayout()
        for b in (self.add_button, self.duplicate_button, self.remove_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.import_button)
        buttons.addWidget(self.discover_button)

        layout = QVBoxLayout(self)
        layout.addWidget(heading(tr("Nodes"), self))
        layout.addWidget(
            paragraph(
                tr(
                    "Three nodes for production (one for a trial), all in one subnet with the VIP. Static addresses "
                    "need an IP, prefix and gateway; DHCP addresses must be reserved so they never change."
                ),
                self,
            )
        )
        layout.addWidget(self.page_message)
        layout.addWidget(table_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.cell_message)
        layout.addLayout(buttons)
        layout.addWidget(self.import_report)
        layout.addWidget(self.problems_label)
        layout.addWidget(self.problem_list)
        self.populate()

    # -- the table -----------------------------------------------------------------------------------------
    def provider_type(self) -> ProviderType | None:
        value = self.document.get(("provider", "type"))
        try:
            return ProviderType(value.strip().lower()) if isinstance(value, str) else None
        except ValueError:
            return None

    def nodes(self) -> list[Any]:
        value = self.document.get(("nodes",))
        return value if isinstance(value, list) else []

    def column_index(self, key: str) -> int:
        return next(i for i, c in enumerate(self.columns) if c.key == key)

    def populate(self) -> None:
        ptype = self.provider_type()
        self.columns = [c for c in COLUMNS if not c.providers or ptype in c.providers]
        current = (self.table.currentRow(), self.table.currentColumn())
        self._filling = True
        try:
            self.table.clear()
            self.table.setColumnCount(len(self.columns))
            self.table.setHorizontalHeaderLabels([self.tr(c.header) for c in self.columns])
            nodes = self.nodes()
            self.table.setRowCount(len(nodes))
            for row in range(len(nodes)):
                for col, column in enumerate(self.columns):
                    value = self.document.get(("nodes", row, *column.parts))
                    text = to_text(value, column.kind)
                    if column.kind is Kind.CHOICE and not text:
                        text = AddressMode.STATIC.value  # what the core assumes
                    self.table.setItem(row, col, QTableWidgetItem(text))
        finally:
            self._filling = False
        self.table.resizeColumnsToContents()
        # Room for a problem's icon, so a flagged cell still shows its whole value.
        icon = self.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize) + 8
        for col in range(len(self.columns)):
            self.table.setColumnWidth(col, max(self.table.columnWidth(col) + icon, 90))
        if self.table.rowCount():
            row = min(max(current[0], 0), self.table.rowCount() - 1)
            col = min(max(current[1], 0), len(self.columns) - 1)
            self.table.setCurrentCell(row, col)
        self.show_problems()

    def _cell_edited(self, item: QTableWidgetItem) -> None:
        if self._filling:
            return
        column = self.columns[item.column()]
        parts = ("nodes", item.row(), *column.parts)
        self.document.set(parts, from_text(item.text(), column.kind), prune=column.prune)

    def _set_nodes(self, nodes: list[Any], current: int | None = None) -> None:
        self.document.set(("nodes",), nodes)
        self.populate()
        if current is not None and 0 <= current < self.table.rowCount():
            self.table.setCurrentCell(current, 0)
            self.table.setFocus()
        self._update_buttons()

    def _free_name(self, nodes: list[Any]) -> str:
        used = {n.get("name") for n in nodes if isinstance(n, dict)}
        number = 1
        while f"node-{number}" in used:
            number += 1
        return f"node-{number}"

    def add_node(self) -> None:
        nodes = self.nodes()
        nodes.append({"name": self._free_name(nodes)})
        self._set_nodes(nodes, len(nodes) - 1)

    def duplicate_node(self) -> None:
        nodes = self.nodes()
        row = self.table.currentRow()
        if not 0 <= row < len(nodes):
            return
        source = nodes[row] if isinstance(nodes[row], dict) else {}
        copied = {k: copy.deepcopy(v) for k, v in source.items() if k not in _IDENTITY}
        if isinstance(copied.get("bmc"), dict):
            copied["bmc"].pop("address", None)  # every node has its own BMC
            copied["bmc"].pop("tls_fingerprint", None)
        copied = {"name": self._free_name(nodes), **copied}
        nodes.insert(row + 1, copied)
        self._set_nodes(nodes, row + 1)

    def remove_node(self) -> None:
        nodes = self.nodes()
        row = self.table.currentRow()
        if not 0 <= row < len(nodes):
            return
        del nodes[row]
        self._set_nodes(nodes, min(row, len(nodes) - 1))

    def _update_buttons(self) -> None:
        has_row = 0 <= self.table.currentRow() < self.table.rowCount()
        self.duplicate_button.setEnabled(has_row)
        self.remove_button.setEnabled(has_row)
        self.add_button.setEnabled(self.document.doc is not None)
        self.import_button.setEnabled(self.document.doc is not None)
        discoverable = self.provider_type() in (ProviderType.VSPHERE, ProviderType.REDFISH, ProviderType.MAAS)
        self.discover_button.setEnabled(self.document.doc is not None and discoverable)
        self.discover_button.setToolTip(
            self.tr("Pick nodes from the provider's VMs, machines or BMC systems")
            if discoverable
            else self.tr("Only vSphere, MAAS and Redfish have an inventory to discover nodes in")
        )

    # -- discovery -----------------------------------------------------------------------------------------
    def _discovery_context(self) -> tuple[SecretStore, Asker | None, Path]:
        # The main window owns the keyring store, the trust dialog and the runs' trust store; a page built
        # without them (the window predates discovery) borrows the window's.
        window = self.window()
        secrets = self.secrets or getattr(window, "secrets", None)
        if not isinstance(secrets, SecretStore):
            secrets = self.secrets = SecretStore()
        ask = self.ask or getattr(getattr(window, "trust", None), "ask", None)
        config_dir = self.config_dir or getattr(getattr(window, "credentials", None), "config_dir", None)
        folder = config_dir() if callable(config_dir) else app_paths().ensure().config
        return secrets, ask, Path(folder)

    def open_discovery(self) -> DiscoverDialog | None:
        """Open the discovery dialog (window-modal); the candidates checked in it are added as nodes."""
        if self.document.doc is None or (self.discover_dialog is not None and self.discover_dialog.isVisible()):
            return None
        try:
            provider = provider_settings(self.document.doc)
        except WizardError as exc:
            lines = [f"{exc.title}: {exc.message}", *exc.details.splitlines()]
            self._report([*lines, self.tr("What to do: {fix}").format(fix=exc.remediation)], Tone.ERROR)
            return None
        secrets, ask, folder = self._discovery_context()
        row = self.table.currentRow()
        bmc = self.document.get(("nodes", row, "bmc")) if row >= 0 else None
        if not isinstance(bmc, dict):  # the first row with a BMC: its user and keyring name are likely shared
            bmc = next((n["bmc"] for n in self.nodes() if isinstance(n, dict) and isinstance(n.get("bmc"), dict)), None)
        dialog = DiscoverDialog(
            provider,
            secrets,
            TrustStore(folder),
            ask,
            self,
            bmc=bmc,
            discover_function=self.discover_function,
            vsphere_scheme=self.vsphere_scheme,
        )
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.accepted.connect(lambda: self.add_discovered(dialog.chosen(), dialog.source()))
        if self.discover_dialog is not None:
            self.discover_dialog.deleteLater()  # the previous one, closed: one dialog at a time
        self.discover_dialog = dialog
        dialog.open()
        if provider.type is not ProviderType.REDFISH or all(
            e.text().strip() for e in (dialog.address_edit, dialog.user_edit, dialog.secret_edit)
        ):
            dialog.start()
        return dialog

    def add_discovered(self, candidates: list[Candidate], source: str = "") -> int:
        """Append a node for each candidate (a free name, its fields filled); rows already in the table are left
        as they are, and a candidate one of them already is, is skipped with a message. Returns how many were
        added."""
        nodes = self.nodes()
        first = len(nodes)
        lines: list[str] = []
        for candidate in candidates:
            who = taken_by(candidate, nodes)
            if who is not None:
                lines.append(
                    self.tr("{candidate} skipped: it is already node {node}").format(
                        candidate=candidate.label, node=who
                    )
                )
                continue
            fields = copy.deepcopy(candidate.fields)
            hostnames = {n.get("hostname") for n in nodes if isinstance(n, dict) and n.get("hostname")}
            if fields.get("hostname") in hostnames:
                del fields["hostname"]  # a host name already taken would only be a conflict to fix
            nodes.append({"name": self._free_name(nodes), **fields})
        added = len(nodes) - first
        if added:
            self._set_nodes(nodes, first)
        where = f" ({source})" if source else ""
        head = self.tr("Added {count} node(s) from discovery{where}.").format(count=added, where=where)
        if added:
            head += " " + self.tr("Fill in each new node's host name and address.")
        self._report([head, *lines], Tone.WARNING if lines else Tone.SUCCESS)
        return added

    # -- CSV -----------------------------------------------------------------------------------------------
    def choose_csv(self) -> None:
        folder = str(self.document.path.resolve().parent) if self.document.path else str(Path.home())
        name, _ = QFileDialog.getOpenFileName(
            self, self.tr("Import nodes from CSV"), folder, self.tr("CSV (*.csv);;All files (*)")
        )
        if name:
            self.import_csv(Path(name))

    def import_csv(self, path: Path) -> bool:
        """Replace the table with the nodes in ``path``; the report names every problem by CSV line. True when
        rows were imported."""
        try:
            text = path.read_text(encoding="utf-8-sig")  # spreadsheets often start UTF-8 files with a BOM
        except (OSError, UnicodeDecodeError) as exc:
            self._report([self.tr("{file} cannot be read: {error}").format(file=path.name, error=exc)], Tone.ERROR)
            return False
        rows = read_nodes_csv(text)
        if not rows.nodes:
            lines = rows.errors or [self.tr("{file} has no node rows").format(file=path.name)]
            self._report([self.tr("Nothing was imported from {file}:").format(file=path.name), *lines], Tone.ERROR)
            return False
        self._set_nodes([node for _, node in rows.nodes], 0)
        lines = [self.tr("Imported {count} node(s) from {file}.").format(count=len(rows.nodes), file=path.name)]
        lines.extend(rows.errors)
        problems = self.document.problems_under(("nodes",))
        worst = Tone.ERROR if rows.errors else Tone.SUCCESS
        for i, (line, node) in enumerate(rows.nodes):
            prefix = f"nodes[{i}]"
            name = node.get("name") or self.tr("no name")
            for problem in problems:
                if problem.path == prefix or problem.path.startswith((prefix + ".", prefix + "[")):
                    what = self._field_label(problem.path[len(prefix) :].lstrip("."))
                    lines.append(f"line {line} ({name}), {what}: {describe(problem)}")
                    worst = Tone.ERROR if problem.is_error or worst is Tone.ERROR else Tone.WARNING
        for problem in problems:
            if problem.path == "nodes":
                lines.append(f"{self.tr('All rows')}: {describe(problem)}")
                worst = Tone.ERROR if problem.is_error or worst is Tone.ERROR else Tone.WARNING
        self._report(lines, worst)
        return True

    def _field_label(self, relative: str) -> str:
        for column in (*COLUMNS, *CSV_EXTRA):
            if any(relative == c or relative.startswith(c + ".") for c in _claims(column)):
                return self.tr(column.header)
        return relative or self.tr("row")

    def _report(self, lines: list[str], tone: Tone) -> None:
        self.import_lines = lines
        self.import_report.show_text("\n".join(lines), tone)

    # -- problems ------------------------------------------------------------------------------------------
    def show_problems(self) -> None:
        if not hasattr(self, "problem_list"):
            return  # still being built
        problems = self.owned_problems()
        claims: list[tuple[Any, list[str]]] = []
        for row in range(self.table.rowCount()):
            claims.append(((row, 0), [f"nodes[{row}]"]))  # what no visible column shows lands on the name
            for col, column in enumerate(self.columns):
                claims.append(((row, col), [f"nodes[{row}].{c}" for c in _claims(column)]))
        owned, rest = claim(problems, claims)
        style = self.style()
        error_icon = style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxCritical)
        warning_icon = style.standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        self._filling = True
        try:
            for row in range(self.table.rowCount()):
                for col in range(len(self.columns)):
                    item = self.table.item(row, col)
                    if item is None:
                        continue
                    found = owned.get((row, col), [])
                    text = "\n".join(self._cell_problem_text(p, row, col) for p in found)
                    if item.data(ProblemRole) == (text or None):
                        continue
                    item.setData(ProblemRole, text or None)
                    item.setToolTip(text)
                    item.setData(Qt.ItemDataRole.AccessibleDescriptionRole, text)
                    if not found:
                        item.setIcon(QIcon())
                    else:
                        item.setIcon(error_icon if any(p.is_error for p in found) else warning_icon)
        finally:
            self._filling = False

        self.problem_list.clear()
        for (row, col), found in sorted(owned.items(), key=lambda kv: kv[0]):
            for problem in found:
                entry = QListWidgetItem(
                    error_icon if problem.is_error else warning_icon,
                    f"{self._row_label(row)}, {self.tr(self.columns[col].header)}: "
                    f"{self._cell_problem_text(problem, row, col)}",
                )
                entry.setData(Qt.ItemDataRole.UserRole, (row, col))
                self.problem_list.addItem(entry)
        for problem in rest:
            self.problem_list.addItem(
                QListWidgetItem(error_icon if problem.is_error else warning_icon, problem_text(problem))
            )
        self.problem_list.setVisible(self.problem_list.count() > 0)
        self.problems_label.setVisible(self.problem_list.count() > 0)
        self.show_page_problems([p for p in rest if p.path == "nodes" or not p.path.startswith("nodes[")])
        self._show_current()
        self._update_buttons()
        self.changed.emit()

    def _row_label(self, row: int) -> str:
        name = self.document.get(("nodes", row, "name"))
        who = f" ({name})" if isinstance(name, str) and name else ""
        return self.tr("Row {row}").format(row=row + 1) + who

    def _cell_problem_text(self, problem: Problem, row: int, col: int) -> str:
        # On the name cell, a problem of a field the table does not show says which field it is.
        column = self.columns[col]
        relative = problem.path[len(f"nodes[{row}]") :].lstrip(".")
        shown = any(relative == c or relative.startswith((c + ".", c + "[")) for c in _claims(column))
        return describe(problem) if shown or not relative else f"{label(problem.path)}: {describe(problem)}"

    def cell_problems(self, row: int, col: int) -> str:
        item = self.table.item(row, col)
        value = item.data(ProblemRole) if item is not None else None
        return str(value) if value else ""

    def _show_current(self) -> None:
        row, col = self.table.currentRow(), self.table.currentColumn()
        text = self.cell_problems(row, col) if row >= 0 and col >= 0 else ""
        if not text:
            self.cell_message.hide()
        else:
            label = f"{self._row_label(row)}, {self.tr(self.columns[col].header)}"
            tone = Tone.ERROR if "✗" in text else Tone.WARNING
            self.cell_message.show_text(f"{label}:\n{text}", tone)
        self._update_buttons()

    def _go_to_problem(self, entry: QListWidgetItem) -> None:
        where = entry.data(Qt.ItemDataRole.UserRole)
        if where:
            self.table.setCurrentCell(*where)
            self.table.setFocus()
