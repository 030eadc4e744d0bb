"""SFTP and the on-node submit for the lab's nodes: what staging a bundle onto a node needs from the node's side.

- :class:`LabSFTPServer` is paramiko's server-side SFTP interface rooted in the node's own home folder (the login
  user's home on a real node): paths, relative or absolute, never leave it.
- :class:`StagingCommands` are the node commands staging runs over SSH, answered from that same folder: ``dd``
  (the bundle streamed in), ``sha256sum`` and ``curl``. The ``curl`` understands the options a real node's curl is
  given for the submit and performs the upload for real — a streamed multipart POST over TLS into the node's own
  Local UI on 127.0.0.1 —
  so the Local UI's own handling checks the session token and the ``uploadFile`` field, as on an appliance.
  Like curl, it refuses the self-signed certificate unless told ``--insecure``, and with ``--pinnedpubkey`` it
  compares the server's public key first (exit 90 on a mismatch, before any byte of the body is sent).

:func:`attach_staging` wires both into a lab node.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import posixpath
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import paramiko
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from paramiko.sftp import SFTP_FAILURE, SFTP_NO_SUCH_FILE, SFTP_OK, SFTP_PERMISSION_DENIED

from wizard.appliance.bundles import MultipartBody
from wizard.core.cancel import CancelToken

if TYPE_CHECKING:
    from wizard.lab.lab import LabNode

HOME_FOLDER = "home"
Command = Callable[[list[str]], tuple[int, str, str]]


class OutsideRoot(ValueError):
    """A path that would leave the node's folder."""


def resolve(root: Path, path: str) -> Path:
    """The real file behind a node path: relative paths start at the home folder (= ``root``), and ``..`` stops
    at the root, as at ``/`` on a real system."""
    clean = posixpath.normpath("/" + path.replace("\\", "/"))
    real = (root / clean.lstrip("/")).resolve()
    base = root.resolve()
    if real != base and base not in real.parents:
        raise OutsideRoot(path)  # a symlink pointing out of the root
    return real


def _errno_status(exc: OSError) -> int:
    return paramiko.SFTPServer.convert_errno(exc.errno or 0)


class _Handle(paramiko.SFTPHandle):
    def __init__(self, flags: int, fh: Any) -> None:
        super().__init__(flags)
        self.readfile = fh
        self.writefile = fh

    def stat(self) -> paramiko.SFTPAttributes | int:
        try:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))
        except OSError as exc:
            return _errno_status(exc)

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        try:
            if attr.st_size is not None:
                self.writefile.flush()
                os.ftruncate(self.writefile.fileno(), attr.st_size)
            if attr.st_mode is not None:
                os.fchmod(self.writefile.fileno(), attr.st_mode & 0o7777)
        except OSError as exc:
            return _errno_status(exc)
        return SFTP_OK


class LabSFTPServer(paramiko.SFTPServerInterface):
    """An SFTP server confined to ``root``; paramiko's ``SFTPServer`` drives it (one instance per channel)."""

    def __init__(self, server: paramiko.ServerInterface, *args: Any, root: Path, **kwargs: Any) -> None:
        super().__init__(server, *args, **kwargs)
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _real(self, path: str) -> Path:
        return resolve(self.root, path)

    def canonicalize(self, path: str) -> str:
        return posixpath.normpath("/" + path.replace("\\", "/"))

    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes] | int:
        try:
            real = self._real(path)
            out = []
            for name in sorted(os.listdir(real)):
                attr = paramiko.SFTPAttributes.from_stat(os.lstat(real / name))
                attr.filename = name
                out.append(attr)
            return out
        except OutsideRoot:
            return SFTP_PERMISSION_DENIED
        except OSError as exc:
            return _errno_status(exc)

    def stat(self, path: str) -> paramiko.SFTPAttributes | int:
        try:
            return paramiko.SFTPAttributes.from_stat(os.stat(self._real(path)))
        except OutsideRoot:
            return SFTP_PERMISSION_DENIED
        except OSError as exc:
            return _errno_status(exc)

    lstat = stat

    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> paramiko.SFTPHandle | int:
        try:
            real = self._real(path)
            mode = attr.st_mode & 0o7777 if attr is not None and attr.st_mode is not None else 0o644
            fd = os.open(real, flags, mode)
        except OutsideRoot:
            return SFTP_PERMISSION_DENIED
        except OSError as exc:
            return _errno_status(exc)
        if flags & os.O_WRONLY:
            fmode = "ab" if flags & os.O_APPEND else "wb"
        elif flags & os.O_RDWR:
            fmode = "a+b" if flags & os.O_APPEND else "r+b"
        else:
            fmode = "rb"
        return _Handle(flags, os.fdopen(fd, fmode))

    def remove(self, path: str) -> int:
        return self._do(lambda: os.remove(self._real(path)))

    def rename(self, oldpath: str, newpath: str) -> int:
        def go() -> None:
            new = self._real(newpath)
            if new.exists():  # SFTP's rename does not replace (posix-rename@openssh.com does)
                raise FileExistsError(17, "exists", str(newpath))
            os.rename(self._real(oldpath), new)

        return self._do(go)

    def posix_rename(self, oldpath: str, newpath: str) -> int:
        return self._do(lambda: os.replace(self._real(oldpath), self._real(newpath)))

    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        mode = attr.st_mode & 0o7777 if attr is not None and attr.st_mode is not None else 0o755
        return self._do(lambda: os.mkdir(self._real(path), mode))

    def rmdir(self, path: str) -> int:
        return self._do(lambda: os.rmdir(self._real(path)))

    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        def go() -> None:
            real = self._real(path)
            if attr.st_size is not None:
                os.truncate(real, attr.st_size)
            if attr.st_mode is not None:
                os.chmod(real, attr.st_mode & 0o7777)

        return self._do(go)

    @staticmethod
    def _do(action: Callable[[], object]) -> int:
        try:
            action()
        except OutsideRoot:
            return SFTP_PERMISSION_DENIED
        except FileNotFoundError:
            return SFTP_NO_SUCH_FILE
        except OSError as exc:
            return _errno_status(exc) or SFTP_FAILURE
        return SFTP_OK


