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

from dataclasses import dataclass
from typing import Any, Literal, Mapping, Protocol, runtime_checkable

import httpx

Outcome = Literal["sent", "retry", "gone", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("sent", "retry", "gone", "failed")
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
