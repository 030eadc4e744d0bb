"""The cluster's conditions as a timeline: what the leader's ``events/lifecycle`` says, in the order it happened,
then what is still expected, the first of it current. The published spec leaves the order of the lists open, and a
newer appliance may report conditions the expected order does not name: both are tolerated."""

from __future__ import annotations

from wizard.appliance.localui import LifecycleEvents
from wizard.core.progress import Progress


def test_reached_conditions_come_first_the_latest_current_then_the_rest() -> None:
    events = LifecycleEvents(
        reached=("Cluster/ClusterConfigValidated", "EdgeHost/ContentSynced", "EdgeHost/Surprise"),
        expected=(
            "Cluster/ClusterConfigValidated",
            "Cluster/ControlPlaneReady",
            "EdgeHost/ContentSynced",
            "EdgeHost/KubernetesReady",
        ),
        labels={"Cluster/ControlPlaneReady": "Control plane", "EdgeHost/ContentSynced": "Content"},
        details={"EdgeHost/ContentSynced": "content bundle available on the host"},
    )
    assert events.timeline() == [
        ("ClusterConfigValidated", "done", ""),  # no label given: the condition's type
        ("Content", "done", "content bundle available on the host"),
        ("Surprise", "current", ""),  # not in the expected order, shown all the same; the latest: where it is now
        ("Control plane", "pending", ""),
        ("KubernetesReady", "pending", ""),
    ]
    assert LifecycleEvents((), ()).timeline() == []
    everything = LifecycleEvents(("Cluster/A", "Cluster/B"), ("Cluster/A", "Cluster/B"))
    assert [state for _, state, _ in everything.timeline()] == ["done", "done"]  # all reached: nothing current


def test_a_jobs_stages_reach_its_row_once_per_change() -> None:
    progress = Progress()
    progress.add_task("cluster/create", "Management cluster", "cluster")
    job = progress.root().child(0.0, 1.0, task="cluster/create")
    stages = [("Cluster configuration", "done", "Validated"), ("Content", "current", "")]
    job.stages(stages)
    version = progress.snapshot().version
    job.stages(stages)  # the same again: no new version, nothing for a reader to redraw
    snap = progress.snapshot()
    assert snap.version == version
    task = snap.task("cluster/create")
    assert task is not None and task.stages == tuple(stages)
