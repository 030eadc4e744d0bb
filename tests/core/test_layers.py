"""The wizard's packages form layers that import one way only, and no two modules import each other.

``core`` knows nothing of providers, the appliance or the pipeline; ``providers`` and ``appliance`` build on ``core``
alone; ``install`` composes them into the pipeline; the lab builds on what is below ``install`` (never on it);
``rehearsal`` composes the lab and the pipeline; the front ends (``headless``, ``ui``, ``cli``) sit on top. Every
import counts for the layers, lazy and type-only ones too. A cycle is a runtime one: module-level imports, those under
``if TYPE_CHECKING:`` left out.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from tests.core.helpers import ROOT

_BELOW_INSTALL = {"core", "providers", "appliance"}
# Which top-level parts of ``wizard`` each part may import (itself included).
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "providers": {"core", "providers"},
    "appliance": {"core", "appliance"},
    "lab": _BELOW_INSTALL | {"lab"},
    "install": _BELOW_INSTALL | {"install"},
    "rehearsal": _BELOW_INSTALL | {"lab", "install", "rehearsal"},
    "headless": _BELOW_INSTALL | {"lab", "install", "rehearsal", "headless"},
    "ui": _BELOW_INSTALL | {"lab", "install", "rehearsal", "headless", "ui"},
    "cli": _BELOW_INSTALL | {"lab", "install", "rehearsal", "headless", "ui", "cli"},
    "__main__": {"cli"},
    "": set(),  # wizard/__init__.py
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (the deepest one that exists)
    line: int
    runtime: bool  # at module level and not under TYPE_CHECKING: runs when the module is imported


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def collect(root: Path) -> tuple[set[str], list[Import]]:
    """Every module under ``root`` (a package folder) and every import of one module of it by another."""
    files = {module_name(root, p): p for p in root.rglob("*.py")}
    found: list[Import] = []
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]

        def resolve(module: str, names: list[str], level: int, package: str = package) -> list[str]:
            if level:
                base = package.split(".")
                base = base[: len(base) - (level - 1)]
                module = ".".join([*base, module] if module else base)
            out = [f"{module}.{n}" for n in names if f"{module}.{n}" in files]
            return out or [module]

        def visit(node: ast.AST, runtime: bool, name: str = name) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                    for sub in child.body:
                        visit_one(sub, False, name)
                    for sub in child.orelse:
                        visit_one(sub, runtime, name)
                else:
                    visit_one(child, runtime, name)

        def visit_one(node: ast.AST, runtime: bool, name: str = name) -> None:
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                targets = resolve(node.module or "", [a.name for a in node.names], node.level)
            else:
                nested = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
                visit(node, runtime and not nested, name)
                return
            for target in targets:
                if target.split(".")[0] == root.name:
                    found.append(Import(name, target, node.lineno, runtime))

        visit(ast.parse(path.read_text(), str(path)), True)
    return set(files), found


def part(module: str) -> str:
    pieces = module.split(".")
    return pieces[1] if len(pieces) > 1 else ""


def upward_imports(root: Path) -> list[str]:
    _, found = collect(root)
    return sorted(
        f"{i.source}:{i.line} imports {i.target} ({part(i.source) or 'wizard'} may import only "
        f"{', '.join(sorted(ALLOWED.get(part(i.source), set()))) or 'nothing of wizard'})"
        for i in found
        if part(i.target) and part(i.target) not in ALLOWED.get(part(i.source), set())
    )


def import_cycles(root: Path) -> list[list[str]]:
    """Groups of modules that import each other at run time (Tarjan's strongly connected components)."""
    modules, found = collect(root)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for i in found:
        if i.runtime and i.target in graph and i.target != i.source:
            graph[i.source].add(i.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return cycles


def test_no_module_imports_a_higher_layer() -> None:
    assert upward_imports(ROOT / "wizard") == []


def test_no_modules_import_each_other() -> None:
    assert import_cycles(ROOT / "wizard") == []


def test_core_names_no_provider_appliance_or_pipeline_module() -> None:
    text = "\n".join(p.read_text() for p in (ROOT / "wizard" / "core").rglob("*.py"))
    for higher in ("wizard.providers", "wizard.appliance", "wizard.install"):
        assert f"from {higher}" not in text and f"import {higher}" not in text


# -- the checks themselves catch what they are for --------------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "wizard"
    for rel, text in {"__init__.py": "", "core/__init__.py": "", "install/__init__.py": "", **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_an_upward_import_is_caught_at_module_level_lazily_and_for_types(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "install/steps.py": "PIPELINE = []\n",
            "core/eager.py": "from wizard.install.steps import PIPELINE\n",
            "core/lazy.py": "def f():\n    from wizard.install import steps\n    return steps\n",
            "core/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import wizard.install.steps\n",
            "core/relative.py": "from ..install import steps\n",
            "core/fine.py": "from wizard.core import eager\n",
            "install/fine.py": "from wizard.core import eager\n",
        },
    )
    found = upward_imports(root)
    assert [line.split(" ")[0] for line in found] == [
        "wizard.core.eager:1",
        "wizard.core.lazy:2",
        "wizard.core.relative:1",
        "wizard.core.typed:3",
    ]
    assert "core may import only core" in found[0]


def test_a_runtime_cycle_is_caught_and_a_type_only_one_is_not(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "core/a.py": "from wizard.core import b\n",
            "core/b.py": "import wizard.core.c\n",
            "core/c.py": "from wizard.core.a import x\n",
            "core/d.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from wizard.core import e\n",
            "core/e.py": "from wizard.core import d\n",
            "core/f.py": "def later():\n    from wizard.core import g\n",
            "core/g.py": "from wizard.core import f\n",
        },
    )
    assert import_cycles(root) == [["wizard.core.a", "wizard.core.b", "wizard.core.c"]]
