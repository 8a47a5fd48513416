"""The guarded HTTP client: every fetch of a URL that a user or a feed supplied.

    async with GuardedClient(allowlist=settings.fetch_allowlist) as client:
        result = await client.get(url, etag=..., last_modified=...)

- http and https only; anything else is refused before any I/O.
- Where it connects: a literal address in the URL, or every address its host name
  resolves to, must be public — not loopback, private, link-local, multicast,
  unspecified, reserved, shared (100.64.0.0/10) or a cloud metadata address, for
  IPv4, IPv6 and IPv4 embedded in IPv6 (``::ffff:127.0.0.1``) — unless the host name
  or the address is on the allow-list (PINWALL_FETCH_ALLOWLIST: hosts or CIDRs).
  The check runs in the connector's resolver, so the address checked is the address
  connected to: there is no second lookup for a rebinding DNS server to answer.
- Redirects are followed here, not by aiohttp, at most `max_redirects`, and every
  hop is checked again (scheme and address).
- A connect timeout, a per-read timeout, and a total timeout over all hops and the
  whole body (a server trickling a byte a second is cut off by it).
- The body is capped after decompression: gzip and deflate are decoded here in
  bounded steps, so a gzip bomb stops at the cap.
- Conditional GET: ``etag`` / ``last_modified`` in, status 304 with ETag and
  Last-Modified out.

Refusals raise FetchRefused and are logged at warning with the URL and the reason;
anything else that goes wrong raises FetchFailed. Both carry a short reason.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import zlib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from types import TracebackType
from typing import Self

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_BYTES = 10 * 1024 * 1024
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
TOTAL_TIMEOUT = 20.0
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
SCHEMES = frozenset({"http", "https"})
CHUNK = 64 * 1024

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, ...
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class FetchError(Exception):
    """A fetch that gave no usable response; `reason` is short and fit for a log line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FetchRefused(FetchError):
    """The guard said no: a scheme, an address, too many redirects."""


class FetchFailed(FetchError):
    """The fetch went wrong: DNS, connection, timeout, a body over the cap, bad encoding."""


def version() -> str:
    try:
        return metadata.version("pinwall")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


def user_agent(public_url: str | None = None) -> str:
    where = f"; {public_url}" if public_url else ""
    return f"Pinwall/{version()} (+link previews and feeds{where})"


# --- which addresses ----------------------------------------------------------------


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: mapped, 6to4 or NAT64."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _plain(ip: IPAddress) -> IPAddress:
    """Without an IPv6 scope id, and IPv4-mapped as the IPv4 address it is."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
    return ip


def address_problem(ip: IPAddress) -> str | None:
    """Why connecting to this address is refused, or None for a public address."""
    ip = _plain(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            problem = address_problem(embedded)
            return f"{problem} embedded in IPv6" if problem else None
    if ip in METADATA_ADDRESSES:
        return "cloud metadata address"
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address"
    if ip.is_multicast:
        return "multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in SHARED:
        return "shared address (100.64.0.0/10)"
    if ip.is_reserved:
        return "reserved address"
    if ip.is_private:
        return "private address"
    if not ip.is_global:
        return "non-public address"
    return None


def _literal(host: str) -> IPAddress | None:
    """The address a URL's host is, when it is one (also legacy forms like 127.1)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and host[0].isdigit():
        try:  # 2130706433, 0x7f.1, 127.1: what the C library would connect to
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _host_key(host: str) -> str:
    return host.strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class Allowlist:
    """Hosts and networks that may be reached although private (PINWALL_FETCH_ALLOWLIST).

    Entries are separated by commas: a host name (exact; ``.corp.example`` or
    ``*.corp.example`` also admits its subdomains), an address, or a CIDR.
    """

    hosts: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, spec: str | Iterable[str] | None) -> Allowlist:
        if spec is None:
            return cls()
        entries = spec.split(",") if isinstance(spec, str) else list(spec)
        hosts: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                if "/" in entry:
                    raise ValueError(f"{entry!r} is neither a host nor a CIDR") from None
            key = _host_key(entry)
            if key.startswith("*."):
                key = key[1:]
            if key.startswith("."):
                suffixes.append(key)
            else:
                hosts.add(key)
        return cls(frozenset(hosts), tuple(suffixes), tuple(networks))

    def __bool__(self) -> bool:
        return bool(self.hosts or self.suffixes or self.networks)

    def admits_host(self, host: str) -> bool:
        key = _host_key(host)
        return key in self.hosts or any(key.endswith(s) for s in self.suffixes)

    def admits_address(self, ip: IPAddress) -> bool:
        ip = _plain(ip)
        return any(ip.version == net.version and ip in net for net in self.networks)

    def problem(self, host: str, ip: IPAddress) -> str | None:
        """Why `host`, at `ip`, may not be reached; None when it may."""
        if self.admits_host(host) or self.admits_address(ip):
            return None
        return address_problem(ip)


