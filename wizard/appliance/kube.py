"""The management cluster's pods, read with the admin kubeconfig the wizard saved: what the docs' validation does with
``kubectl get pods -A`` (reference §1.6), and which ingress controller runs (Traefik replaced ingress-nginx in 4.8.47,
nginx was removed in 4.9.14; reference §10.2).

Only kubeadm's admin.conf shape is read (a cluster with ``certificate-authority-data`` and a user with client
certificate data), as the appliance's kubeconfig is. The client certificate and key pass through a private temporary
folder (owner-only, removed at once), because Python's TLS loads them from files only.
"""

from __future__ import annotations

import base64
import os
import shutil
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from wizard.appliance.versions import TRAEFIK_FROM, ApplianceIdentity
from wizard.core.errors import WizardError
from wizard.core.http import DEFAULT_RETRY, RetryPolicy, RetryTransport, Sleeper

#: The docs' validation: every pod in these namespaces Running.
MANAGEMENT_NAMESPACES = ("cp-system", "hubble-system", "jet-system", "ui-system")
INGRESS_NGINX = "ingress-nginx"
TRAEFIK = "traefik"


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    phase: str

    @property
    def running(self) -> bool:
        return self.phase in ("Running", "Succeeded")  # a finished job's pod is fine


def _kubeconfig_parts(path: Path) -> tuple[str, bytes, bytes, bytes]:
    """(server, CA PEM, client certificate PEM, client key PEM) of the current context."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise WizardError("Kubeconfig unreadable", f"{path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise WizardError("Kubeconfig unreadable", f"{path} is not a kubeconfig")
    contexts = {c.get("name"): c.get("context") or {} for c in doc.get("contexts") or [] if isinstance(c, dict)}
    context = contexts.get(doc.get("current-context")) or next(iter(contexts.values()), {})
    clusters = {c.get("name"): c.get("cluster") or {} for c in doc.get("clusters") or [] if isinstance(c, dict)}
    users = {u.get("name"): u.get("user") or {} for u in doc.get("users") or [] if isinstance(u, dict)}
    cluster = clusters.get(context.get("cluster")) or next(iter(clusters.values()), {})
    user = users.get(context.get("user")) or next(iter(users.values()), {})
    try:
        return (
            str(cluster["server"]),
            base64.b64decode(cluster["certificate-authority-data"]),
            base64.b64decode(user["client-certificate-data"]),
            base64.b64decode(user["client-key-data"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WizardError(
            "Kubeconfig not usable",
            f"{path} has no embedded CA and client certificate ({exc})",
            remediation="download the Admin Kubeconfig File again from the leader's Local UI (Cluster → Environment)",
        ) from exc


def kube_get(
    kubeconfig: Path,
    path: str,
    *,
    timeout: float = 15.0,
    retry: RetryPolicy = DEFAULT_RETRY,
    cancel: Sleeper | None = None,
) -> dict[str, Any] | None:
    """``GET path`` on the cluster's API as the admin: the JSON object, or None for a 404. A GET is idempotent: 5xx,
    resets and timeouts are retried by the one policy; ``cancel`` (the job's token) ends a wait between tries."""
    server, ca, cert, key = _kubeconfig_parts(kubeconfig)
    folder = Path(tempfile.mkdtemp(prefix="palette-kube-"))
    try:
        os.chmod(folder, 0o700)
        cert_path, key_path = folder / "admin.crt", folder / "admin.key"
        for target, data in ((cert_path, cert), (key_path, key)):
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
        ctx = ssl.create_default_context(cadata=ca.decode("ascii", errors="replace"))
        ctx.load_cert_chain(cert_path, key_path)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise WizardError("Kubeconfig not usable", f"{kubeconfig}: its certificates do not load ({exc})") from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    try:
        transport = RetryTransport(
            httpx.HTTPTransport(verify=ctx), retry, cancel=cancel, label=f"Kubernetes API {server}"
        )
        with httpx.Client(base_url=server, transport=transport, timeout=timeout) as http:
            r = http.get(path)
    except httpx.HTTPError as exc:
        raise WizardError(
            "Kubernetes API unreachable",
            f"{server}: {exc.__class__.__name__}: {exc}",
            remediation="check that TCP 6443 at the VIP is reachable from this machine",
        ) from exc
    if r.status_code == 404:
        return None
    if r.status_code != 200:
        raise WizardError("Kubernetes API refused a read", f"{server}{path} answered {r.status_code}: {r.text[:200]}")
    try:
        data = r.json()
    except ValueError as exc:
        raise WizardError("Unexpected Kubernetes API answer", f"{server}{path}: not JSON") from exc
    return data if isinstance(data, dict) else None


def list_pods(
    kubeconfig: Path, *, timeout: float = 15.0, retry: RetryPolicy = DEFAULT_RETRY, cancel: Sleeper | None = None
) -> list[Pod]:
    """Every pod of the cluster, as the admin sees it."""
    data = kube_get(kubeconfig, "/api/v1/pods", timeout=timeout, retry=retry, cancel=cancel)
    items: Any = (data or {}).get("items")
    return [
        Pod(
            str((i.get("metadata") or {}).get("namespace") or ""),
            str((i.get("metadata") or {}).get("name") or ""),
            str((i.get("status") or {}).get("phase") or ""),
        )
        for i in items or []
        if isinstance(i, dict)
    ]


#: Where the docs' pre-upgrade scripts act: the Zot registry's claim and the storage class it should sit on.
ZOT_NAMESPACE, ZOT_PVC = "zot-system", "zot-pvc"
HA_STORAGE_CLASS = "linstor-lvm-storage"


def zot_access_modes(kubeconfig: Path, cancel: Sleeper | None = None) -> list[str] | None:
    """The access modes of the Zot registry's PVC (``kubectl get pvc -n zot-system``), None when there is none."""
    data = kube_get(kubeconfig, f"/api/v1/namespaces/{ZOT_NAMESPACE}/persistentvolumeclaims", cancel=cancel) or {}
    claims = [i for i in data.get("items") or [] if isinstance(i, dict)]
    claim = next((c for c in claims if (c.get("metadata") or {}).get("name") == ZOT_PVC), claims[0] if claims else None)
    if claim is None:
        return None
    return [str(m) for m in (claim.get("spec") or {}).get("accessModes") or []]


def storage_class_parameters(
    kubeconfig: Path, name: str = HA_STORAGE_CLASS, cancel: Sleeper | None = None
) -> dict[str, str] | None:
    """A StorageClass's parameters, None when it does not exist."""
    data = kube_get(kubeconfig, f"/apis/storage.k8s.io/v1/storageclasses/{name}", cancel=cancel)
    if data is None:
        return None
    return {str(k): str(v) for k, v in (data.get("parameters") or {}).items()}


def _is_traefik(pod: Pod) -> bool:
    return TRAEFIK in pod.namespace or pod.name.startswith(TRAEFIK)


def _is_nginx(pod: Pod) -> bool:
    return pod.namespace == INGRESS_NGINX or pod.name.startswith("ingress-nginx")


def judge_pods(pods: Sequence[Pod], identity: ApplianceIdentity) -> tuple[list[str], str]:
    """What is wrong with the pods the docs' validation looks at, and which ingress runs (``traefik``,
    ``ingress-nginx`` or ``""``). The ingress expected follows the release: Traefik from 4.8.47 (a leftover
    ingress-nginx is no longer looked for), ingress-nginx before; either when the release is unknown."""
    problems: list[str] = []
    for namespace in MANAGEMENT_NAMESPACES:
        found = [p for p in pods if p.namespace == namespace]
        if not found:
            problems.append(f"no pods in {namespace}")
        elif stuck := [p for p in found if not p.running]:
            problems.append(f"{namespace}: " + ", ".join(f"{p.name} {p.phase or 'no phase'}" for p in stuck))
    traefik = [p for p in pods if _is_traefik(p)]
    nginx = [p for p in pods if _is_nginx(p)]
    before = identity.before(TRAEFIK_FROM)
    if before is None:
        wanted = [(TRAEFIK, traefik), (INGRESS_NGINX, nginx)]
    else:
        wanted = [(INGRESS_NGINX, nginx)] if before else [(TRAEFIK, traefik)]
    running = [name for name, group in wanted if group and all(p.running for p in group)]
    if not running:
        expected = " or ".join(name for name, _ in wanted)
        why = f" ({identity.label}: Traefik replaced ingress-nginx in {TRAEFIK_FROM})" if before is False else ""
        problems.append(f"no running {expected} ingress pods{why}")
    return problems, running[0] if running else ""
