"""Preflight: a catalog of checks that find problems before anything is touched.

Each check is a plain function of plain values (addresses, ports, timeouts, paths), so it runs against real
peers on any port; :mod:`wizard.install.steps.preflight` wires the project's values to them.
"""

from wizard.core.checks.address import DEFAULT_PORTS, ProbeResult, check_address_free, probe_address
from wizard.core.checks.catalog import (
    CATALOG,
    Category,
    Check,
    CheckResult,
    CheckSeverity,
    Outcome,
    not_applicable,
)
from wizard.core.checks.dns import NodeName, check_dns
from wizard.core.checks.files import VerifiedFile, check_iso, check_verified
from wizard.core.checks.host import DEFAULT_MIN_FREE, check_free_space
from wizard.core.checks.ntp import SntpError, SntpReply, check_ntp, sntp_query
from wizard.core.checks.report import CheckReport, OverrideRefused, override

__all__ = [
    "CATALOG",
    "DEFAULT_MIN_FREE",
    "DEFAULT_PORTS",
    "Category",
    "Check",
    "CheckReport",
    "CheckResult",
    "CheckSeverity",
    "NodeName",
    "Outcome",
    "OverrideRefused",
    "ProbeResult",
    "SntpError",
    "SntpReply",
    "VerifiedFile",
    "check_address_free",
    "check_dns",
    "check_free_space",
    "check_iso",
    "check_ntp",
    "check_verified",
    "not_applicable",
    "override",
    "probe_address",
    "sntp_query",
]
