"""The rehearsal's knobs, as operators give them: ``--lab KNOB=VALUE[,KNOB=VALUE…]`` (``--lab help`` lists them).

Every fault and variation the lab can play is reachable here, so an operator can rehearse what a real site does:
transient server errors on every lab HTTP service, another plausible appliance (:mod:`wizard.lab.variants`), a node
whose install fails, SSH that drops, a Local UI that stalls, tokens that expire early, a registry sync that fails….
A node knob applies to every node, or to one with ``@N`` (``install-error@2=disk failed``: node 2 only). Values
cannot contain commas (they separate knobs). Durations marked "appliance seconds" are what a real appliance would
take and run ``--speed`` times faster, like the rest of the lab; the others are seconds of real time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from wizard.appliance.versions import Edition, Version
from wizard.core.errors import WizardError
from wizard.lab.lab import NodeFaults
from wizard.lab.variants import POINTS


class LabKnobError(WizardError):
    """A ``--lab`` knob that does not exist or a value it does not take."""


@dataclass(frozen=True)
class Knob:
    name: str
    meaning: str
    default: str
    allowed: str  # what the value may be, for the help and for errors
    parse: Callable[[str], Any]
    node: str = ""  # the NodeFaults field a node knob sets ("" for a lab-wide knob)


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(text)
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _seconds(text: str) -> float:
    value = float(text.removesuffix("s"))
    if value < 0:
        raise ValueError(text)
    return value


def _signed_seconds(text: str) -> float:
    return float(text.removesuffix("s"))


def _switch(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("on", "yes", "true", "1"):
        return True
    if lowered in ("off", "no", "false", "0"):
        return False
    raise ValueError(text)


def _release(text: str) -> str:
    if Version.parse(text) is None:
        raise ValueError(text)
    return text.strip()


def _edition(text: str) -> str:
    word = text.strip().lower()
    if word not in {e.value for e in Edition}:
        raise ValueError(text)
    return word


def _choice(*words: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        word = text.strip().lower()
        if word not in words:
            raise ValueError(text)
        return word

    return parse


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError(text)
    return text.strip()


KNOBS: tuple[Knob, ...] = (
    Knob(
        "http-5xx",
        "share of requests every lab HTTP service (Local UI, system console, Redfish BMCs, MAAS) answers with "
        "500/502/503 before doing anything",
        "0",
        "a rate from 0 to 1, e.g. 0.1",
        _rate,
    ),
    Knob(
        "variant",
        f"which plausible appliance the lab plays: one answer per open point ({len(POINTS)} points, "
        "wizard/lab/variants.py); 0 is the reference's own reading",
        "0",
        "a whole number, 0 or more",
        _count,
    ),
    Knob("seed", "seed of the http-5xx draws", "the variant number", "a whole number, 0 or more", _count),
    Knob(
        "version",
        "the appliance release every node plays (its API paths, settings and documented defects)",
        "the newest the lab knows",
        "a release as X.Y.Z, e.g. 4.9.44",
        _release,
    ),
    Knob("edition", "the appliance edition the nodes and the console play", "palette", "palette or vertex", _edition),
    Knob(
        "media",
        "the GRUB default of the rehearsal's appliance ISO: the interactive installer (entry 2, as the product "
        "ships: it ignores the seed) or the automatic one (entry 0)",
        "interactive",
        "interactive or automatic",
        _choice("interactive", "automatic"),
    ),
    Knob(
        "grub-timeout",
        "the GRUB countdown on the rehearsal's appliance ISO, in real seconds (the product's ISO says 5): how long "
        "the keys strategy has to stop it, and how long every other boot waits",
        "5",
        "a whole number of seconds, 0 or more",
        _count,
    ),
    Knob(
        "boot",
        "the project's appliance.boot: boot the unattended copy of the ISO, type the keys on the vSphere console, "
        "or guide the operator at the console",
        "unattended",
        "unattended, keys or console",
        _choice("unattended", "keys", "console"),
    ),
    Knob(
        "bonded",
        "every node's management network is VLAN 100 on an LACP bond of two NICs, set through the Local UI",
        "off",
        "on or off",
        _switch,
    ),
    Knob(
        "console-intercepted",
        "the VIP shows this machine another certificate than the nodes see there (an interceptor): the run must "
        "refuse it",
        "off",
        "on or off",
        _switch,
    ),
    Knob(
        "console-secret",
        "the cluster keeps the system console's certificate as a TLS secret its admin can read (where one is "
        "kept is the variant's); off: it keeps none, so only the nodes can vouch for the certificate",
        "on",
        "on or off",
        _switch,
    ),
    Knob(
        "install-error",
        "the node's installer fails with this message",
        "none",
        "text",
        _text,
        "install_error",
    ),
    Knob(
        "ssh-drop-every",
        "live SSH sessions to the node are cut every N seconds",
        "never",
        "seconds",
        _seconds,
        "ssh_drop_every",
    ),
    Knob(
        "localui-errors",
        "the node's next N Local UI requests answer 500",
        "0",
        "a whole number",
        _count,
        "localui_errors",
    ),
    Knob(
        "localui-stall",
        "the node's Local UI accepts requests but answers none for S seconds (real time)",
        "0",
        "seconds",
        _seconds,
        "localui_stall",
    ),
    Knob(
        "upload-rate",
        "bytes per second the node's Local UI takes an upload at",
        "unlimited",
        "a whole number of bytes per second",
        _positive,
        "upload_rate",
    ),
    Knob(
        "upload-errors",
        "the node's next N uploads arrive whole, then fail with a 500",
        "0",
        "a whole number",
        _count,
        "upload_errors",
    ),
    Knob(
        "token-ttl",
        "Local UI tokens expire after S seconds",
        "2 h (the documented lifetime)",
        "seconds",
        _seconds,
        "token_ttl",
    ),
    Knob("cpus", "CPU cores the node reports", "16", "a whole number, 1 or more", _positive, "cpus"),
    Knob("memory-mb", "memory the node reports, in MiB", "32768", "a whole number, 1 or more", _positive, "memory_mb"),
    Knob(
        "clock-skew",
        "seconds the node's clock is off",
        "0",
        "seconds (negative: behind)",
        _signed_seconds,
        "clock_skew",
    ),
    Knob("ntp", "the node's NTP service", "on", "on or off", _switch, "ntp_enabled"),
    Knob("never-boots", "powering the node on does nothing", "off", "on or off", _switch, "never_boots"),
    Knob(
        "log-collection-error",
        "the node's Local UI log collection ends Failed with this message",
        "none",
        "text",
        _text,
        "log_collection_error",
    ),
    Knob(
        "configure-error",
        "the next configuration applied through the node's Local UI fails with this message",
        "none",
        "text",
        _text,
        "configure_error",
    ),
    Knob(
        "sync-fault", "every registry sync of the system console ends failed with this message", "none", "text", _text
    ),
    Knob(
        "cluster-seconds",
        "how long the management cluster takes from create to Running (appliance seconds; the docs say 20-30 min)",
        "1500",
        "seconds",
        _seconds,
    ),
    Knob("sync-seconds", "how long a registry sync takes (appliance seconds)", "60", "seconds", _seconds),
    Knob(
        "pack-import-seconds",
        "how long the registry takes to import an uploaded pack (appliance seconds)",
        "60",
        "seconds",
        _seconds,
    ),
    Knob("pack-import-error", "the registry's next pack import fails with this message", "none", "text", _text),
    Knob(
        "upgrade-to",
        "the release of the content bundle the rehearsal writes for `palette-wizard upgrade` (files/upgrade/)",
        "the next release the reference names after `version`",
        "a release as X.Y.Z, e.g. 4.9.44",
        _release,
    ),
    Knob("upgrade-seconds", "how long an archive update takes (appliance seconds)", "1500", "seconds", _seconds),
    Knob("upgrade-error", "the next archive update ends in Error with this message", "none", "text", _text),
    Knob(
        "console-certificate",
        "the project installs the operator's certificate the rehearsal made (files/certificates/) for "
        "palette.rehearsal.example on the system console",
        "off",
        "on or off",
        _switch,
    ),
    Knob(
        "pre-upgrade-done",
        "the docs' pre-upgrade script of 4.7.15 or 4.7.27 has run on the cluster (the Zot PVC, the HA storage class)",
        "off",
        "on or off",
        _switch,
    ),
)
_BY_NAME = {k.name: k for k in KNOBS}
NODE_ONLY = frozenset({"configure_error"})  # node knobs that are not NodeFaults fields (set on the node's state)
_NODE_FIELDS = {f.name for f in fields(NodeFaults)}
_ITEM = re.compile(r"(?P<name>[a-z0-9-]+)(@(?P<node>[^=]*))?=(?P<value>.*)", re.DOTALL)


@dataclass(frozen=True)
class LabKnobs:
    """What ``--lab`` asked for: lab-wide values and node values (``None`` node: every node)."""

    values: Mapping[str, Any] = field(default_factory=dict)
    nodes: Mapping[int | None, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def http_5xx(self) -> float:
        return float(self.values.get("http-5xx", 0.0))

    @property
    def variant(self) -> int:
        return int(self.values.get("variant", 0))

    @property
    def seed(self) -> int:
        return int(self.values.get("seed", self.variant))

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def node_faults(self, count: int) -> dict[int, NodeFaults]:
        """The :class:`NodeFaults` of each node index (0-based) the knobs touch; raises for a node beyond
        ``count``."""
        for index in self.nodes:
            if index is not None and index >= count:
                raise LabKnobError(
                    "No such lab node",
                    f"a --lab knob names node {index + 1}, but the rehearsal has {count} node(s)",
                    remediation=f"use @1…@{count}, or leave @N out to apply a knob to every node",
                )
        out: dict[int, NodeFaults] = {}
        for index in range(count):
            given = {**self.nodes.get(None, {}), **self.nodes.get(index, {})}
            faults = {k: v for k, v in given.items() if k in _NODE_FIELDS}
            if faults:
                out[index] = NodeFaults(**faults)
        return out

    def node_value(self, index: int, name: str) -> Any:
        """A node knob that is not a :class:`NodeFaults` field (``configure_error``) for node ``index``."""
        return {**self.nodes.get(None, {}), **self.nodes.get(index, {})}.get(name)

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.values.items()]
        for index, given in self.nodes.items():
            parts += [f"{_knob_of(k)}{'' if index is None else f'@{index + 1}'}={v}" for k, v in given.items()]
        return ",".join(parts) or "none"


NONE = LabKnobs()


def _knob_of(field_name: str) -> str:
    return next(k.name for k in KNOBS if k.node == field_name)


def parse_knobs(specs: str | list[str] | None) -> LabKnobs:
    """``KNOB=VALUE[,KNOB=VALUE…]`` (one string or several); raises :class:`LabKnobError` naming the knob and what
    it takes."""
    items = [specs] if isinstance(specs, str) else list(specs or [])
    values: dict[str, Any] = {}
    nodes: dict[int | None, dict[str, Any]] = {}
    for item in (part.strip() for spec in items for part in spec.split(",")):
        if not item:
            continue
        m = _ITEM.fullmatch(item)
        if m is None:
            raise LabKnobError(
                "Invalid --lab knob",
                f"{item!r} is not KNOB=VALUE",
                remediation="write knobs as KNOB=VALUE separated by commas; `--lab help` lists them",
            )
        name, target, raw = m["name"], m["node"], m["value"].strip()
        knob = _BY_NAME.get(name)
        if knob is None:
            raise LabKnobError(
                "Unknown --lab knob",
                f"there is no knob {name!r}",
                details="the knobs: " + ", ".join(k.name for k in KNOBS),
                remediation="`palette-wizard run --rehearse --lab help` lists every knob with its meaning",
            )
        try:
            value = knob.parse(raw)
        except ValueError:
            raise LabKnobError(
                "Invalid --lab value",
                f"{name}={raw!r}: {name} takes {knob.allowed}",
                remediation=f"give {name} {knob.allowed} (default {knob.default})",
            ) from None
        if target is not None and not knob.node:
            raise LabKnobError(
                "Invalid --lab knob",
                f"{name} applies to the whole lab, not to one node ({item!r})",
                remediation=f"write {name}={raw} without @N",
            )
        if knob.node:
            index: int | None = None
            if target is not None:
                if not target.isdigit() or int(target) < 1:
                    raise LabKnobError(
                        "Invalid --lab node",
                        f"{item!r}: @{target} is not a node number (1, 2, 3 …)",
                        remediation=f"write {name}@N={raw} with N the node's number, or leave @N out for every node",
                    )
                index = int(target) - 1
            nodes.setdefault(index, {})[knob.node] = value
        else:
            values[name] = value
    return LabKnobs(values, nodes)


def knobs_help() -> str:
    """The ``--lab help`` text: every knob, its meaning and its default."""
    width = max(len(k.name) for k in KNOBS) + 4
    lines = [
        "Rehearsal knobs: --lab KNOB=VALUE[,KNOB=VALUE…]  (node knobs: KNOB=VALUE for every node, KNOB@N=VALUE "
        "for node N)",
        "",
    ]
    for k in KNOBS:
        scope = " [node]" if k.node else ""
        lines.append(f"  {k.name:<{width}}{k.meaning}{scope}")
        lines.append(f"  {'':<{width}}  value: {k.allowed}; default: {k.default}")
    lines += [
        "",
        "Example: palette-wizard run --rehearse --lab http-5xx=0.1,variant=3,install-error@2=disk failed",
    ]
    return "\n".join(lines)
