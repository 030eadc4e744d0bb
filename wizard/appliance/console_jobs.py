"""The system console's jobs: the first login with its forced password change, activation, and the pack registry
sync; built on :class:`~wizard.appliance.console.ConsoleClient`.

None of them trusts the console's flags about itself where the public material leaves their meaning open
(``IsPasswordReset`` may mean "must still be reset" or "was reset"): whether the default password still works is
what says that it must be changed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from wizard.appliance.console import (
    DEFAULT_PASSWORD,
    ConsoleClient,
    ConsoleConnector,
    ConsoleEndpoint,
    ConsoleError,
    ConsoleLoginFailed,
    ConsoleUnreachable,
)
from wizard.appliance.statuswords import Outcome
from wizard.core.cancel import CancelToken
from wizard.core.jobs import Job
from wizard.core.progress import Reporter
from wizard.core.trust import TrustKind

log = logging.getLogger(__name__)


def wait_for_console(
    connector: ConsoleConnector,
    endpoint: ConsoleEndpoint,
    password: str,
    report: Reporter,
    cancel: CancelToken,
    *,
    poll: float,
    timeout: float,
) -> ConsoleClient:
    """A logged-in client once Palette answers at the VIP; it comes up a few minutes after the cluster is Running,
    so "unreachable" and 503 are waited out until ``timeout``. A refused password is not waited out."""
    deadline = connector.clock() + timeout
    while True:
        cancel.raise_if_cancelled()
        client: ConsoleClient | None = None
        try:
            client = connector.open(endpoint, password, cancel)
            client.login()
            return client
        except ConsoleUnreachable as exc:
            if client is not None:
                client.close()
            if connector.clock() >= deadline:
                raise ConsoleUnreachable(
                    "Palette did not come up",
                    f"{endpoint.url} still not answering after {int(timeout)} s: {exc.message}",
                    remediation="check the cluster's applications in the leader's Local UI, then run again",
                ) from exc
            report.update(0.0, f"Waiting for Palette at {endpoint.url}…")
            cancel.sleep(poll)
        except BaseException:
            if client is not None:
                client.close()
            raise


class ConsoleSetupJob(Job):
    """The first login: ``admin``/``admin``, then the forced change to the operator's email and password."""

    id = "console/admin"
    name = "System console"
    weight = 1.0

    def __init__(
        self,
        endpoint: ConsoleEndpoint,
        connector: ConsoleConnector,
        email: str,
        new_password: str,
        *,
        poll: float = 10.0,
        available_timeout: float = 30 * 60.0,
    ) -> None:
        self.endpoint = endpoint
        self.connector = connector
        self.email = email
        self._new_password = new_password
        self.poll = poll
        self.available_timeout = available_timeout

    def fingerprint(self) -> str:
        return f"{self.endpoint.url}|{self.email}"

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        url = self.endpoint.url
        report.update(0.0, f"Logging in to the system console at {url}/system")
        changed = False
        try:
            client = wait_for_console(
                self.connector,
                self.endpoint,
                DEFAULT_PASSWORD,
                report.child(0.0, 0.5),
                cancel,
                poll=self.poll,
                timeout=self.available_timeout,
            )
        except ConsoleLoginFailed:
            # admin/admin no longer works: the password was changed already (by an earlier run that stopped
            # before recording it, or by hand). The operator's password must work now.
            client = self.connector.open(self.endpoint, self._new_password, cancel)
            try:
                client.login()
            except BaseException:
                client.close()
                raise
        else:
            with client:
                report.update(0.6, f"Changing the admin password of {url}/system")
                client.reset_password(self.email, self._new_password)
                changed = True
            client = self.connector.open(self.endpoint, self._new_password, cancel)
            try:
                client.login()  # proof: the new password is the one that works now
            except BaseException:
                client.close()
                raise
        with client:
            if client.reset_still_required():
                client.reset_password(self.email, self._new_password)  # changed by hand but still demanded
                changed = True
            version = client.version()
        report.finish(f"System console at {url}/system: admin password " + ("changed" if changed else "already set"))
        # The version is informational: "" when the console does not say (not a failure).
        pin = self.connector.trust.pinned(TrustKind.TLS, self.endpoint.host, self.endpoint.port) or {}
        return {
            "url": url,
            "version": version,
            "email": self.email,
            "password_changed": changed,
            "certificate": {"fingerprint": pin.get("fingerprint", ""), "how": pin.get("how", "")},
        }


