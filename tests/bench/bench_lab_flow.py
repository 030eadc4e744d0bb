"""The headless lab flow with 12 nodes against the same flow with 3 (goal: at most 1.25× the time).

What an appliance supports decides the shape. The Palette Management Appliance installs a management cluster on 1,
3 or 5 control-plane nodes (an even count loses etcd quorum; the reference's Node Config asks for ≥ 3 control-plane
nodes and makes the worker pool optional), so the wizard's projects accept only those counts and a 12-node cluster
is not an appliance install. What does grow with the node count is the per-node work before the cluster: boot from
the ISO, install, replace the default password, link to the leader (the Local UI links any number of hosts), and
content sync to every linked host. That flow runs here with the wizard's own Local UI client and bundle uploader
against the lab's nodes (real HTTPS, pinned certificates, the lab's clock-scaled install), one worker per node as
the engine runs node jobs; the ratio shows whether the lab and the client scale with the node count or serialise.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from wizard.appliance.bundles import MultipartBody
from wizard.appliance.localui import Connector, Endpoint, LocalUIClient
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.trust import TrustStore
from wizard.lab.artifacts import random_file
from wizard.lab.lab import Lab, LabNode

NAME = "lab-flow"
NODES, REFERENCE_NODES = 12, 3
SPEED = 600.0  # a 15-minute install takes 1.5 s
RUNS = 3
BUNDLE = 8 * 1024 * 1024
NEW_PASSWORD = "Bench-pass-1"
TIMEOUT = 120.0


def _open_when_up(connector: Connector, node: LabNode, cancel: CancelToken) -> LocalUIClient:
    """The node's Local UI client once its install is done and the Local UI answers (as the install step waits)."""
    state = node.state
    endpoint = Endpoint(node.name, state.ip, "kairos", "kairos", port=node.server.port, fingerprint=node.fingerprint)
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            client = connector.open(endpoint, cancel)
            client.ensure_session()
            return client
        except WizardError:  # not up yet: refused, or no TLS yet
            if time.monotonic() > deadline:
                raise
            cancel.sleep(0.05)


def _prepare(connector: Connector, node: LabNode, cancel: CancelToken) -> LocalUIClient:
    node.machine.insert_media("file:///rehearsal/palette-edge-installer.iso")
    node.machine.power_on()
    client = _open_when_up(connector, node, cancel)
    client.reset_password(NEW_PASSWORD)
    client.host_info()
    return client


def flow(n_nodes: int, folder: Path) -> float:
    """Seconds from power-on to content synced on every node of an ``n_nodes`` lab."""
    cancel = CancelToken()
    folder.mkdir(parents=True)
    bundle = random_file(folder / "core-content.tar.zst", BUNDLE)
    with Lab(
        n_nodes,
        folder / "lab",
        installed=False,
        speed=SPEED,
        content_sync_delay=300 / SPEED,
        tick_interval=0.05,
        socket_timeout=15.0,
    ) as lab:
        connector = Connector(TrustStore(folder / "config"), None, timeout=15.0, retry_backoff=0.1)
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=n_nodes, thread_name_prefix="bench-node") as pool:
            clients = list(pool.map(lambda node: _prepare(connector, node, cancel), lab.nodes))
        try:
            leader, followers = clients[0], clients[1:]
            for follower in followers:  # one token per follower: a token is one-time
                follower.link(leader.generate_link_token().token)
            body = MultipartBody({"uploadFile": bundle})
            leader.upload_content(body.stream(cancel), content_type=body.content_type, length=len(body))
            deadline = time.monotonic() + TIMEOUT
            while True:
                status = leader.link_status()
                if (
                    status is not None
                    and len(status.peers) == n_nodes
                    and all(p.content_sync == "Synced" for p in status.peers)
                ):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"content not synced to every node within {TIMEOUT:.0f} s: {status}")
                cancel.sleep(0.02)
            return time.perf_counter() - start
        finally:
            for client in clients:
                client.close()


def run() -> str:
    ours, ref = [], []
    for _ in range(RUNS):  # interleaved, so both sizes see the same machine load
        with tempfile.TemporaryDirectory(prefix="bench-lab-flow-") as tmp:
            ref.append(flow(REFERENCE_NODES, Path(tmp) / "small"))
            ours.append(flow(NODES, Path(tmp) / "large"))
    a, b = statistics.median(ours), statistics.median(ref)
    return (
        f"bench {NAME}: ratio {a / b:.2f} (ours {NODES} nodes {a:.2f} s, reference {REFERENCE_NODES} nodes {b:.2f} s)"
    )


if __name__ == "__main__":
    print(run(), flush=True)
