"""One overall progress for a whole install, planned up front, and its ETA.

The plan names every step of the install with its expected duration (the appliance docs' durations, scaled for the
rehearsal's lab). A step counts for its share of the bar in proportion to that duration, so the bar moves with time
rather than with how many jobs a step happens to have. Steps that earlier runs of the session finished count as
done from the start (their credit comes from the journal); a step that starts takes its fraction from its jobs.

What is shown never goes backwards. The plan's own estimate (``raw``) may: a credited step turns out to need work
again (a check that runs every time, a changed input), a re-planned step gets more jobs, a retry starts a failed
job from zero. Then the shown fraction holds, and from there on the remaining span of the bar is mapped onto the
remaining span of the estimate, so both reach the end together. The shown fraction reaches 1 only through
:meth:`OverallPlan.finish` (the last step of the install ended); until then it stays just below.

The ETA adds the remaining expected duration of each step, scaled by how this run's finished steps compared with
what was expected of them (blended with the documented durations until enough has been measured, so one quick check
step does not make a 20-minute install look like a 2-minute one). A running transfer's own byte-rate ETA replaces
its step's estimate when that is longer. Plain arithmetic: :class:`~wizard.core.progress.Progress` calls it under its
lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: The shown fraction before the install's last step has ended.
CAP = 0.999
#: How much of the plan's expected duration the documented durations count as, against what this run measured.
PRIOR_SHARE = 0.25
#: The measured pace is believed within these bounds only (a stall or a jump in the clock must not say "10 years").
PACE_BOUNDS = (0.05, 20.0)


class OverallPlan:
    """The steps' weights, credits and live fractions, the shown fraction and the ETA's measurements."""

    def __init__(
        self,
        steps: Sequence[tuple[str, float]],
        credit: Mapping[str, float] | None = None,
        floor: float = 0.0,
    ) -> None:
        """``steps``: (step id, expected seconds) in run order; ``credit``: each step's fraction that earlier runs
        finished; ``floor``: what an earlier run of the session showed last (never shown less again)."""
        expected = {sid: max(0.0, float(seconds)) for sid, seconds in steps}
        total = sum(expected.values())
        if total <= 0:  # nothing to weigh by: every step the same
            expected = dict.fromkeys(expected, 1.0)
            total = float(len(expected)) or 1.0
        self.order = [sid for sid, _ in steps]
        self.expected = expected
        self.weight = {sid: seconds / total for sid, seconds in expected.items()}
        self.total_expected = total
        credit = credit or {}
        self.fraction: dict[str, float] = {sid: _unit(credit.get(sid, 0.0)) for sid in self.order}
        self.live: set[str] = set()
        self.ended: set[str] = set()
        self._job_weight: dict[str, dict[str, float]] = {}
        self._job_fraction: dict[str, dict[str, float]] = {}
        self._started: dict[str, tuple[float, float]] = {}  # step -> (monotonic start, fraction then)
        self._measured = [0.0, 0.0]  # seconds taken, seconds expected: steps that did work in this run
        self.raw = self._raw()
        self.shown = min(CAP, max(_unit(floor), self.raw))
        self._base = self.raw
        self.finished = False

    # -- what the engine tells it ------------------------------------------------------------------------------
    def add_job(self, step: str, key: str, weight: float) -> None:
        if step not in self.weight:
            return
        self._job_weight.setdefault(step, {})[key] = max(0.0, weight)
        self._job_fraction.setdefault(step, {}).setdefault(key, 0.0)
        if step in self.live:
            self._recompute(step)

    def job(self, step: str, key: str, fraction: float) -> None:
        """A job's own fraction changed (it never goes back within a run)."""
        jobs = self._job_fraction.get(step)
        if jobs is None or key not in jobs:
            return
        jobs[key] = _unit(fraction)
        if step in self.live:
            self._recompute(step)

    def begin_step(self, step: str, now: float) -> None:
        """The step's jobs are known (and those done before are marked): from now on they say where it is."""
        if step not in self.weight:
            return
        self.live.add(step)
        self.ended.discard(step)
        self._recompute(step)
        self._started[step] = (now, self.fraction[step])

    def end_step(self, step: str, ok: bool, now: float, worked: bool) -> None:
        """The step ended; ``ok``: all its jobs are done (a step without jobs fills its share); ``worked``: a job
        ran (not only skipped), so its duration says something about this run's pace."""
        if step not in self.weight:
            return
        if ok:
            self.fraction[step] = 1.0
            self.ended.add(step)
            self._update()
        start = self._started.pop(step, None)
        if ok and worked and start is not None:
            t0, f0 = start
            self._measured[0] += max(0.0, now - t0)
            self._measured[1] += self.expected[step] * max(0.0, 1.0 - f0)

    def finish(self) -> None:
        self.shown = 1.0
        self.finished = True

    # -- reading ---------------------------------------------------------------------------------------------
    def step_fractions(self) -> dict[str, float]:
        return dict(self.fraction)

    def pace(self) -> float:
        """How long this run takes against the expected durations (1.0: as expected)."""
        taken, expected = self._measured
        prior = PRIOR_SHARE * self.total_expected
        low, high = PACE_BOUNDS
        return min(high, max(low, (taken + prior) / (expected + prior)))

    def eta(self, now: float, transfer_eta: Mapping[str, float] | None = None) -> float | None:
        """Seconds until the last step ends, or None once finished. ``transfer_eta``: a running step's longest
        byte-rate ETA."""
        if self.finished:
            return None
        pace = self.pace()
        left = 0.0
        for sid in self.order:
            remaining = self.expected[sid] * (1.0 - self.fraction[sid]) * pace
            if sid in self.live and sid not in self.ended:
                started = self._started.get(sid)
                f = self.fraction[sid]
                if started is not None and f > 0.05:
                    # The running step's own pace, once it has shown one, blended with the plan's.
                    t0, f0 = started
                    done = f - f0
                    if done > 0.02 and now - t0 > 1.0:
                        own = (now - t0) * (1.0 - f) / done
                        remaining = (remaining + own) / 2
                if transfer_eta and sid in transfer_eta:
                    remaining = max(remaining, transfer_eta[sid])
            left += remaining
        return left

    # -- arithmetic ------------------------------------------------------------------------------------------
    def _recompute(self, step: str) -> None:
        weights = self._job_weight.get(step, {})
        total = sum(weights.values())
        if total > 0:  # a step without jobs keeps its credit until it ends
            fractions = self._job_fraction[step]
            self.fraction[step] = sum(w * fractions[k] for k, w in weights.items()) / total
        self._update()

    def _raw(self) -> float:
        return min(1.0, sum(self.weight[sid] * self.fraction[sid] for sid in self.order))

    def _update(self) -> None:
        raw = self._raw()
        if raw > self._base and self._base < 1.0:
            # The remaining span of the bar follows the remaining span of the estimate.
            self.shown += (raw - self._base) * (1.0 - self.shown) / (1.0 - self._base)
        self._base = raw
        self.raw = raw
        if not self.finished:
            self.shown = min(CAP, self.shown)


def _unit(value: float) -> float:
    return min(1.0, max(0.0, float(value)))
