"""``palette-wizard``: the desktop wizard, or the headless runner and tools for project files."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from wizard import __version__
from wizard.core.errors import ProjectInvalid, WizardError
from wizard.core.runner import ExitCode
from wizard.core.stepids import STEP_IDS

if TYPE_CHECKING:
    from wizard.core.secrets import SecretStore
    from wizard.core.trust import TrustStore
    from wizard.rehearsal import Rehearsal

EXIT_CODES = """exit codes:
  0    done
  2    invalid input (project file, missing secrets)
  3    preflight blocked (a blocking check failed; nothing was touched)
  4    install failed (the journal keeps what was done; run again to resume)
  5    incomplete: --only-node retried some nodes; the others still need a run
  130  cancelled
"""

#: The pipeline's step ids (a module without imports: the parser does not load the engine).
RUN_STEPS = STEP_IDS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="palette-wizard",
        description="Install self-hosted Palette from the Palette Management Appliance ISO. "
        "Without a command, the desktop wizard opens.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"palette-wizard {__version__}")
    p.add_argument(
        "--rehearse",
        dest="gui_rehearse",  # not `rehearse`: `run --rehearse` would overwrite it
        action="store_true",
        help="open the desktop wizard on a rehearsal: simulated appliance nodes on this machine, nothing real is "
        "touched (headless: `palette-wizard run --rehearse`)",
    )
    p.add_argument(
        "--nodes",
        dest="rehearse_nodes",
        type=int,
        choices=(1, 3, 5),
        default=3,
        help="with --rehearse: simulated nodes (default 3)",
    )
    p.add_argument(
        "--speed",
        dest="rehearse_speed",
        type=float,
        default=60.0,
        help="with --rehearse: how much faster than real the nodes are (default 60)",
    )
    p.add_argument(
        "--keep", dest="rehearse_keep", action="store_true", help="with --rehearse: keep the rehearsal's folder"
    )
    p.add_argument(
        "--provider",
        dest="gui_rehearse_provider",
        choices=("manual", "redfish", "vsphere"),
        default="manual",
        help="with --rehearse: who boots the simulated nodes (as for `run --rehearse`; default manual)",
    )
    p.add_argument(
        "--vcsim",
        dest="gui_rehearse_vcsim",
        type=Path,
        metavar="PATH",
        help="with --rehearse --provider vsphere: the vcsim binary (default: vcsim on PATH)",
    )
    p.add_argument(
        "--netns",
        dest="gui_rehearse_netns",
        action="store_true",
        help="with --rehearse: each simulated node in its own network namespace (Linux, as root, iproute2)",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    gui = sub.add_parser("gui", help="open the desktop wizard (the default)")
    gui.add_argument("project", nargs="?", type=Path, help="project file to open")
    _vault_options(gui)

    run = sub.add_parser(
        "run",
        help="run the install headless from a project file",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("project", type=Path, nargs="?", help="project file (YAML or JSON)")
    run.add_argument("--json", action="store_true", help="print machine-readable JSON events, one per line")
    run.add_argument(
        "--until",
        metavar="STEP",
        choices=RUN_STEPS,
        help=f"stop after this step ({', '.join(RUN_STEPS)}); `--until preflight` checks everything and touches "
        "nothing; run again without it to go on",
    )
    run.add_argument(
        "--only-node",
        metavar="NAME",
        action="append",
        dest="only_nodes",
        help="retry only this node's jobs (repeatable); the other nodes' unfinished jobs wait, and the run stops "
        "after the step that held them (exit code 5); jobs of no node run as usual",
    )
    _vault_options(run)
    run.add_argument(
        "--secrets",
        metavar="-",
        help="read secrets for this run as one JSON object on standard input (keyring names to values); they are "
        "kept in memory only, never stored",
    )
    reh = run.add_argument_group("rehearsal (instead of a project file)")
    reh.add_argument(
        "--rehearse",
        action="store_true",
        help="run the whole install against simulated appliance nodes on this machine; nothing real is touched",
    )
    reh.add_argument("--nodes", type=int, choices=(1, 3, 5), default=3, help="simulated nodes (default 3)")
    reh.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="how much faster than real the nodes are (default 60: a 15-minute install takes 15 s)",
    )
    reh.add_argument("--keep", action="store_true", help="keep the rehearsal's folder (project, journal, logs)")
    reh.add_argument(
        "--provider",
        dest="rehearse_provider",
        choices=("manual", "redfish", "vsphere"),
        default="manual",
        help="who boots the simulated nodes: manual (the rehearsal plays the operator, default), redfish (BMCs in "
        "sushy-tools' emulator: pip install 'palette-appliance-wizard[rehearsal]'), vsphere (VMs in govmomi's vcsim)",
    )
    reh.add_argument(
        "--vcsim", type=Path, metavar="PATH", help="with --provider vsphere: the vcsim binary (default: vcsim on PATH)"
    )
    reh.add_argument(
        "--netns",
        action="store_true",
        help="put each simulated node in its own network namespace at its own address (Linux, as root, iproute2)",
    )

    val = sub.add_parser("validate", help="check a project file and list every problem")
    val.add_argument("project", type=Path)
    val.add_argument("--json", action="store_true", help="print the problems as JSON")

    sec = sub.add_parser("secret", help="store, check or delete secrets in the OS keyring or an encrypted vault")
    sec_sub = sec.add_subparsers(dest="secret_command", metavar="ACTION", required=True)
    s_set = sec_sub.add_parser("set", help="store a secret (prompts, or reads one line from stdin)")
    s_set.add_argument("name")
    s_set.add_argument("--stdin", action="store_true", help="read the value from standard input")
    _vault_options(s_set, creates=True)
    s_del = sec_sub.add_parser("delete", help="remove a secret")
    s_del.add_argument("name")
    _vault_options(s_del)
    s_chk = sec_sub.add_parser("check", help="list the project's secrets that are not stored yet")
    s_chk.add_argument("project", type=Path)
    _vault_options(s_chk)
    ovr = sub.add_parser("override", help="accept a preflight warning with a reason (recorded in the journal)")
    ovr.add_argument("project", type=Path)
    ovr.add_argument("check", help="the check id, e.g. net.dns-reverse")
    ovr.add_argument("--reason", required=True, help="why it is safe to go ahead; shown in the report")

    ab = sub.add_parser(
        "abort",
        help="abort an install: release the MAAS machines it allocated and eject the ISO it inserted through BMCs",
    )
    ab.add_argument("project", type=Path)
    ab.add_argument("--session", default="", help="the session id (journal name) when it is not the project's own")
    ab.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
    _vault_options(ab)

    sb = sub.add_parser(
        "support-bundle", help="write one zip of logs, journal, reports and node diagnostics, secrets redacted"
    )
    sb.add_argument("--session", metavar="ID", help="session id or journal path (default: the most recent)")
    sb.add_argument("-o", "--output", type=Path, help="zip file or folder (default: ./palette-wizard-support-TIME.zip)")
    sb.add_argument("--no-nodes", action="store_true", help="do not ask the nodes for their logs")
    _vault_options(sb)

    tr = sub.add_parser("trust", help="list, add or forget pinned TLS certificates and SSH host keys")
    tr_sub = tr.add_subparsers(dest="trust_command", metavar="ACTION", required=True)
    tr_sub.add_parser("list", help="show every pinned fingerprint and how it was verified")
    tr_add = tr_sub.add_parser(
        "add",
        help="pin a fingerprint you verified out of band (on the machine's console, from its administrator)",
    )
    tr_add.add_argument("address", help="HOST:PORT, e.g. 10.10.0.10:443 for the system console at the VIP")
    tr_add.add_argument(
        "fingerprint", help="SHA-256: colon-separated hex for a TLS certificate, SHA256:base64 for an SSH host key"
    )
    tr_add.add_argument("--kind", choices=["tls", "ssh"], help="default: from the fingerprint's spelling")
    tr_add.add_argument(
        "--replace", action="store_true", help="replace a different fingerprint pinned for that address"
    )
    tr_forget = tr_sub.add_parser("forget", help="forget a pin, so the next contact asks again")
    tr_forget.add_argument("address", help="HOST:PORT")
    tr_forget.add_argument("--kind", choices=["tls", "ssh"], help="only this kind (default: both)")
    return p


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


def _override(args: argparse.Namespace) -> int:
    from wizard.core.checks import override
    from wizard.install.session import Session

    session = Session.open(args.project)
    override(session.journal, args.check, args.reason)
    print(f"override of {args.check} recorded in {session.journal.path}")
    return 0


def _trust(args: argparse.Namespace) -> int:
    from wizard.core.paths import app_paths
    from wizard.core.trust import TrustKind, TrustStore

    store = TrustStore(app_paths().ensure().config)
    if args.trust_command == "list":
        pins = store.all()
        for key, entry in sorted(pins.items()):
            how = f"  ({entry['how']})" if entry.get("how") else ""
            print(f"{key}  {entry['fingerprint']}{how}")
        if not pins:
            print("no pinned certificates or host keys")
        return 0
    host, sep, port_text = args.address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        print(f"error: {args.address!r} is not HOST:PORT", file=sys.stderr)
        return int(ExitCode.INVALID_INPUT)
    if args.trust_command == "add":
        return _trust_add(store, host, int(port_text), args)
    kinds = [TrustKind(args.kind)] if args.kind else list(TrustKind)
    removed = [k.value for k in kinds if store.forget(k, host, int(port_text))]
    print(f"forgot {', '.join(removed)} pin(s) for {args.address}" if removed else f"nothing pinned for {args.address}")
    return 0


def _trust_add(store: TrustStore, host: str, port: int, args: argparse.Namespace) -> int:
    from wizard.core.trust import TrustKind, normalize, same_fingerprint

    try:
        fingerprint = normalize(args.fingerprint)
    except ValueError:
        print(
            f"error: {args.fingerprint!r} is not a SHA-256 fingerprint (64 hex digits, colons allowed, or SHA256:…)",
            file=sys.stderr,
        )
        return int(ExitCode.INVALID_INPUT)
    spelled = TrustKind.SSH if fingerprint.startswith("SHA256:") else TrustKind.TLS
    kind = TrustKind(args.kind) if args.kind else spelled
    if kind is not spelled:
        print(
            f"error: a {kind.value} fingerprint is written as "
            + ("SHA256:base64 (as ssh-keygen -lf prints it)" if kind is TrustKind.SSH else "colon-separated hex"),
            file=sys.stderr,
        )
        return int(ExitCode.INVALID_INPUT)
    entry = store.pinned(kind, host, port)
    if entry is not None and not same_fingerprint(str(entry["fingerprint"]), fingerprint) and not args.replace:
        print(
            f"error: {host}:{port} already has another {kind.value} pin: {entry['fingerprint']}; add --replace "
            "if the machine was reinstalled and you checked the new fingerprint",
            file=sys.stderr,
        )
        return int(ExitCode.INVALID_INPUT)
    store.pin(kind, host, port, fingerprint, how="added by the operator (verified out of band)")
    print(f"pinned {kind.value} {host}:{port}  {fingerprint}")
    return 0


def _validate(project: Path, as_json: bool) -> int:
    from wizard.core.project import load_project

    try:
        loaded = load_project(project)
    except ProjectInvalid as exc:
        if as_json:
            print(json.dumps({"valid": False, "problems": [p.to_dict() for p in exc.problems]}, indent=1))
        else:
            errors = [p for p in exc.problems if p.is_error]
            print(f"{project}: {len(errors)} error{'s' if len(errors) != 1 else ''}")
            for p in exc.problems:
                print(f"  {p.severity.value}: {p}")
        return int(ExitCode.INVALID_INPUT)
    if as_json:
        print(json.dumps({"valid": True, "problems": [p.to_dict() for p in loaded.warnings]}, indent=1))
    else:
        print(f"{project}: valid ({len(loaded.project.nodes)} nodes, provider {loaded.project.provider.type.value})")
        for w in loaded.warnings:
            print(f"  warning: {w}")
    return int(ExitCode.DONE)


def _secret(args: argparse.Namespace) -> int:
    from wizard.core.project import SecretRef, load_project

    store = secret_store_for(args, create=args.secret_command == "set")  # noqa: S105 - an action name
    if args.secret_command == "check":  # noqa: S105 - an action name, not a password
        try:
            loaded = load_project(args.project)
        except ProjectInvalid as exc:
            print(exc.render(), file=sys.stderr)
            return int(ExitCode.INVALID_INPUT)
        missing = store.missing(loaded.project.secret_refs())
        for path, ref in missing:
            print(f"missing: {ref.key}  ({path})")
        if store.notice:
            print(f"note: {store.notice}", file=sys.stderr)
        return int(ExitCode.INVALID_INPUT) if missing else 0
    if not store.persistent:
        print(
            f"error: {store.notice}\nA secret stored now would be lost when this command ends.",
            file=sys.stderr,
        )
        return int(ExitCode.INVALID_INPUT)
    ref = SecretRef(args.name)
    if args.secret_command == "delete":  # noqa: S105 - an action name, not a password
        store.delete(ref)
        print(f"deleted {args.name}")
        return 0
    if args.stdin:
        value = sys.stdin.readline().rstrip("\r\n")
    else:
        value = getpass.getpass(f"Value for {args.name}: ")
        if getpass.getpass("Again: ") != value:
            print("error: the two entries differ; nothing was stored", file=sys.stderr)
            return int(ExitCode.INVALID_INPUT)
    store.set(ref, value)
    print(f"stored {args.name} in {store.backend_name}")
    return 0


def _rehearse(args: argparse.Namespace) -> int:
    from wizard.core.paths import app_paths
    from wizard.headless import run_headless
    from wizard.rehearsal import BANNER, Rehearsal

    if args.speed <= 0:
        print("error: --speed must be positive", file=sys.stderr)
        return int(ExitCode.INVALID_INPUT)
    folder = app_paths().ensure().state / "rehearsal"

    def say(stage: str, text: str, **fields: object) -> None:
        if args.json:
            print(json.dumps({"event": "rehearsal", "stage": stage, "message": BANNER, **fields}), flush=True)
        else:
            print(f"*** {BANNER} ***\n{text}", flush=True)

    provider = args.rehearse_provider
    with Rehearsal(
        folder,
        nodes=args.nodes,
        speed=args.speed,
        keep=args.keep,
        provider=provider,
        vcsim=args.vcsim,
        netns=args.netns,
    ) as rehearsal:
        booted_by = {
            "manual": "powered on by the rehearsal (manual provider)",
            "redfish": "booted through simulated BMCs (sushy-emulator)",
            "vsphere": "VMs in a simulated vCenter (vcsim)",
        }[provider]
        say(
            "start",
            f"{args.nodes} simulated node(s), {booted_by}, {args.speed:g}x real time; project {rehearsal.project_file}",
            folder=str(folder),
            project=str(rehearsal.project_file),
            nodes=args.nodes,
            speed=args.speed,
            provider=provider,
        )
        code = run_headless(
            rehearsal.project_file,
            json_mode=args.json,
            until=args.until,
            steps=rehearsal.steps(args.until),
            paths=rehearsal.paths,
            secrets=rehearsal.secrets,
            on_event=rehearsal.on_event,
        )
        # A failed rehearsal keeps its folder: the journal and the log say what went wrong.
        rehearsal.keep = rehearsal.keep or code != 0
        kept = f"Its files are kept in {folder}." if rehearsal.keep else "Its files were removed (--keep keeps them)."
    say("end", f"Rehearsal finished with exit code {code}. {kept}", exit_code=code, kept=rehearsal.keep)
    return code


def _gui_rehearse(args: argparse.Namespace) -> int:
    from wizard.core.paths import app_paths
    from wizard.rehearsal import Rehearsal

    if args.rehearse_speed <= 0:
        print("error: --speed must be positive", file=sys.stderr)
        return int(ExitCode.INVALID_INPUT)
    folder = app_paths().ensure().state / "rehearsal"
    with Rehearsal(
        folder,
        nodes=args.rehearse_nodes,
        speed=args.rehearse_speed,
        keep=args.rehearse_keep,
        provider=args.gui_rehearse_provider,
        vcsim=args.gui_rehearse_vcsim,
        netns=args.gui_rehearse_netns,
    ) as rehearsal:
        return _gui(None, rehearsal=rehearsal)


def _gui(project: Path | None, rehearsal: Rehearsal | None = None, secrets: SecretStore | None = None) -> int:
    try:
        from wizard.ui.app import main as gui_main
    except ImportError as exc:
        print(
            f"error: the desktop wizard cannot start: {exc}\n"
            "Install the Qt runtime libraries (see README), or use `palette-wizard run PROJECT` headless.",
            file=sys.stderr,
        )
        return 1
    return int(gui_main(project, rehearsal=rehearsal, secrets=secrets))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.gui_rehearse and args.command is not None:
            print(
                f"error: --rehearse opens the desktop wizard on its own project; not with `{args.command}` "
                "(the headless rehearsal is `palette-wizard run --rehearse`)",
                file=sys.stderr,
            )
            return int(ExitCode.INVALID_INPUT)
        if args.gui_rehearse:
            return _gui_rehearse(args)
        rehearsal_only = [
            flag
            for flag, given in (
                ("--provider", args.gui_rehearse_provider != "manual"),
                ("--vcsim", args.gui_rehearse_vcsim is not None),
                ("--netns", args.gui_rehearse_netns),
            )
            if given
        ]
        if rehearsal_only:
            where = f"after `{args.command}`" if args.command == "run" else "with --rehearse"
            print(f"error: {', '.join(rehearsal_only)} only goes {where}", file=sys.stderr)
            return int(ExitCode.INVALID_INPUT)
        if args.command in (None, "gui"):
            store = secret_store_for(args) if getattr(args, "vault", None) else None
            return _gui(getattr(args, "project", None), secrets=store)
        if args.command == "run":
            if args.rehearse == (args.project is not None):
                print("error: give a project file or --rehearse (one of them)", file=sys.stderr)
                return int(ExitCode.INVALID_INPUT)
            if args.rehearse and args.only_nodes:
                print("error: --only-node goes with a project file, not with --rehearse", file=sys.stderr)
                return int(ExitCode.INVALID_INPUT)
            if args.rehearse and (args.vault or args.secrets):
                print(
                    "error: a rehearsal makes its own secrets; --vault and --secrets go with a project file",
                    file=sys.stderr,
                )
                return int(ExitCode.INVALID_INPUT)
            if args.rehearse:
                return _rehearse(args)
            from wizard.headless import run_headless

            return run_headless(
                args.project,
                json_mode=args.json,
                until=args.until,
                only_nodes=args.only_nodes,
                secrets=secret_store_for(args),
            )
        if args.command == "validate":
            return _validate(args.project, args.json)
        if args.command == "secret":
            return _secret(args)
        if args.command == "override":
            return _override(args)
        if args.command == "trust":
            return _trust(args)
        if args.command == "support-bundle":
            from wizard.install.support import build_support_bundle

            out = build_support_bundle(
                args.output, session=args.session, nodes=not args.no_nodes, secrets=secret_store_for(args)
            )
            print(f"support bundle written: {out} (secrets redacted; check it before you send it)")
            return 0
        if args.command == "abort":
            from wizard.headless import abort_headless

            return abort_headless(
                args.project, session_id=args.session, json_mode=args.json, secrets=secret_store_for(args)
            )
    except WizardError as exc:
        print(exc.render(), file=sys.stderr)
        return int(ExitCode.INVALID_INPUT)
    except KeyboardInterrupt:
        return int(ExitCode.CANCELLED)
    return 1
