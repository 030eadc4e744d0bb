"""A node added to an installed appliance (``palette-wizard add-node``): booted and installed with the install's own
steps limited to it, linked to the running cluster and joined to a machine pool, in the install's session."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from tests.core.helpers import cli_env, json_events, run_cli
from tests.integration.kept import install_kept
from tests.integration.vcsim_peer import vcsim_binary_fixture  # noqa: F401 - fixture
from wizard.appliance.versions import Version
from wizard.core.errors import ProjectInvalid
from wizard.core.progress import TaskStatus
from wizard.core.project import load_project
from wizard.core.runner import Event, ExitCode, JobFinished, JobStarted, StepBlocked
from wizard.install.addnode import add_node_pipeline
from wizard.install.session import Session
from wizard.rehearsal import Rehearsal, pacing_for

pytestmark = [pytest.mark.upgrade, pytest.mark.lab, pytest.mark.flow]


def _add(rehearsal: Rehearsal, names: list[str]) -> tuple[ExitCode, list[Event]]:
    session = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
    seen: list[Event] = []

    def on_event(event: Event) -> None:
        seen.append(event)
        rehearsal.on_event(event)

    steps = add_node_pipeline(names, preflight=rehearsal.preflight_settings(), pacing=pacing_for(rehearsal.speed))
    code = session.engine(steps=steps, on_event=on_event, only_nodes=names).run()
    return code, seen


def _pools(project: Path, pool: str | None) -> None:
    """Every added node's pool (None: none, so the project counts it in the control plane)."""
    doc = yaml.safe_load(project.read_text())
    for node in doc["nodes"][1:]:
        node.pop("pool", None)
        if pool is not None:
            node["pool"] = pool
    project.write_text(yaml.safe_dump(doc, sort_keys=False))


@pytest.mark.timeout(240)
def test_a_racked_node_joins_the_worker_pool_through_the_cli(tmp_path: Path) -> None:
    folder = install_kept(tmp_path / "r")
    out = run_cli(["add-node", str(folder / "project.yaml"), "--rehearse", "--json"], cli_env(tmp_path / "home"))
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    events = json_events(out.stdout)
    done = {e["job"]: e for e in events if e["event"] == "job_finished"}
    assert done["join/edge-node-2"]["result"]["issuer"] == "edge-node-1"
    assert done["pool/worker-pool"]["result"]["pools"] == {"edge-node-2": "worker-pool"}
    assert done["install/edge-node-2"]["status"] == "done" and done["password/edge-node-2"]["status"] == "done"
    # The installed node is left as it is: none of its install jobs ran again, none was held.
    started = {e["job"] for e in events if e["event"] == "job_started"}
    assert not {j for j in started if j.endswith("/edge-node-1") and not j.startswith("preflight/")}
    assert all(e["status"] != "held" for e in done.values())
    assert next(e for e in events if e["event"] == "run_finished")["exit_code"] == 0
    # The rehearsal's operator wrote the node into the project, and the kept lab remembers it installed.
    doc = yaml.safe_load((folder / "project.yaml").read_text())
    assert doc["nodes"][1]["name"] == "edge-node-2" and doc["nodes"][1]["pool"] == "worker-pool"
    kept = json.loads((folder / "rehearsal.json").read_text())
    assert [n["installed"] for n in kept["nodes"]] == [True, True]
    assert [(h["name"], h["pool"]) for h in kept["cluster"]["hosts"]] == [
        ("edge-node-1", "control-plane-pool"),
        ("edge-node-2", "worker-pool"),
    ]


@pytest.mark.timeout(240)
def test_the_control_plane_grows_by_two_and_refuses_an_even_count(tmp_path: Path) -> None:
    folder = install_kept(tmp_path / "r")
    with Rehearsal.reopen(folder) as rehearsal:
        assert rehearsal.lab is not None
        rehearsal.rack(["edge-node-2"])
        _pools(rehearsal.project_file, None)  # two control-plane nodes: the project itself is refused
        with pytest.raises(ProjectInvalid) as invalid:
            load_project(rehearsal.project_file)
        assert any("2 control-plane nodes cannot keep an etcd quorum" in p.message for p in invalid.value.problems)
        _pools(rehearsal.project_file, "control-plane-pool")  # named: the pool job counts and refuses it
        code, seen = _add(rehearsal, ["edge-node-2"])
        assert code is ExitCode.INSTALL_FAILED
        failed = next(e for e in seen if isinstance(e, JobFinished) and e.job == "pool/control-plane-pool")
        error = failed.error or {}
        assert error["title"] == "Control plane would be even" and "pool: worker-pool" in error["remediation"]
        rehearsal.rack(["edge-node-3"])
        _pools(rehearsal.project_file, "control-plane-pool")
        code, seen = _add(rehearsal, ["edge-node-2", "edge-node-3"])
        assert code is ExitCode.DONE, [e.error for e in seen if isinstance(e, JobFinished) and e.error]
        joined = next(e for e in seen if isinstance(e, JobFinished) and e.job == "pool/control-plane-pool").result
        assert joined["pools"] == {"edge-node-2": "control-plane-pool", "edge-node-3": "control-plane-pool"}
        # edge-node-2's install was not done again: the failed run had finished it.
        again = {e.job for e in seen if isinstance(e, JobStarted)}
        assert "install/edge-node-2" not in again and "install/edge-node-3" in again
        cluster = rehearsal.lab.nodes[0].state.cluster
        assert cluster is not None and sum(h.control_plane for h in cluster.hosts) == 3


