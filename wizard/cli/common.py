"""What the command line's parts share: exit codes, the vault options and the secret store they ask for, the
``--lab`` knobs."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from wizard.core.errors import WizardError

if TYPE_CHECKING:
    from wizard.core.secrets import SecretStore
    from wizard.lab.knobs import LabKnobs

EXIT_CODES = """exit codes:
  0    done
  2    invalid input (project file, missing secrets)
  3    preflight blocked (a blocking check failed; nothing was touched)
  4    install failed (the journal keeps what was done; run again to resume)
  5    incomplete: --only-node retried some nodes; the others still need a run
  130  cancelled
"""


def _vault_options(parser: argparse.ArgumentParser, *, creates: bool = False) -> None:
    group = parser.add_argument_group("encrypted vault (for a jump host without a desktop keyring)")
    group.add_argument(
        "--vault",
        type=Path,
        metavar="FILE",
        help="keep secrets in this encrypted file instead of the OS keyring"
        + (" (created when missing)" if creates else ""),
    )
    group.add_argument(
        "--passphrase-file",
        type=Path,
        metavar="FILE",
        help="the vault's passphrase is the first line of FILE (default: asked on the terminal)",
    )
    group.add_argument(
        "--passphrase-fd", type=int, metavar="N", help="read the vault's passphrase from file descriptor N"
    )


def secret_store_for(args: argparse.Namespace, *, create: bool = False) -> SecretStore:
    """The secret store a command's options ask for: the vault (``--vault``, its passphrase from a file, a file
    descriptor or the terminal), with ``--secrets -`` read from standard input in front of it, else the OS
    keyring. ``create`` makes a missing vault (asking for its passphrase twice on a terminal)."""
    from wizard.core.secrets import SecretStore, parse_supplied
    from wizard.core.vault import Vault, read_passphrase

    vault_path: Path | None = getattr(args, "vault", None)
    passphrase_file: Path | None = getattr(args, "passphrase_file", None)
    passphrase_fd: int | None = getattr(args, "passphrase_fd", None)
    given: str | None = getattr(args, "secrets", None)
    if vault_path is None and (passphrase_file is not None or passphrase_fd is not None):
        raise WizardError(
            "No vault given", "a vault passphrase was given without --vault", remediation="add --vault FILE"
        )
    if passphrase_file is not None and passphrase_fd is not None:
        raise WizardError(
            "Two passphrases", "--passphrase-file and --passphrase-fd both given", remediation="give one of them"
        )
    supplied = None
    if given is not None:
        if given != "-":
            raise WizardError(
                "Secrets only from standard input",
                f"--secrets takes `-` (standard input), not {given!r}",
                remediation="pipe the JSON object in: a file of plain secrets is exactly what this option avoids",
            )
        supplied = parse_supplied(sys.stdin.read())
    if vault_path is None:
        return SecretStore(supplied=supplied)
    if passphrase_file is not None or passphrase_fd is not None:
        passphrase = read_passphrase(file=passphrase_file, fd=passphrase_fd)
    else:
        passphrase = _ask_passphrase(vault_path, new=create and not vault_path.exists(), stdin_taken=given == "-")
    from wizard.core.redact import REDACTOR

    REDACTOR.add(passphrase)
    return SecretStore(vault=Vault.open(vault_path, passphrase, create=create), supplied=supplied)


def _ask_passphrase(path: Path, *, new: bool, stdin_taken: bool) -> str:
    if stdin_taken or not sys.stdin.isatty():
        raise WizardError(
            "No vault passphrase",
            f"the passphrase of {path} cannot be asked: there is no terminal",
            remediation="give --passphrase-file FILE or --passphrase-fd N",
        )
    passphrase = getpass.getpass(f"Passphrase for {'the new vault ' if new else ''}{path}: ")
    if new and getpass.getpass("Again: ") != passphrase:
        raise WizardError("Passphrases differ", "the two entries differ; no vault was made", remediation="retry")
    return passphrase


def _lab_knobs(specs: list[str] | None) -> LabKnobs | None:
    """The ``--lab`` knobs; None after printing ``--lab help``. Raises a WizardError naming a bad knob or value."""
    from wizard.lab.knobs import knobs_help, parse_knobs

    if specs and any(part.strip() == "help" for spec in specs for part in spec.split(",")):
        print(knobs_help())
        return None
    return parse_knobs(specs)
