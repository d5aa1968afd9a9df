"""WeChat subscribe messages (订阅消息) of the civicgrid mini program, over WeChat's server API.

Sources (looked up for this adapter):

- sending: "发送订阅消息" (sendMessage / subscribeMessage.send),
  https://developers.weixin.qq.com/miniprogram/dev/server/API/mp-message-management/subscribe-message/api_sendmessage.html
  (formerly .../miniprogram/dev/OpenApiDoc/mp-message-management/subscribe-message/sendMessage.html):
  `POST https://api.weixin.qq.com/cgi-bin/message/subscribe/send?access_token=ACCESS_TOKEN`, a JSON
  body `{"touser", "template_id", "page", "data": {"thing1": {"value": ...}}, "miniprogram_state",
  "lang"}`; errcodes 40003 (touser openid empty or wrong), 40037 (template id), 43101 (the user
  refused the message, or unsubscribed), 47003 (a data value breaks its rule), 41030 (page);
- the access token: "获取稳定版接口调用凭据" (getStableAccessToken),
  https://developers.weixin.qq.com/miniprogram/dev/server/API/mp-access-token/api_getstableaccesstoken.html
  (also https://developers.weixin.qq.com/doc/service/api/base/api_getstableaccesstoken):
  `POST /cgi-bin/stable_token` with `{"grant_type": "client_credential", "appid", "secret",
  "force_refresh": false}`, answering `{"access_token", "expires_in"}` (at most 7200 s). WeChat
  recommends it over `GET /cgi-bin/token` (推荐使用此接口替代): it is isolated from getAccessToken
  and, in its normal mode, calling it again does not invalidate the token in use (the platform
  renews it 5 minutes before it expires and both stay valid meanwhile), so several sender
  processes may each fetch it. The forced refresh (limited to 20 a day) is not used.

The token is cached until shortly before `expires_in` (TOKEN_MARGIN), fetched by one send at a
time (others wait for it). A send answered 40001 / 40014 / 42001 (invalid or expired token) drops
the token, fetches a new one once and sends again once.

Answers: errcode 0 -> sent (provider_id = msgid when given); 43101 and 40003 -> gone (no
subscription left for this template, or not an openid of this app); 45009 (API quota), -1 (system
busy), 5xx, timeouts, connection errors and a token that cannot be had -> retry; anything else ->
failed. Redirects are not followed.

The openid (`Outgoing.address`) is personal data and the access token a credential: neither is
logged nor in `error` (errcodes only; WeChat's errmsg is never kept). httpx logs each request's
URL, which carries the token: a filter on the "httpx" logger writes it `access_token=***`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from datetime import datetime, timedelta
from typing import Any, Mapping

import httpx

from civicgrid_common.clock import Clock, utc_now

from civicgrid_notifications.adapters.channels import (NoAnswer, Outgoing, SendResult,
                                                       finished, post_for_json, provider_client)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.weixin.qq.com"
TOKEN_PATH = "/cgi-bin/stable_token"
SEND_PATH = "/cgi-bin/message/subscribe/send"
DEFAULT_TIMEOUT = 15.0
TOKEN_MARGIN = timedelta(seconds=120)  # a cached token is renewed this long before it expires

TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # invalid credential, invalid token, token expired
GONE_ERRCODES = frozenset({43101, 40003})  # user refused / not subscribed; not an openid of this app
RETRY_ERRCODES = frozenset({-1, 45009})  # system busy; the API's quota reached
_OPENID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_TOKEN_IN_URL = re.compile(r"(access_token=)[^&\s\"']+")


class _RedactAccessToken(logging.Filter):
    """Rewrites `access_token=...` in a record of the "httpx" logger (its request lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that does not format: leave it to logging
            return True
        if "access_token=" in text:
            record.msg, record.args = _TOKEN_IN_URL.sub(r"\1***", text), ()
        return True


def _install_redaction() -> None:
    httpx_log = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactAccessToken) for f in httpx_log.filters):
        httpx_log.addFilter(_RedactAccessToken())


_install_redaction()


