"""What the input pages share: the project document the window edits, fields that show the core's problems inline,
keyboard mnemonics, and a helper that runs slow work (keyring, connection tests) on the thread pool.

The pages never decide what is valid: every edit goes into the raw project document and the whole document is
validated again by :func:`wizard.core.project.parse_project`; each :class:`Problem` is then shown next to the field
whose path claims it.
"""

from __future__ import annotations

import copy
import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from PySide6.QtCore import QCoreApplication, QObject, Qt, QThreadPool, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from wizard.core.errors import ProjectInvalid
from wizard.core.fsutil import atomic_write_text
from wizard.core.problems import Problem
from wizard.core.project import Project, join_path, load_project, parse_project
from wizard.ui.pages import WizardPage
from wizard.ui.widgets import Banner, Tone
from wizard.ui.wording import humanize, problem_text, where

log = logging.getLogger(__name__)

PathPart = str | int
Parts = tuple[PathPart, ...]

#: Letters the window's own buttons use (Back, Next, Cancel, Save), so no page gives them to a field.
RESERVED_MNEMONICS = frozenset("bncv")


def tr(text: str) -> str:
    return QCoreApplication.translate("forms", text)


def field_path(parts: Iterable[PathPart]) -> str:
    """``("nodes", 1, "ip")`` → ``nodes[1].ip``, spelled the way the core's problems name fields."""
    out = ""
    for part in parts:
        out = f"{out}[{part}]" if isinstance(part, int) else join_path(out, part)
    return out


def under(path: str, prefix: str) -> bool:
    """Whether the problem path ``path`` is ``prefix`` itself or a field inside it."""
    return path == prefix or path.startswith((prefix + ".", prefix + "["))


def claim(
    problems: Iterable[Problem], claims: Sequence[tuple[Any, Sequence[str]]]
) -> tuple[dict[Any, list[Problem]], list[Problem]]:
    """Hand each problem to the owner whose claimed prefix matches it most closely; the rest are returned apart."""
    owned: dict[Any, list[Problem]] = {}
    rest: list[Problem] = []
    for problem in problems:
        best: Any = None
        best_len = -1
        for owner, prefixes in claims:
            for prefix in prefixes:
                if under(problem.path, prefix) and len(prefix) > best_len:
                    best, best_len = owner, len(prefix)
        if best_len < 0:
            rest.append(problem)
        else:
            owned.setdefault(best, []).append(problem)
    return owned, rest


def describe(problem: Problem) -> str:
    """A problem shown beside its field: what is wrong and the fix, with any field it names in the window's words."""
    mark = "✗" if problem.is_error else "⚠"
    return f"{mark} {humanize(problem.message)}" + (f" — {humanize(problem.fix)}" if problem.fix else "")


def _empty(value: object) -> bool:
    return value is None or value in ("", [])


def name_widget(widget: QWidget, name: str) -> None:
    """The accessible name, also on the pop-up list a combo box opens."""
    widget.setAccessibleName(name)
    if isinstance(widget, QComboBox):
        widget.view().setAccessibleName(tr("{field} choices").format(field=name))


