"""The files page: the appliance ISO, the content and pack bundles, their signatures and the public key.

Only picking happens here, and a look at each file's size; checksums and signatures are verified by the engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from wizard.core.problems import Problem
from wizard.ui.forms import Field, InlineMessage, InputPage, Parts, ProjectDocument, claim, describe, field_path
from wizard.ui.units import human_bytes
from wizard.ui.widgets import Tone, button, heading, paragraph
from wizard.ui.wording import where


class FilesPage(InputPage):
    title = "Files"
    prefixes = ("files",)

    def __init__(self, document: ProjectDocument, parent: QWidget | None = None) -> None:
        super().__init__(document, parent)
        self.title = self.tr("Files")
        tr = self.tr
        self.sizes: dict[Field, QLabel] = {}
        self.browse_buttons: dict[Field, Any] = {}

        box = QGroupBox(tr("Appliance and content"), self)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.iso = self._file_row(form, tr("Appliance ISO"), ("files", "iso"), tr("ISO image (*.iso);;All files (*)"))
        self.content = self._file_row(
            form,
            tr("Content bundle"),
            ("files", "content_bundle"),
            tr("Content bundle (*.zst *.tar *.tgz *.gz);;All files (*)"),
        )
        self.content_signature = self._file_row(
            form,
            tr("Content bundle signature"),
            ("files", "content_bundle", "signature"),
            tr("Signature (*.sig.bin *.sig);;All files (*)"),
            placeholder=tr("empty: the .sig.bin file beside the bundle"),
        )
        self.public_key = self._file_row(
            form, tr("Public key"), ("files", "public_key"), tr("Public key (*.pem);;All files (*)")
        )

        packs = QGroupBox(tr("Pack bundles"), self)
        self.packs = QListWidget(packs)
        self.packs.setAccessibleName(tr("Pack bundles"))
        self.packs.setAlternatingRowColors(True)
        self.packs.setMinimumHeight(90)
        self.packs.setMaximumHeight(180)
        self.add_pack_button = button(self.mnemonics(tr("Add pack bundles…")), tr("Add pack bundles"), packs)
        self.remove_pack_button = button(
            self.mnemonics(tr("Remove pack bundle")), tr("Remove the selected pack bundle"), packs
        )
        self.add_pack_button.clicked.connect(self.choose_packs)
        self.remove_pack_button.clicked.connect(self.remove_pack)
        self.packs.currentRowChanged.connect(lambda _r: self._update_buttons())
        self.packs_message = InlineMessage(Tone.ERROR, packs)
        pack_buttons = QHBoxLayout()
        pack_buttons.addWidget(self.add_pack_button)
        pack_buttons.addWidget(self.remove_pack_button)
        pack_buttons.addStretch(1)
        pack_layout = QVBoxLayout(packs)
        pack_layout.addWidget(paragraph(tr("Each pack bundle's signature is the .sig.bin file beside it."), packs))
        pack_layout.addWidget(self.packs)
        pack_layout.addWidget(self.packs_message)
        pack_layout.addLayout(pack_buttons)

        layout = QVBoxLayout(self)
        layout.addWidget(heading(tr("Files"), self))
        layout.addWidget(
            paragraph(
                tr(
                    "Pick the files downloaded from Artifact Studio. Relative paths start at the project file's "
                    "folder. The install verifies their checksums and signatures before it touches a node."
                ),
                self,
            )
        )
        layout.addWidget(self.page_message)
        layout.addWidget(box)
        layout.addWidget(packs)
        layout.addStretch(1)
        self.populate()

    # -- building ------------------------------------------------------------------------------------------
    def _file_row(self, form: QFormLayout, label: str, parts: Parts, filter: str, placeholder: str = "") -> Field:
        parent = form.parentWidget() or self
        size = QLabel("", parent)
        size.setAccessibleName(self.tr("Size of {what}").format(what=label))
        size.setMinimumWidth(90)
        browse = button(self.tr("Browse…"), self.tr("Choose the {what} file").format(what=label), parent)
        field = self.add_field(
            form, label, parts, claims=(field_path(parts),), placeholder=placeholder, prune=1, beside=(size, browse)
        )
        # A file given in its long form ({path, sha256, signature}) keeps the other keys when its path changes.
        field.writer = lambda text: self.set_path(field, text)
        browse.clicked.connect(lambda: self.choose_file(field, label, filter))
        self.sizes[field] = size
        self.browse_buttons[field] = browse
        assert isinstance(field.widget, QLineEdit)
        field.widget.textChanged.connect(lambda _t: self._show_size(field))
        return field

    # -- values --------------------------------------------------------------------------------------------
    def _path_parts(self, field: Field) -> Parts:
        """Where the path is kept: the file's own key in short form, or its ``path`` in the long form."""
        if field.parts[-1] == "signature":
            return field.parts
        return (*field.parts, "path") if isinstance(self.document.get(field.parts), dict) else field.parts

    def _value(self, field: Field) -> str:
        value = self.document.get(self._path_parts(field))
        return str(value) if isinstance(value, str | int | float) and not isinstance(value, bool) else ""

    def populate(self) -> None:
        for field in self.fields:
            text = self._value(field)
            if field.widget.text() != text:  # type: ignore[union-attr]
                field.widget.setText(text)  # type: ignore[union-attr]
        self._show_packs()
        self._update_buttons()

    def set_path(self, field: Field, text: str) -> None:
        text = text.strip()
        if field is self.content_signature:
            bundle = self.document.get(self.content.parts)
            if text and isinstance(bundle, str):
                self.document.set(self.content.parts, {"path": bundle, "signature": text})
                return
            self.document.set(field.parts, text or None)
            return
        if isinstance(self.document.get(field.parts), dict):
            if not text:
                self.document.set(field.parts, None)  # no path: the whole entry goes
            else:
                self.document.set((*field.parts, "path"), text)
            return
        self.document.set(field.parts, text or None)

    def _show_size(self, field: Field) -> None:
        label = self.sizes[field]
        text = field.widget.text().strip()  # type: ignore[union-attr]
        if not text:
            label.setText("")
            return
        path = self.document.resolve(text)
        try:
            size = path.stat().st_size if path.is_file() else None
        except OSError:
            size = None
        label.setText(human_bytes(size) if size is not None else self.tr("not found"))

    # -- picking -------------------------------------------------------------------------------------------
    def _folder(self) -> str:
        return str(self.document.path.resolve().parent) if self.document.path else str(Path.home())

    def choose_file(self, field: Field, label: str, filter: str) -> None:
        name, _ = QFileDialog.getOpenFileName(
            self, self.tr("Choose the {what}").format(what=label), self._folder(), filter
        )
        if name:
            text = self.document.relative(Path(name))
            field.widget.setText(text)  # type: ignore[union-attr]
            self.set_path(field, text)

    def _packs(self) -> list[Any]:
        value = self.document.get(("files", "pack_bundles"))
        return list(value) if isinstance(value, list) else []

    def choose_packs(self) -> None:
        names, _ = QFileDialog.getOpenFileNames(
            self,
            self.tr("Add pack bundles"),
            self._folder(),
            self.tr("Pack bundles (*.zst *.tar *.tgz);;All files (*)"),
        )
        if names:
            packs = self._packs() + [self.document.relative(Path(n)) for n in names]
            self.document.set(("files", "pack_bundles"), packs)
            self._show_packs()
            self.packs.setCurrentRow(self.packs.count() - 1)

    def remove_pack(self) -> None:
        row = self.packs.currentRow()
        packs = self._packs()
        if 0 <= row < len(packs):
            del packs[row]
            self.document.set(("files", "pack_bundles"), packs, prune=0)
            self._show_packs()
            self.packs.setCurrentRow(min(row, self.packs.count() - 1))

    def _show_packs(self) -> None:
        self.packs.clear()
        for entry in self._packs():
            value = entry.get("path") if isinstance(entry, dict) else entry
            text = str(value) if value is not None else ""
            path = self.document.resolve(text) if text else None
            try:
                size = human_bytes(path.stat().st_size) if path is not None and path.is_file() else self.tr("not found")
            except OSError:
                size = self.tr("not found")
            item = QListWidgetItem(f"{text}  ({size})")
            item.setData(Qt.ItemDataRole.AccessibleTextRole, self.tr("{path}, {size}").format(path=text, size=size))
            self.packs.addItem(item)
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.remove_pack_button.setEnabled(self.packs.currentRow() >= 0)

    # -- problems ------------------------------------------------------------------------------------------
    def show_problems(self) -> None:
        claims: list[tuple[Any, tuple[str, ...]]] = [(f, f.claims) for f in self.fields]
        claims.append(("packs", ("files.pack_bundles",)))
        owned, rest = claim(self.owned_problems(), claims)
        for field in self.fields:
            field.show_problems(owned.get(field, []))
        packs: list[Problem] = owned.get("packs", [])
        self.packs_message.show_problems(packs)
        text = "\n".join(f"{where(p.path)}: {describe(p)}" for p in packs)
        self.packs.setToolTip(text)
        self.packs.setAccessibleDescription(text)
        self.show_page_problems(rest)
        self.changed.emit()
