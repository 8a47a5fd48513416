"""The guarded HTTP client against hostile local servers.

Every server here listens on 127.0.0.1. The allow-list is off unless a test needs its
first hop to reach the server; then it admits exactly one host name, `files.test`,
which a stub resolver maps to 127.0.0.1, so that a redirect to a literal 127.0.0.1,
to [::1] or to a name resolving to a private address is genuinely judged by the guard
(a miss would connect, and the server would see the request).
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import logging
import socket
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from jobs.fetch import (
    Allowlist,
    FetchFailed,
    FetchRefused,
    GuardedClient,
    address_problem,
    user_agent,
)

MB = 1024 * 1024

# --- a local HTTP server that misbehaves on request ----------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]


Handler = Callable[[Request, asyncio.StreamWriter], Awaitable[None]]


async def write_head(
    writer: asyncio.StreamWriter, status: int, headers: dict[str, str] | None = None
) -> None:
    lines = [f"HTTP/1.1 {status} X"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append("Connection: close")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()


def respond(status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        await write_head(writer, status, {"Content-Length": str(len(body)), **(headers or {})})
        writer.write(body)
        await writer.drain()

    return handler


def redirect(location: str, status: int = 302) -> Handler:
    return respond(status, headers={"Location": location})


@dataclass
class LocalServer:
    host: str = "127.0.0.1"
    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def url(self, path: str, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def route(self, path: str, handler: Handler) -> str:
        self.routes[path] = handler
        return self.url(path)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            first, *rest = head.decode("latin-1").split("\r\n")
            method, path, _ = first.split(" ", 2)
            headers = {}
            for line in rest:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            request = Request(method, path, headers)
            self.requests.append(request)
            handler = self.routes.get(path.split("?")[0])
            if handler is None:
                prefix = max((p for p in self.routes if path.startswith(p)), key=len, default="")
                handler = self.routes.get(prefix, respond(404, b"not found"))
            await handler(request, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client hung up (what several tests want), or the server closes
        finally:
            writer.close()
            self._tasks.discard(task)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    s = LocalServer()
    await s.start()
    yield s
    await s.close()


class StubResolver(AbstractResolver):
    """Names the tests make up, resolved to the addresses they say (no DNS involved)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        addresses = self.table.get(host)
        if addresses is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            {
                "hostname": host,
                "host": a,
                "port": port,
                "family": socket.AF_INET6 if ":" in a else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for a in addresses
        ]

    async def close(self) -> None:
        pass


def stub() -> StubResolver:
    return StubResolver(
        {
            "files.test": ["127.0.0.1"],  # the allow-listed name of the test server
            "intranet.test": ["10.0.0.1"],
            "mixed.test": ["93.184.216.34", "127.0.0.1"],
            "v6loop.test": ["::1"],
            "mapped.test": ["::ffff:127.0.0.1"],
            "metadata.test": ["169.254.169.254"],
            "shared.test": ["100.64.1.2"],
        }
    )


def allowed_client(**kwargs: object) -> GuardedClient:
    """The first hop, to files.test, is admitted by name; nothing else is."""
    return GuardedClient(allowlist="files.test", resolver=stub(), **kwargs)  # type: ignore[arg-type]


# --- which addresses -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("100.64.0.1", "shared"),
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.1.2.3", "private"),
        ("::ffff:169.254.169.254", "metadata"),
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("192.0.2.10", "private"),  # documentation range: not public either
    ],
)
def test_non_public_addresses_have_a_reason(address: str, problem: str) -> None:
    reason = address_problem(ipaddress.ip_address(address))
    assert reason is not None
    assert problem in reason


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