class ProjectDocument(QObject):
    """The project file being edited: its raw document, the core's verdict on it, and whether it is saved."""

    #: A file was (re)read: the pages show its values again.
    loaded = Signal()
    #: The problems (and :attr:`project`) were computed again after an edit or a load.
    validated = Signal()
    #: The document was written to :attr:`path`.
    saved = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self.doc: dict[str, Any] | None = None
        self.problems: list[Problem] = []
        self.project: Project | None = None
        self.dirty = False

    # -- files ---------------------------------------------------------------------------------------------
    def load(self, path: Path) -> None:
        """Read ``path``. A file that is not a YAML mapping cannot be edited; its problems say why."""
        self.path = path
        self.dirty = False
        raw: object = None
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
            raw = None
        self.doc = raw if isinstance(raw, dict) else None
        if self.doc is None:
            self.project = None
            try:
                self.problems = list(load_project(path).warnings)  # pragma: no cover - a mapping was expected
            except ProjectInvalid as exc:
                self.problems = list(exc.problems)
            self.validated.emit()
        else:
            self.validate()
        self.loaded.emit()

    def save(self) -> None:
        """Write the document atomically; raises OSError when the file cannot be written."""
        if self.path is None or self.doc is None:
            return
        atomic_write_text(self.path, yaml.safe_dump(self.doc, sort_keys=False, allow_unicode=True))
        self.dirty = False
        log.info("project saved to %s", self.path)
        self.saved.emit()

    # -- values --------------------------------------------------------------------------------------------
    def get(self, parts: Parts, default: Any = None) -> Any:
        node: Any = self.doc
        for part in parts:
            if isinstance(part, int):
                if not isinstance(node, list) or not 0 <= part < len(node):
                    return default
            elif not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def set(self, parts: Parts, value: Any, *, prune: int = 0) -> None:
        """Set the value at ``parts`` (None, "" or [] remove it), then validate. ``prune`` is how many mappings
        above it are removed too when the removal leaves them empty (an empty ``proxy:`` or ``bmc:``)."""
        if self.doc is None or not parts:
            return
        chain: list[Any] = [self.doc]
        node: Any = self.doc
        for part, following in itertools.pairwise(parts):
            if isinstance(part, int):
                if not isinstance(node, list) or not 0 <= part < len(node):
                    return  # rows are added by the page first; a stale index edits nothing
                child = node[part]
                if isinstance(following, str) and not isinstance(child, dict):
                    if _empty(value):
                        return
                    child = {}
                    node[part] = child
                node = child
            else:
                child = node.get(part)
                wanted = list if isinstance(following, int) else dict
                if not isinstance(child, wanted):
                    if _empty(value):
                        return  # nothing to remove
                    child = wanted()
                    node[part] = child
                node = child
            chain.append(node)
        last = parts[-1]
        if _empty(value):
            if isinstance(node, dict):
                node.pop(last, None)
            for depth in range(prune):
                holder, key = chain[-2 - depth], parts[-2 - depth]
                if isinstance(holder, dict) and holder.get(key) == {}:
                    del holder[key]
                else:
                    break
        else:
            node[last] = value
        self.dirty = True
        self.validate()

    def validate(self) -> None:
        if self.doc is None:
            return
        base = self.path.resolve().parent if self.path is not None else None
        try:
            loaded = parse_project(copy.deepcopy(self.doc), base=base, source=self.path)
        except ProjectInvalid as exc:
            self.project = None
            self.problems = list(exc.problems)
        else:
            self.project = loaded.project
            self.problems = list(loaded.warnings)
        self.validated.emit()

    def problems_under(self, prefixes: Iterable[str]) -> list[Problem]:
        wanted = tuple(prefixes)
        return [p for p in self.problems if any(under(p.path, x) for x in wanted)]

    def resolve(self, value: str) -> Path:
        """A path as the core reads it: relative paths start at the project file's folder."""
        path = Path(value).expanduser()
        if not path.is_absolute() and self.path is not None:
            path = self.path.resolve().parent / path
        return path

    def relative(self, path: Path) -> str:
        """How a picked file is written: relative to the project's folder when inside it, so the folder can move."""
        if self.path is not None:
            try:
                return str(path.resolve().relative_to(self.path.resolve().parent))
            except ValueError:
                pass
        return str(path)


class Kind(StrEnum):
    TEXT = "text"
    INT = "int"  # digits become a number; anything else is kept as typed, for the core to explain
    LIST = "list"  # comma- or space-separated in one line
    SECRET = "secret"  # noqa: S105 - a keyring name, written as {secret: NAME}
    CHOICE = "choice"


def to_text(value: Any, kind: Kind) -> str:
    if kind is Kind.SECRET:
        # A plain value here would be a secret written in the file: never shown; the core's problem says so.
        return str(value.get("secret", "")) if isinstance(value, dict) else ""
    if kind is Kind.LIST and isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if value is None or isinstance(value, dict | list | bool):
        return ""
    return str(value)


