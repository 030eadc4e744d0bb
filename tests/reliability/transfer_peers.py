"""Peers for transfer tests and benchmarks: OpenSSH's sshd with its SFTP server, and a TCP proxy that cuts a
connection after a chosen number of bytes (a link dropping mid-transfer, at a byte position a test picks)."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

from tests.integration.sshd_peer import OpenSSHServer

SFTP_SERVER = "/usr/lib/openssh/sftp-server"


class SftpOpenSSHServer(OpenSSHServer):
    """The integration tests' OpenSSH peer with the ``sftp`` subsystem enabled (its home is /tmp)."""

    def _write_config(self) -> None:
        super()._write_config()
        if not Path(SFTP_SERVER).exists():
            raise RuntimeError(f"{SFTP_SERVER} is missing: install openssh-server")
        with self.config.open("a") as fh:
            fh.write(f"Subsystem sftp {SFTP_SERVER}\n")

    def __enter__(self) -> SftpOpenSSHServer:
        super().__enter__()
        return self


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to ``upstream``; the connection with index ``i`` is cut (both sockets closed)
    once ``cuts[i]`` bytes went from client to server. Connections beyond the list run uncut."""

    def __init__(self, upstream: tuple[str, int], cuts: list[int] | None = None) -> None:
        self.upstream = upstream
        self.cuts = list(cuts or [])
        self.connections = 0
        self.cut_count = 0
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)  # closing a socket does not wake a blocked accept(); polling notices stop
        self.host = "127.0.0.1"
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True, name="cutting-proxy")

    def set_cuts(self, cuts: list[int]) -> None:
        with self._lock:
            self.cuts = list(cuts)
            self.connections = 0

    def start(self) -> CuttingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            socks, self._open = self._open, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()

    def __enter__(self) -> CuttingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                index = self.connections
                self.connections += 1
                limit = self.cuts[index] if index < len(self.cuts) else None
                self._open += [client, server]
            pair = (client, server)
            threading.Thread(target=self._pump, args=(client, server, limit, pair), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, None, pair), daemon=True).start()

    def _pump(
        self, src: socket.socket, dst: socket.socket, limit: int | None, pair: tuple[socket.socket, socket.socket]
    ) -> None:
        sent = 0
        try:
            while True:
                want = 256 * 1024 if limit is None else min(256 * 1024, limit - sent)
                if want <= 0:
                    with self._lock:
                        self.cut_count += 1
                    break
                data = src.recv(want)
                if not data:
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
