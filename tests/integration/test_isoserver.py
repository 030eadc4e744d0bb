"""The ISO server against real clients: curl and httpx, plain HTTP and TLS, one reader and many."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from wizard.core.errors import WizardError
from wizard.lab.certs import create_node_certificate
from wizard.providers.isoserver import IsoServer, choose_bind_address, parse_range, route_source

pytestmark = pytest.mark.redfish

SIZE = 3 * 1024 * 1024 + 12345  # not a multiple of any chunk size


@pytest.fixture(scope="module")
def iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("iso") / "palette appliance.iso"  # a space: names are URL-quoted
    path.write_bytes(os.urandom(SIZE))
    return path


@pytest.fixture
def server() -> Iterator[IsoServer]:
    with IsoServer() as s:
        yield s


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["curl", "-s", "--max-time", "60", *args], capture_output=True, check=False)


def wait_until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def settled(server: IsoServer, name: str, expected: dict[str, int]) -> bool:
    """Waits until the counters show ``expected``: a client can finish reading before the server thread counts."""
    wait_until(lambda: server.served(name) == expected and server.snapshot().files[name].active == 0)
    return True


def test_whole_file_with_curl_counts_bytes_per_client(server: IsoServer, iso: Path, tmp_path: Path) -> None:
    url = server.publish(iso)
    assert url.startswith(server.url_base + "/") and url.endswith("/palette%20appliance.iso")
    out = tmp_path / "copy.iso"
    r = curl("-o", str(out), "-w", "%{http_code}", url)
    assert r.stdout == b"200"
    assert out.read_bytes() == iso.read_bytes()
    assert settled(server, iso.name, {"127.0.0.1": SIZE})
    assert server.fetched(iso.name)
    assert server.fetched(iso.name, {"127.0.0.1"})
    assert not server.fetched(iso.name, {"10.1.2.3"})


def test_head_gives_headers_and_no_body(server: IsoServer, iso: Path) -> None:
    url = server.publish(iso)
    r = curl("-I", url)
    head = r.stdout.decode()
    assert head.startswith("HTTP/1.1 200")
    headers = dict(line.split(": ", 1) for line in head.strip().splitlines()[1:])
    assert headers["Content-Length"] == str(SIZE)
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"] and headers["Last-Modified"]
    assert settled(server, iso.name, {"127.0.0.1": 0})
    assert server.fetched(iso.name)  # a HEAD proves the URL reachable


@pytest.mark.parametrize(
    ("spec", "start", "end"),
    [("0-99", 0, 99), ("1000-", 1000, SIZE - 1), ("-4096", SIZE - 4096, SIZE - 1), ("5-999999999", 5, SIZE - 1)],
)
def test_single_ranges_with_curl(server: IsoServer, iso: Path, spec: str, start: int, end: int) -> None:
    url = server.publish(iso)
    r = curl("-D", "-", "-H", f"Range: bytes={spec}", url)
    head, _, body = r.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 206")
    assert f"Content-Range: bytes {start}-{end}/{SIZE}".encode() in head
    assert f"Content-Length: {end - start + 1}".encode() in head
    assert body == iso.read_bytes()[start : end + 1]
    assert settled(server, iso.name, {"127.0.0.1": end - start + 1})


def test_unsatisfiable_range_is_416(server: IsoServer, iso: Path) -> None:
    url = server.publish(iso)
    with httpx.Client() as c:
        for spec in (f"bytes={SIZE}-", "bytes=-0"):
            r = c.get(url, headers={"Range": spec})
            assert r.status_code == 416
            assert r.headers["Content-Range"] == f"bytes */{SIZE}"
            assert r.content == b""


def test_multi_range_and_malformed_range_serve_the_whole_file(server: IsoServer, iso: Path) -> None:
    url = server.publish(iso)
    with httpx.Client() as c:
        for spec in ("bytes=0-1,5-9", "bytes=9-1", "lines=0-9", "bytes=abc"):
            r = c.get(url, headers={"Range": spec})
            assert r.status_code == 200, spec
            assert len(r.content) == SIZE


def test_if_range_with_a_stale_validator_serves_the_whole_file(server: IsoServer, iso: Path) -> None:
    url = server.publish(iso)
    with httpx.Client() as c:
        etag = c.head(url).headers["ETag"]
        fresh = c.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
        stale = c.get(url, headers={"Range": "bytes=0-9", "If-Range": '"something-else"'})
    assert fresh.status_code == 206 and len(fresh.content) == 10
    assert stale.status_code == 200 and len(stale.content) == SIZE


def test_wrong_token_is_a_bare_404(server: IsoServer, iso: Path) -> None:
    url = server.publish(iso)
    token = url.split("/")[3]
    with httpx.Client() as c:
        answers = [
            c.get(f"{server.url_base}/{'x' * len(token)}/palette%20appliance.iso"),
            c.get(f"{server.url_base}/palette%20appliance.iso"),
            c.get(f"{server.url_base}/{token}/other.iso"),
            c.get(f"{server.url_base}/{token}/"),
            c.get(f"{server.url_base}/{token}/sub/palette%20appliance.iso"),
            c.get(f"{server.url_base}/{token}/palette%2Fappliance.iso"),
            c.head(f"{server.url_base}/"),
        ]
    for r in answers:
        assert r.status_code == 404
        assert r.content in (b"Not Found", b"")
        assert "appliance" not in r.text and "Content-Range" not in r.headers
    assert server.served(iso.name) == {}


def test_token_never_logged(server: IsoServer, iso: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = server.publish(iso)
    token = url.split("/")[3]
    curl("-o", os.devnull, url)
    curl("-o", os.devnull, "-H", "Range: bytes=0-9", url)
    curl("-o", os.devnull, url.replace(token, token[:-1] + "A"))
    with socket.create_connection(("127.0.0.1", server.port)) as raw:  # garbage request line carrying the token
        raw.sendall(f"BOGUS /{token} X\r\n\r\n".encode())
        raw.recv(1024)
    server.stop()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "ISO server" in text
    assert token not in text


def test_concurrent_range_readers_reassemble_the_file(server: IsoServer, iso: Path, tmp_path: Path) -> None:
    url = server.publish(iso)
    parts = 8
    step = -(-SIZE // parts)
    # --fail: an HTTP error answer is a failed part (curl exits 0 on one otherwise); -w says what each part got.
    write_out = "%{http_code} %{size_download} %{remote_ip}:%{remote_port}"
    procs = [
        subprocess.Popen(
            [
                *("curl", "-sS", "--fail", "-w", write_out, "-o", str(tmp_path / f"p{i}")),
                *("-r", f"{i * step}-{min(SIZE, (i + 1) * step) - 1}", url),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(parts)
    ]
    said = [p.communicate(timeout=60) for p in procs]
    outcomes = [
        (p.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
        for p, (out, err) in zip(procs, said, strict=True)
    ]
    assert all(code == 0 for code, _, _ in outcomes), outcomes
    joined = b"".join((tmp_path / f"p{i}").read_bytes() for i in range(parts))
    whole = iso.read_bytes()
    wrong = [i for i in range(parts) if joined[i * step : (i + 1) * step] != whole[i * step : (i + 1) * step]]
    assert not wrong and len(joined) == SIZE, f"parts {wrong} differ; curl said {outcomes}"
    assert settled(server, iso.name, {"127.0.0.1": SIZE})
    stats = server.snapshot().files[iso.name].clients["127.0.0.1"]
    assert stats.requests == parts
    assert stats.active == 0


def test_a_stalled_reader_does_not_block_others_and_shows_as_active(server: IsoServer, tmp_path: Path) -> None:
    big = tmp_path / "big.iso"
    big.write_bytes(os.urandom(64 * 1024 * 1024))  # far more than the socket buffers hold
    url = server.publish(big)
    path = "/" + url.split("/", 3)[3]
    with socket.create_connection(("127.0.0.1", server.port)) as stalled:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        wait_until(lambda: server.snapshot().files["big.iso"].active == 1)
        assert server.snapshot().connections >= 1
        with httpx.Client() as c:
            r = c.get(url, headers={"Range": "bytes=0-1023"})
        assert r.status_code == 206 and r.content == big.read_bytes()[:1024]
        snap = server.snapshot().files["big.iso"]
        assert snap.clients["127.0.0.1"].requests == 2
        assert 1024 <= snap.bytes_sent < big.stat().st_size  # the stalled reader got only what buffers hold
    wait_until(lambda: server.snapshot().files["big.iso"].active == 0)


def test_keep_alive_serves_several_requests_on_one_connection(server: IsoServer, iso: Path) -> None:
    url = server.publish(iso)
    r = curl("-o", os.devnull, "-o", os.devnull, "-w", "%{num_connects}\n", url, url)
    assert r.stdout.split() == [b"1", b"0"]  # the second transfer reused the first connection
    assert settled(server, iso.name, {"127.0.0.1": 2 * SIZE})


def test_tls_serves_with_chunked_reads(iso: Path, tmp_path: Path) -> None:
    cert = create_node_certificate(tmp_path / "tls", ip="127.0.0.1", hostname="localhost")
    with IsoServer(ssl_context=cert.server_context()) as tls:
        url = tls.publish(iso)
        assert url.startswith("https://127.0.0.1:")
        # A client speaking plain HTTP to the TLS port fails its handshake; the server carries on.
        assert curl("-o", os.devnull, url.replace("https://", "http://")).returncode != 0
        out = tmp_path / "copy.iso"
        r = curl("--cacert", str(cert.cert_path), "-o", str(out), "-w", "%{http_code}", url)
        assert r.stdout == b"200"
        assert out.read_bytes() == iso.read_bytes()
        ranged = curl("--cacert", str(cert.cert_path), "-r", "10-19", url)
        assert ranged.stdout == iso.read_bytes()[10:20]
        refused = curl("-o", os.devnull, url)  # the certificate is not in the system store
        assert refused.returncode != 0
        assert settled(tls, iso.name, {"127.0.0.1": SIZE + 10})


def test_same_file_under_per_node_names(server: IsoServer, iso: Path) -> None:
    a = server.publish(iso, "node-1.iso")
    b = server.publish(iso, "node-2.iso")
    assert server.name_for_url(a) == "node-1.iso"
    assert server.name_for_url(b) == "node-2.iso"
    assert server.name_for_url(a.replace(a.split("/")[3], "nope")) is None
    assert server.name_for_url("http://elsewhere.example/x.iso") is None
    curl("-o", os.devnull, "-r", "0-9", b)
    assert server.served("node-1.iso") == {}
    assert settled(server, "node-2.iso", {"127.0.0.1": 10})
    server.unpublish("node-2.iso")
    assert curl("-o", os.devnull, "-w", "%{http_code}", b).stdout == b"404"


def test_stop_cuts_open_connections_and_frees_the_port(tmp_path: Path) -> None:
    big = tmp_path / "big.iso"
    big.write_bytes(os.urandom(32 * 1024 * 1024))
    server = IsoServer().start()
    url = server.publish(big)
    with ThreadPoolExecutor(1) as pool, httpx.Client(timeout=30) as c, c.stream("GET", url) as r:
        chunks = r.iter_bytes(65536)
        assert next(chunks)
        pool.submit(server.stop).result(timeout=30)
        with pytest.raises(httpx.HTTPError):
            for _ in chunks:
                pass
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the cut connections linger in TIME_WAIT
        s.bind(("127.0.0.1", server.port))  # fails while anything still listens there
    with pytest.raises(httpx.ConnectError):
        httpx.get(url)


def test_port_in_use_is_a_wizard_error() -> None:
    with IsoServer() as first, pytest.raises(WizardError, match="Cannot start the ISO server"):
        IsoServer(port=first.port)


def test_wildcard_bind_needs_an_advertised_address() -> None:
    with pytest.raises(ValueError, match="advertised"):
        IsoServer("0.0.0.0")
    with IsoServer("0.0.0.0", advertise="jump.example") as s:
        assert s.url_base == f"http://jump.example:{s.port}"


def test_choose_bind_address_routes_like_the_os() -> None:
    assert route_source("127.0.0.1") == "127.0.0.1"
    assert choose_bind_address(["127.0.0.1", "https://127.0.0.1:8443", "localhost:443"]) == "127.0.0.1"
    ip = subprocess.run(["ip", "-4", "route", "get", "192.0.2.1"], capture_output=True, text=True)
    if ip.returncode == 0 and " src " in ip.stdout:  # a default route exists: compare with the kernel's own choice
        expected = ip.stdout.split(" src ")[1].split()[0]
        assert choose_bind_address(["192.0.2.1", "https://192.0.2.1"]) == expected
    with pytest.raises(WizardError, match="No route"):
        choose_bind_address(["no-such-host.invalid"])


def test_parse_range_edges() -> None:
    assert parse_range("bytes=0-0", 10) is not None
    assert parse_range("bytes=-20", 10).start == 0  # type: ignore[union-attr]
    assert parse_range("bytes = 3-4", 10) is not None
    assert parse_range("bytes=3-4, 6-7", 10) is None
    assert parse_range("bytes=", 10) is None
    assert parse_range("bytes=-", 10) is None


def test_a_restarted_server_with_the_last_token_and_port_serves_the_same_url(iso: Path) -> None:
    with IsoServer() as first:
        url = first.publish(iso, "node-1.iso")
        token, port = first.token, first.port
    assert curl("-o", "/dev/null", "-w", "%{http_code}", url).returncode != 0  # stopped: nothing listens
    with IsoServer("127.0.0.1", port, token=token) as again:
        assert again.publish(iso, "node-1.iso") == url
        result = curl("-r", "0-99", url)
        assert result.returncode == 0 and result.stdout == iso.read_bytes()[:100]


@pytest.mark.parametrize("token", ["short", "has/slash-in-the-token", "spaces are not url safe!!"])
def test_a_token_that_cannot_be_a_url_segment_is_refused(token: str) -> None:
    with pytest.raises(ValueError, match="URL-safe"):
        IsoServer(token=token)
