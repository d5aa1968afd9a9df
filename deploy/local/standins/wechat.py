"""A local server of WeChat's server API for subscribe messages (订阅消息), in the documented
shape: the local stack's WeChat (`make up` runs it on 127.0.0.1:8026, its mini program APP_ID /
APP_SECRET below, local-only demo values, and keeps each message it takes in
.local/wechat/received.jsonl) and the tests' (scenarios answered in turn). It is not WeChat: no
message reaches anyone, and it knows no user's subscriptions (every well-formed message to a
well-formed openid is taken).

The two calls notifications' adapter makes (adapters/wechat.py names the pages these follow):

- `POST /cgi-bin/stable_token` (getStableAccessToken), a JSON body `{"grant_type":
  "client_credential", "appid", "secret", "force_refresh"}` -> `{"access_token", "expires_in":
  7200}`; or, as WeChat answers (HTTP 200 both): 41002 appid missing, 41004 appsecret missing,
  40002 invalid grant_type, 40013 invalid appid, 40125 invalid appsecret. Each fetch issues a new
  token and the earlier ones stay valid (as WeChat's do in its renewal window); a forced refresh
  invalidates them (and is noted in `problems`: the adapter never forces one).
- `POST /cgi-bin/message/subscribe/send?access_token=...` (subscribeMessage.send), a JSON body
  `{"touser", "template_id", "page"?, "data": {"thing1": {"value": "..."}}, "miniprogram_state"?,
  "lang"?}` -> `{"errcode": 0, "errmsg": "ok", "msgid": <int>}`; or 41001 access_token missing,
  40001 invalid credential (a token it did not issue, or one invalidated), 47001 data format
  error (not JSON), 40003 invalid openid, 40037 invalid template_id, 41030 invalid page, 47003
  argument invalid (a data field not `{"value": text}`, empty, or breaking its kind's documented
  rule: thing 20 characters, number and letter 32, character_string 32 digits, letters or
  symbols, phrase 5 Chinese characters, symbol 5 symbols). Every errmsg ends in a ` rid: ...` as
  WeChat's do.

    python deploy/local/standins/wechat.py --port 8026 --log .local/wechat/received.jsonl
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

if __package__ in (None, ""):  # run as a file: standins/ importable as under pytest (see serving.py)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from standins.serving import append_line, fake_serving, run_standin  # noqa: E402

PORT = 8026  # the local stack's (localstack.py's STANDINS)
# The local stack's mini program (deploy/local/services.yaml gives them to notifications): an
# appid of WeChat's shape, a secret that is a secret nowhere.
APP_ID = "wx0123456789abcdef"
APP_SECRET = "local-only-wechat-app-secret"
TOKEN_LIFETIME = 7200  # seconds: WeChat's expires_in
MSGID = 3248682510344192008  # the first message's msgid (of WeChat's size, over 2**53); then +1 each

SEND_KEYS = {"touser", "template_id", "page", "data", "miniprogram_state", "lang"}
MINIPROGRAM_STATES = {"developer", "trial", "formal"}
LANGS = {"zh_CN", "en_US", "zh_HK", "zh_TW"}
OPENID = re.compile(r"^[A-Za-z0-9_-]{28}$")  # a mini program's openid: 28 characters
TEMPLATE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FIELD_NAME = re.compile(r"^([a-z_]+?)(\d+)$")  # thing1 -> kind "thing"
# The documented rules of a value by its field's kind (参数值内容限制); other kinds: not empty.
KIND_RULES: dict[str, Callable[[str], bool]] = {
    "thing": lambda v: len(v) <= 20,
    "number": lambda v: len(v) <= 32 and re.fullmatch(r"\d+(\.\d+)?", v) is not None,
    "letter": lambda v: len(v) <= 32 and re.fullmatch(r"[A-Za-z]+", v) is not None,
    "character_string": lambda v: len(v) <= 32 and re.fullmatch(r"[!-~]+", v) is not None,
    "phrase": lambda v: len(v) <= 5 and re.fullmatch(r"[\u4e00-\u9fff]+", v) is not None,
    "symbol": lambda v: len(v) <= 5 and re.fullmatch(r"[!-/:-@\[-`{-~]+", v) is not None,
}
ERRMSG = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41030: "invalid page",
    42001: "access_token expired",
    43101: "user refuse to accept the msg",
    45009: "reach max api daily quota limit",
    47001: "data format error",
    47003: "argument invalid!",
}


def rid() -> str:
    hexes = uuid.uuid4().hex
    return f"{hexes[:8]}-{hexes[8:16]}-{hexes[16:24]}"


def wechat_error(errcode: int, detail: str = "") -> JSONResponse:
    """WeChat's error answer: HTTP 200, `errcode`, and an `errmsg` ending in its request id."""
    text = ERRMSG.get(errcode, "error") + (f" {detail}" if detail else "")
    return JSONResponse({"errcode": errcode, "errmsg": f"{text} rid: {rid()}"})


def data_problem(data: Any) -> tuple[int, str] | None:
    """(errcode, detail) for the `data` of a send that WeChat would refuse, or None."""
    if not isinstance(data, dict) or not data:
        return 47001, ""
    for name, item in data.items():
        if not isinstance(item, dict) or set(item) != {"value"} or not isinstance(item["value"], str):
            return 47003, f"data.{name}.value invalid"
        value = item["value"]
        if not value.strip():
            return 47003, f"data.{name}.value is empty"
        kind = FIELD_NAME.fullmatch(name)
        rule = KIND_RULES.get(kind.group(1)) if kind else None
        if kind is None or (rule is not None and not rule(value)):
            return 47003, f"data.{name}.value invalid"
    return None