class GuardedResolver(AbstractResolver):
    """Resolves with another resolver, then refuses a name with any non-public address.

    The connector connects to the addresses returned here (and caches them), so what
    was checked is what is connected to.
    """

    def __init__(self, allowlist: Allowlist, inner: AbstractResolver | None = None) -> None:
        self.allowlist = allowlist
        self.inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        if not results:
            raise OSError(f"{host} has no address")
        for result in results:
            try:
                ip = ipaddress.ip_address(result["host"])
            except ValueError:
                raise FetchRefused(f"{host} resolves to {result['host']!r}") from None
            problem = self.allowlist.problem(host, ip)
            if problem is not None:
                raise FetchRefused(f"{host} resolves to {_plain(ip)}, a {problem}")
        return results

    async def close(self) -> None:
        await self.inner.close()


# --- bodies ---------------------------------------------------------------------------


class _Decoder:
    """Content-Encoding undone in bounded steps: never more output than asked for."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        if encoding in ("", "identity"):
            self.wbits: int | None = None
        elif encoding in ("gzip", "x-gzip"):
            self.wbits = 16 + zlib.MAX_WBITS
        elif encoding == "deflate":
            self.wbits = zlib.MAX_WBITS  # zlib-wrapped, as the RFC says; raw deflate below
        else:
            raise FetchFailed(f"unsupported content encoding {encoding!r}")
        self._z = zlib.decompressobj(self.wbits) if self.wbits is not None else None
        self._started = False
        self._done = False

    def feed(self, data: bytes, limit: int) -> bytes:
        """Decoded bytes of `data`, at most `limit` of them (the rest is not decoded)."""
        z = self._z
        if z is None:
            return data[:limit]
        out = bytearray()
        while data and not self._done and len(out) < limit:
            try:
                piece = z.decompress(data, limit - len(out))
            except zlib.error:
                if self.encoding == "deflate" and not self._started:
                    self._z = z = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate
                    self._started = True
                    continue
                raise FetchFailed(f"bad {self.encoding} data") from None
            self._started = True
            out += piece
            if z.eof:
                rest = z.unused_data
                if self.encoding == "deflate" or not rest.startswith(b"\x1f\x8b"):
                    self._done = True  # trailing bytes after the stream are ignored
                    break
                self._z = z = zlib.decompressobj(self.wbits or 0)  # the next gzip member
                data = rest
                continue
            data = z.unconsumed_tail
        return bytes(out)

    def flush(self, limit: int) -> bytes:
        if self._z is None or self._done:
            return b""
        try:
            return self._z.flush()[:limit]
        except zlib.error:
            raise FetchFailed(f"bad {self.encoding} data") from None


# --- the client -------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchResult:
    status: int
    url: str  # after redirects
    headers: Mapping[str, str]  # case-insensitive
    body: bytes  # decoded; empty for 304 and for content types not asked for
    content_type: str  # lower case, without parameters; "" when the server sent none
    charset: str | None
    truncated: bool = False  # the body was cut at the cap (only with partial=True)
    redirects: int = 0

    @property
    def etag(self) -> str | None:
        return self.headers.get("ETag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("Last-Modified")

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class GuardedClient:
    """One aiohttp session behind the guard; use as an async context manager."""

    def __init__(
        self,
        *,
        allowlist: Allowlist | str | Iterable[str] | None = None,
        max_bytes: int = MAX_BYTES,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        total_timeout: float = TOTAL_TIMEOUT,
        max_redirects: int = MAX_REDIRECTS,
        public_url: str | None = None,
        user_agent_string: str | None = None,
        resolver: AbstractResolver | None = None,
        connections: int = 16,
    ) -> None:
        self.allowlist = (
            allowlist if isinstance(allowlist, Allowlist) else Allowlist.parse(allowlist)
        )
        self.max_bytes = max_bytes
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.total_timeout = total_timeout
        self.max_redirects = max_redirects
        self.user_agent = user_agent_string or user_agent(public_url)
        self._inner_resolver = resolver
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def open(self) -> None:
        if self._session is not None:
            return
        self._resolver = GuardedResolver(self.allowlist, self._inner_resolver)
        connector = aiohttp.TCPConnector(
            resolver=self._resolver,
            limit=self._connections,
            limit_per_host=4,
            ttl_dns_cache=10,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None,  # enforced over all hops and the body by get()
                connect=self.connect_timeout,
                sock_connect=self.connect_timeout,
                sock_read=self.read_timeout,
            ),
            headers={"User-Agent": self.user_agent},
            auto_decompress=False,  # decoded here, within the cap
            trust_env=False,  # no proxy from the environment: it would skip the check
            cookie_jar=aiohttp.DummyCookieJar(),  # one person's fetch never carries another's
        )

    async def close(self) -> None:
        session, resolver = self._session, self._resolver
        self._session = self._resolver = None
        if session is not None:
            await session.close()
        if resolver is not None:
            await resolver.close()

    def check_url(self, url: URL) -> None:
        """Refuses a URL by its scheme and, for a literal address, by that address."""
        scheme = url.scheme.lower()
        if scheme not in SCHEMES:
            raise FetchRefused(f"scheme {scheme or '(none)'!r} is not http or https")
        host = url.raw_host
        if not host:
            raise FetchRefused("no host in the URL")
        ip = _literal(host)
        if ip is not None:
            problem = self.allowlist.problem(host, ip)
            if problem is not None:
                raise FetchRefused(f"{_plain(ip)} is a {problem}")

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        max_bytes: int | None = None,
        partial: bool = False,
        body_types: Collection[str] | None = None,
        accept: str = "*/*",
    ) -> FetchResult:
        """GETs `url`, following redirects within the guard.

        `max_bytes` caps the decoded body (default the client's); over it the fetch
        fails, or with `partial` the body is cut there (``truncated``). With
        `body_types`, a body of another content type is not read at all.
        """
        try:
            async with asyncio.timeout(self.total_timeout):
                return await self._get(
                    url,
                    etag=etag,
                    last_modified=last_modified,
                    cap=self.max_bytes if max_bytes is None else max_bytes,
                    partial=partial,
                    body_types=body_types,
                    accept=accept,
                )
        except FetchRefused as exc:
            log.warning("fetch of %s refused: %s", url, exc.reason)
            raise
        except FetchFailed:
            raise
        except aiohttp.ConnectionTimeoutError:
            raise FetchFailed(f"connect timed out after {self.connect_timeout:g} s") from None
        except aiohttp.ServerTimeoutError:
            raise FetchFailed(f"read timed out after {self.read_timeout:g} s") from None
        except TimeoutError:
            raise FetchFailed(f"timed out after {self.total_timeout:g} s") from None
        except aiohttp.ClientConnectorDNSError as exc:
            why = exc.os_error.strerror or exc.os_error
            raise FetchFailed(f"cannot resolve {exc.host}: {why}"[:300]) from None
        except aiohttp.ClientConnectorError as exc:
            why = exc.os_error.strerror or exc.os_error
            raise FetchFailed(f"cannot connect to {exc.host}:{exc.port}: {why}"[:300]) from None
        except aiohttp.ClientError as exc:
            raise FetchFailed(f"{type(exc).__name__}: {exc}"[:300]) from None
        except (OSError, ValueError) as exc:
            raise FetchFailed(f"{type(exc).__name__}: {exc}"[:300]) from None

    async def _get(
        self,
        url: str,
        *,
        etag: str | None,
        last_modified: str | None,
        cap: int,
        partial: bool,
        body_types: Collection[str] | None,
        accept: str,
    ) -> FetchResult:
        if self._session is None:
            raise RuntimeError("GuardedClient used outside `async with`")
        try:
            current = URL(url.strip())
        except (ValueError, TypeError):
            raise FetchRefused("not a valid URL") from None
        headers = CIMultiDict({"Accept": accept, "Accept-Encoding": "gzip, deflate"})
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        for hop in range(self.max_redirects + 1):
            self.check_url(current)
            target = current.with_user(None).with_fragment(None)
            async with self._session.get(target, headers=headers, allow_redirects=False) as resp:
                location = resp.headers.get("Location")
                if resp.status in REDIRECT_STATUSES and location:
                    if hop == self.max_redirects:
                        raise FetchRefused(f"more than {self.max_redirects} redirects")
                    try:
                        current = current.join(URL(location))
                    except (ValueError, TypeError):
                        raise FetchFailed("a redirect to an invalid URL") from None
                    continue
                return await self._read(resp, str(target), hop, cap, partial, body_types)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _read(
        self,
        resp: aiohttp.ClientResponse,
        url: str,
        redirects: int,
        cap: int,
        partial: bool,
        body_types: Collection[str] | None,
    ) -> FetchResult:
        has_type = "Content-Type" in resp.headers
        content_type = resp.content_type.lower() if has_type else ""
        charset = resp.charset if has_type else None
        headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict(resp.headers))
        result = FetchResult(
            resp.status, url, headers, b"", content_type, charset, False, redirects
        )
        if resp.status == 304:
            return result
        if body_types is not None and content_type not in body_types:
            return result
        encoding = resp.headers.get("Content-Encoding", "").strip().lower()
        decoder = _Decoder(encoding)
        length = resp.content_length
        if not partial and decoder.wbits is None and length is not None and length > cap:
            raise FetchFailed(f"body of {length} bytes is over the cap of {cap}")
        # Compressed input is never much larger than its output; more is a bad stream.
        raw_cap = cap + cap // 8 + CHUNK
        raw = 0
        body = bytearray()
        truncated = False
        async for chunk in resp.content.iter_chunked(CHUNK):
            raw += len(chunk)
            body += decoder.feed(chunk, cap + 1 - len(body))
            if len(body) > cap or raw > raw_cap:
                if not partial:
                    raise FetchFailed(f"body over the cap of {cap} bytes")
                truncated = True
                break
        else:
            body += decoder.flush(cap + 1 - len(body))
            if len(body) > cap:
                if not partial:
                    raise FetchFailed(f"body over the cap of {cap} bytes")
                truncated = True
        if truncated:
            del body[cap:]
        return FetchResult(
            resp.status, url, headers, bytes(body), content_type, charset, truncated, redirects
        )