def test_allowlist_admits_hosts_suffixes_and_networks() -> None:
    allow = Allowlist.parse("wiki.corp, .intra.example, 10.20.0.0/16, 127.0.0.1, [::1]")
    assert allow.admits_host("WIKI.corp.")
    assert not allow.admits_host("evil-wiki.corp")
    assert allow.admits_host("news.intra.example")
    assert not allow.admits_host("intra.example.com")
    assert allow.admits_address(ipaddress.ip_address("10.20.3.4"))
    assert allow.admits_address(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert allow.admits_address(ipaddress.ip_address("::1"))
    assert not allow.admits_address(ipaddress.ip_address("10.21.0.1"))
    assert allow.problem("x", ipaddress.ip_address("10.21.0.1")) == "private address"
    assert not Allowlist.parse("")
    with pytest.raises(ValueError, match="neither a host nor a CIDR"):
        Allowlist.parse("10.0.0.0/99")


# --- refused before any I/O ----------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://ftp.example.org/pub/file.txt",
        "gopher://example.org/1",
        "javascript:alert(1)",
        "data:text/html,<h1>hi</h1>",
        "//example.org/no-scheme",
        "http:///no-host",
    ],
)
async def test_other_schemes_are_refused_before_any_io(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    resolver = stub()
    started = time.monotonic()
    async with GuardedClient(resolver=resolver) as client:
        with caplog.at_level(logging.WARNING, logger="jobs.fetch"), pytest.raises(FetchRefused):
            await client.get(url)
    assert time.monotonic() - started < 1.0
    assert resolver.asked == []  # not even a DNS lookup
    assert any(url in r.getMessage() and "refused" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "127.1",
        "2130706433",
        "0x7f.1",
        "0.0.0.0",
        "[::]",
    ],
)
async def test_literal_loopback_addresses_are_refused(server: LocalServer, host: str) -> None:
    """The server is really there: a miss would reach it."""
    server.route("/", respond(200, b"you should not see this"))
    async with GuardedClient(resolver=stub()) as client:
        with pytest.raises(FetchRefused):
            await client.get(f"http://{host}:{server.port}/")
    assert server.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://192.168.0.1/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "http://100.64.0.1/",
        "http://[fe80::1]/",
        "http://224.0.0.1/",
        "http://[::ffff:10.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
    ],
)
async def test_literal_private_addresses_are_refused(url: str) -> None:
    async with GuardedClient(resolver=stub()) as client:
        with pytest.raises(FetchRefused):
            await client.get(url)


