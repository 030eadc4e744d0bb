"""Messages in the operator's words: the page and the field's visible label instead of a field path, rows counted
from 1 as the tables show them, an outcome instead of an exit code.

The core names fields by path (``nodes[3].bmc.address``, counted from 0) because the project file does; the window
shows "Nodes page, row 4, BMC address". :func:`where` turns a path into that, :func:`humanize` rewrites the paths a
message or a fix mentions inside its text, and :func:`problem_text` does both for a whole problem. A secret's value
is entered on the Credentials page wherever its keyring name is set, so a missing secret names that page.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QCoreApplication

from wizard.core.problems import Problem
from wizard.core.runner import ExitCode


def tr(text: str) -> str:
    return QCoreApplication.translate("wording", text)


#: The page that edits each top-level section (the project file's own sections are on the Project page).
PAGES: dict[str, str] = {
    "provider": "Provider",
    "nodes": "Nodes",
    "network": "Network",
    "files": "Files",
    "cluster": "Cluster",
    "console": "Activation",
    "activation": "Activation",
    "appliance": "Project",
    "name": "Project",
    "schema_version": "Project",
}

#: Field labels as the pages show them, by path with every row index written ``[]``.
LABELS: dict[str, str] = {
    "name": "Name",
    "schema_version": "Schema version",
    "provider.type": "Provider type",
    "provider.vsphere.server": "Server",
    "provider.vsphere.port": "Port",
    "provider.vsphere.username": "User",
    "provider.vsphere.password": "Password keyring name",
    "provider.vsphere.tls_fingerprint": "TLS fingerprint",
    "provider.vsphere.datacenter": "Datacenter",
    "provider.vsphere.cluster": "Compute cluster",
    "provider.vsphere.datastore": "Datastore",
    "provider.vsphere.network": "Network",
    "provider.vsphere.folder": "VM folder",
    "provider.vsphere.resource_pool": "Resource pool",
    "provider.vsphere.iso_folder": "ISO folder",
    "provider.vsphere.vm_mode": "VM mode",
    "provider.vsphere.vm.cpus": "vCPUs",
    "provider.vsphere.vm.memory_gb": "Memory (GB)",
    "provider.vsphere.vm.os_disk_gb": "OS disk (GB)",
    "provider.vsphere.vm.data_disk_gb": "Data disk (GB)",
    "provider.redfish.iso_url": "ISO URL",
    "provider.redfish.iso_server_bind": "ISO server address",
    "provider.redfish.iso_server_port": "ISO server port",
    "provider.maas.url": "URL",
    "provider.maas.api_key": "API key keyring name",
    "provider.maas.tls_fingerprint": "TLS fingerprint",
    "provider.maas.tags": "Machine tags",
    "provider.maas.pool": "Pool",
    "provider.maas.zone": "Zone",
    "nodes[].name": "Name",
    "nodes[].hostname": "Hostname",
    "nodes[].address_mode": "Addressing",
    "nodes[].ip": "IP address",
    "nodes[].prefix": "Prefix",
    "nodes[].gateway": "Gateway",
    "nodes[].bmc": "BMC address",
    "nodes[].bmc.address": "BMC address",
    "nodes[].bmc.username": "BMC user",
    "nodes[].bmc.password": "BMC password keyring name",
    "nodes[].bmc.tls_fingerprint": "BMC TLS fingerprint",
    "nodes[].vm": "VM name",
    "nodes[].maas": "MAAS system id",
    "nodes[].ssh_port": "SSH port",
    "nodes[].localui_port": "Local UI port",
    "nodes[].ssh_host_key": "SSH host key",
    "nodes[].localui_fingerprint": "Local UI fingerprint",
    "network.vip": "Virtual IP (VIP)",
    "network.dns": "DNS servers",
    "network.search_domains": "Search domains",
    "network.ntp": "NTP servers",
    "network.proxy.http": "HTTP proxy",
    "network.proxy.https": "HTTPS proxy",
    "network.proxy.no_proxy": "No proxy for",
    "files.iso": "Appliance ISO",
    "files.content_bundle": "Content bundle",
    "files.content_bundle.path": "Content bundle",
    "files.content_bundle.signature": "Content bundle signature",
    "files.public_key": "Public key",
    "files.pack_bundles": "Pack bundles",
    "files.pack_bundles[]": "Pack bundle",
    "files.transfer": "Transfer",
    "console.email": "Email",
    "console.password": "Console password keyring name",
    "activation.key": "Activation key",
    "appliance.username": "Appliance user",
    "appliance.password": "New appliance password",
    "appliance.leader": "Leader",
    "appliance.install_disk": "Install disk",
    "appliance.data_disk": "Data disk",
    "appliance.configure": "Configuration",
}

#: Paths whose value is a secret's keyring name: the secret itself is entered on the Credentials page.
_SECRET = re.compile(r"(\.password|\.api_key|^activation\.key|^cluster\.secret_variables\b.*)$")
_INDEX = re.compile(r"\[(\d+)\]")
#: A field path inside free text: a known section, then dotted names and row indices.
_IN_TEXT = re.compile(
    r"(?<![\w/.-])((?:" + "|".join(sorted(PAGES, key=len, reverse=True)) + r")(?:\[\d+\]|\.[A-Za-z_][\w-]*)+)(?![\w/])"
)


def _pattern(path: str) -> str:
    return _INDEX.sub("[]", path)


def label(path: str) -> str:
    """The field's visible label; fields the window does not show are named in words."""
    variable = re.match(r"cluster\.(?:secret_)?variables\.(.+)$", path)
    if variable is not None:
        return tr("variable {name}").format(name=variable.group(1).strip('"[]'))
    pattern = _pattern(path)
    while pattern:
        known = LABELS.get(pattern)
        if known is not None:
            return tr(known)
        if "." not in pattern and "[" not in pattern:
            break
        pattern = re.sub(r"(\.[^.\[]+|\[\])$", "", pattern)  # the field's container
    last = re.split(r"[.\[\]]+", path.strip(".[]"))
    words = [w for w in last if w and not w.isdigit()]
    return " ".join(words[-2:]).replace("_", " ") or path


