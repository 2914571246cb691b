"""Fetching user-supplied URLs without letting them reach inside the cluster (SSRF guard).

Every hop (the URL and each redirect) is resolved first; if any address it resolves to is not
globally routable (private, loopback, link-local incl. cloud metadata, CGNAT, multicast,
reserved) the request is refused unless the host name or a CIDR is allowlisted. The connection
then goes to the address that was checked (DNS pinned, TLS still verified against the name), so
a DNS answer that changes between check and connect cannot slip through.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from .errors import ApiError
from .settings import ServingSettings

log = logging.getLogger("rgpu.fetch")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class UrlPolicy:
    """What user-supplied URLs may reach, and how much and how long they may take."""

    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    max_bytes: int = 4 << 30
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    total_timeout_s: float = 1800.0
    max_redirects: int = 5

    @classmethod
    def from_settings(cls, settings: ServingSettings) -> UrlPolicy:
        """The policy a predictor's ``ServingSettings`` describe (allowlist, caps, timeouts)."""
        return cls.from_allowlist(
            settings.url_allowlist_entries(),
            max_bytes=settings.max_download_bytes,
            connect_timeout_s=settings.fetch_connect_timeout_s,
            read_timeout_s=settings.fetch_read_timeout_s,
            total_timeout_s=settings.fetch_total_timeout_s,
            max_redirects=settings.fetch_max_redirects,
        )

    @classmethod
    def from_allowlist(cls, entries: list[str], **limits: Any) -> UrlPolicy:
        hosts: set[str] = set()
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(allow_hosts=frozenset(hosts), allow_networks=tuple(networks), **limits)


def address_blocked(
    ip: IPAddress, allow_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
) -> bool:
    """True for any address that is not publicly routable, unless a CIDR allowlists it."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in net for net in allow_networks):
        return False
    return not ip.is_global or ip.is_multicast


class BlockedUrl(ApiError):
    def __init__(self, field: str, reason: str):
        super().__init__(400, f"{field} is not allowed: {reason}")


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))


async def check_url(url: str, policy: UrlPolicy, field: str) -> tuple[httpx.URL, IPAddress]:
    """Validate scheme and host, resolve, and return the URL with the address to connect to."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BlockedUrl(field, "only http and https URLs are accepted")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise BlockedUrl(field, "the URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise BlockedUrl(field, f"invalid port ({exc})") from exc
    try:
        addresses = await resolve(host, port)
    except OSError as exc:
        raise ApiError(502, f"could not resolve the host of {field}: {exc.strerror or exc}") from exc
    if not addresses:
        raise ApiError(502, f"could not resolve the host of {field}")
    if host.lower() not in policy.allow_hosts:
        blocked = [ip for ip in addresses if address_blocked(ip, policy.allow_networks)]
        if blocked:
            log.warning("blocked %s host %r resolving to %s", field, host, ", ".join(map(str, blocked)))
            raise BlockedUrl(
                field,
                "it points to a private, loopback, link-local or metadata address "
                "(allowlist the host or network in REFLECTOR_GPU_URL_ALLOWLIST if this is intended)",
            )
    return httpx.URL(url), addresses[0]


def _pinned_request(
    client: httpx.AsyncClient,
    method: str,
    url: httpx.URL,
    ip: IPAddress,
    headers: dict[str, str] | None = None,
    content: AsyncIterator[bytes] | None = None,
) -> httpx.Request:
    """A request that connects to ``ip`` while speaking to ``url``'s host (Host header and SNI)."""
    headers = dict(headers or {})
    headers["Host"] = url.netloc.decode("ascii")
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return client.build_request(
        method, url.copy_with(host=str(ip)), headers=headers, extensions=extensions, content=content
    )


def _client(policy: UrlPolicy) -> httpx.AsyncClient:
    timeout = httpx.Timeout(policy.read_timeout_s, connect=policy.connect_timeout_s)
    # trust_env=False: a proxy from the environment would bypass the address checks.
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)


@dataclass
class Downloaded:
    path: Path
    filename: str
    content_type: str
    size: int


async def _stream_to(resp: httpx.Response, out: BinaryIO, policy: UrlPolicy, field: str) -> int:
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > policy.max_bytes:
        raise ApiError(413, f"{field} is {declared} bytes, over the {policy.max_bytes}-byte limit")
    size = 0
    async for chunk in resp.aiter_bytes(1 << 16):
        size += len(chunk)
        if size > policy.max_bytes:
            raise ApiError(413, f"{field} is over the {policy.max_bytes}-byte limit")
        out.write(chunk)
    return size


