"""``openssl s_client`` as a lab node answers it: the certificate the node sees at an address.

At the cluster's VIP a node reaches the cluster's own services from inside (where kube-vip holds the address), so
it sees the certificate the cluster serves, even when the lab presents another one to the jump host (the
``SystemConsoleServer.presented`` knob: something intercepting the jump host's path). Any other address is
fetched for real, as a node on the network would. The output has the lines ``s_client -showcerts`` prints that a
client reads: ``CONNECTED``, the chain with its PEM blocks, the server certificate's subject.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

from cryptography import x509

#: host, port → the PEM the cluster serves there, or None when the address is not one of its services.
ClusterView = Callable[[str, int], str | None]


def _target(args: list[str]) -> tuple[str, int] | None:
    if "-connect" not in args:
        return None
    index = args.index("-connect") + 1
    if index >= len(args):
        return None
    host, sep, port = args[index].rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def s_client(cluster: ClusterView, args: list[str]) -> tuple[int, str, str]:
    if not args or args[0] != "s_client":
        return 1, "", f"openssl: the lab answers only s_client, not {' '.join(args[:1])}\n"
    target = _target(args[1:])
    if target is None:
        return 1, "", "s_client: -connect host:port is required\n"
    host, port = target
    pem = cluster(host, port)
    if pem is None:
        try:
            pem = ssl.get_server_certificate((host, port), timeout=5.0)
        except (OSError, ssl.SSLError) as exc:
            return 1, "", f"{exc}\nconnect:errno=111\n"
    subject = x509.load_pem_x509_certificate(pem.encode("ascii")).subject.rfc4514_string()
    out = [
        "CONNECTED(00000003)",
        "---",
        "Certificate chain",
        f" 0 s:{subject}",
        f"   i:{subject}",
        pem.strip(),
        "---",
        "Server certificate",
        f"subject={subject}",
        f"issuer={subject}",
        "---",
        "DONE",
    ]
    return 0, "\n".join(out) + "\n", ""
