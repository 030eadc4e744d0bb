"""The ``provider`` section: vSphere, Redfish, MAAS or manual."""

from __future__ import annotations

from wizard.core.problems import Problem
from wizard.core.project.model import (
    MaasSettings,
    Provider,
    ProviderType,
    RedfishSettings,
    VmMode,
    VmSpec,
    VsphereSettings,
)
from wizard.core.project.reader import _host_or_ip_problem, _read_fingerprint, _Reader, _url_problem


def read_provider(raw: object) -> tuple[Provider | None, list[Problem]]:
    """The ``provider`` section of a raw project document on its own, by the same rules as a whole project (the
    node table is filled by discovery while the rest of the document may not be valid yet)."""
    reader = _Reader(None)
    provider = _read_provider(reader, raw)
    return provider, reader.problems


def _read_provider(r: _Reader, raw: object) -> Provider | None:
    m = r.mapping(raw, "provider", ("type", "vsphere", "redfish", "maas", "manual"))
    if m is None:
        return None
    ptype: ProviderType | None = r.choice(m, "type", "provider", ProviderType, None)
    if ptype is None:
        return None
    for other in ProviderType:
        if other is not ptype and other.value in m and m[other.value] is not None:
            r.error(
                f"provider.{other.value}",
                f"settings for `{other.value}` but provider.type is `{ptype.value}`",
                "remove this section or change provider.type",
            )
    if ptype is ProviderType.VSPHERE:
        return Provider(ptype, vsphere=_read_vsphere(r, m.get("vsphere")))
    if ptype is ProviderType.REDFISH:
        return Provider(ptype, redfish=_read_redfish(r, m.get("redfish", {})))
    if ptype is ProviderType.MAAS:
        return Provider(ptype, maas=_read_maas(r, m.get("maas")))
    if m.get("manual") not in (None, {}):
        r.error("provider.manual", "the manual provider takes no settings", "remove this section")
    return Provider(ptype)


def _read_vsphere(r: _Reader, raw: object) -> VsphereSettings | None:
    path = "provider.vsphere"
    if raw is None:
        r.error(path, "is required when provider.type is vsphere", "add the vCenter server, user and placement")
        return None
    allowed = (
        "server",
        "port",
        "username",
        "password",
        "datacenter",
        "cluster",
        "resource_pool",
        "folder",
        "datastore",
        "network",
        "iso_folder",
        "tls_fingerprint",
        "vm_mode",
        "vm",
    )
    m = r.mapping(raw, path, allowed)
    if m is None:
        return None
    server = r.text(m, "server", path, required=True)
    if server:
        why = _host_or_ip_problem(server)
        if why:
            r.error(f"{path}.server", why, "give the vCenter host name or IP address, without https://")
    port = r.integer(m, "port", path, default=443, minimum=1, maximum=65535) or 443
    username = r.text(m, "username", path, required=True)
    password = r.secret(m, "password", path, required=True)
    datacenter = r.text(m, "datacenter", path, required=True)
    datastore = r.text(m, "datastore", path, required=True)
    network = r.text(m, "network", path, required=True)
    vm_mode: VmMode = r.choice(m, "vm_mode", path, VmMode, VmMode.CREATE)
    cluster = r.text(m, "cluster", path)
    if vm_mode is VmMode.CREATE and not cluster:
        r.error(f"{path}.cluster", "is required to create VMs", "name the compute cluster the VMs are placed in")
    fingerprint = _read_fingerprint(r, m, path)
    vm = VmSpec()
    if m.get("vm") is not None:
        vm_m = r.mapping(m["vm"], f"{path}.vm", ("cpus", "memory_gb", "os_disk_gb", "data_disk_gb"))
        if vm_m is not None:
            vp = f"{path}.vm"
            vm = VmSpec(
                cpus=r.integer(vm_m, "cpus", vp, default=8, minimum=1, maximum=768) or 8,
                memory_gb=r.integer(vm_m, "memory_gb", vp, default=16, minimum=1, maximum=24576) or 16,
                os_disk_gb=r.integer(vm_m, "os_disk_gb", vp, default=300, minimum=1, maximum=65536) or 300,
                data_disk_gb=r.integer(vm_m, "data_disk_gb", vp, default=500, minimum=1, maximum=65536) or 500,
            )
            if vm.cpus < 8 or vm.memory_gb < 16:
                r.warning(vp, "below the documented minimum of 8 vCPU and 16 GB per node", "raise cpus/memory_gb")
            if vm.os_disk_gb < 250:
                r.warning(f"{vp}.os_disk_gb", "below the documented 250–300 GB for the OS disk", "use 300 or more")
            if vm.data_disk_gb < 500:
                r.warning(
                    f"{vp}.data_disk_gb",
                    "below the documented 500 GB for the storage pool",
                    "use 500 or more",
                )
    if password is None:
        return None
    return VsphereSettings(
        server=server,
        port=port,
        username=username,
        password=password,
        datacenter=datacenter,
        cluster=cluster,
        resource_pool=r.text(m, "resource_pool", path),
        folder=r.text(m, "folder", path),
        datastore=datastore,
        network=network,
        iso_folder=r.text(m, "iso_folder", path, default="palette-iso") or "palette-iso",
        tls_fingerprint=fingerprint,
        vm_mode=vm_mode,
        vm=vm,
    )


def _read_redfish(r: _Reader, raw: object) -> RedfishSettings | None:
    path = "provider.redfish"
    m = r.mapping(raw if raw is not None else {}, path, ("iso_url", "iso_server_bind", "iso_server_port"))
    if m is None:
        return None
    iso_url = r.text(m, "iso_url", path)
    if iso_url:
        why = _url_problem(iso_url, ("http", "https"))
        if why:
            r.error(f"{path}.iso_url", why, "give the http(s) URL the BMCs download the ISO from")
    bind = r.text(m, "iso_server_bind", path)
    if bind:
        why = _host_or_ip_problem(bind)
        if why:
            r.error(f"{path}.iso_server_bind", why, "give an address of this machine the BMCs can reach")
    port = r.integer(m, "iso_server_port", path, default=0, minimum=0, maximum=65535) or 0
    return RedfishSettings(iso_url=iso_url, iso_server_bind=bind, iso_server_port=port)


def _read_maas(r: _Reader, raw: object) -> MaasSettings | None:
    path = "provider.maas"
    if raw is None:
        r.error(path, "is required when provider.type is maas", "add the MAAS url and api_key")
        return None
    m = r.mapping(raw, path, ("url", "api_key", "tls_fingerprint", "tags", "pool", "zone"))
    if m is None:
        return None
    url = r.text(m, "url", path, required=True)
    if url:
        why = _url_problem(url, ("http", "https"))
        if why:
            r.error(f"{path}.url", why, "for example http://maas.example.com:5240/MAAS")
    key = r.secret(m, "api_key", path, required=True)
    fingerprint = _read_fingerprint(r, m, path)
    tags = r.text_list(m, "tags", path)
    for i, tag in enumerate(tags):
        if not tag.strip() or any(c.isspace() or c == "," for c in tag):
            r.error(f"{path}.tags[{i}]", f"{tag!r} is not a MAAS tag name", "one tag per entry, no spaces or commas")
    pool, zone = r.text(m, "pool", path), r.text(m, "zone", path)
    if key is None:
        return None
    return MaasSettings(url=url, api_key=key, tls_fingerprint=fingerprint, tags=tags, pool=pool, zone=zone)