# --- after DNS ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("intranet.test", "private"),
        ("mixed.test", "loopback"),  # one bad address is enough
        ("v6loop.test", "loopback"),
        ("mapped.test", "loopback"),
        ("metadata.test", "metadata"),
        ("shared.test", "shared"),
    ],
)
async def test_a_name_resolving_to_a_private_address_is_refused(
    server: LocalServer, name: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    server.route("/", respond(200, b"no"))
    async with GuardedClient(resolver=stub()) as client:
        with (
            caplog.at_level(logging.WARNING, logger="jobs.fetch"),
            pytest.raises(FetchRefused) as refused,
        ):
            await client.get(server.url("/", host=name))
    assert why in refused.value.reason
    assert name in refused.value.reason
    assert server.requests == []
    assert any(why in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


async def test_localhost_by_the_system_resolver_is_refused(server: LocalServer) -> None:
    server.route("/", respond(200, b"no"))
    async with GuardedClient() as client:  # the default resolver: /etc/hosts, no network
        with pytest.raises(FetchRefused, match="loopback"):
            await client.get(server.url("/", host="localhost"))
    assert server.requests == []


async def test_the_allowlist_admits_a_host_or_a_network(server: LocalServer) -> None:
    server.route("/ok", respond(200, b"hello", {"Content-Type": "text/plain; charset=utf-8"}))
    async with allowed_client() as client:
        result = await client.get(server.url("/ok", host="files.test"))
    assert (result.status, result.body, result.content_type, result.charset) == (
        200,
        b"hello",
        "text/plain",
        "utf-8",
    )
    async with GuardedClient(allowlist="127.0.0.0/8") as client:
        result = await client.get(server.url("/ok"))
        assert result.body == b"hello"
        with pytest.raises(FetchRefused):  # the allow-listed network is not all loopback
            await client.get(f"http://[::1]:{server.port}/ok")
    async with GuardedClient(allowlist="intranet.test", resolver=stub()) as client:
        with pytest.raises(FetchFailed):  # admitted by name; the test guard stops the connect
            await client.get("http://intranet.test:9/")


# --- redirects ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{port}/ok",
        "http://[::1]:{port}/ok",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[::ffff:127.0.0.1]:{port}/ok",
        "http://intranet.test:{port}/ok",
        "http://metadata.test/latest/meta-data/",
        "file:///etc/passwd",
        "ftp://files.test/ok",
        "gopher://files.test:{port}/ok",
    ],
)
async def test_a_redirect_to_a_forbidden_place_is_refused(
    server: LocalServer, location: str, caplog: pytest.LogCaptureFixture
) -> None:
    server.route("/ok", respond(200, b"secret"))
    server.route("/go", redirect(location.format(port=server.port)))
    started = time.monotonic()
    async with allowed_client() as client:
        with caplog.at_level(logging.WARNING, logger="jobs.fetch"), pytest.raises(FetchRefused):
            await client.get(server.url("/go", host="files.test"))
    assert time.monotonic() - started < 2.0
    assert [r.path for r in server.requests] == ["/go"]  # the target was never asked
    assert any("/go" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


async def test_an_allowed_redirect_is_followed(server: LocalServer) -> None:
    server.route("/ok", respond(200, b"fine"))
    server.route("/go", redirect("/ok", 301))
    async with allowed_client() as client:
        result = await client.get(server.url("/go", host="files.test"))
    assert (result.status, result.body, result.redirects) == (200, b"fine", 1)
    assert result.url == server.url("/ok", host="files.test")


def chain(server: LocalServer) -> None:
    """/chain/N redirects to /chain/N-1; /chain/0 answers."""

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        n = int(request.path.rsplit("/", 1)[1])
        if n == 0:
            await respond(200, b"end")(request, writer)
        else:
            await redirect(f"/chain/{n - 1}")(request, writer)

    server.route("/chain/", handler)


async def test_five_redirects_are_followed_and_a_sixth_is_refused(server: LocalServer) -> None:
    chain(server)
    async with allowed_client() as client:
        result = await client.get(server.url("/chain/5", host="files.test"))
        assert (result.body, result.redirects) == (b"end", 5)
        server.requests.clear()
        with pytest.raises(FetchRefused, match="more than 5 redirects"):
            await client.get(server.url("/chain/6", host="files.test"))
    assert len(server.requests) == 6


async def test_a_redirect_loop_is_refused(server: LocalServer) -> None:
    server.route("/loop", redirect("/loop"))
    async with allowed_client() as client:
        with pytest.raises(FetchRefused, match="redirects"):
            await client.get(server.url("/loop", host="files.test"))
    assert len(server.requests) == 6


# --- bodies -------------------------------------------------------------------------------


def stream(total: int, chunk: bytes, headers: dict[str, str] | None = None) -> Handler:
    """A body of `total` bytes, chunked (no length announced), written as fast as read."""

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        await write_head(writer, 200, {"Transfer-Encoding": "chunked", **(headers or {})})
        sent = 0
        while sent < total:
            piece = chunk[: total - sent]
            writer.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
            await writer.drain()
            sent += len(piece)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    return handler


class Bounds:
    """Measures the wall time and the peak Python memory of a block."""

    def __enter__(self) -> Bounds:
        tracemalloc.start()
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self.started
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


async def test_a_1_gb_body_is_cut_at_the_cap(server: LocalServer) -> None:
    server.route("/big", stream(1024 * MB, b"x" * MB, {"Content-Type": "text/html"}))
    async with allowed_client() as client:
        with Bounds() as bounds, pytest.raises(FetchFailed, match="over the cap"):
            await client.get(server.url("/big", host="files.test"))
    assert bounds.seconds < 10
    assert bounds.peak < 40 * MB, bounds.peak  # the cap is 10 MB


async def test_a_1_gb_body_announced_is_refused_unread(server: LocalServer) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        await write_head(writer, 200, {"Content-Length": str(1024 * MB)})
        for _ in range(1024):
            writer.write(b"y" * MB)
            await writer.drain()

    server.route("/big", handler)
    async with allowed_client() as client:
        with Bounds() as bounds, pytest.raises(FetchFailed, match="over the cap"):
            await client.get(server.url("/big", host="files.test"))
    assert bounds.seconds < 5
    assert bounds.peak < 20 * MB


async def test_partial_reads_stop_at_their_own_cap(server: LocalServer) -> None:
    server.route("/big", stream(1024 * MB, b"z" * MB, {"Content-Type": "text/html"}))
    async with allowed_client() as client:
        result = await client.get(
            server.url("/big", host="files.test"), max_bytes=512 * 1024, partial=True
        )
    assert result.truncated
    assert result.body == b"z" * (512 * 1024)


def gzip_bomb(expanded_mb: int) -> bytes:
    """`expanded_mb` MB of zeros as one gzip stream, built from one compressed MB
    repeated (after a full flush each compressed MB is the same bytes). The trailer's
    checksum is not recomputed: nobody reads that far."""
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MB)
    first = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    assert c.compress(block) + c.flush(zlib.Z_FULL_FLUSH) == again
    return first + again * (expanded_mb - 1) + c.flush()