# -- The node's commands -----------------------------------------------------------------------------------------


def spki_sha256(der_cert: bytes) -> str:
    """``sha256//<base64>`` of a certificate's public key, as curl's ``--pinnedpubkey`` spells a pin."""
    cert = x509.load_der_x509_certificate(der_cert)
    der = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256//" + base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


class StagingCommands:
    """``sha256sum``, ``curl`` and ``dd`` on a lab node, over the node's home folder and its own Local UI port."""

    def __init__(
        self, root: Path, localui_port: Callable[[], int | None], own_address: Callable[[], str] = lambda: "127.0.0.1"
    ) -> None:
        self.root = root
        self.localui_port = localui_port
        # Where "localhost" on this node is: every lab node shares the jump host's loopback, each on its own
        # address, so the node's own 127.0.0.1 is the address its servers listen on.
        self.own_address = own_address
        self.submits = 0  # how many uploads the node's curl posted (tests read it)

    def commands(self) -> dict[str, Command]:
        return {"sha256sum": self.sha256sum, "curl": self.curl}

    def streaming(self) -> dict[str, Callable[[list[str], Callable[[int], bytes]], tuple[int, str, str]]]:
        return {"dd": self.dd}

    def dd(self, args: list[str], read: Callable[[int], bytes]) -> tuple[int, str, str]:
        """POSIX ``dd of=FILE [bs=N] [seek=M] [conv=notrunc]`` with its input from the SSH channel: what staging
        streams a bundle into. Without ``notrunc`` the file is cut at the seek point, as dd does."""
        opts: dict[str, str] = {}
        for arg in args:
            key, sep, value = arg.partition("=")
            if not sep or key not in ("of", "bs", "seek", "conv"):
                return 1, "", f"dd: unrecognized operand '{arg}'\n"
            opts[key] = value
        if "of" not in opts or not (opts.get("bs", "512") + opts.get("seek", "0")).isdigit():
            return 1, "", "dd: invalid operands\n"
        offset = int(opts.get("bs", "512")) * int(opts.get("seek", "0"))
        try:
            fd = os.open(resolve(self.root, opts["of"]), os.O_WRONLY | os.O_CREAT, 0o644)
        except (OSError, OutsideRoot) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "Permission denied"
            return 1, "", f"dd: failed to open '{opts['of']}': {reason}\n"
        total = 0
        try:
            if "notrunc" not in opts.get("conv", "").split(","):
                os.ftruncate(fd, offset)
            os.lseek(fd, offset, os.SEEK_SET)
            while data := read(1 << 16):
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                total += len(data)
        except OSError as exc:
            return 1, "", f"dd: error writing '{opts['of']}': {exc.strerror}\n"
        finally:
            os.close(fd)
        return 0, "", f"{total} bytes copied\n"

    def sha256sum(self, args: list[str]) -> tuple[int, str, str]:
        out, err, code = [], [], 0
        for name in [a for a in args if a != "--"]:
            try:
                real = resolve(self.root, name)
                digest = hashlib.sha256()
                with real.open("rb") as fh:
                    while block := fh.read(1 << 20):
                        digest.update(block)
            except (OSError, OutsideRoot):
                code = 1
                err.append(f"sha256sum: {name}: No such file or directory\n")
                continue
            out.append(f"{digest.hexdigest()}  {name}\n")
        return code, "".join(out), "".join(err)

    def curl(self, args: list[str]) -> tuple[int, str, str]:
        try:
            req = _CurlArgs.parse(args)
        except ValueError as exc:
            return 2, "", f"curl: {exc}\n"
        return self._post(req)

    def _post(self, req: _CurlArgs) -> tuple[int, str, str]:
        url = urlsplit(req.url)
        port = self.localui_port()
        if url.scheme != "https" or url.hostname not in ("127.0.0.1", "localhost") or url.port != port:
            return 7, "", f"curl: (7) Failed to connect to {url.hostname} port {url.port}: Connection refused\n"
        try:
            headers = req.headers(self.root)
            files = {name: resolve(self.root, path) for name, path in req.forms}
            for path in files.values():
                if not path.is_file():
                    raise FileNotFoundError(path.name)
        except (OSError, OutsideRoot) as exc:
            return 26, "", f"curl: (26) Failed to open/read local data from file/application: {exc}\n"
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        # Like curl: the system store does not know the node's self-signed certificate unless --insecure; the
        # pin (when given) is compared before anything is sent.
        ctx.verify_mode = ssl.CERT_NONE if req.insecure else ssl.CERT_REQUIRED
        if not req.insecure:
            ctx.load_default_certs()
        conn = http.client.HTTPSConnection(self.own_address(), port, context=ctx, timeout=req.max_time or 600)
        try:
            try:
                conn.connect()
            except ssl.SSLCertVerificationError:
                return 60, "", "curl: (60) SSL certificate problem: self-signed certificate\n"
            except OSError as exc:
                return 7, "", f"curl: (7) Failed to connect to 127.0.0.1 port {port}: {exc}\n"
            sock = conn.sock
            der = sock.getpeercert(binary_form=True) if isinstance(sock, ssl.SSLSocket) else None
            if req.pin and (der is None or spki_sha256(der) not in req.pin.split(";")):
                return 90, "", "curl: (90) SSL: public key does not match pinned public key\n"
            body = MultipartBody(files)
            conn.putrequest("POST", url.path + (f"?{url.query}" if url.query else ""))
            for name, value in headers:
                conn.putheader(name, value)
            conn.putheader("Content-Type", body.content_type)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            try:
                for block in body.stream(CancelToken()):
                    conn.send(block)
            except OSError:
                # The server answered early (a 401 before the body) and closed; curl then stops sending and
                # reports that answer, so read it rather than fail on the broken pipe.
                pass
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            return 56, "", f"curl: (56) Failure when receiving data from the peer: {exc}\n"
        finally:
            conn.close()
        self.submits += 1
        out = text + req.write_out.replace("\\n", "\n").replace("%{http_code}", f"{status:03d}")
        return 0, out, ""