class _GiveUp(Exception):
    """A request that got no usable answer (a timeout, a connection error, no access token):
    `result` says why (a retry)."""

    def __init__(self, result: SendResult) -> None:
        super().__init__(result.error)
        self.result = result


def build_body(message: Outgoing, *, miniprogram_state: str = "formal", lang: str = "zh_CN") -> dict[str, Any]:
    """The JSON body of subscribe/send for `message` (WechatText's rendering: `template_id`,
    `data` {name: text}, `page`?). Raises ValueError (naming no personal data)."""
    fields = message.fields
    template_id, data, page = fields.get("template_id"), fields.get("data"), fields.get("page")
    if not isinstance(template_id, str) or not template_id:
        raise ValueError("the message has no template_id")
    if not isinstance(data, Mapping) or not data or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError("the message data is not a non-empty mapping of field names to texts")
    if page is not None and not isinstance(page, str):
        raise ValueError("the message page is not text")
    if not isinstance(message.address, str) or not _OPENID.fullmatch(message.address):
        raise ValueError("the recipient is not an openid")
    body: dict[str, Any] = {"touser": message.address, "template_id": template_id}
    if page:
        body["page"] = page
    body["data"] = {name: {"value": value} for name, value in data.items()}
    body["miniprogram_state"] = miniprogram_state
    body["lang"] = lang
    return body


def classify_answer(status: int, body: Mapping[str, Any] | None) -> SendResult:
    """The outcome of subscribe/send's answer (token errors are the caller's; latency not filled in)."""
    if 300 <= status < 400:
        return SendResult("failed", status_code=status, error=f"redirect ({status}) not followed: check the WeChat base URL")
    if status >= 500 or status in (408, 429):
        return SendResult("retry", status_code=status, error=f"wechat answered {status}")
    errcode = body.get("errcode", 0 if "msgid" in body else None) if isinstance(body, Mapping) else None
    if not isinstance(errcode, int) or isinstance(errcode, bool):
        return SendResult("failed", status_code=status, error=f"wechat answered {status} without a readable errcode")
    if errcode == 0 and 200 <= status < 300:
        msgid = body.get("msgid")
        return SendResult("sent", provider_id=str(msgid) if msgid not in (None, "") else None, status_code=status)
    if errcode in GONE_ERRCODES:
        why = "the user refused or has no subscription left" if errcode == 43101 else "not an openid of this app"
        return SendResult("gone", status_code=status, error=f"wechat {errcode}: {why}")
    if errcode in RETRY_ERRCODES:
        return SendResult("retry", status_code=status, error=f"wechat {errcode}")
    if errcode in TOKEN_ERRCODES:
        return SendResult("retry", status_code=status, error=f"wechat {errcode}: the access token was refused after a refresh")
    return SendResult("failed", status_code=status, error=f"wechat {errcode}")