async def test_a_gzip_bomb_stops_at_the_cap(server: LocalServer) -> None:
    bomb = gzip_bomb(10 * 1024)  # 10 GB of zeros
    assert len(bomb) < 12 * MB
    assert zlib.decompressobj(31).decompress(bomb[:4096], MB) == bytes(MB)  # really gzip

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        await write_head(
            writer,
            200,
            {
                "Content-Type": "text/html",
                "Content-Encoding": "gzip",
                "Content-Length": str(len(bomb)),
            },
        )
        for i in range(0, len(bomb), 64 * 1024):
            writer.write(bomb[i : i + 64 * 1024])
            await writer.drain()

    server.route("/bomb", handler)
    async with allowed_client() as client:
        with Bounds() as bounds, pytest.raises(FetchFailed, match="over the cap"):
            await client.get(server.url("/bomb", host="files.test"))
        assert bounds.seconds < 10
        assert bounds.peak < 60 * MB, bounds.peak  # cap 10 MB; the bomb itself is ~10 MB
        result = await client.get(
            server.url("/bomb", host="files.test"), max_bytes=100_000, partial=True
        )
    assert result.truncated
    assert result.body == bytes(100_000)


async def test_gzip_and_deflate_bodies_are_decoded(server: LocalServer) -> None:
    text = b"<html><title>Hi</title></html>" * 100
    server.route("/gz", respond(200, gzip.compress(text), {"Content-Encoding": "gzip"}))
    server.route("/zlib", respond(200, zlib.compress(text), {"Content-Encoding": "deflate"}))
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    server.route(
        "/raw", respond(200, raw.compress(text) + raw.flush(), {"Content-Encoding": "deflate"})
    )
    server.route("/br", respond(200, b"\x0b\x02\x80", {"Content-Encoding": "br"}))
    server.route("/bad", respond(200, b"not gzip at all", {"Content-Encoding": "gzip"}))
    async with allowed_client() as client:
        for path in ("/gz", "/zlib", "/raw"):
            result = await client.get(server.url(path, host="files.test"))
            assert result.body == text, path
        with pytest.raises(FetchFailed, match="unsupported content encoding"):
            await client.get(server.url("/br", host="files.test"))
        with pytest.raises(FetchFailed, match="bad gzip"):
            await client.get(server.url("/bad", host="files.test"))
    assert server.requests[0].headers["accept-encoding"] == "gzip, deflate"


