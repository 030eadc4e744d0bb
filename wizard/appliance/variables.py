"""The cluster profile's variables as the appliance describes them, and the operator's answers checked against them.

``v1Variable`` (Local UI spec) has always carried ``displayName``, ``defaultValue``, ``required``, ``regex``,
``isSensitive``, ``hidden``, ``immutable``; the newer spec adds ``inputType`` (``text``, ``dropdown``, ``multiline``)
with ``options`` (``label``, ``value``, ``default``, ``description``). From 4.9.38 the Local UI groups the install form
in sections (PCOM-757), but the published schema has no section field, so (I) the section is read from whichever
of the plausible spellings a variable carries (:data:`SECTION_KEYS`), else from the profile the variable belongs to
when the archive holds several, else there is none. An ``inputType`` the wizard does not know is a text field; a
dropdown without options is one too (there is nothing to choose from).

:func:`check_answers` is what the wizard enforces before the node's own ``variables/validate``: a dropdown's answer
is one of its options, an immutable variable keeps its value, a hidden one is not asked for (a project may still
answer it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TEXT, DROPDOWN, MULTILINE = "text", "dropdown", "multiline"
INPUT_TYPES = (TEXT, DROPDOWN, MULTILINE)
#: Where a variable may say which form section it belongs to (not in the published schema).
SECTION_KEYS = ("section", "sectionName", "group", "groupName", "category")


@dataclass(frozen=True)
class VariableOption:
    value: str
    label: str = ""
    default: bool = False
    description: str = ""

    @property
    def text(self) -> str:
        return self.label or self.value


def parse_options(raw: Any) -> tuple[VariableOption, ...]:
    if not isinstance(raw, list):
        return ()
    out = []
    for item in raw:
        if isinstance(item, Mapping) and item.get("value") is not None:
            out.append(
                VariableOption(
                    str(item["value"]),
                    str(item.get("label") or ""),
                    bool(item.get("default")),
                    str(item.get("description") or ""),
                )
            )
        elif isinstance(item, str | int | float) and not isinstance(item, bool):
            out.append(VariableOption(str(item)))
    return tuple(out)


def input_type(raw: Mapping[str, Any], options: tuple[VariableOption, ...]) -> str:
    kind = str(raw.get("inputType") or TEXT).strip().lower()
    if kind not in INPUT_TYPES or (kind == DROPDOWN and not options):
        return TEXT
    return kind


def section_of(raw: Mapping[str, Any]) -> str:
    for key in SECTION_KEYS:
        value = raw.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, Mapping) and isinstance(value.get("name"), str):
            return str(value["name"]).strip()
    return ""


def default_of(raw: Mapping[str, Any], options: tuple[VariableOption, ...]) -> str | None:
    """``defaultValue``; else the option marked default."""
    if raw.get("defaultValue") is not None:
        return str(raw["defaultValue"])
    chosen = next((o for o in options if o.default), None)
    return chosen.value if chosen is not None else None


@dataclass(frozen=True)
class AnswerProblem:
    name: str
    label: str
    message: str


def check_answers(variables: list[Any], values: Mapping[str, str]) -> list[AnswerProblem]:
    """What the appliance's own description rules out among ``values`` (plain answers; sensitive ones are checked by
    the node only). ``variables`` are :class:`~wizard.appliance.localui.ProfileVariable`\\ s."""
    problems = []
    for var in variables:
        if var.name not in values:
            continue
        value = values[var.name]
        if var.immutable and var.default is not None and value != var.default:
            problems.append(
                AnswerProblem(var.name, var.label, f"is fixed by the profile to {var.default!r}; remove the answer")
            )
        elif var.input_type == DROPDOWN and value not in {o.value for o in var.options}:
            choices = ", ".join(repr(o.value) for o in var.options)
            problems.append(AnswerProblem(var.name, var.label, f"{value!r} is not one of its options ({choices})"))
        elif var.input_type != MULTILINE and "\n" in value:
            problems.append(AnswerProblem(var.name, var.label, "takes a single line"))
    return problems
