"""Department webhooks: a thin JSON payload POSTed to each department system's endpoint, signed
by the Standard Webhooks specification (https://www.standardwebhooks.com/).

What a receiver gets, per delivery attempt:

- `webhook-id`: the delivery id, the same on every retry of one delivery, so the receiver
  dedupes; `webhook-timestamp`: the attempt's time (Unix seconds); `webhook-signature`:
  `v1,<base64>`, one per active secret separated by spaces while a rotation is under way (the
  `standardwebhooks` package signs; a receiver verifies with `Webhook(secret).verify(body, headers)`);
- the body: the thin payload, compact JSON in UTF-8; `Content-Type: application/json`,
  `User-Agent: civicgrid-notifications/0.1`.

Safety against server-side request forgery: an endpoint URL is set by a district admin, yet a
wrong or hostile one must not make this service reach its own network. `check_webhook_url`
refuses anything but https (http only for an allow-listed local receiver), credentials in the
URL, a missing host or a bad port, and a host of which ANY resolved address is loopback,
link-local, private (RFC 1918, ULA), unspecified, multicast, reserved, shared (CGNAT
100.64.0.0/10), or an IPv4 address of those wrapped in IPv6 (mapped, NAT64, 6to4, Teredo), unless
the endpoint is allow-listed (`allow_private`). Cloud metadata addresses (169.254.169.254, Alibaba
Cloud's 100.100.100.200, Tencent Cloud's 169.254.0.23, AWS's fd00:ec2::254) are refused even then.

The connection is pinned to the checked address: the sender's own clients connect through a
network backend that resolves the host once, checks every address it got and connects to those
addresses only, while the URL, the Host header and the TLS SNI and certificate check keep the
name. A DNS answer that changes between a check and the connect (DNS rebinding) therefore never
reaches an unchecked address. A keep-alive connection is reused only for the same host, port
and allow-list setting (one client per setting), so it was checked when it was opened.

Redirects are not followed (a 3xx fails, naming it); answers: 2xx sent, 410 gone, 408/429/5xx,
timeouts and connection errors retry (with the Retry-After the receiver gave), other 4xx failed.
At most 4 KiB of an answer's body is read; none of it is logged or kept.

A small circuit per endpoint URL keeps one failing department from slowing the others: after
`failures` retry-class outcomes in a row it opens for a cool-down (60 s, doubling up to 10 min
while the trial requests keep failing) and `send` answers `retry` at once, without a request.
"""
from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
import ssl
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Awaitable, Callable, Iterable, Mapping, Sequence
from urllib.parse import urljoin

import httpcore
import httpx
from standardwebhooks import Webhook

from civicgrid_common.circuit import Circuit, CircuitPolicy

from civicgrid_notifications.adapters.channels import USER_AGENT, Outgoing, SendResult

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 15.0
MAX_RESPONSE_BYTES = 4096
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0)

