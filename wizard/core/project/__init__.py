"""The project file: the operator's answers, schema-versioned, validated all at once.

A project is YAML (JSON is accepted, being YAML too). It holds no secret values: every password or key is a
keyring reference written as ``{secret: NAME}``. :func:`load_project` returns a frozen :class:`Project` plus the
warnings, or raises :class:`~wizard.core.errors.ProjectInvalid` listing *every* problem with its field path.

The package reads top-down: :mod:`.model` (what a project is), :mod:`.reader` (reading with every problem
collected, single-field checks), one module per group of sections (:mod:`.provider`, :mod:`.nodes`,
:mod:`.sections`), :mod:`.load` (migration and the whole document) and :mod:`.write` (back to YAML).
"""

from wizard.core.project.load import load_project, migrate, parse_project
from wizard.core.project.model import (
    MIGRATIONS,
    SCHEMA_VERSION,
    ActivationSettings,
    Addressing,
    AddressMode,
    Appliance,
    Bmc,
    BondConfig,
    BootMode,
    ClusterSettings,
    ConfigureMode,
    ConsoleCertificate,
    ConsoleSettings,
    FileRef,
    Files,
    LoadedProject,
    MaasSettings,
    Network,
    NicConfig,
    Node,
    NodeNetwork,
    Project,
    Provider,
    ProviderType,
    Proxy,
    RedfishSettings,
    SecretRef,
    TransferMode,
    VlanConfig,
    VmMode,
    VmSpec,
    VsphereSettings,
    join_path,
)
from wizard.core.project.provider import read_provider
from wizard.core.project.reader import hostname_problem, ipv4_problem
from wizard.core.project.sections import read_ca_certs, signature_beside
from wizard.core.project.write import project_to_dict, save_project

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "ActivationSettings",
    "AddressMode",
    "Addressing",
    "Appliance",
    "Bmc",
    "BondConfig",
    "BootMode",
    "ClusterSettings",
    "ConfigureMode",
    "ConsoleCertificate",
    "ConsoleSettings",
    "FileRef",
    "Files",
    "LoadedProject",
    "MaasSettings",
    "Network",
    "NicConfig",
    "Node",
    "NodeNetwork",
    "Project",
    "Provider",
    "ProviderType",
    "Proxy",
    "RedfishSettings",
    "SecretRef",
    "TransferMode",
    "VlanConfig",
    "VmMode",
    "VmSpec",
    "VsphereSettings",
    "hostname_problem",
    "ipv4_problem",
    "join_path",
    "load_project",
    "migrate",
    "parse_project",
    "project_to_dict",
    "read_ca_certs",
    "read_provider",
    "save_project",
    "signature_beside",
]
