"""Every user-facing string the desktop wizard sets on a widget goes through Qt's translation (``tr``).

A scan of ``wizard/ui`` (no Qt needed): a string literal or f-string with words in it, passed straight to a text
setter (setText, setToolTip, setAccessibleName, …) or to a widget-making helper (button, paragraph, heading, QLabel
…), is a string a translator would never see. Markup alone (``<b>{…}</b>``) has no words; a line may opt out with a
``# not translated`` comment (an example address, a URL).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

UI = Path(__file__).resolve().parents[2] / "wizard" / "ui"
SETTERS = {
    "setText",
    "setToolTip",
    "setAccessibleName",
    "setAccessibleDescription",
    "setPlaceholderText",
    "setWindowTitle",
    "setTitle",
    "setStatusTip",
    "setWhatsThis",
    "setLabelText",
    "setInformativeText",
    "show_text",
    "addRow",
    "setHeaderLabels",
    "setHorizontalHeaderLabels",
}
MAKERS = {"button", "paragraph", "heading", "QLabel", "QGroupBox", "QCheckBox", "QPushButton", "QRadioButton"}
TAG = re.compile(r"<[^>]*>")


def _has_words(text: str) -> bool:
    return any(c.isalpha() for c in TAG.sub("", text))


def _untranslated(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _has_words(node.value)
    if isinstance(node, ast.JoinedStr):
        return _has_words("".join(str(v.value) for v in node.values if isinstance(v, ast.Constant)))
    return False


def untranslated_strings(root: Path) -> list[str]:
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name not in SETTERS and name not in MAKERS:
                continue
            for arg in node.args[:2] if name in MAKERS else node.args[:1]:
                if not _untranslated(arg):
                    continue
                span = lines[node.lineno - 1 : (node.end_lineno or node.lineno)]
                if any("# not translated" in line for line in span):
                    continue
                found.append(f"{path.relative_to(root.parent.parent)}:{node.lineno}: {name}({ast.unparse(arg)[:60]})")
    return found


def test_every_widget_string_is_translatable() -> None:
    found = untranslated_strings(UI)
    assert not found, "wrap these in self.tr(...) (or QT_TRANSLATE_NOOP for constants):\n" + "\n".join(found)


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    ui = tmp_path / "wizard" / "ui"
    ui.mkdir(parents=True)
    (ui / "page.py").write_text(
        "def build(self, n):\n"
        "    self.label.setText('Hello')\n"
        "    self.label.setToolTip(f'{n} nodes')\n"
        "    button('&Go', 'Go now', self)\n"
        "    self.label.setText(self.tr('Hello'))\n"
        "    self.label.setText(f\"<b>{self.tr('Nodes')}</b>\")\n"
        "    self.edit.setPlaceholderText('10.0.0.5')  # not translated: an example address\n"
        "    self.label.setText('')\n"
    )
    found = untranslated_strings(ui)
    assert [line.split(": ", 1)[1] for line in found] == [
        "setText('Hello')",
        "setToolTip(f'{n} nodes')",
        "button('&Go')",
        "button('Go now')",
    ]
