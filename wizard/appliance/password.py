"""Replace the appliance's default password on every node with the operator's own, through the Local UI.

The seed's account (``kairos``/``kairos``) is the Local UI and SSH login of a freshly installed node; leaving it is
the single worst outcome of a rushed install. Right after the node's Local UI answers, this job logs in with the
default, resets the password to the operator's secret (from the keyring), and proves the change: the new password
logs in and the default no longer does.

A node whose seed set the operator's password (``appliance.configure: seed``) is tried with that password first: it
logs in and nothing is left to replace; only if it is refused is the default tried.

Resuming: the journal records the job only once the change is proven. If the wizard stopped between the reset and
that record, the default is refused on the next run; the job then tries the new password exactly once (a node locks
an account after repeated failures, so it never guesses further) and, if that works, records the job as done.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from wizard.appliance.localui import Connector, Endpoint, LocalUIClient, LocalUIError, LocalUILoginFailed
from wizard.core.cancel import CancelToken
from wizard.core.errors import WizardError
from wizard.core.jobs import Job
from wizard.core.progress import Reporter

log = logging.getLogger(__name__)


class ReplacePasswordJob(Job):
    weight = 0.5

    def __init__(
        self,
        endpoint: Endpoint,
        new_password: str,
        connector: Connector,
        *,
        step: str = "password",
        seeded: bool = False,
    ) -> None:
        """``endpoint`` carries the current (default) password. ``seeded``: the node's seed set the new password
        already, so it is tried first — a refused login costs the node a hash check and counts towards its lock."""
        self.seeded = seeded
        self.endpoint = endpoint
        self.new_password = new_password
        self.connector = connector
        self.id = f"{step}/{endpoint.name}"
        self.name = endpoint.name
        self.node = endpoint.name

    def fingerprint(self) -> str:
        # The new password's digest (never the password): a changed secret means the job must run again.
        digest = hashlib.sha256(self.new_password.encode()).hexdigest()[:16]
        return f"{self.endpoint.username}@{self.endpoint.where}|{digest}"

    def _login(self, password: str) -> LocalUIClient | None:
        """A logged-in client, or None when the Local UI refuses the password (401/403)."""
        client = self.connector.open(replace(self.endpoint, password=password))
        try:
            client.login()
        except LocalUILoginFailed as exc:
            client.close()
            if exc.status in (401, 403):
                return None
            raise
        except BaseException:
            client.close()
            raise
        return client

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        ep = self.endpoint
        if not self.new_password:
            raise WizardError("No new password", f"the new password for {ep.name} is empty", remediation="set it")
        if self.new_password == ep.password:
            raise WizardError(
                "New password is the default",
                f"the password chosen for {ep.name} is the appliance's default",
                remediation="choose another password for appliance.password",
            )
        report.update(0.1, f"logging in to {ep.where} as {ep.username}")
        if self.seeded:
            # The account has one password: the new one logging in means the default no longer does.
            done = self._login(self.new_password)
            if done is not None:
                done.close()
                report.finish("password set by the node's seed")
                return {"replaced": True, "seeded": True}
            cancel.raise_if_cancelled()
        client = self._login(ep.password)
        if client is None and self.seeded:
            raise LocalUILoginFailed(
                "Cannot log in to replace the password",
                f"{ep.where} refused both the password its seed set and the default for {ep.username!r}",
                status=401,
                remediation=(
                    "the node may not have taken its seed, or the password was changed outside the wizard: log in on "
                    "the node's console, set the password to the one stored for appliance.password, then run again"
                ),
            )
        if client is None:
            cancel.raise_if_cancelled()
            recovered = self._login(self.new_password)  # one try: an earlier run may have changed it already
            if recovered is None:
                raise LocalUILoginFailed(
                    "Cannot log in to replace the password",
                    f"{ep.where} refused both the default password and the new one for {ep.username!r}",
                    status=401,
                    remediation=(
                        "the account's password was changed outside the wizard: log in on the node's console, set "
                        "the password to the one stored for appliance.password, then run again"
                    ),
                )
            recovered.close()
            report.finish("password already replaced")
            return {"replaced": True, "earlier": True}
        with client:
            first = bool(client.first_login)
            report.update(0.4, "replacing the default password")
            try:
                client.reset_password(self.new_password)
            except LocalUIError as exc:
                raise LocalUIError(
                    "Password not accepted",
                    f"{ep.where} refused the new password: {exc.message}",
                    status=exc.status,
                    remediation="choose a password the appliance accepts (its policy is in the message), then retry",
                ) from exc
        cancel.raise_if_cancelled()
        report.update(0.7, "checking the new password")
        proven = self._login(self.new_password)
        if proven is None:
            raise WizardError(
                "Password change not effective",
                f"{ep.where} accepted the change but refuses the new password",
                remediation="log in on the node's console to check the account, then run again",
            )
        proven.close()
        old = self._login(ep.password)
        if old is not None:
            old.close()
            raise WizardError(
                "Default password still works",
                f"{ep.where} still accepts the default password after the change",
                remediation="change the password on the node's console; the node must not keep the default",
            )
        log.info("%s: default password replaced", ep.name)
        report.finish("default password replaced")
        return {"replaced": True, "first_login": first}