@pytest.mark.timeout(240)
def test_a_node_of_another_release_is_refused_before_it_is_linked(tmp_path: Path) -> None:
    folder = install_kept(tmp_path / "r")
    with Rehearsal.reopen(folder) as rehearsal:
        assert rehearsal.lab is not None
        (name,) = rehearsal.rack([])
        newcomer = rehearsal.lab.nodes[-1].state
        newcomer.profile = replace(newcomer.profile, version=Version(4, 9, 44))  # installed from a newer ISO
        code, seen = _add(rehearsal, [name])
        assert code is ExitCode.INSTALL_FAILED
        (blocked,) = [e for e in seen if isinstance(e, StepBlocked)]
        assert blocked.step == "join" and blocked.problems[0].path == "nodes[1]"
        assert "edge-node-2 runs 4.9.44, the cluster 4.9.38" in blocked.problems[0].message
        assert newcomer.link.leader_uid is None  # not linked


def test_a_pooled_node_waits_for_the_cluster(tmp_path: Path) -> None:
    """At install time a node with a pool is refused at the cluster step (it joins a cluster that runs)."""
    from tests.support.projects import base_doc, write_project
    from wizard.core.paths import AppPaths
    from wizard.core.secrets import SecretStore
    from wizard.install.steps.localui import ClusterStep

    doc = base_doc()
    doc["nodes"].append({**doc["nodes"][0], "name": "node-4", "hostname": "edge-node-4", "ip": "127.0.10.14",
                         "pool": "worker-pool"})  # fmt: skip
    project = write_project(tmp_path, doc)
    paths = AppPaths(tmp_path / "s", tmp_path / "l", tmp_path / "c", tmp_path / "k").ensure()
    session = Session.open(project, paths=paths, secrets=SecretStore())
    (problem,) = ClusterStep().problems(session.context)
    assert problem.path == "nodes[3].pool" and "palette-wizard add-node" in problem.fix


def _install_then_add(rehearsal: Rehearsal) -> tuple[ExitCode, list[Event], dict[str, object]]:
    """Install the rehearsal's appliance, rack one machine and add it; the add-node run's code and events, and the
    new node's project entry."""
    session = Session.open(rehearsal.project_file, paths=rehearsal.paths, secrets=rehearsal.secrets)
    code = session.engine(steps=rehearsal.steps(), on_event=rehearsal.on_event).run()
    assert code is ExitCode.DONE, session.journal.snapshot()["jobs"]
    (name,) = rehearsal.rack([])
    code, seen = _add(rehearsal, [name])
    entry = next(n for n in yaml.safe_load(rehearsal.project_file.read_text())["nodes"] if n["name"] == name)
    return code, seen, entry


def _check_added(code: ExitCode, seen: list[Event], rehearsal: Rehearsal) -> dict[str, JobFinished]:
    done = {e.job: e for e in seen if isinstance(e, JobFinished)}
    assert code is ExitCode.DONE, {j: e.error for j, e in done.items() if e.error}
    assert done["pool/worker-pool"].result["pools"] == {"edge-node-2": "worker-pool"}
    assert done["join/edge-node-2"].result["issuer"] == "edge-node-1"
    # Booted through the control plane, not by the rehearsal's operator: only the new machine went through it.
    started = {e.job for e in seen if isinstance(e, JobStarted)}
    assert {"boot/edge-node-2", "install/edge-node-2"} <= started
    assert not {j for j in started if j.endswith("/edge-node-1") and not j.startswith("preflight/")}
    assert rehearsal.lab is not None
    cluster = rehearsal.lab.nodes[0].state.cluster
    assert cluster is not None and [h.name for h in cluster.hosts] == ["edge-node-1", "edge-node-2"]
    return done


@pytest.mark.vsphere
@pytest.mark.timeout(300)
def test_a_node_is_added_through_vcsim(tmp_path: Path, vcsim_binary: Path) -> None:
    with Rehearsal(tmp_path / "r", nodes=1, speed=300, provider="vsphere", vcsim=vcsim_binary) as rehearsal:
        code, seen, entry = _install_then_add(rehearsal)
        done = _check_added(code, seen, rehearsal)
        assert entry["vm"] == "pma-edge-node-2"
        # The wizard's vSphere provider created the new VM (the installed one was left as it was) and booted it
        # from the ISO already on the datastore.
        assert done["machines/edge-node-2"].status is TaskStatus.DONE
        assert "machines/edge-node-1" not in {e.job for e in seen if isinstance(e, JobStarted)}
        assert done["boot/edge-node-2"].status is TaskStatus.DONE


@pytest.mark.redfish
@pytest.mark.timeout(300)
def test_a_node_is_added_through_its_bmc(tmp_path: Path) -> None:
    with Rehearsal(tmp_path / "r", nodes=1, speed=300, provider="redfish") as rehearsal:
        code, seen, entry = _install_then_add(rehearsal)
        done = _check_added(code, seen, rehearsal)
        bmc = entry["bmc"]
        assert isinstance(bmc, dict) and str(bmc["address"]).startswith("https://127.0.0.1:")
        # The new machine's BMC fetched the ISO from the wizard's ISO server and booted it.
        assert int(done["boot/edge-node-2"].result["iso_bytes_read"]) > 0