async def test_a_body_of_another_type_is_not_read_when_not_wanted(server: LocalServer) -> None:
    server.route("/img", stream(1024 * MB, b"\x89PNG" * 1024, {"Content-Type": "image/png"}))
    async with allowed_client() as client:
        with Bounds() as bounds:
            result = await client.get(
                server.url("/img", host="files.test"), body_types={"text/html"}
            )
    assert (result.status, result.content_type, result.body) == (200, "image/png", b"")
    assert bounds.seconds < 5


# --- time -----------------------------------------------------------------------------------


async def test_a_trickling_server_is_cut_off_by_the_total_timeout(server: LocalServer) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        await write_head(writer, 200, {"Content-Length": "1000", "Content-Type": "text/html"})
        for _ in range(1000):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(1.0)

    server.route("/slow", handler)
    # The per-read timeout never fires (a byte comes every second); the total does.
    async with allowed_client(total_timeout=2.0, read_timeout=5.0) as client:
        started = time.monotonic()
        with pytest.raises(FetchFailed, match=r"timed out after 2 s"):
            await client.get(server.url("/slow", host="files.test"))
    assert time.monotonic() - started < 3.5


async def test_a_silent_server_is_cut_off_by_the_read_timeout(server: LocalServer) -> None:
    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    server.route("/mute", handler)
    async with allowed_client(total_timeout=10.0, read_timeout=0.5) as client:
        started = time.monotonic()
        with pytest.raises(FetchFailed, match="timed out"):
            await client.get(server.url("/mute", host="files.test"))
    assert time.monotonic() - started < 3


# --- conditional GET and manners ------------------------------------------------------------


async def test_conditional_get(server: LocalServer) -> None:
    etag, modified = '"v1"', "Wed, 25 Nov 2026 08:00:00 GMT"

    async def handler(request: Request, writer: asyncio.StreamWriter) -> None:
        if request.headers.get("if-none-match") == etag:
            await write_head(writer, 304, {"ETag": etag, "Last-Modified": modified})
            return
        await respond(200, b"<rss/>", {"ETag": etag, "Last-Modified": modified})(request, writer)

    server.route("/feed", handler)
    async with allowed_client() as client:
        first = await client.get(server.url("/feed", host="files.test"))
        assert (first.status, first.body, first.etag, first.last_modified) == (
            200,
            b"<rss/>",
            etag,
            modified,
        )
        again = await client.get(
            server.url("/feed", host="files.test"), etag=first.etag, last_modified=modified
        )
    assert again.not_modified
    assert (again.body, again.etag, again.last_modified) == (b"", etag, modified)
    sent = server.requests[1].headers
    assert (sent["if-none-match"], sent["if-modified-since"]) == (etag, modified)
    assert "if-none-match" not in server.requests[0].headers


async def test_a_polite_user_agent_and_no_credentials(server: LocalServer) -> None:
    server.route("/ua", respond(200, b"ok"))
    async with allowed_client(public_url="https://pinwall.example.org") as client:
        await client.get(server.url("/ua", host="files.test").replace("http://", "http://u:p@"))
    ua = server.requests[0].headers["user-agent"]
    assert ua.startswith("Pinwall/")
    assert "(+link previews and feeds; https://pinwall.example.org)" in ua
    assert "authorization" not in server.requests[0].headers
    assert user_agent().endswith("(+link previews and feeds)")


async def test_failures_are_fetch_failed_with_short_reasons(server: LocalServer) -> None:
    async with allowed_client() as client:
        with pytest.raises(FetchFailed, match=r"cannot resolve nowhere\.test") as failed:
            await client.get("http://nowhere.test/")
        assert len(failed.value.reason) < 200
        # Nothing listens on the port of a server that is gone.
        gone = LocalServer()
        await gone.start()
        await gone.close()
        with pytest.raises(FetchFailed, match="cannot connect"):
            await client.get(gone.url("/", host="files.test"))
        with pytest.raises(FetchRefused):
            await client.get("not a url at all")
