"""Redfish actions and power: POSTing an action and following its task, PATCHing properties, and resetting a
System by the types its BMC allows. :class:`~wizard.providers.redfish.client.RedfishClient` builds on this.

An action whose answer is a 5xx or lost is settled by reading the resource back (InsertMedia: the media; a reset to
On or Off: the power state) before it is sent again. A restart's effect cannot be read back (the power stays On), so
after an unknown outcome the system is switched off and on instead, with its one-time boot override put back in
between.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from wizard.core.cancel import CancelToken
from wizard.providers.redfish.errors import (
    BmcUnreachable,
    PowerTimeout,
    RedfishError,
    TaskFailed,
    bmc_message,
)
from wizard.providers.redfish.quirks import GENERIC, VendorQuirks
from wizard.providers.redfish.session import RedfishSession, odata_id, outcome_unknown_error

log = logging.getLogger(__name__)

#: Task states that mean "still working" (Redfish Task.v1 TaskState).
TASK_RUNNING = frozenset({"New", "Starting", "Running", "Pending", "Suspended", "Interrupted", "Service", "Stopping"})
POWERED_OFF = frozenset({"Off", "PoweringOff"})
TASK_FIX = "check the BMC's task list and log in its web interface; then retry"


class RedfishActions(RedfishSession):
    """Actions, tasks, property PATCHes and power of one BMC."""

    def action(
        self,
        target: str,
        body: Mapping[str, Any],
        *,
        what: str,
        cancel: CancelToken,
        timeout: float | None = None,
        task_timeout: float = 600.0,
        poll: float = 2.0,
        took_effect: Callable[[], bool] | None = None,
    ) -> httpx.Response:
        """POST an action; a 202 is followed to the end of its task. Other statuses are returned as they are.

        With ``took_effect`` (a read of the resource that says whether the action happened), a 5xx or a lost answer
        is settled: the state is read, and the action is sent again only if it did not happen (then a synthetic 204
        stands for the answer). Without it, such an answer is returned (or raised) as it is."""
        self.use_cancel(cancel)
        last: list[httpx.Response] = []

        def send() -> httpx.Response:
            r = self.request("POST", target, json=dict(body), timeout=timeout)
            last[:] = [r]
            if r.status_code in self.retry.statuses and took_effect is not None:
                raise outcome_unknown_error(
                    RedfishError(
                        f"{what} failed",
                        f"{self.address.where} answered {r.status_code} to {what}: {bmc_message(r)}",
                        remediation=TASK_FIX,
                    )
                )
            return r

        def happened() -> httpx.Response | None:
            assert took_effect is not None
            return httpx.Response(204) if took_effect() else None

        if took_effect is None:
            r = send()
        else:
            try:
                r = self.settle(send, happened, what)
            except RedfishError:
                if not last or last[0].status_code not in self.retry.statuses:
                    raise
                r = last[0]  # still failing after the policy's attempts: the BMC's own answer goes to the caller
        if r.status_code == 202:
            return self.wait_task(r, what=what, cancel=cancel, timeout=task_timeout, poll=poll)
        return r

    def wait_task(
        self, accepted: httpx.Response, *, what: str, cancel: CancelToken, timeout: float, poll: float
    ) -> httpx.Response:
        """Poll the task monitor of a 202 answer until the task ends; raises :class:`TaskFailed` if it fails."""
        monitor = accepted.headers.get("Location", "")
        if not monitor:
            with contextlib.suppress(ValueError):
                first = accepted.json()
                if isinstance(first, Mapping):
                    monitor = str(first.get("TaskMonitor") or "") or odata_id(first)
        if not monitor:
            return accepted  # accepted without a way to follow it: the caller reads the result back
        deadline = time.monotonic() + timeout
        while True:
            delay = poll
            with contextlib.suppress(ValueError):
                delay = min(max(poll, float(accepted.headers.get("Retry-After", poll))), 30.0)
            cancel.sleep(delay)
            try:
                r = self.request("GET", monitor)
            except BmcUnreachable:
                # A BMC may restart its own web service while the task runs (a firmware or power action):
                # keep polling until the task's own deadline instead of failing on the first refused connection.
                if time.monotonic() >= deadline:
                    raise
                log.info("Redfish: %s unreachable while %s runs; polling again", self.address.where, what)
                continue
            body: dict[str, Any] = {}
            with contextlib.suppress(ValueError):
                parsed = r.json()
                body = parsed if isinstance(parsed, dict) else {}
            state = str(body.get("TaskState") or "")
            if r.status_code == 202 or state in TASK_RUNNING:
                pct = body.get("PercentComplete")
                log.debug("Redfish: %s task %s%s", what, state or "running", f" {pct}%" if pct is not None else "")
            elif r.status_code in (502, 503, 504):
                log.debug("Redfish: %s answered %s while %s runs", self.address.where, r.status_code, what)
            elif r.status_code == 404:
                # Some BMCs delete a task monitor once the task completed; the caller reads the result back.
                return httpx.Response(204, request=r.request)
            elif r.status_code >= 400:
                raise TaskFailed("BMC task failed", f"{what}: {bmc_message(r)}", remediation=TASK_FIX)
            elif state and (state != "Completed" or str(body.get("TaskStatus") or "OK") == "Critical"):
                messages = [
                    str(m.get("Message") or m.get("MessageId") or "")
                    for m in body.get("Messages") or []
                    if isinstance(m, Mapping)
                ]
                raise TaskFailed(
                    "BMC task failed",
                    f"{what}: the task ended {state} ({body.get('TaskStatus') or 'no status'})"
                    + (f": {'; '.join(m for m in messages if m)}" if any(messages) else ""),
                    remediation=TASK_FIX,
                )
            else:
                return r
            if time.monotonic() >= deadline:
                raise TaskFailed(
                    "BMC task timed out",
                    f"{what}: the BMC task did not finish within {int(timeout)} s",
                    remediation="check the task in the BMC's web interface; retry when it has finished",
                )
            accepted = r

    def _patch(self, path: str, body: Mapping[str, Any], *, timeout: float | None = None) -> httpx.Response:
        # A PATCH of properties sets values: sending it twice sets them once, so the retry policy may resend it.
        r = self.request("PATCH", path, json=dict(body), timeout=timeout, idempotent=True)
        if r.status_code in (412, 428):
            # The BMC wants the resource's current ETag (If-Match) to guard the change.
            etag = self.request("GET", path).headers.get("ETag", "")
            if etag:
                r = self.request(
                    "PATCH", path, json=dict(body), headers={"If-Match": etag}, timeout=timeout, idempotent=True
                )
        return r

    def power_state(self, system_path: str) -> str:
        return str(self.get(system_path).get("PowerState") or "")

    def reset_types(self, system: Mapping[str, Any]) -> tuple[str, list[str] | None]:
        """The reset action's target and its AllowableValues (None when the BMC does not say)."""
        actions = system.get("Actions") if isinstance(system.get("Actions"), Mapping) else {}
        assert isinstance(actions, Mapping)
        reset = actions.get("#ComputerSystem.Reset")
        if not isinstance(reset, Mapping) or not reset.get("target"):
            raise RedfishError(
                "No reset action",
                f"{self.address.where} offers no ComputerSystem.Reset on {odata_id(system) or 'the system'}",
                remediation="power the node on by hand; it will boot the inserted virtual CD",
            )
        allowed = reset.get("ResetType@Redfish.AllowableValues")
        if not isinstance(allowed, list) and reset.get("@Redfish.ActionInfo"):
            info = self.get_optional(str(reset["@Redfish.ActionInfo"])) or {}
            for p in info.get("Parameters") or []:
                if isinstance(p, Mapping) and p.get("Name") == "ResetType":
                    allowed = p.get("AllowableValues")
        return str(reset["target"]), [str(v) for v in allowed] if isinstance(allowed, list) else None

    def reset(
        self,
        system_path: str,
        *,
        cancel: CancelToken,
        power_timeout: float = 120.0,
        poll: float = 2.0,
        task_timeout: float = 600.0,
    ) -> str:
        """Power the system on if it is off, restart it if it is on; returns the reset type used.

        The type is chosen from the advertised AllowableValues (On when off, ForceRestart when on, with the quirks'
        fallbacks); a system that allows no restart is switched ForceOff, then On.
        """
        system = self.get(system_path)
        target, allowed = self.reset_types(system)
        state = str(system.get("PowerState") or "")
        q = self.quirks
        chosen = choose_reset(state, allowed, q)
        if chosen == "ForceOff+On":
            return self._off_then_on(
                system_path,
                target,
                allowed,
                cancel=cancel,
                power_timeout=power_timeout,
                task_timeout=task_timeout,
                poll=poll,
            )
        if chosen in q.power_on_resets:
            self._reset(target, chosen, cancel, task_timeout, poll, system_path=system_path, want="On")
            return chosen
        try:
            self._reset(target, chosen, cancel, task_timeout, poll, system_path=system_path)
        except RedfishError as exc:
            if not getattr(exc, "outcome_unknown", False) or "ForceOff" not in (allowed or ["ForceOff"]):
                raise
            # Whether a restart happened cannot be read back (the power stays On): switch off and on instead,
            # which the power state proves, with the boot override the system had put back in between.
            log.warning("Redfish: %s: restart outcome unknown (%s); switching off and on", self.address.where, exc)
            return self._off_then_on(
                system_path,
                target,
                allowed,
                cancel=cancel,
                power_timeout=power_timeout,
                task_timeout=task_timeout,
                poll=poll,
                before=system,
            )
        return chosen

    def _off_then_on(
        self,
        system_path: str,
        target: str,
        allowed: list[str] | None,
        *,
        cancel: CancelToken,
        power_timeout: float,
        task_timeout: float,
        poll: float,
        before: Mapping[str, Any] | None = None,
    ) -> str:
        off = "ForceOff"
        self._reset(target, off, cancel, task_timeout, poll, system_path=system_path, want="Off")
        self.wait_power(system_path, "Off", cancel=cancel, timeout=power_timeout, poll=poll)
        boot = before.get("Boot") if before is not None else None
        if isinstance(boot, Mapping) and boot.get("BootSourceOverrideEnabled") == "Once":
            wanted = {k: boot[k] for k in ("BootSourceOverrideTarget", "BootSourceOverrideEnabled") if k in boot}
            self._patch(system_path, {"Boot": wanted})  # a restart that did happen used up the one-time boot
        on = choose_reset("Off", allowed, self.quirks)
        self._reset(target, on, cancel, task_timeout, poll, system_path=system_path, want="On")
        return f"{off}+{on}"

    def _reset(
        self,
        target: str,
        reset_type: str,
        cancel: CancelToken,
        task_timeout: float,
        poll: float,
        *,
        system_path: str = "",
        want: str = "",
    ) -> None:
        """One reset. With ``want`` (the power state it leads to), a 5xx or lost answer is settled by reading the
        power state; without it (a restart) such an answer is an error marked as of unknown outcome."""

        def reached() -> bool:
            state = self.power_state(system_path)
            return state == want or (want == "On" and state == "PoweringOn")

        r = self.action(
            target,
            {"ResetType": reset_type},
            what=f"Reset {reset_type}",
            cancel=cancel,
            task_timeout=task_timeout,
            poll=poll,
            took_effect=reached if want and system_path else None,
        )
        if not want and r.status_code in self.retry.statuses:
            raise outcome_unknown_error(
                RedfishError(
                    "Reset failed",
                    f"{self.address.where} answered {r.status_code} to reset {reset_type}: {bmc_message(r)}",
                    remediation="power the node on (or restart it) from the BMC's web interface",
                )
            )
        if r.status_code >= 300:
            raise RedfishError(
                "Reset refused",
                f"{self.address.where} refused reset {reset_type}: {bmc_message(r)}",
                remediation="power the node on (or restart it) from the BMC's web interface",
            )
        log.info("Redfish: %s reset %s", self.address.where, reset_type)

    def wait_power(self, system_path: str, want: str, *, cancel: CancelToken, timeout: float, poll: float = 2.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.power_state(system_path)
            if state == want:
                return state
            if time.monotonic() >= deadline:
                raise PowerTimeout(
                    "Power state not reached",
                    f"{self.address.where}: {system_path} is still {state or 'unknown'} after {int(timeout)} s "
                    f"(waiting for {want})",
                    remediation="check the server in the BMC's web interface (a stuck POST, a power cap)",
                )
            cancel.sleep(poll)


def choose_reset(power_state: str, allowed: Sequence[str] | None, quirks: VendorQuirks = GENERIC) -> str:
    """The reset type for a system in ``power_state``: power on when off, restart when on.

    ``allowed`` None means the BMC did not advertise AllowableValues; the standard first choice is used. Returns
    ``"ForceOff+On"`` for a powered-on system that allows no restart but allows switching off and on.
    """
    off = power_state in POWERED_OFF
    prefs = quirks.power_on_resets if off else quirks.restart_resets
    if allowed is None:
        return prefs[0]
    for p in prefs:
        if p in allowed:
            return p
    if not off and "ForceOff" in allowed and any(p in allowed for p in quirks.power_on_resets):
        return "ForceOff+On"
    raise RedfishError(
        "No usable reset type",
        f"the BMC allows only {', '.join(allowed) or 'no'} reset types for a system that is "
        f"{power_state or 'in an unknown power state'}",
        remediation="power the node on (or restart it) from the BMC's web interface",
    )
