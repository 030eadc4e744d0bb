"""Reliability: the headless install SIGKILLed at seeded random points, each time run again until it completes.

The lab (simulated appliance nodes, the system console at the VIP) lives in this process across every run; the run
is a child process (``tests.reliability.reliability_child``: ``run_headless`` with the rehearsal's pacing) that is
killed when it reaches the chosen step, after a random delay or right after a job is journaled. The kill points are
spread over the steps and split into chains — one lab per chain, killed at each of its points in order, then run
to completion. In the end every chain must have completed, each kill must have been resumed (the next run skips
every job the killed one journaled), and the lab must have seen each side effect once: one cluster, each follower
linked once, each upload once, one activation.

The seed is printed; ``WIZARD_KILL_SEED`` replays a run and ``WIZARD_KILL_POINTS`` asks for more points.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.integration.vcsim_peer import vcsim_binary_fixture  # noqa: F401 - the fixture builds vcsim
from tests.reliability.reliability_lab import KillPoint, Outcome, child_env, recording, run_child, vsphere_vms
from wizard.rehearsal import Rehearsal

pytestmark = [pytest.mark.flow, pytest.mark.lab]

# Where the vSphere provider creates VMs (twice: each kill lands at a different moment of it), uploads and boots.
VSPHERE_STEPS = ("preflight", "machines", "machines", "media", "boot", "install")

DEFAULT_SEED = 20261124
SPEED = 600.0  # a 15-minute install in 1.5 s: a whole run takes about 10 s here
CHAINS = 2
# The steps in which the rehearsal's jobs do something (credentials, machines, media and eject have no jobs on the
# manual provider).
KILL_STEPS = (
    "verify",
    "preflight",
    "boot",
    "install",
    "postboot",
    "password",
    "link",
    "content",
    "cluster",
    "console",
    "activate",
    "packs",
    "validate",
)


# Checks of the present that run again on every run by design (their fingerprint is the time): no side effects.
ALWAYS_RUN = frozenset({"validate/palette", "validate/report"})


def kill_points(rng: random.Random, count: int) -> list[list[KillPoint]]:
    """``count`` points over ``CHAINS`` chains, each chain's points in step order."""
    # Spread first: distinct steps while they last, then any step again.
    steps = rng.sample(KILL_STEPS, min(count, len(KILL_STEPS)))
    steps += [rng.choice(KILL_STEPS) for _ in range(count - len(steps))]
    chains: list[list[KillPoint]] = [[] for _ in range(CHAINS)]
    for i, step in enumerate(steps):
        point = KillPoint(step, round(rng.uniform(0.0, 0.6), 2), after_finish=rng.random() < 0.25)
        chains[i % CHAINS].append(point)
    for chain in chains:
        chain.sort(key=lambda p: (KILL_STEPS.index(p.step), p.delay))
    return chains


def describe(outcome: Outcome) -> str:
    tail = [e for e in outcome.events if e["event"] in ("job_finished", "run_finished")][-5:]
    return f"exit {outcome.returncode}; last events {tail}; stderr:\n{outcome.stderr}"


