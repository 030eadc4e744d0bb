"""The provider page: how the nodes are booted (vSphere, Redfish bare metal, MAAS or by hand) and its settings."""

from __future__ import annotations

import copy
from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from wizard.core.problems import Problem
from wizard.core.project import ProviderType, VmMode
from wizard.ui.forms import InlineMessage, InputPage, Kind, Mnemonics, ProjectDocument, describe, name_widget
from wizard.ui.widgets import Tone, heading, paragraph

_FINGERPRINT_HINT = "AB:CD:… (32 pairs) or SHA256:…; empty: confirm on first contact"


class ProviderPage(InputPage):
    title = "Provider"
    prefixes = ("provider",)

    def __init__(self, document: ProjectDocument, parent: QWidget | None = None) -> None:
        super().__init__(document, parent)
        self.title = self.tr("Provider")
        # Settings of the other provider types, kept while the operator switches between them.
        self._stash: dict[str, Any] = {}
        document.loaded.connect(self._stash.clear)  # a file was (re)read: its settings are the ones that count

        self.type_combo = QComboBox(self)
        name_widget(self.type_combo, self.tr("Provider type"))
        for ptype, text in (
            (ProviderType.VSPHERE, self.tr("VMware vSphere (the wizard creates or uses VMs)")),
            (ProviderType.REDFISH, self.tr("Bare metal through Redfish BMCs")),
            (ProviderType.MAAS, self.tr("Canonical MAAS")),
            (ProviderType.MANUAL, self.tr("Manual (you boot each node from the ISO)")),
        ):
            self.type_combo.addItem(text, ptype.value)
        self.type_combo.activated.connect(self._type_chosen)
        self.type_message = InlineMessage(Tone.ERROR, self)
        type_label = QLabel(self.mnemonics(self.tr("Provider type")) + ":", self)
        type_label.setBuddy(self.type_combo)
        top = QHBoxLayout()
        top.addWidget(type_label)
        top.addWidget(self.type_combo, 1)

        self.stack = QStackedWidget(self)
        self.stack.setAccessibleName(self.tr("Provider settings"))
        self.panels: dict[str, QWidget] = {
            ProviderType.VSPHERE.value: self._vsphere_panel(self.mnemonics.fork()),
            ProviderType.REDFISH.value: self._redfish_panel(self.mnemonics.fork()),
            ProviderType.MAAS.value: self._maas_panel(self.mnemonics.fork()),
            ProviderType.MANUAL.value: self._manual_panel(),
        }
        for panel in self.panels.values():
            self.stack.addWidget(panel)

        layout = QVBoxLayout(self)
        layout.addWidget(heading(self.tr("Provider"), self))
        layout.addWidget(
            paragraph(self.tr("How the wizard boots the nodes from the appliance ISO, and where it finds them."), self)
        )
        layout.addWidget(self.page_message)
        layout.addLayout(top)
        layout.addWidget(self.type_message)
        layout.addWidget(self.stack)
        layout.addStretch(1)
        self.populate()

    # -- panels --------------------------------------------------------------------------------------------
    def _form(self, box: QGroupBox) -> QFormLayout:
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        return form

    def _vsphere_panel(self, mn: Mnemonics) -> QWidget:
        panel = QWidget(self)
        base = ("provider", "vsphere")
        vc = QGroupBox(self.tr("vCenter"), panel)
        form = self._form(vc)
        tr = self.tr
        self.add_field(form, tr("Server"), (*base, "server"), placeholder="vcenter.example.com", mnemonics=mn)
        self.add_field(form, tr("Port"), (*base, "port"), kind=Kind.INT, placeholder="443", mnemonics=mn)
        self.add_field(form, tr("User"), (*base, "username"), placeholder="administrator@vsphere.local", mnemonics=mn)
        self.add_field(
            form,
            tr("Password keyring name"),
            (*base, "password"),
            kind=Kind.SECRET,
            placeholder="vcenter-admin",
            mnemonics=mn,
            help_text=tr("The name the password is stored under in the OS keyring; enter it on the Credentials page."),
        )
        self.add_field(
            form, tr("TLS fingerprint"), (*base, "tls_fingerprint"), placeholder=_FINGERPRINT_HINT, mnemonics=mn
        )

        place = QGroupBox(self.tr("Placement"), panel)
        form = self._form(place)
        self.add_field(form, tr("Datacenter"), (*base, "datacenter"), placeholder="DC0", mnemonics=mn)
        self.add_field(form, tr("Compute cluster"), (*base, "cluster"), placeholder="Cluster0", mnemonics=mn)
        self.add_field(form, tr("Datastore"), (*base, "datastore"), placeholder="datastore1", mnemonics=mn)
        self.add_field(form, tr("Network"), (*base, "network"), placeholder="VM Network", mnemonics=mn)
        self.add_field(form, tr("VM folder"), (*base, "folder"), placeholder=tr("optional"), mnemonics=mn)
        self.add_field(form, tr("Resource pool"), (*base, "resource_pool"), placeholder=tr("optional"), mnemonics=mn)
        self.add_field(form, tr("ISO folder"), (*base, "iso_folder"), placeholder="palette-iso", mnemonics=mn)

        vms = QGroupBox(self.tr("Virtual machines"), panel)
        form = self._form(vms)
        self.add_field(
            form,
            tr("VM mode"),
            (*base, "vm_mode"),
            kind=Kind.CHOICE,
            choices=[
                (VmMode.CREATE.value, tr("Create the VMs")),
                (VmMode.EXISTING.value, tr("Use existing VMs")),
            ],
            default=VmMode.CREATE.value,
            mnemonics=mn,
        )
        spec = (*base, "vm")
        # The spec-wide warning (too little CPU or memory) is shown with its first field.
        self.add_field(
            form,
            tr("vCPUs"),
            (*spec, "cpus"),
            kind=Kind.INT,
            placeholder="8",
            prune=1,
            mnemonics=mn,
            claims=("provider.vsphere.vm.cpus", "provider.vsphere.vm"),
        )
        self.add_field(
            form, tr("Memory (GB)"), (*spec, "memory_gb"), kind=Kind.INT, placeholder="16", prune=1, mnemonics=mn
        )
        self.add_field(
            form, tr("OS disk (GB)"), (*spec, "os_disk_gb"), kind=Kind.INT, placeholder="300", prune=1, mnemonics=mn
        )
        self.add_field(
            form,
            tr("Data disk (GB)"),
            (*spec, "data_disk_gb"),
            kind=Kind.INT,
            placeholder="500",
            prune=1,
            mnemonics=mn,
        )

        grid = QGridLayout(panel)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(vc, 0, 0)
        grid.addWidget(place, 0, 1, 2, 1)
        grid.addWidget(vms, 1, 0)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        return panel

    def _redfish_panel(self, mn: Mnemonics) -> QWidget:
        panel = QWidget(self)
        base = ("provider", "redfish")
        box = QGroupBox(self.tr("ISO for the BMCs' virtual media"), panel)
        form = self._form(box)
        tr = self.tr
        self.add_field(
            form,
            tr("ISO URL"),
            (*base, "iso_url"),
            placeholder=tr("https://… (empty: the wizard serves the ISO itself)"),
            mnemonics=mn,
        )
        self.add_field(
            form,
            tr("ISO server address"),
            (*base, "iso_server_bind"),
            placeholder=tr("an address of this machine the BMCs reach (empty: detect)"),
            mnemonics=mn,
        )
        self.add_field(
            form,
            tr("ISO server port"),
            (*base, "iso_server_port"),
            kind=Kind.INT,
            placeholder=tr("0: any free port"),
            mnemonics=mn,
        )
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(box)
        layout.addWidget(
            paragraph(
                tr("Each node's BMC address, user and password keyring name are entered on the Nodes page."), panel
            )
        )
        return panel

    def _maas_panel(self, mn: Mnemonics) -> QWidget:
        panel = QWidget(self)
        base = ("provider", "maas")
        box = QGroupBox(self.tr("MAAS region controller"), panel)
        form = self._form(box)
        tr = self.tr
        self.add_field(form, tr("URL"), (*base, "url"), placeholder="http://maas.example.com:5240/MAAS", mnemonics=mn)
        self.add_field(
            form,
            tr("API key keyring name"),
            (*base, "api_key"),
            kind=Kind.SECRET,
            placeholder="maas-api-key",
            mnemonics=mn,
            help_text=tr("The name the API key is stored under in the OS keyring; enter it on the Credentials page."),
        )
        self.add_field(
            form, tr("TLS fingerprint"), (*base, "tls_fingerprint"), placeholder=_FINGERPRINT_HINT, mnemonics=mn
        )
        narrow = tr("Narrows what Discover on the Nodes page lists; empty lists every machine you can see.")
        self.add_field(
            form,
            tr("Machine tags"),
            (*base, "tags"),
            kind=Kind.LIST,
            placeholder=tr("palette, appliance (all must match)"),
            mnemonics=mn,
            help_text=narrow,
        )
        for label, key in ((tr("Resource pool"), "pool"), (tr("Zone"), "zone")):
            self.add_field(form, label, (*base, key), placeholder="default", mnemonics=mn, help_text=narrow)
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(box)
        layout.addWidget(
            paragraph(
                tr("Each node's MAAS system id or host name is entered (or discovered) on the Nodes page."), panel
            )
        )
        return panel

    def _manual_panel(self) -> QWidget:
        panel = QWidget(self)
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(
            paragraph(
                self.tr(
                    "You boot every node from the appliance ISO yourself (a USB stick, a virtual CD). The wizard "
                    "tells you when, then waits for each node at the address you give on the Nodes page and takes "
                    "over from there. There is nothing to set here."
                ),
                panel,
            )
        )
        return panel

    # -- the provider type ---------------------------------------------------------------------------------
    def provider_type(self) -> str:
        value = self.document.get(("provider", "type"))
        return value.strip().lower() if isinstance(value, str) else ""

    def _type_chosen(self, _index: int) -> None:
        self.set_provider_type(str(self.type_combo.currentData()))

    def set_provider_type(self, ptype: str) -> None:
        """Switch the provider; the settings of the one left are kept (in memory) in case the operator comes back."""
        doc = self.document.doc
        if doc is None or ptype == self.provider_type():
            return
        provider = doc.get("provider")
        if not isinstance(provider, dict):
            provider = {}
        for other in ProviderType:
            if other.value in provider:
                self._stash[other.value] = provider[other.value]
        new: dict[str, Any] = {"type": ptype}
        if ptype != ProviderType.MANUAL.value:
            new[ptype] = copy.deepcopy(self._stash.get(ptype, {}))
        self.document.set(("provider",), new)
        self._show_type()
        for field in self.fields:
            field.populate()

    def _show_type(self) -> None:
        ptype = self.provider_type()
        index = self.type_combo.findData(ptype)
        if index < 0 and ptype:
            self.type_combo.addItem(ptype, ptype)  # an unknown type stays visible; the core explains it
            index = self.type_combo.count() - 1
        self.type_combo.setCurrentIndex(max(index, 0))
        panel = self.panels.get(ptype)
        self.stack.setVisible(panel is not None)
        if panel is not None:
            self.stack.setCurrentWidget(panel)

    def populate(self) -> None:
        self._show_type()
        super().populate()

    def show_page_problems(self, problems: list[Problem]) -> None:
        # What no field claims (the type, a missing or extra section) is shown under the type.
        self.type_message.show_problems(problems)
        text = "\n".join(describe(p) for p in problems)
        self.type_combo.setToolTip(text)
        self.type_combo.setAccessibleDescription(text)
