"""A streaming multipart/form-data parser (RFC 7578) over a length-bounded byte stream.

Content bundles are many gigabytes, so part bodies go to sinks chunk by chunk; the parser itself holds at most one
read chunk plus a delimiter's length. The standard library's ``cgi`` is deprecated and ``email`` buffers whole
messages, hence this small state machine.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote

CHUNK_SIZE = 1 << 20
MAX_HEADER_BYTES = 16 * 1024
MAX_PARTS = 64

_PARAM = re.compile(r';\s*([A-Za-z0-9_*.!#$%&\'+^`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))')


class MultipartError(ValueError):
    """The body is not well-formed multipart/form-data."""


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class PartSink(Protocol):
    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True)
class PartInfo:
    name: str
    filename: str | None
    content_type: str | None
    headers: dict[str, str] = field(default_factory=dict)


SinkFactory = Callable[[PartInfo], PartSink]


def boundary_from_content_type(content_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type; raises :class:`MultipartError`."""
    media, _, _ = content_type.partition(";")
    if media.strip().lower() != "multipart/form-data":
        raise MultipartError(f"expected multipart/form-data, got {media.strip() or 'no content type'!r}")
    boundary = header_params(content_type).get("boundary", "")
    if not 1 <= len(boundary) <= 70:
        raise MultipartError("multipart/form-data without a valid boundary parameter")
    return boundary.encode("latin-1")


def header_params(value: str) -> dict[str, str]:
    """Parameters of a header such as Content-Disposition, lower-cased names, quotes and RFC 5987 decoded."""
    params: dict[str, str] = {}
    for m in _PARAM.finditer(value):
        name = m.group(1).lower()
        raw = m.group(2)
        text = re.sub(r"\\(.)", r"\1", raw) if raw is not None else (m.group(3) or "").strip()
        if name.endswith("*"):
            charset, _, rest = text.partition("'")
            _, _, encoded = rest.partition("'")
            params[name[:-1]] = unquote(encoded, encoding=charset or "utf-8", errors="replace")
        else:
            params.setdefault(name, text)
    return params


class _BoundedReader:
    def __init__(self, stream: Readable, length: int, chunk_size: int) -> None:
        # read1 hands over what has arrived instead of waiting for a full chunk, so parts are written as they come.
        self._read: Callable[[int], bytes] = getattr(stream, "read1", stream.read)
        self.remaining = length
        self._chunk = chunk_size

    def read(self) -> bytes:
        if self.remaining <= 0:
            return b""
        data = self._read(min(self._chunk, self.remaining))
        if not data:
            raise MultipartError(f"the body ended {self.remaining} bytes before its Content-Length")
        self.remaining -= len(data)
        return data


def parse_multipart(
    stream: Readable,
    boundary: bytes,
    length: int,
    sink_for: SinkFactory,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> list[PartInfo]:
    """Read exactly ``length`` bytes of multipart body from ``stream``, feeding each part to ``sink_for(info)``.

    Returns the parts in order. Raises :class:`MultipartError` on malformed input; sinks already handed out are the
    caller's to clean up.
    """
    reader = _BoundedReader(stream, length, chunk_size)
    delim = b"--" + boundary
    body_delim = b"\r\n" + delim
    buf = bytearray()

    def fill(what: str) -> None:
        data = reader.read()
        if not data:
            raise MultipartError(f"the body ended {what}")
        buf.extend(data)

    # Preamble: skip to the first delimiter, which sits at the very start or after a CRLF.
    fill("before the first boundary")
    if buf.startswith(delim[: len(buf)]):
        while len(buf) < len(delim):
            fill("before the first boundary")
    if buf.startswith(delim):
        del buf[: len(delim)]
    else:
        while (i := buf.find(body_delim)) < 0:
            if len(buf) > len(body_delim):
                del buf[: len(buf) - len(body_delim)]
            fill("before the first boundary")
        del buf[: i + len(body_delim)]

    parts: list[PartInfo] = []
    while True:
        while len(buf) < 2:
            fill("after a boundary")
        if buf.startswith(b"--"):
            while reader.read():  # the epilogue is ignored but consumed, so the connection stays in step
                pass
            return parts
        # Rest of the delimiter line: optional transport padding, then CRLF.
        while (eol := buf.find(b"\r\n")) < 0:
            if len(buf) > 256:
                raise MultipartError("garbage after a boundary")
            fill("in a boundary line")
        if buf[:eol].strip(b" \t"):
            raise MultipartError("garbage after a boundary")
        del buf[: eol + 2]

        if len(parts) >= MAX_PARTS:
            raise MultipartError(f"more than {MAX_PARTS} parts")
        info = _read_part_headers(buf, fill)
        parts.append(info)
        sink = sink_for(info)
        while True:
            i = buf.find(body_delim)
            if i >= 0:
                if i:
                    sink.write(bytes(buf[:i]))
                del buf[: i + len(body_delim)]
                break
            # Keep a tail that could be the start of a delimiter split across reads.
            safe = len(buf) - len(body_delim) + 1
            if safe > 0:
                sink.write(bytes(buf[:safe]))
                del buf[:safe]
            fill(f"inside part {info.name!r}")


def _read_part_headers(buf: bytearray, fill: Callable[[str], None]) -> PartInfo:
    while True:
        if buf.startswith(b"\r\n"):  # a part without headers
            raw, skip = b"", 2
            break
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            raw, skip = bytes(buf[:end]), end + 4
            break
        if len(buf) > MAX_HEADER_BYTES:
            raise MultipartError(f"part headers longer than {MAX_HEADER_BYTES} bytes")
        fill("inside part headers")
    del buf[:skip]
    headers: dict[str, str] = {}
    for line in raw.decode("utf-8", errors="replace").split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep:
            raise MultipartError(f"malformed part header {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition", "")
    if disposition.split(";", 1)[0].strip().lower() != "form-data":
        raise MultipartError("a part without Content-Disposition: form-data")
    params = header_params(disposition)
    if "name" not in params:
        raise MultipartError("a part without a name")
    return PartInfo(params["name"], params.get("filename"), headers.get("content-type"), headers)


class ThrottledReader:
    """Reads from ``raw`` at no more than ``rate`` bytes per second on average: a slow link on the upload path.

    Waits go through ``stop`` (an event the server sets when it shuts down), so a throttled upload never holds up a
    server that is stopping; the reader then returns what it has, and the parser sees a body that ended early.
    """

    def __init__(self, raw: Readable, rate: float, stop: threading.Event | None = None) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        self._read: Callable[[int], bytes] = getattr(raw, "read1", raw.read)
        self.rate = rate
        self.stop = stop or threading.Event()
        self._started = time.monotonic()
        self._count = 0
        # Small pieces keep the pace smooth: about a tenth of a second's worth per read.
        self._piece = max(1, int(rate / 10))

    def read(self, size: int = -1, /) -> bytes:
        want = self._piece if size < 0 else min(size, self._piece)
        due = self._started + self._count / self.rate
        delay = due - time.monotonic()
        if delay > 0 and self.stop.wait(delay):
            return b""
        data = self._read(want)
        self._count += len(data)
        return data