@pytest.mark.timeout(280)
def test_killed_runs_resume_to_completion_without_duplicates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = int(os.environ.get("WIZARD_KILL_SEED") or DEFAULT_SEED)
    count = max(10, int(os.environ.get("WIZARD_KILL_POINTS") or 12))
    rng = random.Random(seed)
    chains = kill_points(rng, count)
    with capsys.disabled():
        print(f"\nkill-resume seed {seed}: {' | '.join(', '.join(map(str, c)) for c in chains)}")
    kills = completed = 0
    duplicates: list[str] = []
    hangs: list[str] = []
    for c, points in enumerate(chains):
        with Rehearsal(tmp_path / f"chain-{c}", nodes=3, speed=SPEED) as rehearsal:
            env = child_env(rehearsal)
            order = [s.id for s in rehearsal.steps()]
            chain_kills: list[tuple[KillPoint, Outcome]] = []
            with recording(rehearsal) as ledger:
                previous: Outcome | None = None
                for point in [*points, None]:
                    outcome = run_child(rehearsal, env, order, point)
                    if outcome.hung:
                        hangs.append(f"chain {c} at {point}: {describe(outcome)}")
                        break
                    if previous is not None:
                        # Resumed, not redone: whatever the killed run journaled as done is skipped now.
                        started = {e["job"] for e in outcome.events if e["event"] == "job_started"}
                        redone = (previous.jobs("done") - ALWAYS_RUN) & started
                        assert not redone, f"chain {c}: jobs done before the kill ran again: {sorted(redone)}"
                    if point is None:
                        assert outcome.returncode == 0, f"chain {c}: the final run failed: {describe(outcome)}"
                        statuses = {e["status"] for e in outcome.events if e["event"] == "job_finished"}
                        assert statuses <= {"done", "skipped"}, describe(outcome)
                        completed += len(chain_kills)
                    elif outcome.killed:
                        chain_kills.append((point, outcome))
                        kills += 1
                        with capsys.disabled():
                            print(f"  chain {c}: killed at {point} ({outcome.killed_in})")
                    else:
                        # The run got past every later step before the point fired, or failed: only a clean finish
                        # is acceptable (then the rest of this chain's points are spent on a finished install).
                        assert outcome.returncode == 0, f"chain {c} at {point}: {describe(outcome)}"
                    previous = outcome if outcome.killed else None
                duplicates += [f"chain {c}: {d}" for d in ledger.duplicates()]
                lab = rehearsal.lab
                assert lab is not None
                assert len(ledger.clusters) == 1, ledger.clusters
                assert sorted(ledger.links) == [n.name for n in lab.nodes[1:]]
                clusters = {n.state.cluster.uid for n in lab.nodes if n.state.cluster is not None}
                assert len(clusters) == 1 and all(n.state.cluster is not None for n in lab.nodes)
                assert ledger.activations == 1
                # The content bundle on the leader and both pack bundles at least: the ledger did see uploads.
                assert len(ledger.uploads) >= 3, ledger.uploads
    summary = f"reliability kill-resume: {completed}/{kills} completed, {len(duplicates)} duplicates"
    with capsys.disabled():
        print(summary)
    assert not hangs, hangs
    assert not duplicates, duplicates
    assert kills >= 10, f"only {kills} of {count} kill points hit a running install"
    assert completed == kills


@pytest.mark.vsphere
@pytest.mark.timeout(200)
def test_killed_vsphere_runs_never_duplicate_vms(
    vcsim_binary: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same against the vCenter simulator, up to the password step: killed while the wizard creates the VMs,
    uploads the ISO and boots them, the reruns find their own VMs and files instead of making new ones."""
    seed = int(os.environ.get("WIZARD_KILL_SEED") or DEFAULT_SEED)
    rng = random.Random(seed + 1)
    points = sorted(
        (KillPoint(step, round(rng.uniform(0.0, 0.4), 2)) for step in VSPHERE_STEPS),
        key=lambda p: (VSPHERE_STEPS.index(p.step), p.delay),
    )
    with capsys.disabled():
        print(f"\nkill-resume (vsphere) seed {seed}: {', '.join(map(str, points))}")
    with Rehearsal(tmp_path / "vsphere", nodes=3, speed=SPEED, provider="vsphere", vcsim=vcsim_binary) as rehearsal:
        env = child_env(rehearsal)
        order = [s.id for s in rehearsal.steps("password")]
        kills = 0
        with recording(rehearsal) as ledger:
            for point in [*points, None]:
                outcome = run_child(rehearsal, env, order, point, until="password")
                assert not outcome.hung, f"hung at {point}: {describe(outcome)}"
                if point is None:
                    assert outcome.returncode == 0, f"the final run failed: {describe(outcome)}"
                elif outcome.killed:
                    kills += 1
                    with capsys.disabled():
                        print(f"  vsphere: killed at {point} ({outcome.killed_in})")
                else:
                    assert outcome.returncode == 0, f"at {point}: {describe(outcome)}"
            duplicates = ledger.duplicates()
        assert rehearsal.lab is not None
        expected = {f"pma-{node.name}" for node in rehearsal.lab.nodes}
        vms = vsphere_vms(rehearsal)
        duplicates += [f"VM {name} exists {n} times" for name, n in vms.items() if n > 1]
        assert {name for name in vms if name.startswith("pma-")} == expected, vms  # vcsim's own VMs aside
        assert all(node.machine.installed for node in rehearsal.lab.nodes)
    with capsys.disabled():
        print(f"reliability kill-resume (vsphere): {kills}/{kills} completed, {len(duplicates)} duplicates")
    assert not duplicates, duplicates
    assert kills >= len(points) - 1