class ActivateJob(Job):
    """Activate Palette with the key from Spectro Cloud support, or defer and record when the trial ends."""

    id = "activate/palette"
    name = "Activation"
    weight = 0.5

    def __init__(
        self,
        endpoint: ConsoleEndpoint,
        connector: ConsoleConnector,
        password: str,
        *,
        key: str | None,
    ) -> None:
        self.endpoint = endpoint
        self.connector = connector
        self._password = password
        self._key = key

    def fingerprint(self) -> str:
        # Not the key itself: only whether one is given, so a later key activates a deferred install.
        return f"{self.endpoint.url}|{'key' if self._key else 'defer'}"

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        client = self.connector.open(self.endpoint, self._password, cancel)
        with client:
            client.ensure_session()  # the run's session when one is kept, else a login
            current = client.activation()
            facts: dict[str, Any] = {"product_setup_id": current.product_setup_id}
            if current.active:
                report.finish("Palette is already activated")
                return {**facts, "state": current.state, "expires_at": current.expires_at, "activated": True}
            if self._key is None:
                report.finish(
                    f"Activation deferred: the trial ends {current.expires_at or 'in 30 days'}; send the Product Setup "
                    f"ID {current.product_setup_id} to Spectro Cloud support for a key"
                )
                return {**facts, "state": current.state, "trial_ends": current.expires_at, "deferred": True}
            report.update(0.3, f"Activating Palette (Product Setup ID {current.product_setup_id})")
            result = client.activate(self._key)
            cancel.raise_if_cancelled()
            if not result.active:
                raise ConsoleError(
                    "Activation not confirmed",
                    f"{self.endpoint.url} accepted the key but reports the state {result.state or 'unknown'}",
                    remediation="check Administration → Activation in the system console, then run again",
                )
        report.finish("Palette activated")
        return {
            **facts,
            "state": result.state,
            "activated": True,
            "activated_at": result.last_activated_at,
            "expires_at": result.expires_at,
        }


class RegistrySyncJob(Job):
    """Trigger the sync of the in-cluster OCI pack registry (Zot) and wait for it to complete."""

    id = "packs/registry-sync"
    name = "Pack registry sync"
    weight = 1.0

    def __init__(
        self,
        endpoint: ConsoleEndpoint,
        connector: ConsoleConnector,
        password: str,
        *,
        inputs: str = "",
        poll: float = 10.0,
        timeout: float = 3600.0,
        expected: float | None = None,
    ) -> None:
        """``expected``: the soft budget after which a warning names the sync's status (default: a quarter of the
        hard ``timeout``)."""
        self.endpoint = endpoint
        self.connector = connector
        self._password = password
        self.inputs = inputs
        self.poll = poll
        self.timeout = timeout
        self.expected = expected

    def fingerprint(self) -> str:
        return f"{self.endpoint.url}|{self.inputs}"

    def run(self, report: Reporter, cancel: CancelToken) -> Mapping[str, Any] | None:
        with self.connector.open(self.endpoint, self._password, cancel) as client:
            client.ensure_session()
            registries = client.registries()
            if not registries:
                raise ConsoleError(
                    "No pack registry",
                    f"{self.endpoint.url} lists no OCI pack registry",
                    remediation="the cluster profile's In Cluster Registry must be True; check Administration → "
                    "Pack Registries in the system console",
                )
            registry = registries[0]  # the in-cluster Zot registry the appliance sets up
            before = client.sync_status(registry.uid)
            if not before.supported:
                report.finish(f"Pack registry {registry.name}: the console says it needs no sync")
                return {"registry": registry.name, "endpoint": registry.endpoint, "sync_supported": False}
            report.update(0.0, f"Syncing the {registry.name} pack registry")
            # A run already under way may have started before the last pack arrived: restart it.
            client.start_sync(registry.uid, before=before, force=before.outcome is Outcome.RUNNING)
            status = client.wait_synced(
                registry.uid,
                report,
                cancel,
                before=before,
                poll=self.poll,
                timeout=self.timeout,
                expected=self.expected,
            )
        report.finish(f"Pack registry {registry.name} synced" + ("" if status.supported else " (no sync needed)"))
        return {
            "registry": registry.name,
            "endpoint": registry.endpoint,
            "synced_packs": status.synced,
            "last_synced": status.last_synced,
            "status": status.status,
            "sync_supported": status.supported,
        }