Resolver = Callable[..., Awaitable[Sequence[tuple[Any, ...]]]]
"""Called like `loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)`; answers getaddrinfo's
5-tuples `(family, type, proto, canonname, sockaddr)` (only `sockaddr[0]` is read)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Refused even for an allow-listed endpoint: no local receiver lives there.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, Azure, GCP, Huawei Cloud, OpenStack
    "169.254.0.23",  # Tencent Cloud
    "100.100.100.200",  # Alibaba Cloud
    "fd00:ec2::254",  # AWS over IPv6
))
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address


class UnsafeWebhookUrl(ValueError):
    """A webhook URL this service will not call; `reason` says why (no secret, no personal data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnresolvableWebhookHost(UnsafeWebhookUrl):
    """The URL's host did not resolve: refused when an endpoint is set, a `retry` when sending
    (DNS failures are often temporary)."""


# --- the endpoint --------------------------------------------------------------------------------

@dataclass(frozen=True)
class WebhookEndpoint:
    """Where a department takes its webhooks and the secrets they are signed with.

    `secrets`: the active `whsec_…` secrets, newest first (at least one; two or more while a
    rotation is under way: each request is signed with every one of them). Kept out of repr."""

    department: str
    url: str
    secrets: Sequence[str] = field(repr=False)
    allow_private: bool = False  # set by the district admin's allow-list: may be http and on a private address

    def __post_init__(self) -> None:
        if isinstance(self.secrets, (str, bytes)):
            raise TypeError("WebhookEndpoint.secrets is a list of secrets, not one secret")
        secrets = tuple(self.secrets)
        if not secrets:
            raise ValueError(f"the webhook endpoint of {self.department} has no active secret")
        for i, secret in enumerate(secrets):
            if not isinstance(secret, str) or not secret.startswith("whsec_"):
                raise ValueError(f"secret #{i} of the webhook endpoint of {self.department} is not a whsec_ secret")
            try:
                Webhook(secret)
            except Exception:  # noqa: BLE001 - bad base64 or empty: name neither the secret nor the error text
                raise ValueError(f"secret #{i} of the webhook endpoint of {self.department} "
                                 "is not valid base64 after whsec_") from None
        object.__setattr__(self, "secrets", secrets)


EndpointLookup = Callable[[str], Awaitable[WebhookEndpoint | None]]
"""The endpoint configured at a URL (the `Outgoing.address` of a webhook), or None."""


# --- URL and address checks ---------------------------------------------------------------------

def parse_webhook_url(url: str, *, allow_private: bool) -> httpx.URL:
    """The URL as httpx will send it (parsed by httpx itself, so the check and the request
    cannot read it differently), after the checks that need no DNS; raises UnsafeWebhookUrl."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeWebhookUrl("the webhook URL is empty")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
        raise UnsafeWebhookUrl("the webhook URL contains whitespace, a control character or a backslash")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise UnsafeWebhookUrl(f"the webhook URL is not a valid URL ({exc})") from None
    scheme = parsed.scheme.lower()
    if scheme == "http":
        if not allow_private:
            raise UnsafeWebhookUrl("http:// is allowed only for an allow-listed local receiver; use https://")
    elif scheme != "https":
        raise UnsafeWebhookUrl(f"the scheme {scheme or '(none)'!r} is not allowed: webhooks go over https "
                               "(http only to an allow-listed local receiver)")
    if parsed.userinfo:
        raise UnsafeWebhookUrl("the webhook URL carries credentials (user:password@): webhooks are "
                               "authenticated by their signature, never by credentials in the URL")
    if not parsed.raw_host:
        raise UnsafeWebhookUrl("the webhook URL has no host")
    port = parsed.port
    if port is not None and not 1 <= port <= 65535:
        raise UnsafeWebhookUrl(f"the webhook URL's port {port} is not a valid port (1-65535)")
    return parsed


def _host_and_port(parsed: httpx.URL) -> tuple[str, int]:
    port = parsed.port or (443 if parsed.scheme.lower() == "https" else 80)
    return parsed.raw_host.decode("ascii"), port


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to an IPv4 host (mapped, NAT64, 6to4, Teredo)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def address_problem(ip: IPAddress, *, allow_private: bool) -> str | None:
    """Why a connection to `ip` is refused, or None when it is allowed."""
    if ip in METADATA_ADDRESSES:
        return f"{ip} is a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            problem = address_problem(inner, allow_private=allow_private)
            if problem is not None:
                return f"{ip} carries the IPv4 address {inner}: {problem}"
    if allow_private:
        return None
    if ip.is_unspecified:
        return f"{ip} is the unspecified address"
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_link_local:
        return f"{ip} is a link-local address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in SHARED_ADDRESS_SPACE:
        return f"{ip} is in the shared address space 100.64.0.0/10 (carrier-grade NAT)"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return f"{ip} is a site-local address"
    if ip.is_private:
        return f"{ip} is a private address (RFC 1918, unique local fc00::/7 or another special-purpose range)"
    if ip.is_reserved:
        return f"{ip} is a reserved address"
    if not ip.is_global:
        return f"{ip} is not a globally routable address"
    return None


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve_checked(host: str, port: int, *, allow_private: bool, resolve: Resolver | None = None,
                          timeout: float | None = None) -> list[IPAddress]:
    """Every address `host` resolves to, each allowed; raises UnsafeWebhookUrl if ANY is not, or
    UnresolvableWebhookHost if the host does not resolve."""
    literal = _ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        resolve = resolve or asyncio.get_running_loop().getaddrinfo
        try:
            async with asyncio.timeout(timeout):
                infos = await resolve(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError, TimeoutError) as exc:  # socket.gaierror is an OSError
            raise UnresolvableWebhookHost(f"the host {host} does not resolve ({type(exc).__name__})") from None
        addresses = []
        for info in infos:
            try:
                ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])  # drop an IPv6 scope id
            except (ValueError, IndexError, TypeError):
                raise UnsafeWebhookUrl(f"the host {host} resolved to something that is not an IP address") from None
            if ip not in addresses:
                addresses.append(ip)
        if not addresses:
            raise UnresolvableWebhookHost(f"the host {host} resolved to no address")
    for ip in addresses:
        problem = address_problem(ip, allow_private=allow_private)
        if problem is not None:
            raise UnsafeWebhookUrl(problem if literal is not None
                                   else f"the host {host} resolves to a refused address: {problem}")
    return addresses


async def check_webhook_url(url: str, *, allow_private: bool, resolve: Resolver | None = None) -> None:
    """Raise UnsafeWebhookUrl (with a clear `reason`) if this service must not call `url`.

    `resolve` is called like `loop.getaddrinfo` (the default); tests inject their own."""
    parsed = parse_webhook_url(url, allow_private=allow_private)
    host, port = _host_and_port(parsed)
    await resolve_checked(host, port, allow_private=allow_private, resolve=resolve)


# --- the pinned connection ----------------------------------------------------------------------

class PinnedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, except that a TCP connection goes only to an address the
    check allowed: it resolves the host once, checks every address (`resolve_checked`) and
    connects to those (in order, the next one if a connect fails). httpcore still does TLS with
    the URL's host as SNI and as the name the certificate must carry."""

    def __init__(self, *, allow_private: bool, resolve: Resolver | None = None,
                 inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.allow_private = allow_private
        self._resolve = resolve
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        addresses = await resolve_checked(host, port, allow_private=self.allow_private, resolve=self._resolve,
                                          timeout=timeout)
        last: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(str(ip), port, timeout=timeout, local_address=local_address,
                                                      socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks do not go to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a connection pool that connects through PinnedNetworkBackend.

    httpx (0.28) takes no network backend, so the pool it builds is replaced by one built the
    same way with the backend (httpcore's `network_backend` is public API; httpx's `_pool` is
    not, hence the check: the pinning tests fail too if this ever stops working)."""

    def __init__(self, *, backend: PinnedNetworkBackend, limits: httpx.Limits,
                 verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(verify=verify, trust_env=False, limits=limits)
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError("this httpx version builds its transport differently: webhook connections "
                               "cannot be pinned to the checked address")
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True, http2=False,
            network_backend=backend,
        )


# --- answers ------------------------------------------------------------------------------------

def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date; None if absent
    or unreadable; never negative."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and seconds != float("inf") else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


def classify_status(status: int, headers: Mapping[str, str], *, request_url: str = "",
                    now: datetime | None = None) -> SendResult:
    """The outcome of an HTTP answer (latency not filled in)."""
    if 200 <= status < 300:
        return SendResult("sent", status_code=status)
    if 300 <= status < 400:
        where = ""
        location = headers.get("location")
        if location:
            try:
                target = httpx.URL(urljoin(request_url, location))
                where = f" to {target.scheme}://{target.host}" if target.host else ""
            except (httpx.InvalidURL, ValueError):
                where = ""
        return SendResult("failed", status_code=status,
                          error=f"redirect ({status}){where} not followed: update the endpoint URL")
    if status == 410:
        return SendResult("gone", status_code=status, error="the endpoint answered 410 Gone")
    if status in (408, 429) or 500 <= status < 600:
        return SendResult("retry", status_code=status, retry_after=parse_retry_after(headers.get("retry-after"), now=now),
                          error=f"the endpoint answered {status}")
    if 400 <= status < 500:
        return SendResult("failed", status_code=status, error=f"the endpoint refused the webhook ({status})")
    return SendResult("failed", status_code=status, error=f"unexpected HTTP status {status}")


def encode_payload(fields: Mapping[str, Any]) -> str:
    """The thin payload as compact JSON (UTF-8 characters kept as they are)."""
    return json.dumps(dict(fields), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def signature_headers(secrets: Sequence[str], msg_id: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for `body`, signed with every secret in `secrets`."""
    timestamp = datetime.fromtimestamp(int(at.timestamp()), timezone.utc)
    signature = " ".join(Webhook(secret).sign(msg_id, timestamp, body) for secret in secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": signature}


# --- the sender ----------------------------------------------------------------------------------

class WebhookSender:
    """The channel adapter of "webhook".

    - `send_to(endpoint, message)` signs `message.fields` with the endpoint's secrets and POSTs
      it to `endpoint.url` (the endpoint, not `message.address`, says where);
    - `send(message)` looks the endpoint up by `message.address` (its URL) with the injected
      `endpoints_lookup` and calls `send_to`; no endpoint there (it changed or was removed) is
      `failed`.

    By default the sender builds its own httpx clients, whose connections are pinned to the
    checked addresses (module docstring). A `client` given instead is used as it is (a proxy, a
    test transport): then the URL is checked, with a fresh resolution, immediately before each
    request, and a DNS answer changing in the moment between that check and httpx's own
    resolution is the residual risk. A given client is the caller's to close.
    `ssl_context` replaces the system's CA store for the sender's own clients (a district's
    private CA). `resolve` (like `loop.getaddrinfo`), `monotonic` and `wall_clock` are for tests.
    """

    channel = "webhook"

    def __init__(self, endpoints_lookup: EndpointLookup | None = None, client: httpx.AsyncClient | None = None,
                 timeout: float = DEFAULT_TIMEOUT, *, limits: httpx.Limits = DEFAULT_LIMITS,
                 circuit: CircuitPolicy = CircuitPolicy(), ssl_context: ssl.SSLContext | None = None,
                 resolve: Resolver | None = None, monotonic: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self._lookup = endpoints_lookup
        self._client = client
        self.timeout = timeout
        self._limits = limits
        self._policy = circuit
        self._ssl_context = ssl_context
        self._resolve = resolve
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._pinned: dict[bool, httpx.AsyncClient] = {}  # one per allow_private setting
        self._circuits: dict[str, Circuit] = {}

    def _client_for(self, allow_private: bool) -> httpx.AsyncClient:
        if self._client is not None:
            return self._client
        client = self._pinned.get(allow_private)
        if client is None:
            backend = PinnedNetworkBackend(allow_private=allow_private, resolve=self._resolve)
            transport = _PinnedTransport(backend=backend, limits=self._limits,
                                         verify=self._ssl_context if self._ssl_context is not None else True)
            client = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(self.timeout),
                                       follow_redirects=False, trust_env=False)
            self._pinned[allow_private] = client
        return client

    async def send(self, message: Outgoing) -> SendResult:
        if message.channel != self.channel:
            return SendResult("failed", error=f"the webhook adapter got a {message.channel} message")
        if self._lookup is None:
            return SendResult("failed", error="the webhook adapter has no endpoint lookup: use send_to")
        try:
            endpoint = await self._lookup(message.address)
        except Exception as exc:  # noqa: BLE001 - the configuration store is down: try again later
            log.warning("webhook %s: endpoint lookup failed (%s)", message.delivery_id, type(exc).__name__,
                        extra={"delivery_id": message.delivery_id})
            return SendResult("retry", error=f"the endpoint lookup failed ({type(exc).__name__})")
        if endpoint is None:
            return SendResult("failed", error="no webhook endpoint is configured at this URL (changed or removed)")
        return await self.send_to(endpoint, message)

    async def send_to(self, endpoint: WebhookEndpoint, message: Outgoing) -> SendResult:
        started = time.perf_counter()
        circuit = self._circuits.setdefault(endpoint.url, Circuit(cooldown=self._policy.cooldown))
        admitted, wait = circuit.admit(self._monotonic())
        if not admitted:
            return self._done(endpoint, message, started, SendResult(
                "retry", retry_after=wait,
                error=f"circuit open: the endpoint failed {circuit.failures} times in a row; no request made"))
        result: SendResult | None = None
        counts = False
        try:
            result, counts = await self._attempt(endpoint, message)
        finally:
            if counts and result is not None:
                circuit.record(failed=result.outcome == "retry", now=self._monotonic(), policy=self._policy)
            else:
                circuit.trial = False  # nothing reached the endpoint: the circuit learnt nothing
        return self._done(endpoint, message, started, result)

    async def _attempt(self, endpoint: WebhookEndpoint, message: Outgoing) -> tuple[SendResult, bool]:
        """The result, and whether it says something about the endpoint (counts for its circuit)."""
        try:
            parsed = parse_webhook_url(endpoint.url, allow_private=endpoint.allow_private)
            host, port = _host_and_port(parsed)
            # Pinned clients check the addresses when they connect; an IP literal is checked here
            # at once (no DNS), and a given client's URL with a fresh resolution right before sending.
            if self._client is not None or _ip_literal(host) is not None:
                await resolve_checked(host, port, allow_private=endpoint.allow_private, resolve=self._resolve)
        except UnresolvableWebhookHost as exc:
            return SendResult("retry", error=exc.reason), True
        except UnsafeWebhookUrl as exc:
            return SendResult("failed", error=f"unsafe webhook URL: {exc.reason}"), False
        try:
            body = encode_payload(message.fields)
        except (TypeError, ValueError) as exc:
            return SendResult("failed", error=f"the payload is not JSON ({type(exc).__name__})"), False
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **signature_headers(endpoint.secrets, message.delivery_id, body, self._wall_clock()),
        }
        return await self._post(parsed, body.encode("utf-8"), headers, endpoint.allow_private)

    async def _post(self, url: httpx.URL, content: bytes, headers: dict[str, str],
                    allow_private: bool) -> tuple[SendResult, bool]:
        client = self._client_for(allow_private)
        try:
            async with asyncio.timeout(self.timeout):  # the total, whatever a slow receiver trickles
                async with client.stream("POST", url, content=content, headers=headers, follow_redirects=False,
                                         timeout=self.timeout) as response:
                    read = 0
                    async for chunk in response.aiter_raw(MAX_RESPONSE_BYTES):
                        read += len(chunk)  # read (to let the connection be reused) but never kept or logged
                        if read >= MAX_RESPONSE_BYTES:
                            break
                    return classify_status(response.status_code, response.headers, request_url=str(url),
                                           now=self._wall_clock()), True
        except UnresolvableWebhookHost as exc:
            return SendResult("retry", error=exc.reason), True
        except UnsafeWebhookUrl as exc:  # the connect-time check: the name now resolves somewhere refused
            return SendResult("failed", error=f"unsafe webhook URL: {exc.reason}"), False
        except (TimeoutError, httpx.TimeoutException):
            return SendResult("retry", error=f"timeout after {self.timeout:g} s"), True
        except httpx.HTTPError as exc:  # connection refused or reset, TLS failure, protocol error
            return SendResult("retry", error=f"connection error ({type(exc).__name__})"), True

    def _done(self, endpoint: WebhookEndpoint, message: Outgoing, started: float, result: SendResult) -> SendResult:
        result = replace(result, latency_ms=round((time.perf_counter() - started) * 1000, 3))
        host = _safe_host(endpoint.url)
        # The department and the host only: a URL's path or query may carry a token; no payload, no body.
        log.info("webhook %s to %s (%s): %s%s", message.delivery_id, endpoint.department, host, result.outcome,
                 f" {result.status_code}" if result.status_code else "",
                 extra={"delivery_id": message.delivery_id, "channel": "webhook", "department": endpoint.department,
                        "outcome": result.outcome, "status_code": result.status_code, "error": result.error,
                        "latency_ms": result.latency_ms})
        return result

    async def close(self) -> None:
        """Close the sender's own clients (a client given to it is the caller's to close)."""
        clients, self._pinned = list(self._pinned.values()), {}
        for client in clients:
            await client.aclose()


def _safe_host(url: str) -> str:
    try:
        return httpx.URL(url).host or "?"
    except (httpx.InvalidURL, ValueError, TypeError):
        return "?"
