"""The channel adapters against real servers on loopback (no database, no Kafka): department
webhooks (Standard Webhooks signatures, answers, the circuit, SSRF refusals, the pinned
connection), email over SMTP into the local mailbox, and the mailbox itself."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import http
import logging
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Awaitable, Callable

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from civicgrid_notifications.adapters.channels import ChannelAdapter, Outgoing
from civicgrid_notifications.adapters.email import SmtpSender, message_id_for
from civicgrid_notifications.adapters.mailbox import ENVELOPE_TO, LocalMailbox, MailboxHandler
from civicgrid_notifications.adapters.webhooks import (
    CircuitPolicy, UnsafeWebhookUrl, WebhookEndpoint, WebhookSender, check_webhook_url, parse_retry_after,
)

SERVICE_ROOT = Path(__file__).resolve().parents[2]
PAYLOAD = {"type": "civicgrid.case.accepted", "case_number": "JY-2026-000123", "title": "低保申请已受理",
           "link": "https://console.civicgrid.test/cases/c_1"}


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


# --- a tiny HTTP/1.1 receiver on 127.0.0.1:0 ------------------------------------------------------

@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Receiver:
    respond: Callable[[Received], Awaitable[Reply]]
    requests: list[Received] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    server: asyncio.AbstractServer | None = None
    release: asyncio.Event = field(default_factory=asyncio.Event)  # set at the end: lets hanging replies go
    tasks: set[asyncio.Task] = field(default_factory=set)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> "Receiver":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.tasks.add(asyncio.current_task())
        self.connections += 1
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (h := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, value = h.decode("latin-1").split(":", 1)
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Received(method, target, headers, body)
                self.requests.append(request)
                status, reply_headers, reply_body = await self.respond(request)
                head = f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
                head += "".join(f"{k}: {v}\r\n" for k, v in reply_headers.items())
                head += f"Content-Length: {len(reply_body)}\r\n\r\n"
                writer.write(head.encode("latin-1") + reply_body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, ValueError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()


def answer(status: int, headers: dict[str, str] | None = None, body: bytes = b""):
    async def respond(request: Received) -> Reply:
        return status, headers or {}, body
    return respond


def answers(*replies: Reply):
    """One reply per request, in order; the last one repeats."""
    queue = list(replies)

    async def respond(request: Received) -> Reply:
        return queue.pop(0) if len(queue) > 1 else queue[0]
    return respond


@pytest.fixture
async def receiver():
    started: list[Receiver] = []

    async def make(respond=answer(200), ssl_context: ssl.SSLContext | None = None) -> Receiver:
        r = await Receiver(respond).start(ssl_context)
        started.append(r)
        return r

    yield make
    for r in started:
        await r.stop()


@pytest.fixture
async def sender():
    made: list[WebhookSender] = []

    def make(**kw) -> WebhookSender:
        s = WebhookSender(**kw)
        made.append(s)
        return s

    yield make
    for s in made:
        await s.close()


class FakeResolver:
    """An injected resolver: host -> a list of addresses, or a function of the call number."""

    def __init__(self, answers: dict[str, list[str] | Callable[[int], list[str]]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int, **kw) -> list[tuple]:
        self.calls.append((host, port))
        answer_ = self.answers.get(host)
        if answer_ is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        addresses = answer_(sum(1 for h, _ in self.calls if h == host)) if callable(answer_) else answer_
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port, 0, 0) if ":" in a else (a, port)) for a in addresses]


def endpoint(url: str, secrets: list[str] | None = None, *, allow_private: bool = True) -> WebhookEndpoint:
    return WebhookEndpoint(department="civil-affairs", url=url, secrets=secrets or [new_secret()],
                           allow_private=allow_private)


def hook(delivery_id: str = "msg_0123456789abcdef", url: str = "", fields: dict | None = None) -> Outgoing:
    return Outgoing(delivery_id=delivery_id, channel="webhook", address=url, fields=fields or PAYLOAD)


# --- webhooks: signatures --------------------------------------------------------------------------

async def test_a_webhook_is_signed_by_standard_webhooks_and_carries_the_thin_payload(receiver, sender):
    r = await receiver()
    secret = new_secret()
    ep = endpoint(f"{r.base}/hooks/civil-affairs?v=1", [secret])
    result = await sender().send_to(ep, hook(url=ep.url))

    assert (result.outcome, result.status_code, result.provider_id) == ("sent", 200, None)
    assert result.latency_ms > 0
    [got] = r.requests
    assert (got.method, got.target) == ("POST", "/hooks/civil-affairs?v=1")
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == "civicgrid-notifications/0.1"
    assert got.headers["webhook-id"] == "msg_0123456789abcdef"
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]+=*", got.headers["webhook-signature"])
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
    # compact UTF-8 JSON, not \\u escapes
    assert "低保申请已受理".encode() in got.body and b'", "' not in got.body
    assert Webhook(secret).verify(got.body, got.headers) == PAYLOAD


async def test_a_tampered_body_or_timestamp_or_another_secret_fails_verification(receiver, sender):
    r = await receiver()
    secret = new_secret()
    ep = endpoint(f"{r.base}/hook", [secret])
    assert (await sender().send_to(ep, hook(url=ep.url))).outcome == "sent"
    [got] = r.requests
    Webhook(secret).verify(got.body, got.headers)  # the untouched request verifies

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(got.body.replace("受理".encode(), "驳回".encode()), got.headers)
    shifted = dict(got.headers, **{"webhook-timestamp": str(int(got.headers["webhook-timestamp"]) + 1)})
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(got.body, shifted)
    renamed = dict(got.headers, **{"webhook-id": "msg_other"})
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(got.body, renamed)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(got.body, got.headers)


async def test_during_a_rotation_both_the_new_and_the_old_secret_verify(receiver, sender):
    r = await receiver()
    new, old = new_secret(), new_secret()
    ep = endpoint(f"{r.base}/hook", [new, old])
    assert (await sender().send_to(ep, hook(url=ep.url))).outcome == "sent"
    [got] = r.requests
    signatures = got.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures) and signatures[0] != signatures[1]
    assert Webhook(new).verify(got.body, got.headers) == PAYLOAD
    assert Webhook(old).verify(got.body, got.headers) == PAYLOAD
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(got.body, got.headers)


async def test_a_retry_keeps_the_webhook_id_so_the_receiver_can_dedupe(receiver, sender):
    r = await receiver(answers((503, {}, b"busy"), (200, {}, b"")))
    secret = new_secret()
    ep = endpoint(f"{r.base}/hook", [secret])
    s = sender()
    first = await s.send_to(ep, hook("msg_retry_1", ep.url))
    second = await s.send_to(ep, hook("msg_retry_1", ep.url))
    assert (first.outcome, first.status_code) == ("retry", 503)
    assert (second.outcome, second.status_code) == ("sent", 200)
    assert [q.headers["webhook-id"] for q in r.requests] == ["msg_retry_1", "msg_retry_1"]
    for q in r.requests:
        Webhook(secret).verify(q.body, q.headers)


# --- webhooks: answers -------------------------------------------------------------------------------

@pytest.mark.parametrize("status, outcome", [
    (200, "sent"), (202, "sent"), (204, "sent"),
    (400, "failed"), (401, "failed"), (404, "failed"), (422, "failed"),
    (408, "retry"), (429, "retry"), (500, "retry"), (502, "retry"), (503, "retry"),
    (410, "gone"),
])
async def test_answers_map_to_outcomes(receiver, sender, status, outcome):
    r = await receiver(answer(status))
    ep = endpoint(f"{r.base}/hook")
    result = await sender().send_to(ep, hook(url=ep.url))
    assert (result.outcome, result.status_code) == (outcome, status)
    assert len(r.requests) == 1


async def test_410_is_gone(receiver, sender):
    r = await receiver(answer(410, body=b"endpoint retired"))
    ep = endpoint(f"{r.base}/hook")
    result = await sender().send_to(ep, hook(url=ep.url))
    assert (result.outcome, result.status_code) == ("gone", 410)


async def test_429_with_retry_after_seconds_is_a_retry_after_that_long(receiver, sender):
    r = await receiver(answer(429, {"Retry-After": "7"}))
    ep = endpoint(f"{r.base}/hook")
    result = await sender().send_to(ep, hook(url=ep.url))
    assert (result.outcome, result.status_code, result.retry_after) == ("retry", 429, 7.0)


async def test_503_with_retry_after_as_an_http_date(receiver, sender):
    now = datetime(2026, 3, 2, 8, 0, 0, tzinfo=timezone.utc)
    r = await receiver(answer(503, {"Retry-After": "Mon, 02 Mar 2026 08:02:00 GMT"}))
    ep = endpoint(f"{r.base}/hook")
    result = await sender(wall_clock=lambda: now).send_to(ep, hook(url=ep.url))
    assert (result.outcome, result.retry_after) == ("retry", 120.0)


def test_retry_after_parsing():
    now = datetime(2015, 10, 21, 7, 27, 0, tzinfo=timezone.utc)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 60.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:26:00 GMT", now=now) == 0.0  # in the past: now
    assert parse_retry_after("-3") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None and parse_retry_after(None) is None


async def test_a_redirect_is_not_followed(receiver, sender):
    r = await receiver()
    r.respond = answer(302, {"Location": f"{r.base}/elsewhere?token=abc"})
    ep = endpoint(f"{r.base}/hook")
    result = await sender().send_to(ep, hook(url=ep.url))
    assert (result.outcome, result.status_code) == ("failed", 302)
    assert "redirect (302)" in result.error and "not followed" in result.error
    assert "token" not in result.error  # the target's host only, never its path or query
    assert [q.target for q in r.requests] == ["/hook"]  # /elsewhere was never asked for


async def test_a_hanging_receiver_times_out_as_a_retry(receiver, sender):
    r = await receiver()

    async def hang(request: Received) -> Reply:
        await r.release.wait()
        return 200, {}, b""

    r.respond = hang
    ep = endpoint(f"{r.base}/hook")
    started = time.monotonic()
    result = await sender(timeout=0.5).send_to(ep, hook(url=ep.url))
    assert result.outcome == "retry" and "timeout" in result.error
    assert time.monotonic() - started < 5
    assert len(r.requests) == 1  # it did reach the receiver, which never answered


async def test_a_trickling_receiver_is_cut_at_the_total_timeout(receiver, sender):
    """httpx's timeouts are per read; the adapter's is for the whole request."""

    async def trickle(reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        try:
            for _ in range(100):
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.2)  # each read well within 1 s, the whole far beyond it
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        result = await sender(timeout=1.0).send_to(endpoint(f"http://127.0.0.1:{port}/"), hook())
        assert result.outcome == "retry" and "timeout" in result.error
        assert time.monotonic() - started < 4
    finally:
        server.close()


async def test_a_receiver_that_is_down_is_a_retry(sender):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    result = await sender().send_to(endpoint(f"http://127.0.0.1:{port}/hook"), hook())
    assert result.outcome == "retry" and "connection error" in result.error


async def test_at_most_4_kib_of_an_answer_is_read(sender):
    """A receiver answering an endless body: the sender stops reading and closes the connection,
    so the receiver cannot write more than the sockets' buffers hold."""
    size, written, done = 256 * 1024 * 1024, [0], asyncio.Event()

    async def flood(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
        chunk = b"x" * 65536
        try:
            while written[0] < size:
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), 5)
                written[0] += len(chunk)
        except (ConnectionError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()
            done.set()

    server = await asyncio.start_server(flood, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        result = await sender(timeout=30).send_to(endpoint(f"http://127.0.0.1:{port}/"), hook())
        assert (result.outcome, result.status_code) == ("sent", 200)
        await asyncio.wait_for(done.wait(), 10)
        assert written[0] < 64 * 1024 * 1024, written[0]  # far from all of it: the sender hung up
    finally:
        server.close()


# --- webhooks: the circuit --------------------------------------------------------------------------

async def test_the_circuit_opens_after_n_failures_and_answers_at_once_without_a_request(receiver, sender):
    failing = await receiver(answer(500))
    healthy = await receiver(answer(200))
    clock = [1000.0]
    s = sender(circuit=CircuitPolicy(failures=3, cooldown=60, max_cooldown=200), monotonic=lambda: clock[0])
    bad, good = endpoint(f"{failing.base}/hook"), endpoint(f"{healthy.base}/hook")

    for _ in range(3):
        assert (await s.send_to(bad, hook(url=bad.url))).outcome == "retry"
    assert len(failing.requests) == 3

    started = time.perf_counter()
    blocked = await s.send_to(bad, hook(url=bad.url))
    assert blocked.outcome == "retry" and "circuit open" in blocked.error and blocked.status_code is None
    assert blocked.retry_after == 60
    assert time.perf_counter() - started < 0.1
    assert len(failing.requests) == 3  # the server was not contacted
    # the other department's endpoint is not held up
    assert (await s.send_to(good, hook(url=good.url))).outcome == "sent"

    clock[0] += 61  # the cool-down is over: one trial request; it fails, so the circuit reopens for twice as long
    assert (await s.send_to(bad, hook(url=bad.url))).status_code == 500
    assert len(failing.requests) == 4
    clock[0] += 1
    again = await s.send_to(bad, hook(url=bad.url))
    assert again.outcome == "retry" and again.retry_after == pytest.approx(119) and len(failing.requests) == 4

    clock[0] += 120  # the next trial succeeds: the circuit closes
    failing.respond = answer(200)
    assert (await s.send_to(bad, hook(url=bad.url))).outcome == "sent"
    assert (await s.send_to(bad, hook(url=bad.url))).outcome == "sent"
    assert len(failing.requests) == 6


async def test_the_cool_down_doubles_up_to_the_maximum(receiver, sender):
    r = await receiver(answer(503))
    clock = [0.0]
    s = sender(circuit=CircuitPolicy(failures=1, cooldown=60, max_cooldown=150), monotonic=lambda: clock[0])
    ep = endpoint(f"{r.base}/hook")
    waits = []
    for _ in range(4):
        assert (await s.send_to(ep, hook(url=ep.url))).status_code == 503  # a request (the trial)
        waits.append((await s.send_to(ep, hook(url=ep.url))).retry_after)  # blocked
        clock[0] += 1000
    assert waits == [60, 120, 150, 150]
    assert len(r.requests) == 4


async def test_failures_in_flight_together_open_the_circuit_once(receiver, sender):
    r = await receiver(answer(500))
    clock = [0.0]
    s = sender(circuit=CircuitPolicy(failures=2, cooldown=60, max_cooldown=600), monotonic=lambda: clock[0])
    ep = endpoint(f"{r.base}/hook")
    results = await asyncio.gather(*(s.send_to(ep, hook(url=ep.url)) for _ in range(6)))
    assert [x.status_code for x in results] == [500] * 6 and len(r.requests) == 6
    assert (await s.send_to(ep, hook(url=ep.url))).retry_after == 60  # not doubled by each of the six


# --- webhooks: SSRF -------------------------------------------------------------------------------

@pytest.mark.parametrize("url, reason", [
    ("https://127.0.0.1/hook", "loopback"),
    ("https://10.0.0.1/hook", "private"),
    ("https://192.168.1.20/hook", "private"),
    ("https://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("https://100.100.100.200/latest/meta-data/", "cloud metadata"),
    ("https://169.254.10.1/hook", "link-local"),
    ("https://[::1]/hook", "loopback"),
    ("https://[fd12:3456::1]/hook", "private"),
    ("https://[fe80::1]/hook", "link-local"),
    ("https://[::ffff:127.0.0.1]/hook", "carries the IPv4 address 127.0.0.1"),
    ("https://[::ffff:a00:1]/hook", "carries the IPv4 address 10.0.0.1"),
    ("https://[64:ff9b::a9fe:a9fe]/hook", "cloud metadata"),
    ("https://100.64.0.1/hook", "100.64.0.0/10"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://224.0.0.1/hook", "multicast"),
    ("https://240.0.0.1/hook", "private"),
    ("https://user:secret@hooks.example.cn/hook", "credentials"),
    ("https://token@hooks.example.cn/hook", "credentials"),
    ("ftp://hooks.example.cn/hook", "scheme 'ftp'"),
    ("file:///etc/passwd", "scheme 'file'"),
    ("http://hooks.example.cn/hook", "use https://"),
    ("https:///hook", "no host"),
    ("https://hooks.example.cn:99999/hook", "not a valid port"),
    ("https://hooks.example.cn:0/hook", "not a valid port"),
    ("https://hooks.example.cn:abc/hook", "not a valid URL"),
    ("https://hooks.example.cn\\@127.0.0.1/hook", "backslash"),
    ("https://hooks.example.cn/ho ok", "whitespace"),
])
async def test_unsafe_urls_are_refused_with_a_clear_reason(url, reason):
    resolve = FakeResolver({"hooks.example.cn": ["93.184.216.34"]})
    with pytest.raises(UnsafeWebhookUrl) as refused:
        await check_webhook_url(url, allow_private=False, resolve=resolve)
    assert reason in refused.value.reason
    assert isinstance(refused.value, ValueError) and "secret" not in refused.value.reason
    assert all(host != "127.0.0.1" for host, _ in resolve.calls)  # literals are not looked up


async def test_a_host_is_refused_if_any_address_it_resolves_to_is_private():
    resolve = FakeResolver({"intranet.example.cn": ["192.168.1.10"],
                            "mixed.example.cn": ["93.184.216.34", "10.0.0.5"],
                            "v6.example.cn": ["2606:2800:220:1:248:1893:25c8:1946", "fd00:ec2::254"],
                            "public.example.cn": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]})
    with pytest.raises(UnsafeWebhookUrl, match=r"intranet\.example\.cn resolves to .*192\.168\.1\.10 is a private"):
        await check_webhook_url("https://intranet.example.cn/hook", allow_private=False, resolve=resolve)
    with pytest.raises(UnsafeWebhookUrl, match=r"10\.0\.0\.5 is a private"):
        await check_webhook_url("https://mixed.example.cn/hook", allow_private=False, resolve=resolve)
    with pytest.raises(UnsafeWebhookUrl, match="cloud metadata"):
        await check_webhook_url("https://v6.example.cn/hook", allow_private=True, resolve=resolve)
    await check_webhook_url("https://public.example.cn:8443/hook", allow_private=False, resolve=resolve)
    assert ("public.example.cn", 8443) in resolve.calls
    with pytest.raises(UnsafeWebhookUrl, match="does not resolve"):
        await check_webhook_url("https://nowhere.example.cn/hook", allow_private=False, resolve=resolve)


async def test_the_default_resolver_sees_through_numeric_disguises_of_loopback():
    for url in ("https://2130706433/hook", "https://127.1/hook", "https://localhost/hook"):
        with pytest.raises(UnsafeWebhookUrl, match="loopback"):
            await check_webhook_url(url, allow_private=False)


async def test_allow_private_admits_local_receivers_but_not_the_rest():
    await check_webhook_url("http://127.0.0.1:8080/hook", allow_private=True)
    await check_webhook_url("https://10.0.0.1/hook", allow_private=True)
    await check_webhook_url("http://[::1]:9000/hook", allow_private=True)
    for url, reason in [("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
                        ("ftp://127.0.0.1/hook", "scheme"),
                        ("http://user:pw@127.0.0.1/hook", "credentials")]:
        with pytest.raises(UnsafeWebhookUrl, match=reason):
            await check_webhook_url(url, allow_private=True)
    with pytest.raises(UnsafeWebhookUrl, match="loopback"):
        await check_webhook_url("https://127.0.0.1:8080/hook", allow_private=False)


async def test_the_sender_refuses_an_unsafe_endpoint_without_a_request(receiver, sender):
    r = await receiver()
    s = sender()
    for url, reason in [(f"https://127.0.0.1:{r.port}/hook", "loopback"), (f"http://127.0.0.1:{r.port}/hook", "https")]:
        result = await s.send_to(endpoint(url, allow_private=False), hook())
        assert result.outcome == "failed" and result.error.startswith("unsafe webhook URL") and reason in result.error
    assert r.connections == 0


# --- webhooks: the pinned connection ---------------------------------------------------------------

async def test_the_connection_goes_to_the_checked_address_and_keeps_the_name(receiver, sender):
    """The name exists only in the injected resolver: httpx resolving it itself would fail."""
    r = await receiver()
    resolve = FakeResolver({"hooks.civicgrid.test": ["127.0.0.1"]})
    ep = endpoint(f"http://hooks.civicgrid.test:{r.port}/hook")
    result = await sender(resolve=resolve).send_to(ep, hook(url=ep.url))
    assert result.outcome == "sent"
    assert r.requests[0].headers["host"] == f"hooks.civicgrid.test:{r.port}"
    assert resolve.calls == [("hooks.civicgrid.test", r.port)]  # resolved once: the check is the connect's


async def test_dns_rebinding_after_a_check_does_not_reach_the_private_address(receiver, sender):
    r = await receiver()
    # public for the first answer (the check), loopback afterwards (where a rebinding attack points)
    resolve = FakeResolver({"rebind.civicgrid.test": lambda n: ["93.184.216.34"] if n == 1 else ["127.0.0.1"]})
    url = f"https://rebind.civicgrid.test:{r.port}/hook"
    await check_webhook_url(url, allow_private=False, resolve=resolve)  # passes: it looked public

    result = await sender(resolve=resolve).send_to(endpoint(url, allow_private=False), hook(url=url))
    assert result.outcome == "failed"
    assert "rebind.civicgrid.test resolves to" in result.error and "loopback" in result.error
    assert r.connections == 0


async def test_a_given_client_is_checked_again_right_before_sending(receiver):
    r = await receiver()
    resolve = FakeResolver({"rebind.civicgrid.test": lambda n: ["93.184.216.34"] if n == 1 else ["10.1.2.3"]})
    url = f"https://rebind.civicgrid.test:{r.port}/hook"
    await check_webhook_url(url, allow_private=False, resolve=resolve)
    async with httpx.AsyncClient() as client:
        s = WebhookSender(client=client, resolve=resolve)
        refused = await s.send_to(endpoint(url, allow_private=False), hook(url=url))
        assert refused.outcome == "failed" and "10.1.2.3 is a private" in refused.error
        sent = await s.send_to(endpoint(f"{r.base}/hook"), hook())
        assert sent.outcome == "sent"
        await s.close()
        assert not client.is_closed  # the caller's to close
    assert r.connections == 1


def _self_signed(name: str, directory: Path) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_text(pem)
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file, pem


@pytest.mark.parametrize("certificate_name, outcome", [("hooks.civicgrid.test", "sent"),
                                                       ("other.civicgrid.test", "retry")])
async def test_tls_to_the_pinned_address_uses_the_name_for_sni_and_the_certificate(
        receiver, sender, tmp_path, certificate_name, outcome):
    cert_file, key_file, pem = _self_signed(certificate_name, tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert_file, key_file)
    sni: list[str | None] = []
    server_ctx.sni_callback = lambda sslobj, name, ctx: sni.append(name)
    r = await receiver(ssl_context=server_ctx)
    client_ctx = ssl.create_default_context(cadata=pem)

    resolve = FakeResolver({"hooks.civicgrid.test": ["127.0.0.1"]})
    secret = new_secret()
    ep = endpoint(f"https://hooks.civicgrid.test:{r.port}/hook", [secret])
    result = await sender(resolve=resolve, ssl_context=client_ctx).send_to(ep, hook(url=ep.url))

    assert sni == ["hooks.civicgrid.test"]  # the name, though the connection went to 127.0.0.1
    assert result.outcome == outcome
    if outcome == "sent":
        assert r.requests[0].headers["host"] == f"hooks.civicgrid.test:{r.port}"
        Webhook(secret).verify(r.requests[0].body, r.requests[0].headers)
    else:  # the certificate names another host: no request is made over that connection
        assert "connection error" in result.error and r.requests == []


# --- webhooks: send() and the endpoint -----------------------------------------------------------------

async def test_send_looks_the_endpoint_up_by_its_url(receiver, sender):
    r = await receiver()
    secret = new_secret()
    ep = endpoint(f"{r.base}/hook", [secret])

    async def lookup(url: str) -> WebhookEndpoint | None:
        return ep if url == ep.url else None

    s = sender(endpoints_lookup=lookup)
    assert isinstance(s, ChannelAdapter) and s.channel == "webhook"
    assert (await s.send(hook(url=ep.url))).outcome == "sent"
    Webhook(secret).verify(r.requests[0].body, r.requests[0].headers)
    missing = await s.send(hook(url=f"{r.base}/removed"))
    assert missing.outcome == "failed" and "no webhook endpoint" in missing.error
    wrong = await s.send(Outgoing("msg_1", "email", "a@example.cn", {"subject": "x"}))
    assert wrong.outcome == "failed"
    assert len(r.requests) == 1


def test_an_endpoint_needs_whsec_secrets_and_keeps_them_out_of_its_repr():
    secret = new_secret()
    assert secret not in repr(endpoint("https://hooks.example.cn/h", [secret]))
    with pytest.raises(ValueError, match="no active secret"):
        WebhookEndpoint("civil-affairs", "https://hooks.example.cn/h", [])
    with pytest.raises(ValueError, match="not a whsec_ secret"):
        WebhookEndpoint("civil-affairs", "https://hooks.example.cn/h", ["hunter2"])
    with pytest.raises(TypeError):
        WebhookEndpoint("civil-affairs", "https://hooks.example.cn/h", secret)  # type: ignore[arg-type]
    assert isinstance(endpoint("https://h.example.cn/", [secret, new_secret()]).secrets, tuple)


# --- email and the local mailbox -----------------------------------------------------------------------

RESIDENT = "zhang.wei@example.cn"
EMAIL_FIELDS = {"subject": "您的低保申请已受理（受理号 JY-2026-000123）",
                "text": "张伟您好：\n您的低保申请已受理，受理号 JY-2026-000123。\n",
                "html": "<p>张伟您好：</p><p>您的低保申请已<strong>受理</strong>。</p>"}


def mail(delivery_id: str = "msg_5f2c0d1e9a7b4c3d", address: str = RESIDENT, fields: dict | None = None) -> Outgoing:
    return Outgoing(delivery_id=delivery_id, channel="email", address=address, fields=fields or EMAIL_FIELDS)


def smtp(port: int, **kw) -> SmtpSender:
    return SmtpSender("127.0.0.1", port, sender_address="noreply@civicgrid.test", local_hostname="tests", **kw)


@pytest.fixture
async def mailbox(tmp_path):
    box = await LocalMailbox(tmp_path / "mail").start()
    yield box
    await box.stop()


async def test_an_email_lands_in_the_mailbox_and_parses_back(mailbox, caplog):
    caplog.set_level(logging.DEBUG)
    sender = smtp(mailbox.port)
    assert isinstance(sender, ChannelAdapter) and sender.channel == "email"
    result = await sender.send(mail())

    assert (result.outcome, result.status_code) == ("sent", 250)
    assert result.provider_id == "<msg_5f2c0d1e9a7b4c3d@civicgrid>"
    [path] = mailbox.messages()
    assert re.fullmatch(r"\d{8}T\d{12}Z-[0-9a-f]{16}\.eml", path.name)
    assert [p.name for p in mailbox.directory.iterdir()] == [path.name]  # no temporary file left behind
    raw = path.read_bytes()
    # the name's hash is of the message as received, after the two envelope lines
    received = raw.split(b"\r\n", 2)[2]
    assert path.name.split("-")[1][:16] == hashlib.sha256(received).hexdigest()[:16]

    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["Subject"] == EMAIL_FIELDS["subject"]
    assert parsed["Message-ID"] == "<msg_5f2c0d1e9a7b4c3d@civicgrid>" == message_id_for("msg_5f2c0d1e9a7b4c3d")
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["To"] == RESIDENT and parsed["From"] == "noreply@civicgrid.test"
    assert parsed[ENVELOPE_TO] == RESIDENT
    assert parsed.get_content_type() == "multipart/alternative"
    # (the file keeps the wire's CRLF line ends)
    assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == EMAIL_FIELDS["text"]
    assert parsed.get_body(("html",)).get_content().strip() == EMAIL_FIELDS["html"]
    assert RESIDENT not in caplog.text and "张伟" not in caplog.text  # logs carry no personal data
    assert "msg_5f2c0d1e9a7b4c3d" in caplog.text


async def test_the_same_delivery_twice_has_the_same_message_id(mailbox):
    sender = smtp(mailbox.port)
    assert (await sender.send(mail("msg_dup"))).outcome == "sent"
    assert (await sender.send(mail("msg_dup"))).outcome == "sent"
    assert (await sender.send(mail("msg_other"))).outcome == "sent"
    ids = [BytesParser(policy=policy.default).parsebytes(p.read_bytes())["Message-ID"] for p in mailbox.messages()]
    assert sorted(ids) == ["<msg_dup@civicgrid>", "<msg_dup@civicgrid>", "<msg_other@civicgrid>"]


def test_message_ids_escape_what_a_message_id_may_not_hold():
    assert message_id_for("msg_0a1b-2c") == "<msg_0a1b-2c@civicgrid>"
    assert message_id_for("evt:1/张") == "<evt=3A1=2F=E5=BC=A0@civicgrid>"
    assert message_id_for("a=3A") != message_id_for("a:")  # '=' itself is escaped: no two ids collide


class RefusingHandler(MailboxHandler):
    """Refuses RCPT TO with a fixed reply; takes any other recipient."""

    def __init__(self, directory: Path, refused: str, reply: str) -> None:
        super().__init__(directory)
        self.refused, self.reply = refused, reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == self.refused:
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.mark.parametrize("reply, outcome, code", [
    (f"550 5.1.1 <{RESIDENT}>: Recipient address rejected: User unknown", "gone", 550),
    ("550 No such user here", "gone", 550),
    ("551 User not local", "gone", 551),
    ("550 5.7.1 Relaying denied by policy", "failed", 550),
    ("554 5.7.1 Rejected by the content filter", "failed", 554),
    (f"450 4.2.1 <{RESIDENT}>: Mailbox busy, try later", "retry", 450),
    ("421 4.7.0 Try again later", "retry", 421),
])
async def test_a_refused_recipient(tmp_path, reply, outcome, code):
    box = LocalMailbox(tmp_path / "mail", handler=RefusingHandler(tmp_path / "mail", RESIDENT, reply))
    async with box:
        result = await smtp(box.port).send(mail())
        assert (result.outcome, result.status_code) == (outcome, code)
        assert RESIDENT not in result.error and "User" not in result.error  # codes only, no server text
        assert box.messages() == []
        assert (await smtp(box.port).send(mail(address="li.na@example.cn"))).outcome == "sent"
        assert len(box.messages()) == 1


async def test_a_mail_server_that_is_down_is_a_retry():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = await smtp(port, timeout=2).send(mail())
    assert result.outcome == "retry" and result.status_code is None and "connection failed" in result.error


async def test_a_message_over_the_mailbox_size_limit_is_refused(tmp_path):
    async with LocalMailbox(tmp_path / "mail", data_size_limit=16 * 1024) as box:
        big = dict(EMAIL_FIELDS, text="字" * 20_000)
        result = await smtp(box.port).send(mail(fields=big))
        assert (result.outcome, result.status_code) == ("failed", 552)
        assert box.messages() == []
        assert (await smtp(box.port).send(mail())).outcome == "sent"


async def test_an_email_without_the_fields_it_needs_fails_without_a_connection():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens: any attempt to connect would be a retry
    sender = smtp(port)
    no_text = await sender.send(mail(fields={"subject": "x"}))
    assert no_text.outcome == "failed" and "no text part" in no_text.error
    bad_address = await sender.send(mail(address="zhang.wei@example.cn\r\nBcc: all@example.cn"))
    assert bad_address.outcome == "failed" and "not an email address" in bad_address.error
    one_line = sender.build_message(mail(fields=dict(EMAIL_FIELDS, subject="受理\r\nBcc: all@example.cn")))
    assert "\n" not in one_line["Subject"] and one_line["Bcc"] is None


async def test_the_mailbox_runs_as_a_process(tmp_path):
    directory = tmp_path / "mail"
    proc = subprocess.Popen(
        [sys.executable, "-m", "civicgrid_notifications.adapters.mailbox", "--dir", str(directory), "--port", "0"],
        cwd=SERVICE_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        assert match, line
        result = await smtp(int(match.group(1))).send(mail())
        assert result.outcome == "sent"
        [path] = sorted(directory.glob("*.eml"))
        assert BytesParser(policy=policy.default).parsebytes(path.read_bytes())["Subject"] == EMAIL_FIELDS["subject"]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert RESIDENT not in proc.stderr.read()