def from_text(text: str, kind: Kind) -> Any:
    text = text.strip()
    if not text:
        return None
    if kind is Kind.INT:
        return int(text) if text.isdigit() else text
    if kind is Kind.LIST:
        return [item for item in text.replace(",", " ").split() if item]
    if kind is Kind.SECRET:
        return {"secret": text}
    return text


class Mnemonics:
    """Gives each label on a page its own Alt+letter, avoiding the window's buttons."""

    def __init__(self, used: Iterable[str] = ()) -> None:
        self.used = set(RESERVED_MNEMONICS) | {u.lower() for u in used}

    def __call__(self, text: str) -> str:
        for i, ch in enumerate(text):
            if ch.isalnum() and ch.isascii() and ch.lower() not in self.used:
                self.used.add(ch.lower())
                return f"{text[:i]}&{text[i:]}"
        return text

    def fork(self) -> Mnemonics:
        """For a group shown in place of another (a stacked form): starts from what is used so far."""
        return Mnemonics(self.used)


class InlineMessage(Banner):
    """A field's problems, right below it."""

    def show_problems(self, problems: Sequence[Problem]) -> None:
        if not problems:
            self.hide()
            return
        tone = Tone.ERROR if any(p.is_error for p in problems) else Tone.WARNING
        self.show_text("\n".join(describe(p) for p in problems), tone)


class Field:
    """One input bound to one place in the document; shows the problems it claims."""

    def __init__(
        self,
        document: ProjectDocument,
        parts: Parts,
        widget: QLineEdit | QComboBox,
        message: InlineMessage,
        *,
        name: str,
        kind: Kind = Kind.TEXT,
        claims: Sequence[str] = (),
        prune: int = 0,
        default: str = "",
    ) -> None:
        self.document = document
        self.parts = parts
        self.widget = widget
        self.message = message
        self.name = name
        self.kind = kind
        self.claims = tuple(claims) or (field_path(parts),)
        self.prune = prune
        self.default = default
        self.problems: list[Problem] = []
        #: Replaces the plain "set this value" when a page keeps the value in a special shape.
        self.writer: Callable[[str], None] | None = None
        if isinstance(widget, QLineEdit):
            widget.textEdited.connect(self._edited)  # the operator's typing only, never our own setText
        else:
            widget.activated.connect(lambda _i: self._edited(widget.currentData() or widget.currentText()))

    def populate(self) -> None:
        text = to_text(self.document.get(self.parts), self.kind) or self.default
        if isinstance(self.widget, QLineEdit):
            if self.widget.text() != text:
                self.widget.setText(text)
        else:
            index = self.widget.findData(text)
            if index < 0 and text:
                self.widget.addItem(text, text)  # an unknown value stays visible; the core explains it
                index = self.widget.count() - 1
            self.widget.setCurrentIndex(max(index, 0))

    def _edited(self, text: str) -> None:
        if self.writer is not None:
            self.writer(text)
            return
        self.document.set(self.parts, from_text(text, self.kind), prune=self.prune)

    def show_problems(self, problems: list[Problem]) -> None:
        self.problems = problems
        self.message.show_problems(problems)
        text = "\n".join(describe(p) for p in problems)
        self.widget.setToolTip(text)
        self.widget.setAccessibleDescription(text)