class _CurlArgs:
    def __init__(self) -> None:
        self.url = ""
        self.insecure = False
        self.pin = ""
        self.header_args: list[str] = []
        self.forms: list[tuple[str, str]] = []
        self.write_out = ""
        self.max_time = 0

    @classmethod
    def parse(cls, args: list[str]) -> _CurlArgs:
        req = cls()
        it = iter(args)
        for arg in it:
            if arg in ("-s", "--silent", "-S", "--show-error", "-sS", "-f", "--fail"):
                continue
            if arg in ("-k", "--insecure"):
                req.insecure = True
            elif arg == "--pinnedpubkey":
                req.pin = next(it, "")
            elif arg in ("-H", "--header"):
                req.header_args.append(next(it, ""))
            elif arg in ("-F", "--form"):
                name, sep, value = next(it, "").partition("=")
                if not sep or not value.startswith("@"):
                    raise ValueError(f"unsupported form field {name!r}: the lab's curl posts files (name=@path)")
                req.forms.append((name, value[1:]))
            elif arg in ("-w", "--write-out"):
                req.write_out = next(it, "")
            elif arg in ("-m", "--max-time"):
                req.max_time = int(next(it, "0"))
            elif arg.startswith("-"):
                raise ValueError(f"option {arg}: is unknown")
            else:
                req.url = arg
        if not req.url:
            raise ValueError("no URL specified")
        return req

    def headers(self, root: Path) -> list[tuple[str, str]]:
        lines: list[str] = []
        for h in self.header_args:
            if h.startswith("@"):  # curl reads headers from a file, one per line
                lines += resolve(root, h[1:]).read_text(encoding="utf-8").splitlines()
            else:
                lines.append(h)
        out = []
        for line in lines:
            name, sep, value = line.partition(":")
            if sep and name.strip():
                out.append((name.strip(), value.strip()))
        return out


def attach_staging(node: LabNode) -> StagingCommands:
    """Give a lab node an SFTP server and the staging commands, both over ``<node folder>/home``."""
    root = node.state.data_dir.parent / HOME_FOLDER
    root.mkdir(parents=True, exist_ok=True)
    commands = StagingCommands(root, lambda: node.state.port, lambda: node.state.ip)
    node.ssh.sftp_root = root
    node.ssh.shell.extra.update(commands.commands())
    node.ssh.shell.streaming.update(commands.streaming())
    return commands


__all__ = ["LabSFTPServer", "StagingCommands", "attach_staging", "resolve", "spki_sha256"]
