"""Where the lab's Local UI streams an uploaded content bundle: each file part into a temporary file beside its
destination, hashed as it arrives, and moved into place only when the whole request was read."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path, PurePosixPath

from wizard.lab.multipart import MultipartError, PartInfo, PartSink
from wizard.lab.node import UploadedContent


class FileSink:
    """Streams one part into a temporary file beside its destination, hashing as it goes."""

    def __init__(self, folder: Path, filename: str) -> None:
        self.filename = filename
        fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=".part", dir=folder)
        self.tmp = Path(tmp)
        self._fh = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self._hash.update(data)
        self.size += len(data)

    def finish(self, dest: Path) -> str:
        self._fh.close()
        os.replace(self.tmp, dest)
        return self._hash.hexdigest()

    def discard(self) -> None:
        self._fh.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()


class NullSink:
    def write(self, data: bytes) -> None:
        pass


class UploadReceiver:
    """The parts of one ``upload-content`` request: the file and its signature streamed to disk, the rest dropped."""

    FILE_FIELDS = ("uploadFile", "signature")

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.sinks: dict[str, FileSink] = {}

    def sink_for(self, info: PartInfo) -> PartSink:
        if info.name not in self.FILE_FIELDS:
            return NullSink()  # fields the spec does not define are ignored, as a form binder would
        if info.name in self.sinks:
            raise MultipartError(f"more than one {info.name!r} part")
        default = "content.bin" if info.name == "uploadFile" else "content.sig.bin"
        sink = FileSink(self.folder, safe_name(info.filename, default))
        self.sinks[info.name] = sink
        return sink

    def discard(self) -> None:
        for sink in self.sinks.values():
            sink.discard()

    def commit(self, now: float) -> UploadedContent:
        main = self.sinks["uploadFile"]
        path = self.folder / main.filename
        digest = main.finish(path)
        sig_path = None
        if (sig := self.sinks.get("signature")) is not None:
            sig_path = self.folder / (sig.filename if sig.filename != main.filename else sig.filename + ".sig")
            sig.finish(sig_path)
        return UploadedContent(main.filename, digest, main.size, now, path, sig_path)


def safe_name(filename: str | None, default: str) -> str:
    name = PurePosixPath((filename or "").replace("\\", "/")).name.strip()
    return name if name and name not in (".", "..") and not name.startswith(".") else default
