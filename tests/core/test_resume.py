"""A headless run SIGKILLed in the middle of a multi-job step resumes without re-running finished jobs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.core.helpers import cli_env, json_events
from tests.support.projects import appliance_iso, base_doc, make_key, sign_file, write_project


def sparse(path: Path, size: int) -> Path:
    with path.open("wb") as fh:
        fh.truncate(size)
    return path


def test_sigkill_mid_step_then_rerun_completes_without_repeats(tmp_path: Path) -> None:
    key, pub = make_key(tmp_path)
    size = 384 * 1024 * 1024  # sparse: costs no disk, takes a few tenths of a second to hash
    iso = appliance_iso(tmp_path / "appliance.iso", size, sparse=True)
    sign_file(key, iso, tmp_path / "appliance.iso.sig.bin")  # the unattended copy is made from a verified ISO
    packs = []
    for i in range(5):
        p = sparse(tmp_path / f"pack-{i}.zst", size + i)
        sign_file(key, p, tmp_path / f"pack-{i}.sig.bin")
        packs.append(p.name)
    project = write_project(
        tmp_path, base_doc(files={"iso": "appliance.iso", "pack_bundles": packs, "public_key": pub.name})
    )
    home = tmp_path / "home"
    env = cli_env(home)
    journal_dir = home / "state" / "sessions"

    proc = subprocess.Popen(
        [sys.executable, "-m", "wizard", "run", str(project), "--until", "preflight", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    killed_with: dict[str, str] = {}
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            for f in journal_dir.glob("*.json"):
                try:
                    jobs = json.loads(f.read_text())["jobs"]
                except (ValueError, KeyError, OSError):
                    continue  # only ever a whole file is seen (atomic replace); be tolerant anyway
                states = {k: v["status"] for k, v in jobs.items()}
                if 1 <= list(states.values()).count("done") < 6:
                    os.kill(proc.pid, signal.SIGKILL)
                    killed_with = states
                    break
            if killed_with:
                break
            time.sleep(0.005)
    finally:
        if proc.poll() is None and not killed_with:
            proc.kill()
        proc.wait(timeout=30)
    assert killed_with, "the run finished before it could be killed mid-step"
    assert proc.returncode == -signal.SIGKILL
    finished_before = {k for k, v in killed_with.items() if v == "done"}
    assert finished_before and len(finished_before) < 6

    out = subprocess.run(
        [sys.executable, "-m", "wizard", "run", str(project), "--until", "preflight", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    events = json_events(out.stdout)
    started = {e["job"] for e in events if e["event"] == "job_started"}
    assert not started & finished_before, "finished jobs ran again"
    journal = json.loads(next(journal_dir.glob("*.json")).read_text())
    runs = {k: v["runs"] for k, v in journal["jobs"].items() if k.startswith("verify/")}  # preflight's come after
    assert len(runs) == 6 and all(v["status"] == "done" for v in journal["jobs"].values())
    for job in finished_before:
        assert runs[job] == 1, f"{job} executed {runs[job]} times"
    assert journal["status"] == "finished"
