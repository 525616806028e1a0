"""One HTTP POST to a webhook endpoint, and nothing it was not asked to do.

- The host name is resolved here and every address it gives is checked before connecting
  (unless WEBHOOK_ALLOW_PRIVATE_NETWORKS): only public unicast addresses pass, so neither a
  URL nor a DNS answer can point a delivery at loopback, a private network, link-local
  addresses (cloud metadata at 169.254.169.254) or the like. The connection goes to the
  checked address itself (TLS still verifies the host name), so a second DNS answer cannot
  swap it (DNS rebinding).
- Redirects are not followed: a 3xx is a failed attempt.
- WEBHOOK_TIMEOUT_SECONDS bounds the connection and every read; the response body is read up
  to RESPONSE_LIMIT bytes and kept for the delivery log.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

RESPONSE_LIMIT = 2048
USER_AGENT = "Rapport-Webhooks/1.0"


class AddressRefused(Exception):
    """The URL leads to an address deliveries may not reach."""


@dataclass
class Attempt:
    """What one POST gave: a status (None when no response came), or an error."""

    status: int | None = None
    body: str = ""
    error: str = ""
    latency_ms: int = 0
    retry_after: float | None = None
    # Worth trying again later (timeouts, connection errors, 408, 429, 5xx).
    retryable: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def address_allowed(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def literal_address_refused(host: str) -> str:
    """Why a host written as an IP address (or "localhost") may not be a target, or ""."""
    if settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        return ""
    if host.lower().rstrip(".") == "localhost" or host.lower().endswith(".localhost"):
        return "localhost is not a public address."
    try:
        allowed = address_allowed(host)
    except ValueError:
        return ""  # a name: checked when it is resolved
    return "" if allowed else f"{host} is a private, loopback or link-local address."


def resolve(host: str, port: int) -> list[tuple]:
    """The addresses to try, each checked; AddressRefused names the first refused one."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OSError(f"{host} could not be resolved ({exc.strerror}).") from None
    if not settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS:
        for *_, sockaddr in infos:
            if not address_allowed(sockaddr[0]):
                raise AddressRefused(
                    f"{host} resolves to {sockaddr[0]}, a private, loopback or link-local "
                    "address; deliveries only go to public addresses."
                )
    return infos


def _connect(infos: list[tuple], timeout: float) -> socket.socket:
    last: OSError | None = None
    for family, kind, proto, _name, sockaddr in infos:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError("no address to connect to")


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, infos: list[tuple], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._infos = infos

    def connect(self) -> None:
        self.sock = _connect(self._infos, self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, infos: list[tuple], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._infos = infos

    def connect(self) -> None:
        sock = _connect(self._infos, self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, (moment - timezone.now()).total_seconds())


def post(url: str, body: bytes, headers: dict[str, str]) -> Attempt:
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if https else 80)
    except ValueError:
        return Attempt(error="The URL's port is not a number.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        infos = resolve(host, port)
        connection = (_PinnedHTTPS if https else _PinnedHTTP)(host, port, infos, timeout)
        try:
            connection.request(
                "POST",
                path,
                body=body,
                headers={
                    **headers,
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                },
            )
            response = connection.getresponse()
            raw = response.read(RESPONSE_LIMIT)
            retry_after = retry_after_seconds(response.getheader("Retry-After"))
        finally:
            connection.close()
    except AddressRefused as exc:
        return Attempt(error=str(exc), latency_ms=took())
    except TimeoutError:
        return Attempt(error=f"No answer within {timeout:g} s.", latency_ms=took(), retryable=True)
    except ssl.SSLError as exc:
        return Attempt(error=f"TLS failed: {exc.reason or exc}", latency_ms=took(), retryable=True)
    except (OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return Attempt(error=f"Connection failed: {reason}", latency_ms=took(), retryable=True)
    status = response.status
    attempt = Attempt(
        status=status,
        body=raw.decode("utf-8", errors="replace"),
        latency_ms=took(),
        retry_after=retry_after,
        retryable=status in (408, 429) or status >= 500,
    )
    if 300 <= status < 400:
        attempt.error = "Redirects are not followed; give the final URL."
    elif not attempt.succeeded:
        attempt.error = f"The endpoint answered {status}."
    return attempt
