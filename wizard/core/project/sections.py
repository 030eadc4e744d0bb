"""The other sections: network, files, appliance, cluster, console and activation."""

from __future__ import annotations

import re
from pathlib import Path

from wizard.core.project.model import (
    ActivationSettings,
    AddressMode,
    Appliance,
    BootMode,
    ClusterSettings,
    ConfigureMode,
    ConsoleCertificate,
    ConsoleSettings,
    FileRef,
    Files,
    Network,
    Node,
    ProviderType,
    Proxy,
    SecretRef,
    TransferMode,
    _join,
)
from wizard.core.project.reader import (
    _host_or_ip_problem,
    _kind,
    _read_fingerprint,
    _Reader,
    _show,
    _url_problem,
    hostname_problem,
    ipv4_problem,
)
from wizard.core.tlsfiles import check_certificate_set, is_ip


def _ca_cert_problem(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    return None if "-----BEGIN CERTIFICATE-----" in text else "holds no PEM certificate"


def read_ca_certs(proxy: Proxy) -> tuple[str, ...]:
    """Every certificate of ``proxy.ca_certs`` as one PEM block each (a file may hold a chain)."""
    blocks: list[str] = []
    for path in proxy.ca_certs:
        text = path.read_text(encoding="utf-8")
        blocks += [
            "-----BEGIN CERTIFICATE-----" + body.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
            for body in text.split("-----BEGIN CERTIFICATE-----")[1:]
        ]
    return tuple(blocks)


def _read_network(r: _Reader, raw: object) -> Network | None:
    path = "network"
    m = r.mapping(raw, path, ("vip", "dns", "search_domains", "ntp", "proxy"))
    if m is None:
        return None
    vip = r.text(m, "vip", path, required=True)
    if vip and (why := ipv4_problem(vip)) is not None:
        r.error("network.vip", why, "give a free IPv4 address in the nodes' subnet")
        vip = ""
    dns = r.text_list(m, "dns", path)
    for i, server in enumerate(dns):
        if (why := ipv4_problem(server)) is not None:
            r.error(f"network.dns[{i}]", why, "DNS servers are given by IPv4 address")
    search = r.text_list(m, "search_domains", path)
    for i, domain in enumerate(search):
        if (why := hostname_problem(domain.lower())) is not None:
            r.error(f"network.search_domains[{i}]", why, "give a domain such as example.com")
    ntp = r.text_list(m, "ntp", path)
    for i, server in enumerate(ntp):
        if (why := _host_or_ip_problem(server)) is not None:
            r.error(f"network.ntp[{i}]", why, "give an NTP server's host name or IP address")
    if not ntp:
        r.warning(
            "network.ntp",
            "no NTP servers given",
            "node clock skew logs users out of Palette; add NTP servers",
        )
    proxy = Proxy()
    if m.get("proxy") is not None:
        pm = r.mapping(m["proxy"], "network.proxy", ("http", "https", "no_proxy", "ca_certs"))
        if pm is not None:
            values = {}
            for key in ("http", "https"):
                url = r.text(pm, key, "network.proxy")
                if url and (why := _url_problem(url, ("http", "https"))) is not None:
                    r.error(f"network.proxy.{key}", why, "for example http://proxy.example.com:3128")
                values[key] = url
            certs = tuple(r.path(p) for p in r.text_list(pm, "ca_certs", "network.proxy") if p)
            for i, cert in enumerate(certs):
                if (why := _ca_cert_problem(cert)) is not None:
                    r.error(f"network.proxy.ca_certs[{i}]", why, "give a PEM certificate file")
            proxy = Proxy(values["http"], values["https"], r.text_list(pm, "no_proxy", "network.proxy"), certs)
    return Network(vip=vip, dns=dns, search_domains=search, ntp=ntp, proxy=proxy)


def _signature_candidates(path: Path) -> list[Path]:
    """Where Artifact Studio puts a file's signature.

    X.iso → X.iso.sig.bin, X.tar.zst → X.tar.sig.bin, X.zst → X.sig.bin.
    """
    return [path.with_suffix(".sig.bin"), path.parent / (path.name + ".sig.bin")]


def signature_beside(path: Path) -> Path | None:
    """The signature Artifact Studio ships beside ``path`` (see :func:`_signature_candidates`), if it is there."""
    return next((c for c in _signature_candidates(path) if c.is_file()), None)


def _read_file(r: _Reader, raw: object, path: str, *, must_exist: bool = True) -> FileRef | None:
    short_form = isinstance(raw, str)
    if short_form:
        raw = {"path": raw}
    m = r.mapping(raw, path, ("path", "signature", "sha256"))
    if m is None:
        return None
    value = r.text(m, "path", path, required=True)
    if not value:
        return None
    file_path = r.path(value)
    if must_exist and not file_path.is_file():
        what = "is a folder, not a file" if file_path.is_dir() else "does not exist"
        r.error(
            path if short_form else f"{path}.path",
            f"{file_path} {what}",
            "check the path (relative paths start at the project file's folder)",
        )
    signature = None
    sig_value = r.text(m, "signature", path)
    if sig_value:
        signature = r.path(sig_value)
        if not signature.is_file():
            r.error(
                f"{path}.signature",
                f"{signature} does not exist",
                "give the .sig.bin file downloaded with it",
            )
    else:
        signature = next((c for c in _signature_candidates(file_path) if c.is_file()), None)
    sha = r.text(m, "sha256", path).lower()
    if sha and not re.fullmatch(r"[0-9a-f]{64}", sha):
        r.error(
            f"{path}.sha256",
            f"{_show(sha)} is not a SHA-256 hex digest",
            "64 hex characters, or leave it out",
        )
        sha = ""
    return FileRef(path=file_path, signature=signature, sha256=sha)


def _read_files(r: _Reader, raw: object, provider: ProviderType | None) -> Files | None:
    m = r.mapping(
        raw if raw is not None else {},
        "files",
        ("iso", "content_bundle", "pack_bundles", "public_key", "transfer", "staging_dir"),
    )
    if m is None:
        return None
    iso = None
    if m.get("iso") is not None:
        iso = _read_file(r, m["iso"], "files.iso")
    elif provider not in (None, ProviderType.MANUAL):
        r.error("files.iso", "is required", "give the path of the downloaded Appliance ISO")
    content = (
        _read_file(r, m["content_bundle"], "files.content_bundle") if m.get("content_bundle") is not None else None
    )
    packs: list[FileRef] = []
    raw_packs = m.get("pack_bundles")
    if raw_packs is not None:
        if not isinstance(raw_packs, list):
            r.error(
                "files.pack_bundles",
                f"expected a list, got {_kind(raw_packs)}",
                "write one `- path` line per pack bundle",
            )
        else:
            for i, item in enumerate(raw_packs):
                ref = _read_file(r, item, f"files.pack_bundles[{i}]")
                if ref:
                    packs.append(ref)
    public_key = None
    key_value = r.text(m, "public_key", "files")
    if key_value:
        public_key = r.path(key_value)
        if not public_key.is_file():
            r.error("files.public_key", f"{public_key} does not exist", "give the path of spectro_public_key.pem")
    bundles = ([("files.content_bundle", content)] if content else []) + [
        (f"files.pack_bundles[{i}]", p) for i, p in enumerate(packs)
    ]
    if bundles and not key_value:
        r.error(
            "files.public_key",
            "is required to verify the bundles' signatures",
            "download spectro_public_key.pem from Artifact Studio (Bundle Verification Instructions)",
        )
    if key_value:
        for fp, ref in bundles:
            if ref.signature is None and ref.path.is_file():
                looked = ", ".join(c.name for c in _signature_candidates(ref.path))
                r.error(
                    f"{fp}",
                    f"no signature file next to {ref.path.name} (looked for {looked})",
                    f"download the .sig.bin with it, or set {fp}.signature",
                )
    transfer = r.choice(m, "transfer", "files", TransferMode, TransferMode.DIRECT)
    staging_dir = r.text(m, "staging_dir", "files")
    if staging_dir and transfer is not TransferMode.SFTP:
        r.error("files.staging_dir", "is only used with `transfer: sftp`", "remove it, or set files.transfer: sftp")
    if staging_dir and any(c in staging_dir for c in "\n\0'\"$`;|&"):
        r.error(
            "files.staging_dir", f"{_show(staging_dir)} is not a plain folder path", "use a plain POSIX folder path"
        )
    return Files(
        iso=iso,
        content_bundle=content,
        pack_bundles=tuple(packs),
        public_key=public_key,
        transfer=transfer,
        staging_dir=staging_dir,
    )


def _read_appliance(r: _Reader, raw: object, node_names: list[str]) -> Appliance | None:
    path = "appliance"
    allowed = (
        "username",
        "password",
        "install_disk",
        "data_disk",
        "install_timeout_minutes",
        "leader",
        "configure",
        "boot",
    )
    m = r.mapping(raw if raw is not None else {}, path, allowed)
    if m is None:
        return None
    username = r.text(m, "username", path, default="kairos") or "kairos"
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", username):
        r.error(
            "appliance.username",
            f"{_show(username)} is not a valid Linux user name",
            "lower-case letters, digits, '_' or '-'",
        )
    password = r.secret(m, "password", path, required=False)
    if password is None and "password" not in m:
        r.warning(
            "appliance.password",
            "the nodes keep the default kairos/kairos password",
            "store a new password with `palette-wizard secret set NAME` and write `password: {secret: NAME}`",
        )
    disks = {}
    for key, default in (("install_disk", "auto"), ("data_disk", "/dev/sdb")):
        value = r.text(m, key, path, default=default) or default
        if value != "auto" and not re.fullmatch(r"/dev/[A-Za-z0-9/_.-]+", value):
            r.error(
                f"appliance.{key}",
                f"{_show(value)} is not a device path",
                "write a path like /dev/sda (or auto for install_disk)",
            )
        disks[key] = value
    if disks["data_disk"] == "auto":
        r.error(
            "appliance.data_disk",
            "cannot be auto",
            "name the storage-pool disk, /dev/sdb by default; it is wiped",
        )
    if disks["install_disk"] == disks["data_disk"]:
        r.error("appliance.data_disk", "is the same disk as install_disk", "the storage pool needs a second disk")
    timeout = r.integer(m, "install_timeout_minutes", path, default=30, minimum=15, maximum=24 * 60) or 30
    leader = r.text(m, "leader", path)
    configure: ConfigureMode = r.choice(m, "configure", path, ConfigureMode, ConfigureMode.SEED)
    boot: BootMode | None = r.choice(m, "boot", path, BootMode, None) if m.get("boot") is not None else None
    if leader and node_names and leader not in node_names:
        r.error(
            "appliance.leader",
            f"{_show(leader)} is not one of the nodes",
            f"use one of: {', '.join(node_names)}",
        )
    return Appliance(
        username=username,
        password=password,
        install_disk=disks["install_disk"],
        data_disk=disks["data_disk"],
        install_timeout_minutes=timeout,
        leader=leader,
        configure=configure,
        boot=boot,
    )


_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
# Names that say "secret": their answers belong in the keyring, under secret_variables.
_SENSITIVE = re.compile(r"password|passwd|secret|token|apikey|api_key|private", re.IGNORECASE)
_SSH_PUBLIC_KEY = re.compile(r"(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+=*( .*)?")


def _read_cluster(r: _Reader, raw: object) -> ClusterSettings | None:
    path = "cluster"
    if raw is None:
        return ClusterSettings()
    m = r.mapping(
        raw, path, ("variables", "secret_variables", "ssh_keys", "kubeconfig", "two_node", "control_plane_endpoint")
    )
    if m is None:
        return None
    endpoint = m.get("control_plane_endpoint")
    if endpoint is not None and str(endpoint).strip().upper() != "VIP":
        # The appliance's own profile puts its registry and Palette's root domain at the cluster's VIP
        # ({{.spectro.system.cluster.kubevip}}) and the docs require one; a DDNS name has no address to hold.
        r.error(
            f"{path}.control_plane_endpoint",
            f"{_show(endpoint)} is not supported: the management appliance's control plane endpoint is its VIP (its "
            "registry endpoint and Palette's root domain are the VIP, and the Create cluster form requires one)",
            "remove the field (VIP is the only choice) and give the address in network.vip",
        )
    two_node = m.get("two_node", False)
    if not isinstance(two_node, bool):
        what = f"expected true or false, got {_kind(two_node)} {_show(two_node)}"
        r.error(f"{path}.two_node", what, "write `two_node: true` for a two-node cluster")
        two_node = False
    variables: list[tuple[str, str]] = []
    if m.get("variables") is not None:
        vm = r.mapping(m["variables"], f"{path}.variables", tuple(str(k) for k in m["variables"])) or {}
        for name, value in vm.items():
            fp = _join(f"{path}.variables", name)
            if not _VARIABLE.fullmatch(name):
                r.error(fp, f"{_show(name)} is not a profile variable name", "use the variable's name, e.g. podCidr")
                continue
            if _SENSITIVE.search(name):
                r.error(
                    fp,
                    "a secret value is written in the project file",
                    f"store it with `palette-wizard secret set NAME` and list it under cluster.secret_variables as "
                    f"`{name}: {{secret: NAME}}`",
                )
                continue
            if isinstance(value, bool):
                variables.append((name, "True" if value else "False"))  # how the profile's booleans are spelled
            elif value is None:
                r.error(fp, "has no value", f"give `{name}` a value, or remove it to keep the profile's default")
            else:
                variables.append((name, r.text(vm, name, f"{path}.variables")))
    secret_variables: list[tuple[str, SecretRef]] = []
    if m.get("secret_variables") is not None:
        raw_secrets = m["secret_variables"]
        allowed = tuple(str(k) for k in raw_secrets) if isinstance(raw_secrets, dict) else ()
        sm = r.mapping(raw_secrets, f"{path}.secret_variables", allowed) or {}
        for name in sm:
            if not _VARIABLE.fullmatch(name):
                r.error(
                    _join(f"{path}.secret_variables", name),
                    f"{_show(name)} is not a profile variable name",
                    "use the variable's name, e.g. ociPackRegistryPassword",
                )
                continue
            ref = r.secret(sm, name, f"{path}.secret_variables", required=True)
            if ref is not None:
                secret_variables.append((name, ref))
    both = sorted({n for n, _ in variables} & {n for n, _ in secret_variables})
    for name in both:
        r.error(
            _join(f"{path}.variables", name),
            "is also given under cluster.secret_variables",
            "answer each variable once",
        )
    ssh_keys = r.text_list(m, "ssh_keys", path)
    for i, key in enumerate(ssh_keys):
        if not _SSH_PUBLIC_KEY.fullmatch(key):
            r.error(
                f"{path}.ssh_keys[{i}]",
                f"{_show(key)} is not an SSH public key",
                "paste one line of a .pub file (ssh-ed25519 AAAA… comment)",
            )
    kubeconfig = r.text(m, "kubeconfig", path)
    return ClusterSettings(
        variables=tuple(variables),
        secret_variables=tuple(secret_variables),
        ssh_keys=ssh_keys,
        kubeconfig=r.path(kubeconfig) if kubeconfig else None,
        two_node=two_node,
    )


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _read_console(r: _Reader, raw: object, vip: str = "") -> ConsoleSettings | None:
    path = "console"
    m = r.mapping(raw, path, ("email", "password", "port", "tls_fingerprint", "certificate", "domain"))
    if m is None:
        return None
    email = r.text(m, "email", path, required=True)
    if email and not _EMAIL.fullmatch(email):
        r.error("console.email", f"{_show(email)} is not an email address", "write the admin's address, name@domain")
    password = r.secret(m, "password", path, required=True)
    port = r.integer(m, "port", path, default=443, minimum=1, maximum=65535) or 443
    domain = r.text(m, "domain", path).lower().rstrip(".")
    if domain and is_ip(domain):
        r.warning("console.domain", f"{domain} is an IP address: {FQDN_NEEDED}", "give the FQDN of the system address")
    elif domain and (problem := domain_problem(domain)) is not None:
        r.error(
            "console.domain",
            f"{_show(domain)} {problem}",
            "write the system address as an FQDN, e.g. palette.example.com",
        )
        domain = ""
    certificate = _read_console_certificate(r, m.get("certificate"), domain, vip) if "certificate" in m else None
    if certificate is not None and not domain:
        r.warning(
            "console.domain",
            f"the system address stays the VIP, an IP address: {FQDN_NEEDED}",
            "set console.domain to the FQDN the certificate names",
        )
    return ConsoleSettings(
        email=email,
        password=password,
        port=port,
        tls_fingerprint=_read_fingerprint(r, m, path),
        certificate=certificate,
        domain=domain,
    )


FQDN_NEEDED = "backup and restore need the system address to be an FQDN"


def domain_problem(domain: str) -> str | None:
    """Why ``domain`` is not a usable root domain (an FQDN or, with a warning elsewhere, an IP address), or None."""
    if is_ip(domain):
        return None
    if "." not in domain:
        return "is not a fully qualified domain name"
    return hostname_problem(domain)


def _read_console_certificate(r: _Reader, raw: object, domain: str, vip: str) -> ConsoleCertificate | None:
    path = "console.certificate"
    m = r.mapping(raw, path, ("cert", "key", "ca"))
    if m is None:
        return None
    files: dict[str, Path] = {}
    for key in ("cert", "key", "ca"):
        text = r.text(m, key, path, required=key != "ca")
        if not text:
            continue
        file = r.path(text)
        if not file.is_file():
            r.error(f"{path}.{key}", f"{file} does not exist", "give the path of the PEM file")
            continue
        files[key] = file
    if "cert" not in files or "key" not in files:
        return None
    _, problems = check_certificate_set(files["cert"], files["key"], files.get("ca"), domain=domain, address=vip)
    for p in problems:
        where = "console.domain" if p.field == "domain" else f"{path}.{p.field}"
        (r.warning if p.warning else r.error)(where, p.message, p.fix)
    return ConsoleCertificate(files["cert"], files["key"], files.get("ca"))


def _read_activation(r: _Reader, raw: object) -> ActivationSettings | None:
    path = "activation"
    m = r.mapping(raw, path, ("key", "defer"))
    if m is None:
        return None
    defer = m.get("defer", False)
    if not isinstance(defer, bool):
        r.error("activation.defer", f"expected true or false, got {_kind(defer)} {_show(defer)}", "write `defer: true`")
        defer = False
    key = r.secret(m, "key", path, required=False)
    if key is not None and defer:
        r.error("activation", "has both a key and `defer: true`", "keep the key to activate now, or defer to later")
    elif "key" not in m and not defer:
        r.error(
            "activation",
            "has neither a key nor `defer: true`",
            "store the key from Spectro Cloud support (`palette-wizard secret set NAME`) and write "
            "`key: {secret: NAME}`, or write `defer: true`",
        )
    return ActivationSettings(key=key, defer=bool(defer))


def _boot_checks(r: _Reader, appliance: Appliance, provider: ProviderType | None, files: Files | None) -> None:
    """What each ``appliance.boot`` strategy needs."""
    if appliance.boot is BootMode.KEYS and provider not in (None, ProviderType.VSPHERE):
        r.error(
            "appliance.boot",
            f"keys are pressed through vSphere's keyboard API; a {provider.value} node has no keyboard path",
            "use appliance.boot: unattended (the wizard's copy of the ISO boots the automatic installer), or console",
        )
    if appliance.boot is BootMode.UNATTENDED and files is not None and files.iso is None:
        r.error(
            "appliance.boot",
            "unattended needs the ISO: the wizard derives the copy that boots the automatic installer from it",
            "give files.iso, or use appliance.boot: console",
        )


def _configure_checks(r: _Reader, appliance: Appliance, nodes: list[Node], network: Network) -> None:
    """What each ``appliance.configure`` mode can and cannot set."""
    for i, n in enumerate(nodes):
        if n.network is not None and n.network.needs_network_api and appliance.configure is not ConfigureMode.LOCALUI:
            r.error(
                f"nodes[{i}].network",
                f"bonds, VLANs and a management interface are applied through the node's Local UI, not with "
                f"configure: {appliance.configure} (the seed's stylus.site.network describes single interfaces)",
                "set appliance.configure: localui, or keep only per-interface addressing under interfaces",
            )
    if appliance.configure is ConfigureMode.LOCALUI:
        for i, n in enumerate(nodes):
            if n.address_mode is AddressMode.STATIC and n.ip:
                # The Local UI is reached before the address is made static: the node must already answer there.
                r.warning(
                    f"nodes[{i}].ip",
                    f"with configure: localui the node must already answer at {n.ip} before the wizard makes it static",
                    "reserve that address for the node in DHCP, or use configure: seed",
                )
    elif network.proxy.ca_certs:
        r.warning(
            "network.proxy.ca_certs",
            f"only configure: localui installs CA certificates on the nodes (this project uses {appliance.configure})",
            "use appliance.configure: localui, or add the certificates in each node's Local UI",
        )