@contextlib.asynccontextmanager
async def download(
    url: str, dest_dir: Path, policy: UrlPolicy, field: str = "audio_file_url"
) -> AsyncIterator[Downloaded]:
    """Download ``url`` into a temp file in ``dest_dir`` (removed on exit), following safe redirects.

    404 from the origin -> 404; other upstream failures -> 502; timeouts -> 504; too big -> 413.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="download-", dir=dest_dir)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                async with asyncio.timeout(policy.total_timeout_s):
                    result = await _follow(url, out, policy, field)
            except TimeoutError as exc:
                raise ApiError(504, f"fetching {field} took longer than {policy.total_timeout_s:g} s") from exc
        yield Downloaded(path=path, filename=result[0], content_type=result[1], size=result[2])
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


async def _send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    policy: UrlPolicy,
    field: str,
    follow: frozenset[int],
    stream: bool = False,
    headers: dict[str, str] | None = None,
    body: Callable[[], AsyncIterator[bytes]] | None = None,
) -> tuple[httpx.Response, str]:
    """Send ``method`` to ``url``, following the redirects in ``follow``; every hop resolved,
    checked and pinned. Returns the final response (open when ``stream``) and its URL."""
    verb = "fetch" if method == "GET" else "upload to"
    current = url
    for _hop in range(policy.max_redirects + 1):
        target, ip = await check_url(current, policy, field)
        request = _pinned_request(
            client, method, target, ip, headers=headers, content=body() if body is not None else None
        )
        try:
            resp = await client.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            raise ApiError(504, f"timed out trying to {verb} {field}") from exc
        except httpx.HTTPError as exc:
            raise ApiError(502, f"could not {verb} {field}: {type(exc).__name__}") from exc
        if resp.status_code in follow and "location" in resp.headers:
            await resp.aclose()
            current = urljoin(current, resp.headers["location"])
            continue
        return resp, current
    raise ApiError(502, f"{field} redirected more than {policy.max_redirects} times")


async def _follow(url: str, out: BinaryIO, policy: UrlPolicy, field: str) -> tuple[str, str, int]:
    async with _client(policy) as client:
        resp, final_url = await _send(client, "GET", url, policy, field, follow=_REDIRECTS, stream=True)
        try:
            if resp.status_code == 404:
                raise ApiError(404, f"{field} not found (the server answered 404)")
            if resp.status_code >= 400:
                raise ApiError(502, f"could not fetch {field}: the server answered {resp.status_code}")
            try:
                size = await _stream_to(resp, out, policy, field)
            except httpx.TimeoutException as exc:
                raise ApiError(504, f"timed out reading {field}") from exc
            except httpx.HTTPError as exc:
                raise ApiError(502, f"could not read {field}: {type(exc).__name__}") from exc
            filename = os.path.basename(unquote(urlsplit(final_url).path))
            return filename, resp.headers.get("content-type", ""), size
        finally:
            await resp.aclose()


async def _file_chunks(path: Path, chunk_size: int = 1 << 16) -> AsyncIterator[bytes]:
    with open(path, "rb") as f:
        while True:
            chunk = await asyncio.to_thread(f.read, chunk_size)
            if not chunk:
                return
            yield chunk


async def upload(
    path: Path,
    url: str,
    policy: UrlPolicy,
    field: str = "output_url",
    content_type: str | None = None,
) -> int:
    """PUT the file at ``path`` to ``url`` (e.g. a presigned object-store URL), streamed from disk.

    Same guard as ``download``: the URL (and any 307/308 redirect, which repeats the PUT) is
    resolved, checked and pinned. The body is sent with an explicit Content-Length (presigned
    PUTs refuse chunked bodies). Failures: the server's 4xx/5xx -> 502, timeouts -> 504.
    Returns the number of bytes sent.
    """
    size = path.stat().st_size
    headers = {"Content-Length": str(size)}
    if content_type:
        headers["Content-Type"] = content_type
    try:
        async with asyncio.timeout(policy.total_timeout_s), _client(policy) as client:
            # Only 307/308 repeat a PUT with its body (301/302/303 would turn it into a GET).
            resp, _ = await _send(
                client,
                "PUT",
                url,
                policy,
                field,
                follow=frozenset({307, 308}),
                headers=headers,
                body=lambda: _file_chunks(path),
            )
            if resp.status_code >= 300:
                raise ApiError(502, f"could not upload to {field}: the server answered {resp.status_code}")
            return size
    except TimeoutError as exc:
        raise ApiError(504, f"uploading to {field} took longer than {policy.total_timeout_s:g} s") from exc