class InputPage(WizardPage):
    """A page that edits part of the project document. It owns the problems under ``prefixes``; Next is enabled
    when none of them is an error."""

    prefixes: tuple[str, ...] = ()

    def __init__(self, document: ProjectDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.fields: list[Field] = []
        self.mnemonics = Mnemonics()
        # Problems of this page that no field shows (a list-wide rule, a section that is missing).
        self.page_message = InlineMessage(Tone.ERROR, self)
        document.loaded.connect(self.populate)
        document.validated.connect(self.show_problems)

    # -- building ------------------------------------------------------------------------------------------
    def add_field(
        self,
        form: QFormLayout,
        label: str,
        parts: Parts,
        *,
        kind: Kind = Kind.TEXT,
        claims: Sequence[str] = (),
        prune: int = 0,
        placeholder: str = "",
        choices: Sequence[tuple[str, str]] = (),
        default: str = "",
        mnemonics: Mnemonics | None = None,
        help_text: str = "",
        beside: Sequence[QWidget] = (),
    ) -> Field:
        """A labelled line edit (or a combo box for ``choices``: value, text) with its message below it and the
        ``beside`` widgets to its right."""
        parent = form.parentWidget() or self
        widget: QLineEdit | QComboBox
        if kind is Kind.CHOICE:
            widget = QComboBox(parent)
            for value, text in choices:
                widget.addItem(text, value)
        else:
            widget = QLineEdit(parent)
            widget.setPlaceholderText(placeholder)
            widget.setClearButtonEnabled(True)
            for clear in widget.findChildren(QToolButton):  # Qt's own clear button: named for screen readers too
                clear.setAccessibleName(tr("Clear {field}").format(field=label))
        name_widget(widget, label)
        if help_text:
            widget.setWhatsThis(help_text)
        message = InlineMessage(Tone.ERROR, parent)
        field = Field(
            self.document, parts, widget, message, name=label, kind=kind, claims=claims, prune=prune, default=default
        )
        caption = QLabel((mnemonics or self.mnemonics)(label) + ":", parent)
        caption.setBuddy(widget)
        column = QVBoxLayout()
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        line = QHBoxLayout()
        line.setSpacing(6)
        line.addWidget(widget, 1)
        for extra in beside:
            line.addWidget(extra)
        column.addLayout(line)
        column.addWidget(message)
        form.addRow(caption, column)
        self.fields.append(field)
        return field

    # -- state ---------------------------------------------------------------------------------------------
    def owned_problems(self) -> list[Problem]:
        return self.document.problems_under(self.prefixes)

    def blockers(self) -> list[str]:
        if self.document.doc is None:
            return []  # nothing to edit: the Project page says why the file cannot be read
        return [problem_text(p) for p in self.owned_problems() if p.is_error]

    def populate(self) -> None:
        """Show the document's values (after a load, and on entering the page)."""
        for field in self.fields:
            field.populate()

    def entered(self) -> None:
        self.populate()
        self.show_problems()

    def show_problems(self) -> None:
        owned, rest = claim(self.owned_problems(), [(f, f.claims) for f in self.fields])
        for field in self.fields:
            field.show_problems(owned.get(field, []))
        self.show_page_problems(rest)
        self.changed.emit()

    def show_page_problems(self, problems: list[Problem]) -> None:
        if not problems:
            self.page_message.hide()
            return
        tone = Tone.ERROR if any(p.is_error for p in problems) else Tone.WARNING
        self.page_message.show_text("\n".join(f"{where(p.path)}: {describe(p)}" for p in problems), tone)

    def set_busy(self, busy: bool) -> None:
        """While a run is active the file it runs from must not change under it."""
        self.setEnabled(not busy)


class Background(QObject):
    """Runs callables on the thread pool and hands each result (or exception) back on the GUI thread."""

    _done = Signal(object, object, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pending = 0
        self._done.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def submit(self, work: Callable[[], Any], then: Callable[[Any, BaseException | None], None]) -> None:
        self.pending += 1

        def task() -> None:
            result: Any = None
            error: BaseException | None = None
            try:
                result = work()
            except Exception as exc:
                error = exc
            try:
                self._done.emit(then, result, error)
            except RuntimeError:
                log.debug("background result dropped: its page is gone")

        QThreadPool.globalInstance().start(task)

    def _deliver(
        self, then: Callable[[Any, BaseException | None], None], result: Any, error: BaseException | None
    ) -> None:
        self.pending -= 1
        then(result, error)
