"""MAAS: pick the machines MAAS already knows, allocate them to the operator, boot them from the ISO, release on abort.

Written against the MAAS 2.0 API as published (canonical.com/maas/docs: "API login" for authentication and the
MAAS API v2 reference; the handlers in canonical/maas src/maasserver/api/machines.py, nodes.py and users.py):

* Authentication is 0-legged OAuth 1.0 with the PLAINTEXT method. The operator's API key is
  ``consumer_key:token_key:token_secret``; the consumer secret is empty. Requests are signed by oauthlib with a
  fresh nonce and timestamp each, as MAAS refuses a nonce it has seen.
* ``GET /api/2.0/machines/`` (filters ``id``, ``hostname``, ``zone``, ``pool``, ``tags``, ``agent_name``),
  ``GET machines/{system_id}/``, ``GET users/?op=whoami``.
* ``POST machines/?op=allocate`` with ``system_id`` (409 when that machine is not available), ``comment`` and
  ``agent_name``; ``POST machines/{id}/?op=release|power_on|power_off``; ``GET machines/{id}/?op=power_parameters``
  (admins only: it holds BMC passwords) and ``op=query_power_state`` → ``{"state": "on"|"off"|…}``.
* POST parameters travel as multipart/form-data, as the API documentation asks.
* Machine JSON: ``status`` is maasserver.enum.NODE_STATUS (Ready 4, Allocated 10, Deploying 9, Deployed 6 …),
  ``memory`` is MiB, ``zone``/``pool`` are objects with a ``name``.

Errors are translated into :class:`~wizard.core.errors.WizardError`; power parameters are never logged.

Modules, the same shape as the other providers: :mod:`.client` (the API), :mod:`.errors`, :mod:`.machines` (which
machines can be used and how each boots), :mod:`.jobs` (what the engine runs) and :mod:`.checks` (preflight).
"""

from wizard.providers.maas.checks import CHECKS, run_checks
from wizard.providers.maas.client import (
    MIN_CPUS,
    MIN_MEMORY_MIB,
    MaasClient,
    MaasUser,
    Machine,
    MachineStatus,
    api_base,
    parse_api_key,
)
from wizard.providers.maas.errors import MaasSelectionError
from wizard.providers.maas.jobs import AllocateMachinesJob, MaasRedfishBootJob, MaasRedfishEjectJob, ReleaseMachinesJob
from wizard.providers.maas.machines import (
    ManualInstruction,
    RedfishTarget,
    boot_route,
    machine_problem,
    read_boot_routes,
    resolve,
    route_facts,
    zone_labels,
)

__all__ = [
    "CHECKS",
    "MIN_CPUS",
    "MIN_MEMORY_MIB",
    "AllocateMachinesJob",
    "MaasClient",
    "MaasRedfishBootJob",
    "MaasRedfishEjectJob",
    "MaasSelectionError",
    "MaasUser",
    "Machine",
    "MachineStatus",
    "ManualInstruction",
    "RedfishTarget",
    "ReleaseMachinesJob",
    "api_base",
    "boot_route",
    "machine_problem",
    "parse_api_key",
    "read_boot_routes",
    "resolve",
    "route_facts",
    "run_checks",
    "zone_labels",
]