def send_problem(body: dict[str, Any]) -> tuple[int, str] | None:
    """(errcode, detail) for a subscribe/send body that WeChat would refuse, or None."""
    touser, template_id, page = body.get("touser"), body.get("template_id"), body.get("page")
    if not isinstance(touser, str) or not OPENID.fullmatch(touser):
        return 40003, ""
    if not isinstance(template_id, str) or not TEMPLATE_ID.fullmatch(template_id):
        return 40037, ""
    if page is not None and not isinstance(page, str):
        return 41030, ""
    return data_problem(body.get("data"))


@dataclass
class WechatFake:
    answers: list[str] = field(default_factory=list)  # the next scenarios of subscribe/send; "ok" after
    token_fetches: int = 0
    issued: list[str] = field(default_factory=list)
    valid: set[str] = field(default_factory=set)
    sends: list[dict[str, Any]] = field(default_factory=list)  # {"token", "body"} of each send with a valid token
    taken: list[dict[str, Any]] = field(default_factory=list)  # the messages WeChat would have delivered
    refused_tokens: int = 0
    problems: list[str] = field(default_factory=list)  # what the adapter should never send
    expires_in: int = TOKEN_LIFETIME
    release: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    received_log: Path | None = None  # each message taken, one JSON line (the local stack's)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/cgi-bin/stable_token", self.stable_token, methods=["POST"]),
                                 Route("/cgi-bin/message/subscribe/send", self.subscribe_send, methods=["POST"])])

    async def _json_body(self, request: Request) -> Any:
        if not request.headers.get("content-type", "").startswith("application/json"):
            self.problems.append(f"content-type {request.headers.get('content-type')!r}")
        try:
            return json.loads(await request.body())
        except ValueError:
            self.problems.append("a body that is not JSON")
            return None

    async def stable_token(self, request: Request) -> JSONResponse:
        body = await self._json_body(request)
        body = body if isinstance(body, dict) else {}
        if not body.get("appid"):
            self.problems.append("token request without appid")
            return wechat_error(41002)
        if not body.get("secret"):
            self.problems.append("token request without secret")
            return wechat_error(41004)
        if body.get("grant_type") != "client_credential":
            self.problems.append(f"grant_type {body.get('grant_type')!r}")
            return wechat_error(40002)
        if body["appid"] != APP_ID:
            return wechat_error(40013)
        if body["secret"] != APP_SECRET:
            return wechat_error(40125)
        if body.get("force_refresh") not in (None, False):
            self.problems.append("force_refresh used")
            self.valid.clear()
        self.token_fetches += 1
        token = f"86_ACCESS{self.token_fetches}_{uuid.uuid4().hex}"
        self.issued.append(token)
        self.valid.add(token)
        return JSONResponse({"access_token": token, "expires_in": self.expires_in})

    async def subscribe_send(self, request: Request) -> Response:
        token = request.query_params.get("access_token")
        if token not in self.valid:
            self.refused_tokens += 1
            return wechat_error(41001 if not token else 40001)
        body = await self._json_body(request)
        if not isinstance(body, dict):
            return wechat_error(47001)
        if not {"touser", "template_id", "data"} <= body.keys() <= SEND_KEYS:
            self.problems.append(f"keys {sorted(body)}")
        if body.get("miniprogram_state", "formal") not in MINIPROGRAM_STATES or body.get("lang", "zh_CN") not in LANGS:
            self.problems.append(f"miniprogram_state {body.get('miniprogram_state')!r}, lang {body.get('lang')!r}")
        self.sends.append({"token": token, "body": body})
        refused = send_problem(body)
        if refused is not None:
            self.problems.append(f"refused {refused[0]} {refused[1]}".strip())
            return wechat_error(*refused)
        scenario = self.answers.pop(0) if self.answers else "ok"
        if scenario == "ok":
            return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": self._take(body)})
        if scenario == "expire":  # the token expires under this send
            self.valid.discard(token)
            return wechat_error(42001)
        if scenario == "500":
            return PlainTextResponse("busy", status_code=500)
        if scenario == "hang":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), 30)
            return JSONResponse({"errcode": 0})
        # Any other scenario is an errcode; its errmsg names the touser, so a test sees that the
        # adapter keeps errcodes only, never WeChat's errmsg.
        return wechat_error(int(scenario), f"touser {body['touser']}")

    def _take(self, body: dict[str, Any]) -> int:
        msgid = MSGID + len(self.taken)
        line = {"received_at": datetime.now(timezone.utc).isoformat(), "msgid": msgid, "touser": body["touser"],
                "template_id": body["template_id"], "data": body["data"], "page": body.get("page")}
        self.taken.append(line)
        if self.received_log is not None:
            append_line(self.received_log, line)
        return msgid


def wechat_serving(received_log: Path | None = None):
    """A WechatFake served on 127.0.0.1:0, its `url` set (the base URL, as WechatSubscribeSender's
    base_url); hanging answers released at the end."""
    return fake_serving(WechatFake(received_log=received_log))


def main() -> None:
    run_standin("a local server of WeChat's subscribe-message API", PORT, lambda log: WechatFake(received_log=log).app())


if __name__ == "__main__":
    main()