class WechatSubscribeSender:
    """The channel adapter of "wechat": one subscribe/send per message, with the app's stable
    access token (cached, shared by the sender's sends).

    `client` replaces the sender's own httpx client (and is then the caller's to close);
    `clock` decides when the cached token expires; `miniprogram_state` (formal, trial,
    developer) and `lang` (zh_CN, en_US, zh_HK, zh_TW) are sent with every message."""

    channel = "wechat"

    def __init__(self, app_id: str, app_secret: str, *, base_url: str = DEFAULT_BASE_URL,
                 client: httpx.AsyncClient | None = None, timeout: float = DEFAULT_TIMEOUT, clock: Clock = utc_now,
                 miniprogram_state: str = "formal", lang: str = "zh_CN") -> None:
        if not app_id or not app_secret:
            raise ValueError("the WeChat sender needs an appid and an AppSecret")
        self.app_id = app_id
        self._secret = app_secret
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._clock = clock
        self.miniprogram_state = miniprogram_state
        self.lang = lang
        self._given_client = client
        self._own_client: httpx.AsyncClient | None = None
        self._token: str | None = None
        self._token_until: datetime | None = None
        self._token_lock = asyncio.Lock()

    def __repr__(self) -> str:  # never the secret or the token
        return f"WechatSubscribeSender(app_id={self.app_id!r}, base_url={self.base_url!r})"

    def _client(self) -> httpx.AsyncClient:
        if self._given_client is not None:
            return self._given_client
        if self._own_client is None:
            self._own_client = provider_client(self.timeout)
        return self._own_client

    # --- the token ---

    def _cached(self) -> str | None:
        if self._token is not None and self._token_until is not None and self._clock() < self._token_until:
            return self._token
        return None

    async def access_token(self, *, rejected: str | None = None) -> str:
        """The cached token, or a new one. `rejected`: the token WeChat just refused, dropped
        unless another send already replaced it. Raises _GiveUp (no token to be had)."""
        async with self._token_lock:
            if rejected is not None and self._token == rejected:
                self._token = self._token_until = None
            token = self._cached()
            if token is not None:
                return token
            self._token, self._token_until = await self._fetch_token()
            return self._token

    async def _fetch_token(self) -> tuple[str, datetime]:
        payload = {"grant_type": "client_credential", "appid": self.app_id, "secret": self._secret,
                   "force_refresh": False}
        asked = self._clock()
        status, body = await self._post_json(self.base_url + TOKEN_PATH, payload, what="access token")
        if status >= 300 or not isinstance(body, Mapping):
            raise _GiveUp(SendResult("retry", status_code=status, error=f"wechat access token: answered {status}"))
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not token:
            errcode = body.get("errcode")
            shown = errcode if isinstance(errcode, int) else "no token"
            raise _GiveUp(SendResult("retry", status_code=status,
                                      error=f"wechat access token: errcode {shown}; check the appid and AppSecret"))
        lifetime = timedelta(seconds=expires_in if isinstance(expires_in, (int, float)) and expires_in > 0 else 300)
        return token, asked + lifetime - min(TOKEN_MARGIN, lifetime / 2)

    # --- sending ---

    async def send(self, message: Outgoing) -> SendResult:
        started = time.perf_counter()
        if message.channel != self.channel:
            return self._done(message, started, SendResult("failed", error=f"the wechat adapter got a {message.channel} message"))
        try:
            body = build_body(message, miniprogram_state=self.miniprogram_state, lang=self.lang)
        except ValueError as exc:
            return self._done(message, started, SendResult("failed", error=f"cannot build the message: {exc}"))
        try:
            result = await self._send_with_token(body)
        except _GiveUp as exc:
            result = exc.result
        return self._done(message, started, result)

    async def _send_with_token(self, body: Mapping[str, Any]) -> SendResult:
        token = await self.access_token()
        for attempt in (1, 2):
            url = httpx.URL(self.base_url + SEND_PATH, params={"access_token": token})
            status, answer = await self._post_json(url, body, what="message")
            errcode = answer.get("errcode") if isinstance(answer, Mapping) else None
            if attempt == 1 and status < 300 and errcode in TOKEN_ERRCODES:
                token = await self.access_token(rejected=token)  # once: a new token, then the send again
                continue
            return classify_answer(status, answer)
        raise AssertionError("unreachable")

    async def _post_json(self, url: str | httpx.URL, payload: Mapping[str, Any], *,
                         what: str) -> tuple[int, Mapping[str, Any] | None]:
        """(status, the JSON object answered or None). Raises _GiveUp for a request that got
        no answer (timeout, connection error)."""
        content = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            return await post_for_json(self._client(), url, content, timeout=self.timeout,
                                       content_type="application/json; charset=utf-8")
        except NoAnswer as exc:  # its reason never carries the URL, hence the token
            raise _GiveUp(SendResult("retry", error=f"wechat {what}: {exc.reason}")) from None

    def _done(self, message: Outgoing, started: float, result: SendResult) -> SendResult:
        # Never the openid, the token or the data: personal data and a credential.
        return finished(log, "wechat", message, started, result)

    async def close(self) -> None:
        """Close the sender's own client (a client given to it is the caller's to close); forget the token."""
        self._token = self._token_until = None
        client, self._own_client = self._own_client, None
        if client is not None:
            await client.aclose()
