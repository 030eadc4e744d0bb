"""The Network page's node networking: per node, a bond (members, mode, hash policy, LACP rate, MII), a VLAN on it
and the management interface that carries the node's address (``nodes[i].network``).

The bond modes, hash policies and LACP rates offered are the node's own (``network/config-options``, read on a
worker with "Read the bond options from the node"); until then the documented Linux bonding names are offered and
the page says so. Everything else the project can describe (more bonds and VLANs, per-interface addressing) is
kept as the project file has it: this editor changes only the first bond and the first VLAN.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.paths import AppPaths
from wizard.core.problems import Problem
from wizard.core.project.nodenet import BOND_MODES, HASH_POLICIES, LACP_RATES
from wizard.core.secrets import SecretStore
from wizard.core.trust import TrustRequest
from wizard.ui.forms import Background, InlineMessage, ProjectDocument, describe, name_widget
from wizard.ui.widgets import Banner, Tone, button, paragraph

log = logging.getLogger(__name__)

Options = dict[str, list[str]]
DOCUMENTED: Options = {
    "mode": list(BOND_MODES),
    "transmitHashPolicy": list(HASH_POLICIES),
    "lacpTransmitRate": list(LACP_RATES),
}


def read_bond_options(
    project_file: Path,
    node: str,
    paths: AppPaths | None,
    secrets: SecretStore,
    ask: Callable[[TrustRequest, CancelToken | None], bool] | None,
) -> Options:
    """The bond options ``node`` offers (its Local UI's ``network/config-options``); raises a WizardError when the
    node cannot be asked or has no network API."""
    from wizard.appliance.network import P_CONFIG_OPTIONS
    from wizard.install.session import Session
    from wizard.install.steps.nodes import Pacing, connector, endpoint

    cancel = CancelToken()
    confirm = (lambda request: ask(request, cancel)) if ask is not None else None
    session = Session.open(project_file, paths=paths, secrets=secrets, confirm=confirm)
    ctx = session.context
    with connector(ctx, Pacing()).open(endpoint(ctx, ctx.project.node(node)), cancel) as client:
        r = client.request("GET", P_CONFIG_OPTIONS, missing_ok=True)
    if r is None:
        raise WizardError(
            "No network configuration on this appliance",
            f"{node}'s Local UI has no network API (it came with the newer Local UI API)",
            remediation="configure bonds and VLANs in the Palette TUI or the Local UI by hand",
        )
    bond = (r.json() or {}).get("bond") or {}
    return {key: [str(v) for v in bond.get(key) or []] or list(DOCUMENTED[key]) for key in DOCUMENTED}


class NodeNetworkEditor(QGroupBox):
    """Edits one node's bond, VLAN and management interface at a time (the node chosen at the top)."""

    def __init__(
        self,
        document: ProjectDocument,
        secrets: SecretStore | None = None,
        parent: QWidget | None = None,
        *,
        paths: Callable[[], AppPaths | None] = lambda: None,
        ask: Callable[[TrustRequest, CancelToken | None], bool] | None = None,
    ) -> None:
        super().__init__(parent)
        tr = self.tr
        self.setTitle(tr("Node networking (bonds and VLANs, applied through the Local UI)"))
        self.document = document
        self.secrets = secrets or SecretStore()
        self.paths = paths
        self.ask = ask
        self.background = Background(self)
        self.options: Options = {k: list(v) for k, v in DOCUMENTED.items()}
        self.options_from = ""  # the node whose own options are shown; "" for the documented names
        self._filling = False

        self.node = QComboBox(self)
        name_widget(self.node, tr("Node whose network to edit"))
        self.node.currentIndexChanged.connect(lambda _i: self.fill())
        self.enabled = QCheckBox(tr("Bond two or more NICs and carry the node's address on a VLAN"), self)
        self.enabled.setAccessibleName(tr("Bond the node's NICs"))
        self.enabled.toggled.connect(lambda _on: self._write())
        self.members = QLineEdit(self)
        self.members.setPlaceholderText(tr("eth0, eth1"))
        self.mode, self.hash_policy, self.lacp_rate = QComboBox(self), QComboBox(self), QComboBox(self)
        self.mii = QLineEdit(self)
        self.mii.setPlaceholderText(tr("milliseconds, e.g. 100"))
        self.vlan = QLineEdit(self)
        self.vlan.setPlaceholderText(tr("1 to 4094; empty: the address goes on the bond itself"))
        self.read_button = button(tr("Read the bond options from the node"), tr("Read the bond options"), self)
        self.read_button.clicked.connect(self.read_options)
        self.source = paragraph("", self)
        self.result = Banner(Tone.INFO, self)
        self.message = InlineMessage(Tone.ERROR, self)
        names = (
            (self.members, tr("Bond members")),
            (self.mode, tr("Bond mode")),
            (self.hash_policy, tr("Transmit hash policy")),
            (self.lacp_rate, tr("LACP rate")),
            (self.mii, tr("Link monitoring (MII)")),
            (self.vlan, tr("Management VLAN ID")),
        )
        form = QFormLayout()
        form.addRow(tr("Node:"), self.node)
        form.addRow(self.enabled)
        for widget, label in names:
            name_widget(widget, label)
            form.addRow(label + ":", widget)
            if isinstance(widget, QLineEdit):
                widget.textEdited.connect(lambda _t: self._write())
            else:
                widget.activated.connect(lambda _i: self._write())
        row = QHBoxLayout()
        row.addWidget(self.read_button)
        row.addWidget(self.source, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(
            paragraph(
                tr(
                    "With appliance.configure: localui the wizard builds these on each node before linking it, "
                    "changing the interface it is connected through last. More bonds, VLANs and per-NIC addressing "
                    "can be written in the project file (nodes[].network)."
                ),
                self,
            )
        )
        layout.addLayout(form)
        layout.addLayout(row)
        layout.addWidget(self.result)
        layout.addWidget(self.message)
        self._set_choices()

    # -- the document --------------------------------------------------------------------------------------
    def index(self) -> int | None:
        i = self.node.currentIndex()
        return i if i >= 0 else None

    def network(self) -> dict[str, Any]:
        i = self.index()
        value = self.document.get(("nodes", i, "network")) if i is not None else None
        return value if isinstance(value, dict) else {}

    def refresh_nodes(self) -> None:
        nodes = self.document.get(("nodes",))
        names = [str(n.get("name") or f"nodes[{i}]") for i, n in enumerate(nodes or []) if isinstance(n, dict)]
        current = self.node.currentText()
        self._filling = True
        self.node.clear()
        self.node.addItems(names)
        if current in names:
            self.node.setCurrentIndex(names.index(current))
        self._filling = False
        self.fill()

    def fill(self) -> None:
        if self._filling:
            return
        self._filling = True
        try:
            net = self.network()
            bond: Mapping[str, Any] = (net.get("bonds") or [{}])[0] if net.get("bonds") else {}
            vlan: Mapping[str, Any] = (net.get("vlans") or [{}])[0] if net.get("vlans") else {}
            self.enabled.setChecked(bool(bond))
            self.members.setText(", ".join(str(m) for m in bond.get("members") or []))
            for combo, key, value in (
                (self.mode, "mode", bond.get("mode") or "active-backup"),
                (self.hash_policy, "transmitHashPolicy", bond.get("hash_policy") or ""),
                (self.lacp_rate, "lacpTransmitRate", bond.get("lacp_rate") or ""),
            ):
                self._choose(combo, key, str(value))
            self.mii.setText("" if bond.get("mii") is None else str(bond.get("mii")))
            self.vlan.setText("" if not vlan.get("id") else str(vlan.get("id")))
            for widget in (self.members, self.mode, self.hash_policy, self.lacp_rate, self.mii, self.vlan):
                widget.setEnabled(bool(bond))
        finally:
            self._filling = False

    def _set_choices(self) -> None:
        for combo, key, optional in (
            (self.mode, "mode", False),
            (self.hash_policy, "transmitHashPolicy", True),
            (self.lacp_rate, "lacpTransmitRate", True),
        ):
            current = combo.currentData()
            combo.clear()
            if optional:
                combo.addItem(self.tr("(the node's default)"), "")
            for value in self.options[key]:
                combo.addItem(value, value)
            self._choose(combo, key, str(current or ""))
        origin = self.options_from
        self.source.setText(
            self.tr("Offered by {node}.").format(node=origin)
            if origin
            else self.tr("Documented values; read the node's own to be sure it offers them.")
        )

    def _choose(self, combo: QComboBox, key: str, value: str) -> None:
        index = combo.findData(value)
        if index < 0 and value:
            combo.addItem(self.tr("{value} (not offered)").format(value=value), value)
            index = combo.count() - 1
        combo.setCurrentIndex(max(index, 0))

    def _write(self) -> None:
        """The form into ``nodes[i].network`` (first bond, first VLAN, management); the rest of it is kept."""
        i = self.index()
        if self._filling or i is None:
            return
        net = dict(self.network())
        if not self.enabled.isChecked():
            for key in ("bonds", "vlans", "management"):
                net.pop(key, None)
        else:
            members = [m.strip() for m in self.members.text().replace(";", ",").split(",") if m.strip()]
            bond: dict[str, Any] = {**((net.get("bonds") or [{}])[0]), "members": members}
            bond.setdefault("name", "bond0")
            combos = (("mode", self.mode), ("hash_policy", self.hash_policy), ("lacp_rate", self.lacp_rate))
            for key, combo in combos:
                value = str(combo.currentData() or "")
                if value:
                    bond[key] = value
                else:
                    bond.pop(key, None)
            mii = self.mii.text().strip()
            if mii.isdigit():
                bond["mii"] = int(mii)
            elif mii:
                bond["mii"] = mii  # the core names what is wrong with it
            else:
                bond.pop("mii", None)
            bonds = [bond, *(net.get("bonds") or [])[1:]]
            net["bonds"] = bonds
            vlan_id = self.vlan.text().strip()
            if vlan_id:
                vlan = {**((net.get("vlans") or [{}])[0]), "parent": bond["name"], "addressing": "static"}
                vlan["id"] = int(vlan_id) if vlan_id.isdigit() else vlan_id
                vlan.pop("name", None)
                net["vlans"] = [vlan, *(net.get("vlans") or [])[1:]]
                net["management"] = f"{bond['name']}.{vlan['id']}"
                bond["addressing"] = "none"  # the VLAN carries the address; the bond only carries the VLAN
            else:  # the bond itself carries the node's address
                net.pop("vlans", None)
                net["management"] = bond["name"]
                bond["addressing"] = "static"
        self.document.set(("nodes", i, "network"), net or None, prune=0)
        for widget in (self.members, self.mode, self.hash_policy, self.lacp_rate, self.mii, self.vlan):
            widget.setEnabled(self.enabled.isChecked())  # what is typed stays as typed

    # -- problems ------------------------------------------------------------------------------------------
    def show_problems(self, problems: list[Problem]) -> None:
        i = self.index()
        prefix = f"nodes[{i}].network"
        mine = [p for p in problems if p.path == prefix or p.path.startswith((prefix + ".", prefix + "["))]
        if not mine:
            self.message.hide()
            return
        tone = Tone.ERROR if any(p.is_error for p in mine) else Tone.WARNING
        self.message.show_text("\n".join(f"{p.path}: {describe(p)}" for p in mine), tone)

    # -- the node's own options ----------------------------------------------------------------------------
    def read_options(self) -> None:
        path, node = self.document.path, self.node.currentText()
        if path is None or not node:
            return
        self.read_button.setEnabled(False)
        self.result.show_text(self.tr("Asking {node} which bond options it offers…").format(node=node), Tone.INFO)
        paths, store, ask = self.paths(), self.secrets, self.ask

        def done(result: Any, error: BaseException | None) -> None:
            self.read_button.setEnabled(True)
            if error is None:
                self.options, self.options_from = result, node
                self._set_choices()
                self.fill()
                text = self.tr("✓ {node} offers {n} bond modes.").format(node=node, n=len(result["mode"]))
                self.result.show_text(text, Tone.SUCCESS)
            elif isinstance(error, WizardError):
                self.result.show_text(f"✗ {error.title}: {error.message} — {error.remediation}", Tone.ERROR)
            else:
                log.error("reading the bond options failed", exc_info=error)
                self.result.show_text(f"✗ {type(error).__name__}: {error}", Tone.ERROR)

        self.background.submit(lambda: read_bond_options(path, node, paths, store, ask), done)
