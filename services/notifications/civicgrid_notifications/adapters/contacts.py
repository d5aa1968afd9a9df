"""Where a case's applicant is reached: intake's contact API, asked at send time, one message at
a time (`POST /v1/cases/{case_id}/applicant-contact`, role notifier). intake records every answer
on the case as `contact_disclosed`; notifications keeps the number in memory for the one request
to the provider and never stores or logs it. intake answers only for a channel the applicant
chose (SMS to their mobile when they never chose): another channel is "not_chosen", and the
delivery is skipped; a chosen channel without an address is "none", recorded as unreachable,
not as a failure of the channel.

The token is this service's own: the identity provider's client-credentials grant issues it to
the `civicgrid-notifications` client, whose service account holds the `notifier` role over the
district (deploy/local/keycloak/civicgrid-realm.json; CIVICGRID_OIDC_CLIENT_ID and _SECRET). A
process with no such client on the local stack (tests, a service run by hand) mints one with the
local signing key instead; elsewhere, without a client, none is had and an SMS to an applicant
waits (retried) with that said in its error.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Literal

import httpx

from civicgrid_common.identity.service_tokens import TokenUnavailable
from civicgrid_common.identity.tokens import mint_local_token

from civicgrid_notifications.adapters.channels import NoAnswer, post_for_json, provider_client

NOTIFIER_SUBJECT = "svc-notifications"
TOKEN_TTL_SECONDS = 900


@dataclass(frozen=True, repr=False)
class Contact:
    """What intake answered: the address (a number, an email address, an openid: personal
    data), or why there is none."""

    outcome: Literal["found", "none", "not_chosen", "retry"]
    address: str | None = None
    error: str | None = None  # short, with no personal data

    def __repr__(self) -> str:  # never the address
        return f"Contact(outcome={self.outcome!r}, error={self.error!r})"


class LocalNotifierToken:
    """A notifier token minted with the local stack's signing key, renewed before it expires."""

    def __init__(self, district: str, *, clock: Callable[[], float] = time.time) -> None:
        self.district = district
        self.clock = clock
        self._token: str | None = None
        self._until = 0.0

    async def __call__(self) -> str:
        now = self.clock()
        if self._token is None or now > self._until:
            self._token = mint_local_token("notifier", self.district, subject=NOTIFIER_SUBJECT,
                                           ttl=TOKEN_TTL_SECONDS)
            self._until = now + TOKEN_TTL_SECONDS - 60
        return self._token


class NoNotifierToken:
    """Outside the local stack with no client at the identity provider configured."""

    async def __call__(self) -> str | None:
        return None


class IntakeContacts:
    """intake's contact API for a case's applicant."""

    def __init__(self, base_url: str, token: Callable[[], Awaitable[str | None]], *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._http: httpx.AsyncClient | None = None

    async def address(self, case_id: str, channel: str, *, purpose: str) -> Contact:
        """The address of the case's applicant on `channel` (sms, email, wechat) for one message
        (`purpose`: the delivery)."""
        try:
            token = await self.token()
        except TokenUnavailable as exc:
            return Contact("retry", error=f"no notifier token: {exc}")
        if token is None:
            return Contact("retry", error="no notifier token: no client at the identity provider is configured "
                                          "(CIVICGRID_OIDC_CLIENT_ID and CIVICGRID_OIDC_CLIENT_SECRET)")
        if self._http is None:
            self._http = provider_client(self.timeout)
        url = httpx.URL(f"{self.base_url}/v1/cases/{case_id}/applicant-contact")
        body = json.dumps({"channel": channel, "purpose": purpose}).encode()
        self._http.headers["Authorization"] = f"Bearer {token}"
        try:
            status, answer = await post_for_json(self._http, url, body, content_type="application/json",
                                                 timeout=self.timeout)
        except NoAnswer as exc:
            return Contact("retry", error=f"intake's contact API: {exc.reason}")
        if status == 200 and answer and isinstance(answer.get("address"), str):
            return Contact("found", answer["address"])
        code = (answer or {}).get("code")
        if status == 409 and code == "no_contact_on_record":
            # intake's reason names the channel and why (not chosen, none on record), never an address
            detail = (answer or {}).get("detail")
            return Contact("none", error=str(detail)[:200] if detail else f"intake holds no {channel} contact "
                                                                            "of the applicant")
        if status == 409 and code == "channel_not_chosen":
            return Contact("not_chosen", error=f"the applicant did not choose {channel}")
        if status == 404:
            return Contact("none", error="intake knows no such case")
        # 401/403 (the token), 429, 5xx: intake or this service's credentials; try again later
        return Contact("retry", error=f"intake's contact API answered {status}{f' {code}' if code else ''}")

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
