"""The day-2 commands: ``upgrade``, ``certificates`` and ``add-node`` on an installed appliance (see the README's
"Day 2"); each runs a session of its own (:mod:`wizard.install.day2`) headless, with ``run``'s progress, JSON
events and exit codes. On a kept rehearsal's project (``run --rehearse --keep``) its lab starts again first."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wizard.cli.common import EXIT_CODES, _lab_knobs, _vault_options, secret_store_for
from wizard.core.runner import ExitCode

if TYPE_CHECKING:
    from wizard.core.jobs import Step
    from wizard.core.paths import AppPaths
    from wizard.core.secrets import SecretStore
    from wizard.core.trust import Confirm
    from wizard.install.session import Session
    from wizard.install.steps.nodes import Pacing
    from wizard.rehearsal import Rehearsal


@dataclass(frozen=True)
class Where:
    """The project a day-2 command works on, with its secrets, and the kept rehearsal when it is one."""

    project: Path
    secrets: SecretStore
    paths: AppPaths | None = None
    pacing: Pacing | None = None
    rehearsal: Rehearsal | None = None


def _kept_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON events, one per line")
    parser.add_argument(
        "--rehearse",
        action="store_true",
        help=f"{what} the kept rehearsal (`run --rehearse --keep`; its project by default): its lab starts again",
    )
    parser.add_argument(
        "--lab",
        action="append",
        metavar="KNOB=VALUE[,…]",
        help="with a kept rehearsal: fault knobs for its lab (`--lab help`)",
    )
    _vault_options(parser)
    parser.add_argument(
        "--secrets", metavar="-", help="read secrets for this run as one JSON object on standard input (see run)"
    )


def add_day2_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``upgrade``, ``certificates`` and ``add-node``."""
    up = sub.add_parser(
        "upgrade",
        help="upgrade the installed appliance with a newer content bundle (headless)",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up.add_argument("project", type=Path, nargs="?", help="the project file the appliance was installed from")
    up.add_argument(
        "--content",
        type=Path,
        metavar="BUNDLE",
        help="the new release's content bundle (.tar.zst, its .sig.bin beside it) from Artifact Studio",
    )
    up.add_argument("--signature", type=Path, metavar="FILE", help="the bundle's signature, when not beside it")
    _kept_options(up, "upgrade (--content defaults to the newer release's bundle it wrote into files/upgrade/)")

    cert = sub.add_parser(
        "certificates",
        help="install your certificate and key for the system console and set its root domain (headless)",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cert.add_argument("project", type=Path, nargs="?", help="the project file the appliance was installed from")
    cert.add_argument("--cert", type=Path, metavar="FILE", help="the certificate (PEM); default: console.certificate")
    cert.add_argument("--key", type=Path, metavar="FILE", help="its private key (PEM, unencrypted)")
    cert.add_argument("--ca", type=Path, metavar="FILE", help="the CA certificate that issued it (PEM)")
    cert.add_argument(
        "--domain",
        metavar="FQDN",
        help="the system address's root domain (default: console.domain); backup and restore need an FQDN",
    )
    _kept_options(cert, "change")

    node = sub.add_parser(
        "add-node",
        help="add nodes from the project to the installed appliance: boot, install, link, join a machine pool",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    node.add_argument(
        "project",
        type=Path,
        nargs="?",
        help="the project file, with the new node(s) added (`pool: worker-pool` on a node makes it a worker)",
    )
    node.add_argument("node", nargs="*", metavar="NODE", help="the name of each node to add (as in the project)")
    _kept_options(node, "grow")


def run_day2_command(args: argparse.Namespace) -> int:
    """``upgrade``, ``certificates`` or ``add-node`` on the project; on a kept rehearsal's its lab starts again."""
    from wizard.core.paths import app_paths
    from wizard.lab.keep import is_kept
    from wizard.rehearsal import BANNER, Rehearsal, pacing_for

    knobs = _lab_knobs(args.lab)
    if knobs is None:
        return 0
    action = _ACTIONS[args.command]
    project: Path | None = args.project
    folder: Path | None = None
    if args.rehearse and project is not None and not project.is_file() and args.command == "add-node":
        args.node, project = [str(project), *args.node], None  # `add-node --rehearse NODE`: a node, not a project
    if args.rehearse:
        folder = project.parent if project is not None else app_paths().ensure().state / "rehearsal"
    elif project is not None and is_kept(project.parent):
        folder = project.parent
    if folder is None:
        if args.lab:
            print("error: --lab sets a kept rehearsal's knobs; it goes with --rehearse", file=sys.stderr)
            return int(ExitCode.INVALID_INPUT)
        if project is None:
            print("error: give the project file the appliance was installed from (or --rehearse)", file=sys.stderr)
            return int(ExitCode.INVALID_INPUT)
        return action(args, Where(project, secret_store_for(args)))
    if args.vault or args.secrets:
        print("error: a kept rehearsal makes its own secrets; --vault and --secrets go with a project", file=sys.stderr)
        return int(ExitCode.INVALID_INPUT)

    def say(stage: str, text: str, **fields: object) -> None:
        if args.json:
            print(json.dumps({"event": "rehearsal", "stage": stage, "message": BANNER, **fields}), flush=True)
        else:
            print(f"*** {BANNER} ***\n{text}", flush=True)

    with Rehearsal.reopen(folder, lab=knobs) as rehearsal:
        say(
            "start",
            f"the kept rehearsal in {folder} started again ({rehearsal.appliance.label}) for `{args.command}`",
            folder=str(folder),
            project=str(rehearsal.project_file),
            command=args.command,
        )
        at = Where(rehearsal.project_file, rehearsal.secrets, rehearsal.paths, pacing_for(rehearsal.speed), rehearsal)
        code = action(args, at)
    say("end", f"{args.command} finished with exit code {code}; the lab's state is kept in {folder}.", exit_code=code)
    return code


def _run_upgrade(
    args: argparse.Namespace,
    at: Where,
) -> int:
    from wizard.install.upgrade import UpgradeBundle, upgrade_pipeline

    rehearsal = at.rehearsal
    chosen = args.content or (rehearsal.upgrade_bundle if rehearsal is not None else None)
    if chosen is None:
        why = (
            "the kept rehearsal has no newer release's bundle (it plays the newest the lab knows): give --content, or "
            "rehearse an older release (--lab version=4.9.38)"
            if rehearsal is not None
            else "give the new release's content bundle with --content BUNDLE"
        )
        print(f"error: {why}", file=sys.stderr)
        return int(ExitCode.INVALID_INPUT)
    bundle = UpgradeBundle.at(chosen, args.signature)

    def outcome(session: Session) -> str:
        done = session.journal.result("update/follow")
        return f"{done.get('headline') or 'upgraded'}; report and backup in {session.journal.path.with_suffix('')}"

    return _headless(args, at, "upgrade", bundle.key, upgrade_pipeline(bundle, at.pacing), outcome=outcome)


def _run_certificates(
    args: argparse.Namespace,
    at: Where,
) -> int:
    from wizard.appliance.certificates import CertificateFiles
    from wizard.core.project import load_project
    from wizard.core.tlsfiles import is_ip
    from wizard.install.certificates import CertificateRequest, certificate_pipeline

    console = load_project(at.project).project.console
    kept = console.certificate if console is not None else None
    if args.cert is not None or args.key is not None:
        if args.cert is None or args.key is None:
            print("error: give both --cert and --key (and --ca when a CA issued it)", file=sys.stderr)
            return int(ExitCode.INVALID_INPUT)
        files = CertificateFiles(args.cert.resolve(), args.key.resolve(), args.ca.resolve() if args.ca else None)
    elif kept is not None:
        files = CertificateFiles(kept.cert, kept.key, kept.ca)
    else:
        print("error: give --cert and --key (the project names no console.certificate)", file=sys.stderr)
        return int(ExitCode.INVALID_INPUT)
    domain = (args.domain or (console.domain if console is not None else "")).strip().lower().rstrip(".")
    request = CertificateRequest(files, domain)
    if not domain or is_ip(domain):
        print(
            "warning: the system address stays an IP address: backup and restore need it to be an FQDN (give --domain)",
            file=sys.stderr,
        )

    def outcome(session: Session) -> str:
        done = session.journal.result("console/certificate")
        return str(done.get("headline") or "the console serves the certificate")

    steps = certificate_pipeline(request, at.pacing)
    return _headless(args, at, "certificates", request.key, steps, outcome=outcome)


def _run_add_node(
    args: argparse.Namespace,
    at: Where,
) -> int:
    from wizard.core.project import load_project
    from wizard.install.addnode import add_node_pipeline
    from wizard.install.day2 import install_journal
    from wizard.install.session import Session

    names = list(args.node)
    if at.rehearsal is not None:
        names = at.rehearsal.rack(names)  # the rehearsal's operator racks the machines and adds them to the project
    if not names:
        print("error: name the node(s) to add, as the project file names them", file=sys.stderr)
        return int(ExitCode.INVALID_INPUT)
    known = [n.name for n in load_project(at.project).project.nodes]
    unknown = [n for n in names if n not in known]
    if unknown:
        print(
            f"error: the project has no node {', '.join(unknown)} (its nodes: {', '.join(known)}); add it to "
            "the project file first",
            file=sys.stderr,
        )
        return int(ExitCode.INVALID_INPUT)
    rehearsal = at.rehearsal
    steps = add_node_pipeline(
        names,
        preflight=rehearsal.preflight_settings() if rehearsal is not None else None,
        pacing=at.pacing,
    )

    def opener(
        project_file: Path, *, paths: AppPaths | None, secrets: SecretStore | None, confirm: Confirm | None
    ) -> Session:
        from wizard.core.paths import app_paths

        install_journal(project_file, (paths or app_paths()).ensure())  # an installed appliance only
        return Session.open(project_file, paths=paths, secrets=secrets, confirm=confirm)

    def outcome(session: Session) -> str:
        jobs = session.journal.snapshot()["jobs"]
        pools = {
            n: p
            for j, rec in jobs.items()
            if j.startswith("pool/")
            for n, p in (rec.get("result") or {}).get("pools", {}).items()
        }
        where = ", ".join(f"{n} in {p}" for n, p in pools.items() if n in names)
        return f"{where or ', '.join(names)}: Running and Healthy"

    from wizard.headless import run_headless

    return run_headless(
        at.project,
        json_mode=args.json,
        steps=steps,
        paths=at.paths,
        secrets=at.secrets,
        opener=opener,
        outcome=outcome,
        only_nodes=names,
        on_event=rehearsal.on_event if rehearsal is not None else None,
    )


def _headless(
    args: argparse.Namespace,
    at: Where,
    action: str,
    key: str,
    steps: list[Step],
    *,
    outcome: Callable[[Session], str],
) -> int:
    from wizard.headless import run_headless
    from wizard.install.day2 import open_day2

    def opener(
        project_file: Path, *, paths: AppPaths | None, secrets: SecretStore | None, confirm: Confirm | None
    ) -> Session:
        return open_day2(project_file, action, key, paths=paths, secrets=secrets, confirm=confirm)

    return run_headless(
        at.project,
        json_mode=args.json,
        steps=steps,
        paths=at.paths,
        secrets=at.secrets,
        opener=opener,
        outcome=outcome,
    )


_ACTIONS: dict[str, Callable[..., int]] = {
    "upgrade": _run_upgrade,
    "certificates": _run_certificates,
    "add-node": _run_add_node,
}
