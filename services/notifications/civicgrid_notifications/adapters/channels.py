"""The one interface every channel adapter implements (email, webhook, SMS, WeChat, in-app).

An adapter takes one `Outgoing` (one message to one recipient on one channel) and answers a
`SendResult`; it never raises for a provider's answer or a network failure, only for a bug.
What to do next is the outcome's meaning:

| outcome  | meaning                                                                   |
| -------- | ------------------------------------------------------------------------- |
| `sent`   | the provider took it                                                      |
| `retry`  | try again later (timeouts, connection errors, 408, 429, 5xx, SMTP 4xx); `retry_after` when the provider said |
| `gone`   | the address no longer exists (HTTP 410, SMTP 550 user unknown): disable it |
| `failed` | failed for good (other 4xx, SMTP 5xx, an unsafe webhook URL): do not retry this message |

`error` is short and carries no personal data (no address, no provider's message text), so it
may be stored with the attempt and logged.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, replace
from typing import Any, Literal, Mapping, Protocol, runtime_checkable

import httpx

# unreachable: the recipient has no address on the channel (an applicant without a mobile number)
# not_chosen: the applicant did not choose this channel (intake gives no address for it); the
# delivery is skipped, neither sent nor failed.
Outcome = Literal["sent", "retry", "gone", "failed", "unreachable", "not_chosen"]
OUTCOMES: tuple[Outcome, ...] = ("sent", "retry", "gone", "failed", "unreachable", "not_chosen")
CHANNELS: tuple[str, ...] = ("email", "webhook", "sms", "wechat", "in_app")


@dataclass(frozen=True, repr=False)
class Outgoing:
    """One message to one recipient on one channel."""

    delivery_id: str  # our id of this (event, recipient, channel): the idempotency key sent to providers
    channel: str  # "email" | "webhook" | "sms" | "wechat" | "in_app"
    address: str  # where: an email address, a webhook URL, a phone number, an openid
    fields: Mapping[str, Any]  # the rendered template fields (email: subject/text/html; webhook: the thin payload)

    def __repr__(self) -> str:  # the address and the fields are personal data: never in a log line
        return f"Outgoing(delivery_id={self.delivery_id!r}, channel={self.channel!r})"


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome  # sent; try again later; the address no longer exists; failed for good
    provider_id: str | None = None  # the provider's message id when it gives one
    status_code: int | None = None  # the answer code (HTTP status or SMTP reply code)
    retry_after: float | None = None  # seconds, when the provider said (Retry-After, 429/503)
    error: str | None = None  # short, with no personal data
    latency_ms: float = 0.0


@runtime_checkable
class ChannelAdapter(Protocol):
    channel: str

    async def send(self, message: Outgoing) -> SendResult: ...

    async def close(self) -> None: ...


USER_AGENT = "civicgrid-notifications/0.1"


def provider_client(timeout: float, user_agent: str = USER_AGENT) -> httpx.AsyncClient:
    """An HTTP client for a provider's API (SMS, WeChat): no redirects followed, and no proxy or
    CA settings taken from the environment."""
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False,
                             headers={"User-Agent": user_agent})


# A provider's answer is read up to this much: its JSON fits, a flood does not.
MAX_RESPONSE_BYTES = 16384


class NoAnswer(Exception):
    """A provider request that got no answer: timed out, or the connection failed. `reason`
    names which, never str() of httpx's error, which may carry the URL (and a token in it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def post_for_json(client: httpx.AsyncClient, url: str | httpx.URL, content: bytes, *, content_type: str,
                        timeout: float) -> tuple[int, Mapping[str, Any] | None]:
    """POST to a provider's API: (status, the JSON object answered or None), the answer read
    up to MAX_RESPONSE_BYTES and the whole exchange bounded by `timeout`, however slowly an
    answer trickles. Raises NoAnswer."""
    headers = {"Content-Type": content_type, "Accept": "application/json", "User-Agent": USER_AGENT}
    try:
        async with asyncio.timeout(timeout):
            async with client.stream("POST", url, content=content, headers=headers, follow_redirects=False,
                                     timeout=timeout) as response:
                raw = bytearray()
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) > MAX_RESPONSE_BYTES:
                        break
                status = response.status_code
    except (TimeoutError, httpx.TimeoutException):
        raise NoAnswer(f"timeout after {timeout:g} s") from None
    except httpx.HTTPError as exc:  # refused, reset, TLS, protocol
        raise NoAnswer(f"connection error ({type(exc).__name__})") from None
    try:
        parsed = json.loads(bytes(raw[:MAX_RESPONSE_BYTES]))
    except (ValueError, UnicodeDecodeError):
        parsed = None
    return status, parsed if isinstance(parsed, Mapping) else None


def finished(log: logging.Logger, channel: str, message: Outgoing, started: float, result: SendResult) -> SendResult:
    """The result with its latency since `started` (time.perf_counter()), logged by `channel`'s
    adapter with the delivery id and the outcome only: `error` carries no personal data (a
    number masked at most), and never the address, a token or the message's fields."""
    result = replace(result, latency_ms=round((time.perf_counter() - started) * 1000, 3))
    log.info("%s %s: %s%s", channel, message.delivery_id, result.outcome, f" ({result.error})" if result.error else "",
             extra={"delivery_id": message.delivery_id, "channel": channel, "outcome": result.outcome,
                    "status_code": result.status_code, "latency_ms": result.latency_ms})
    return result