def where(path: str, *, secret: bool = False) -> str:
    """ "Nodes page, row 4, BMC address" for ``nodes[3].bmc.address``; ``secret``: the value of a keyring name."""
    if secret and _SECRET.search(path):
        row = _INDEX.search(path)
        who = tr(", row {n}").format(n=int(row.group(1)) + 1) if row and path.startswith("nodes[") else ""
        return tr("Credentials page{row}, {label}").format(row=who, label=label(path).replace(" keyring name", ""))
    top = re.split(r"[.\[]", path, maxsplit=1)[0]
    page = PAGES.get(top)
    if page is None:
        return tr("the project file") if path in ("(file)", "(document)") else path
    parts = [tr("{page} page").format(page=tr(page))]
    row = _INDEX.search(path)
    if row is not None:
        parts.append(tr("row {n}").format(n=int(row.group(1)) + 1))
    if path == top and top in ("nodes", "files"):
        parts.append(tr("the list"))
    elif path != top or path in LABELS:
        named = label(path)
        if named.lower() != top or path in LABELS:  # "nodes[2]" is the row itself
            parts.append(named)
    return ", ".join(parts)


def humanize(text: str) -> str:
    """``text`` with every field path it mentions written as :func:`where` says it."""
    return _IN_TEXT.sub(lambda m: where(m.group(1)), text)


_LINE = re.compile(r"^(\s*(?:[•✗⚠-]\s*)?)([A-Za-z_][\w.\[\]\"-]*): (.*)$")


def humanize_lines(text: str) -> str:
    """A message or details text whose lines may start with a field path (``nodes[0].ip: …``, as the core lists
    problems): each such line says where in the window's words, the rest of the text as :func:`humanize` does."""
    out = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is not None and re.split(r"[.\[]", match.group(2), maxsplit=1)[0] in PAGES:
            indent, path, rest = match.groups()
            out.append(f"{indent}{where(path, secret='keyring' in rest)}: {humanize(rest)}")
        else:
            out.append(humanize(line))
    return "\n".join(out)


def problem_text(problem: Problem) -> str:
    """One line for a problem: where (page, row, label), what is wrong, and the fix."""
    secret = "keyring" in problem.message
    text = f"{where(problem.path, secret=secret)}: {humanize(problem.message)}"
    if problem.fix:
        text += f" — {humanize(problem.fix)}"
    return text


def outcome_text(code: ExitCode) -> str:
    """How a run ended, in words (never its exit code)."""
    return {
        ExitCode.DONE: tr("finished"),
        ExitCode.INVALID_INPUT: tr("the project needs corrections first"),
        ExitCode.PREFLIGHT_BLOCKED: tr("blocked by the preflight checks (nothing was touched)"),
        ExitCode.INSTALL_FAILED: tr("the install stopped on an error"),
        ExitCode.INCOMPLETE: tr("other nodes still need a retry"),
        ExitCode.CANCELLED: tr("cancelled"),
    }.get(code, tr("stopped"))
