"""The validation's pod listing against the lab's Kubernetes API: client-certificate auth from the admin
kubeconfig, as ``kubectl get pods -A`` does it."""

from __future__ import annotations

import base64
import random
import textwrap
from pathlib import Path

import pytest

from wizard.appliance.kube import judge_pods, list_pods
from wizard.appliance.versions import ApplianceIdentity, Version
from wizard.core.errors import WizardError
from wizard.core.http import RetryPolicy
from wizard.lab import kubepki
from wizard.lab.kubeapi import KubeAPIServer, cluster_pods

pytestmark = pytest.mark.lab

VIP = "127.0.0.1"


def kubeconfig(path: Path, server: str, ca: bytes, cert: bytes, key: bytes) -> Path:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    path.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: v1
            kind: Config
            clusters:
            - cluster: {{certificate-authority-data: {b64(ca)}, server: "{server}"}}
              name: mgmt
            contexts:
            - context: {{cluster: mgmt, user: admin}}
              name: admin@mgmt
            current-context: admin@mgmt
            users:
            - name: admin
              user: {{client-certificate-data: {b64(cert)}, client-key-data: {b64(key)}}}
            """
        )
    )
    return path


class CountingRetry(RetryPolicy):
    """The default policy, counting how often it was asked for a delay (each is a retry)."""

    asked = 0

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        type(self).asked += 1
        return super().delay(failures, rng)


@pytest.mark.parametrize("ingress", ["traefik", "ingress-nginx"])
def test_pods_are_listed_with_the_admin_certificate(tmp_path: Path, ingress: str) -> None:
    CountingRetry.asked = 0
    counting = CountingRetry()
    pki = kubepki.create(tmp_path / "pki", VIP)
    server = KubeAPIServer(pki, lambda: True, host=VIP, port=0, pods=lambda: cluster_pods(ingress, True))
    server.start()
    try:
        url = f"https://{VIP}:{server.port}"
        good = kubeconfig(tmp_path / "admin.conf", url, pki.ca_pem, pki.client_cert_pem, pki.client_key_pem)
        pods = list_pods(good)
        assert {p.namespace for p in pods} >= {"cp-system", "hubble-system", "jet-system", "ui-system"}
        release = Version(4, 9, 44) if ingress == "traefik" else Version(4, 8, 40)
        assert judge_pods(pods, ApplianceIdentity(release)) == ([], ingress)
        # A certificate the cluster CA did not sign is no admin: the pod list is refused.
        other = kubepki.create(tmp_path / "other", "127.0.0.2")
        stranger = kubeconfig(tmp_path / "x.conf", url, pki.ca_pem, other.client_cert_pem, other.client_key_pem)
        with pytest.raises(WizardError, match="ALERT"):
            list_pods(stranger, retry=counting)  # a refusal by TLS alert: not sent again
        assert counting.asked == 0
        # A server the kubeconfig's CA did not sign is not trusted either.
        wrong_ca = kubeconfig(tmp_path / "y.conf", url, other.ca_pem, pki.client_cert_pem, pki.client_key_pem)
        with pytest.raises(WizardError, match="unreachable"):
            list_pods(wrong_ca)
        kubepki.forget(other)
    finally:
        server.stop()
        kubepki.forget(pki)


def test_a_kubeconfig_without_certificates_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "token.conf"
    path.write_text("clusters: [{name: c, cluster: {server: https://x}}]\nusers: [{name: u, user: {token: t}}]\n")
    with pytest.raises(WizardError, match="no embedded CA and client certificate"):
        list_pods(path)


def test_reads_ride_out_transient_5xx(tmp_path: Path) -> None:
    """Half the API's answers are 500/502/503 first (the lab's http-5xx knob): every read still gets through."""
    from wizard.core.http import DEFAULT_RETRY
    from wizard.lab.httpfaults import HttpFaults

    pki = kubepki.create(tmp_path / "pki", VIP)
    faults = HttpFaults(0.5, seed=3, label="kube-api")
    server = KubeAPIServer(
        pki, lambda: True, host=VIP, port=0, pods=lambda: cluster_pods("traefik", True), faults=faults
    )
    server.start()
    try:
        url = f"https://{VIP}:{server.port}"
        good = kubeconfig(tmp_path / "admin.conf", url, pki.ca_pem, pki.client_cert_pem, pki.client_key_pem)
        for _ in range(6):
            assert list_pods(good, retry=DEFAULT_RETRY.scaled(0.01))
        assert faults.injected > 0
    finally:
        server.stop()


def test_a_cancel_ends_the_wait_between_retries_of_a_cluster_read(tmp_path: Path) -> None:
    """An API failing every time is waited out between tries (the policy's waits, here 20 s each); the job's cancel
    ends that wait at once, for the validation's pod listing and for the cluster as the console's witness."""
    import threading
    import time

    from wizard.appliance.witness import ClusterWitness, first_able
    from wizard.core.cancel import Cancelled, CancelToken
    from wizard.lab.httpfaults import HttpFaults

    pki = kubepki.create(tmp_path / "pki", VIP)
    faults = HttpFaults(1.0, seed=1, label="kube-api")
    server = KubeAPIServer(
        pki, lambda: True, host=VIP, port=0, pods=lambda: cluster_pods("traefik", True), faults=faults
    )
    server.start()
    slow = RetryPolicy(base=20.0, cap=20.0, jitter=0.0)
    try:
        url = f"https://{VIP}:{server.port}"
        good = kubeconfig(tmp_path / "admin.conf", url, pki.ca_pem, pki.client_cert_pem, pki.client_key_pem)

        def cancel_after_first_fault() -> CancelToken:
            cancel, seen = CancelToken(), faults.injected

            def watch() -> None:
                while faults.injected == seen:
                    time.sleep(0.01)
                cancel.cancel("operator")

            threading.Thread(target=watch, daemon=True).start()
            return cancel

        started = time.monotonic()
        with pytest.raises(Cancelled):
            list_pods(good, retry=slow, cancel=cancel_after_first_fault())
        # The cluster witness, as the console connector binds it to a job's token (nodes that cannot tell first).
        witness = first_able([ClusterWitness(good)]).bound(cancel_after_first_fault())
        with pytest.raises(Cancelled):
            witness("127.0.0.1", 443)
        assert time.monotonic() - started < 20.0  # neither waited out a pause
    finally:
        server.stop()
