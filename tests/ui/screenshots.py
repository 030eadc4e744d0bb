"""Screenshots of the desktop wizard for a visual check (not a test).

    python tests/ui/screenshots.py [--dark] [OUTDIR]      (default: docs/screenshots, or docs/screenshots/dark)

Walks Welcome → Project (valid, then invalid) → the input pages (Provider, Credentials, Nodes and its Discover dialog,
Network, Files; valid, with inline problems, and at the window's minimum size) → Preflight (passed, then with a
blocker and an overridden warning) → Run (in progress, finished, failed) → the trust dialogs (first contact, changed
certificate) → Welcome with the unfinished session, then desktop rehearsals on the lab: Install, Bundles, Cluster,
Activation and Summary while and after the nodes install, a node whose install fails, a whole run, and the Upgrade
page on a kept rehearsal, saving one PNG per state; also the Review page, the Run page's steps during and after a
rehearsal, the manual boot checklist and the cluster's conditions. ``--dark`` takes the same set with a dark palette.
Works offscreen or under ``xvfb-run -a``. The 150 % set (``docs/screenshots/scaled-150``) is taken on a 1920×1080
offscreen screen::

    QT_SCALE_FACTOR=1.5 QT_QPA_PLATFORM=offscreen:configfile=tests/ui/offscreen-1080p.json \
        python tests/ui/screenshots.py docs/screenshots/scaled-150

Everything it writes (journals, logs, the sample project and its ISO, the rehearsal, a MAAS region) goes to a
temporary folder; the OS keyring is not touched.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere

import keyring
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLineEdit

from tests.support.projects import appliance_iso
from tests.ui.helpers import (
    ISO_SIZE,
    ZERO_SHA,
    InMemoryKeyring,
    PacedStep,
    invalid_doc,
    valid_doc,
    write_project,
)
from wizard.core.checks.catalog import failed, passed
from wizard.core.checks.report import CheckReport
from wizard.core.journal import journal_path, project_id
from wizard.core.logs import setup_logging
from wizard.core.paths import app_paths
from wizard.core.progress import TaskState, TaskStatus
from wizard.core.project import SecretRef
from wizard.core.runner import JobFinished
from wizard.core.secrets import SecretStore
from wizard.core.trust import TrustKind, TrustRequest
from wizard.install.steps import pipeline
from wizard.install.steps.preflight import report_paths
from wizard.lab.lab import NodeFaults
from wizard.lab.maas import MaasState, Status
from wizard.lab.maasserver import MaasServer
from wizard.rehearsal import Rehearsal
from wizard.ui.app import application
from wizard.ui.pages.cluster import Variable
from wizard.ui.rehearsal import rehearsal_window
from wizard.ui.shell import MainWindow
from wizard.ui.theme import dark_palette


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the wizard did not reach the expected state")
        QTest.qWait(20)


def snapshot_tasks(window: MainWindow) -> tuple[TaskState, ...]:
    snap = window.controller.snapshot()
    return snap.tasks if snap is not None else ()


def _type(widget: object, text: str) -> None:
    """Type into a field as the operator does, so the page sees an edit."""
    assert isinstance(widget, QLineEdit)
    widget.setFocus()
    widget.selectAll()
    QTest.keyClicks(widget, text)


def input_pages(work: Path, window: MainWindow, shot: Callable[..., None]) -> None:
    """The input pages on a vSphere project, then a Redfish one with its problems shown inline."""
    doc = valid_doc()
    doc["provider"] = {
        "type": "vsphere",
        "vsphere": {
            "server": "vcenter.example.com",
            "username": "administrator@vsphere.local",
            "password": {"secret": "vcenter-admin"},
            "datacenter": "DC0",
            "cluster": "DC0_C0",
            "datastore": "LocalDS_0",
            "network": "VM Network",
            "vm": {"cpus": 8, "memory_gb": 16, "os_disk_gb": 300, "data_disk_gb": 500},
        },
    }
    for i, node in enumerate(doc["nodes"], 1):
        node["vm"] = f"palette-node-{i}"
    doc["network"] = {
        "vip": "127.0.10.50",
        "dns": ["127.0.0.53"],
        "ntp": ["ntp.example.com"],
        "proxy": {"https": "http://proxy.example.com:3128", "no_proxy": [".example.com"]},
    }
    window.open_project(write_project(work, doc, "vsphere.yaml"))
    window.go_to(MainWindow.PROVIDER)
    shot("03a-provider-vsphere")
    fields = {f.name: f for f in window.provider.fields}
    _type(fields["Server"].widget, "https://vcenter.example.com")
    _type(fields["vCPUs"].widget, "4")
    shot("03b-provider-vsphere-problems")
    window.resize(window.minimumSize())
    shot("03c-provider-vsphere-minimum-size")
    window.resize(1100, 720)
    _type(fields["Server"].widget, "vcenter.example.com")
    window.go_to(MainWindow.CREDENTIALS)
    wait_until(lambda: all(r.status != "checking" for r in window.credentials.rows.values()))
    shot("03d-credentials-missing")

    doc = valid_doc()
    doc["provider"] = {"type": "redfish"}
    for i, node in enumerate(doc["nodes"], 1):
        node["bmc"] = {"address": f"10.20.0.{i}", "username": "root", "password": {"secret": "bmc-root"}}
    doc["nodes"][1]["ip"] = "127.0.10.300"
    doc["appliance"] = {"password": {"secret": "node-password"}}
    doc["files"] = {"iso": "appliance.iso", "content_bundle": "missing.tar.zst"}
    window.open_project(write_project(work, doc, "redfish.yaml"))
    SecretStore().set(SecretRef("node-password"), "a-long-node-password")
    window.go_to(MainWindow.CREDENTIALS)
    wait_until(lambda: all(r.status != "checking" for r in window.credentials.rows.values()))
    window.credentials.rows["bmc-root"].edit.setText("a-long-bmc-password")
    shot("03e-credentials-redfish")
    window.credentials.store_secret("bmc-root")
    wait_until(lambda: window.credentials.rows["bmc-root"].status == "stored")
    window.go_to(MainWindow.NODES)
    window.nodes.table.setCurrentCell(1, window.nodes.column_index("ip"))
    shot("03f-nodes-invalid-ip")
    csv_file = work / "nodes.csv"
    csv_file.write_text(
        "name,hostname,ip,prefix,gateway,bmc_address,bmc_username,bmc_password\n"
        "node-1,edge-1,127.0.10.11,24,127.0.10.1,10.20.0.1,root,bmc-root\n"
        "node-2,edge-2,127.0.10.12,24,127.0.10.1,10.20.0.2,root\n"
        "node-3,Edge_3,127.0.10.13,24,127.0.10.1,10.20.0.3,root,bmc-root\n"
    )
    window.nodes.import_csv(csv_file)
    shot("03g-nodes-csv-report")
    window.resize(window.minimumSize())
    shot("03h-nodes-minimum-size")
    window.resize(1100, 720)
    window.document.load(window.document.path)  # type: ignore[arg-type]
    window.document.set(("nodes", 1, "ip"), "127.0.10.12")
    window.go_to(MainWindow.NETWORK)
    _type(window.network.dns.widget, "127.0.0.53, 10.0.0.999")
    shot("03i-network-problems")
    window.document.set(("network", "dns"), ["127.0.0.53"])
    window.go_to(MainWindow.FILES)
    shot("03j-files-problems")


def discover_dialog(work: Path, window: MainWindow, shot_widget: Callable[[str, object], None]) -> None:
    """The Nodes page's Discover on a MAAS region (the lab's MAAS API): one machine taken, one too small."""
    state = MaasState()
    admin = state.add_user("admin", admin=True)
    state.add_user("bob")
    big = {"cpu_count": 16, "memory": 32768, "power_type": "redfish", "pool": "palette"}
    for i in (1, 2, 3):
        state.add_machine(f"pma-{i}", system_id=f"k{i}a7fe", zone=f"rack-{i}", **big)
    state.add_machine("pma-4", system_id="k4a7fe", zone="rack-1", **big)
    state.machine("k4a7fe").status = Status.ALLOCATED
    state.machine("k4a7fe").owner = "bob"
    state.add_machine("lab-5", system_id="k5a7fe", cpu_count=4, memory=8192, power_type="ipmi")
    with MaasServer(state) as server:
        SecretStore().set(SecretRef("maas-api-key"), admin.api_key)
        doc = valid_doc()
        doc["provider"] = {"type": "maas", "maas": {"url": server.url, "api_key": {"secret": "maas-api-key"}}}
        doc["nodes"] = doc["nodes"][:1]
        doc["nodes"][0]["maas"] = "pma-1"
        window.open_project(write_project(work, doc, "maas.yaml"), goto=MainWindow.NODES)
        window.nodes.open_discovery()
        dialog = window.nodes.discover_dialog
        assert dialog is not None
        wait_until(lambda: not dialog.running)
        dialog.set_checked(1)
        dialog.set_checked(2)
        shot_widget("03k-nodes-discover-maas", dialog)
        dialog.reject()


def install_failed(work: Path, app: object, shot: Callable[..., None]) -> None:
    """A node whose installer fails on the lab: the Install page with its log and the per-node retry."""
    with Rehearsal(work / "rehearsal-failed", nodes=3, speed=300) as rehearsal:
        assert rehearsal.lab is not None
        rehearsal.lab.nodes[1].apply(NodeFaults(install_error="no disk matched the install target /dev/sda"))
        window = rehearsal_window(rehearsal)
        window.show()
        window.controller.start(rehearsal.project_file, until="install")
        window.go_to(MainWindow.INSTALL)
        wait_until(lambda: not window.controller.running, 120)
        window.install.table.selectRow(1)
        shot("15b-install-node-failed", window)
        window.close()


def manual_checklist(work: Path, shot: Callable[..., None]) -> None:
    """The Install page while the operator boots the nodes by hand: what to do on each, ticked as each is seen."""
    project = write_project(work, valid_doc(), "manual.yaml")
    window = MainWindow(steps=lambda: pipeline(until="boot"))
    window.show()
    window.open_project(project)
    window.review.confirm()
    window.go_to(MainWindow.RUN)
    window.run.start()
    window.go_to(MainWindow.INSTALL)
    wait_until(lambda: bool(window.install.checklist_rows), 120)
    shot("13b-install-manual-checklist", window)
    window.controller.cancel("screenshots")
    wait_until(lambda: not window.controller.running, 60)
    window.close()


def preflight_pages(valid: Path, window: MainWindow, shot: Callable[..., None]) -> None:
    """The checks run for real, then a report with a blocker and an overridden warning."""
    window.go_to(MainWindow.PREFLIGHT)
    shot("04a-preflight-not-run")
    window.preflight.run_checks()
    wait_until(lambda: not window.controller.running)
    shot("04b-preflight-passed")
    journal = journal_path(app_paths().state, project_id(valid, "palette-mgmt"))
    report, _ = report_paths(journal)
    results = [
        passed("host.free-space", "412 GiB free in the state, log and staging folders", "jump host"),
        failed("files.signed", "appliance.iso has no signature file", "files.iso"),
        failed("net.vip-free", "127.0.10.50 answers on TCP 443", "VIP (127.0.10.50)"),
        passed("net.node-ip-free", "nothing answers", "node-1 (127.0.10.11)"),
        failed("net.ntp-server", "ntp2.example.com does not answer", "ntp2.example.com"),
    ]
    report.write_text(CheckReport(tuple(results), (), "palette-mgmt").to_json())
    window.go_to(MainWindow.NETWORK)
    window.go_to(MainWindow.PREFLIGHT)
    window.preflight.table.selectRow(1)
    window.preflight.reason_edit.setText("the ISO comes from our signed internal mirror")
    window.preflight.override_selected()
    window.preflight.table.selectRow(0)
    shot("04c-preflight-blocker")
    report.unlink()  # the later runs write their own


def trust_dialogs(window: MainWindow, shot_widget: Callable[[str, object], None]) -> None:
    """Both trust questions, asked from a worker thread as a job asks them."""
    requests = [
        (
            "11-trust-first-contact",
            TrustRequest(TrustKind.TLS, "127.0.10.11", 5080, "3F:" * 31 + "A9", None, "CN=edge-node-1"),
        ),
        (
            "12-trust-changed",
            TrustRequest(TrustKind.SSH, "127.0.10.12", 22, "SHA256:" + "q" * 43, "SHA256:" + "Z" * 43, "ssh-ed25519"),
        ),
    ]
    for name, request in requests:
        answered = threading.Event()
        threading.Thread(target=lambda r=request, done=answered: (window.trust.ask(r), done.set()), daemon=True).start()
        wait_until(lambda: window.trust.dialog is not None)
        dialog = window.trust.dialog
        assert dialog is not None
        if dialog.confirm_edit is not None:
            dialog.confirm_edit.setText("127.0.10.1")
        shot_widget(name, dialog)
        dialog.reject()
        wait_until(answered.is_set)


def run_pages(work: Path, app: object, shot: Callable[..., None]) -> None:
    """Install, Bundles, Cluster, Activation and Summary on the lab, up to the cluster step."""
    with Rehearsal(work / "rehearsal-pages", nodes=3, speed=120) as rehearsal:
        window = rehearsal_window(rehearsal)
        window.show()
        window.go_to(MainWindow.RUN)
        window.controller.start(rehearsal.project_file, until="cluster")
        window.go_to(MainWindow.INSTALL)
        wait_until(lambda: any(t.step == "install" and 0.3 < t.fraction < 0.8 for t in snapshot_tasks(window)), 120)
        window.install.table.selectRow(0)
        shot("13-install-monitor", window)
        window.go_to(MainWindow.BUNDLES)
        wait_until(lambda: any(t.step == "content" and t.fraction > 0.2 for t in snapshot_tasks(window)), 120)
        shot("14-bundles", window)
        window.go_to(MainWindow.RUN)
        shot("14b-run-steps", window)
        window.go_to(MainWindow.CLUSTER)
        wait_until(lambda: sum(s == "done" for _, s, _ in window.cluster.stages) >= 4, 120)
        shot("16b-cluster-conditions", window)
        wait_until(lambda: not window.controller.running, 120)
        window.go_to(MainWindow.INSTALL)
        shot("15-install-finished", window)
        window.go_to(MainWindow.CLUSTER)
        window.cluster.set_variables(
            [
                Variable("domain", "Palette domain (domain)", required=True, regex=r"[a-z0-9.-]+"),
                Variable("replicas", "Replicas", default="3"),
                Variable("registry_password", "Registry password", required=True, sensitive=True),
            ]
        )
        window.cluster.fields["domain"].edit.setText("palette.example.com")
        window.document.set(("cluster", "variables", "domain"), "palette.example.com")
        window.cluster.validate()
        shot("16-cluster-variables", window)
        window.go_to(MainWindow.ACTIVATION)
        window.activation.event_received(
            JobFinished(
                "activate",
                "activate/palette",
                "Activation",
                "",
                TaskStatus.DONE,
                result={"product_setup_id": "6731f0c2e4b5a9d8c7f61234", "deferred": True, "trial_ends": "in 30 days"},
            )
        )
        shot("17-activation", window)
        window.document.load(window.document.path)  # type: ignore[arg-type]  # drop the example answers
        window.close()


def upgrade_pages(work: Path, shot: Callable[..., None]) -> None:
    """Day 2: the Upgrade page on a kept rehearsal (installed at 4.9.38 first): ready, a refused hop, in progress,
    done."""
    from wizard.lab.knobs import parse_knobs

    folder = work / "rehearsal-upgrade"
    with Rehearsal(folder, nodes=3, speed=600, lab=parse_knobs("version=4.9.38"), keep=True) as rehearsal:
        from wizard.install.session import Session

        session = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
        session.engine(steps=rehearsal.steps(), on_event=rehearsal.on_event).run()
    with Rehearsal.reopen(folder, lab=parse_knobs("upgrade-seconds=6000")) as rehearsal:
        window = rehearsal_window(rehearsal)
        window.show()
        window.go_to(MainWindow.WELCOME)
        shot("19-welcome-installed", window)
        window.go_to(MainWindow.UPGRADE)
        shot("19a-upgrade-ready", window)
        page = window.upgrade
        page.current = "4.8.47"
        page._judge()
        shot("19b-upgrade-refused-hop", window)
        page.refresh()
        page.start()
        wait_until(lambda: any(t.step == "follow" and t.fraction > 0.2 for t in snapshot_tasks(window)), 120)
        shot("19c-upgrade-in-progress", window)
        wait_until(lambda: not window.controller.running, 180)
        shot("19d-upgrade-done", window)
        window.close()


def main(out: Path, *, dark: bool = False) -> int:
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="wizard-shots-"))
    os.environ["PALETTE_WIZARD_HOME"] = str(work / "home")
    keyring.set_keyring(InMemoryKeyring())
    setup_logging(app_paths().ensure().logs)  # engine messages go to the log, not the terminal

    appliance_iso(work / "appliance.iso", ISO_SIZE)
    valid = write_project(work, valid_doc(), "project.yaml")
    invalid = write_project(work, invalid_doc(), "broken.yaml")
    bad_sum = valid_doc(files={"iso": {"path": "appliance.iso", "sha256": ZERO_SHA}})
    failing = write_project(work, bad_sum, "bad-sum.yaml")

    app = application()
    if dark:
        app.setStyle("Fusion")
        app.setPalette(dark_palette())
    window = MainWindow(steps=lambda: [*pipeline(until="preflight"), PacedStep(seconds=3.0)])
    window.show()
    shots: list[Path] = []

    def shot(name: str, of: MainWindow | None = None) -> None:
        QTest.qWait(150)  # let layouts settle
        path = out / f"{name}.png"
        (of or window).grab().save(str(path))
        shots.append(path)

    def shot_widget(name: str, widget: object) -> None:
        QTest.qWait(150)
        path = out / f"{name}.png"
        widget.grab().save(str(path))  # type: ignore[attr-defined]
        shots.append(path)

    shot("01-welcome")

    window.open_project(invalid)
    shot("02-project-invalid")

    window.open_project(valid)
    shot("03-project-valid")

    input_pages(work, window, shot)
    discover_dialog(work, window, shot_widget)
    window.open_project(valid)

    preflight_pages(valid, window, shot)
    window.go_to(MainWindow.RUN)
    shot("04-run-ready")
    window.run.start()  # the review first
    shot("04d-review")
    window.review.confirm()
    window.go_to(MainWindow.RUN)
    window.run.start()
    wait_until(lambda: any(t.key.startswith("paced/") and t.fraction > 0.4 for t in snapshot_tasks(window)))
    shot("05-run-in-progress")
    wait_until(lambda: not window.controller.running)
    shot("06-run-finished")

    window.open_project(failing, goto=MainWindow.RUN)
    window.review.confirm()
    window.run.start()
    wait_until(lambda: not window.controller.running)
    shot("07-run-failed")
    window.run.error_panel.details_toggle.setChecked(True)
    shot("08-run-failed-details")
    window.resize(window.minimumSize())
    shot("08b-run-failed-details-minimum-size")
    window.resize(1100, 720)

    trust_dialogs(window, shot_widget)

    (app_paths().state / "sessions" / "damaged-0123456789ab.json").write_text("{not json")
    window.go_to(MainWindow.WELCOME)
    shot("09-welcome-sessions")

    window.close()
    app.processEvents()

    run_pages(work, app, shot)
    app.processEvents()
    install_failed(work, app, shot)
    app.processEvents()
    manual_checklist(work, shot)
    upgrade_pages(work, shot)
    app.processEvents()

    with Rehearsal(work / "rehearsal", nodes=3, speed=300) as rehearsal:
        rehearsed = rehearsal_window(rehearsal)
        rehearsed.show()
        rehearsed.review.confirm()
        rehearsed.go_to(MainWindow.RUN)
        rehearsed.run.start()
        wait_until(lambda: rehearsed.run.last_result is not None and not rehearsed.controller.running, timeout=120)
        shot("10-rehearsal-finished", rehearsed)
        rehearsed.go_to(MainWindow.SUMMARY)
        shot("18-summary", rehearsed)
        rehearsed.close()
        app.processEvents()
    for path in shots:
        print(path)
    return 0


DEFAULT_OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

if __name__ == "__main__":
    args = sys.argv[1:]
    dark = "--dark" in args
    rest = [a for a in args if a != "--dark"]
    if len(rest) > 1:
        print(__doc__, file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(main(Path(rest[0]) if rest else DEFAULT_OUT / "dark" if dark else DEFAULT_OUT, dark=dark))
