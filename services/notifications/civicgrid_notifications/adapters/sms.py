"""SMS over Aliyun's Short Message Service (短信服务): `SendSms` of dysmsapi, API version
2017-05-25, spoken over its HTTP API (RPC style, signature method HMAC-SHA1 v1.0), no SDK.

Sources (looked up for this adapter):

- the signature: "签名机制" of Short Message Service, https://help.aliyun.com/document_detail/101343.html
  (English: https://www.alibabacloud.com/help/en/sms/signature-method) and Alibaba Cloud's
  common RPC "Signature mechanism", https://help.aliyun.com/en/document_detail/130769.html;
  the worked example used as a known-answer test (DescribeRegions, AccessKey secret
  `testsecret`, signature `CT9X0VtwR86fNWSnsc6v8YGOjuE=`) is the RPC signature document's
  (reposted at https://developer.aliyun.com/ask/210168);
- the operation: "SendSms - 发送短信", https://help.aliyun.com/document_detail/55284.html
  (https://help.aliyun.com/en/sms/developer-reference/api-dysmsapi-2017-05-25-sendsms);
- the error codes: "API错误码", https://help.aliyun.com/document_detail/101346.html;
- the delivery receipts: "SmsReport" (HTTP batch push),
  https://help.aliyun.com/document_detail/101867.html.

The request: a POST to the endpoint (default https://dysmsapi.aliyuncs.com/) whose
`application/x-www-form-urlencoded` body carries every parameter and the `Signature`. The common
parameters are AccessKeyId, Action=SendSms, Format=JSON, RegionId, SignatureMethod=HMAC-SHA1,
SignatureNonce (a fresh UUID per request), SignatureVersion=1.0, Timestamp (ISO 8601, UTC,
seconds) and Version=2017-05-25; the business parameters PhoneNumbers (exactly one number),
SignName, TemplateCode, TemplateParam (the template's variables as a JSON string) and OutId, our
delivery id, which Aliyun echoes as `out_id` in its receipts. Aliyun documents that SendSms is NOT
idempotent (国内短信...均不支持幂等): OutId ties receipts to deliveries, it does not stop a retry
after a lost answer from sending the message twice. So before any retry the sender asks
QuerySendDetails ("QuerySendDetails - 查询短信发送详情", https://help.aliyun.com/document_detail/419277.html:
PhoneNumber, SendDate yyyyMMdd, PageSize 1-50, CurrentPage; `SmsSendDetailDTOs.SmsSendDetailDTO[]`
with OutId and SendStatus) whether a record with our OutId exists (`already_sent`), and sends
again only if none does.

The parameters go in the body, not the URL, so the phone number never appears in a URL (nor,
hence, in httpx's request log line).

Answers (JSON `{"Code", "Message", "BizId", "RequestId"}`): `Code: OK` -> sent (provider_id =
BizId); flow control (isv.BUSINESS_LIMIT_CONTROL), Throttling*, an empty balance
(isv.AMOUNT_NOT_ENOUGH, isv.OUT_OF_SERVICE), isp.* platform errors, 5xx, timeouts and connection
errors -> retry; isv.MOBILE_NUMBER_ILLEGAL -> gone; any other isv.* code -> failed. Refused
credentials (SignatureDoesNotMatch, InvalidAccessKeyId.*) are a retry, as a failed SMTP login is
for email: the service's configuration, not this message, is wrong. Redirects are not followed.

A per-number daily limit is enforced before any request (`SmsQuota`, by default in memory, 10 a
day, the day being China's): over it the message fails with no request. Every attempt that
reaches Aliyun takes from the quota, retries included (an attempt whose answer was lost may have
been sent).

The phone number is personal data: it is never logged, and an error names it masked only
(138****1234); the provider's `Message` text is never kept (it may repeat the number).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable
from urllib.parse import quote

import httpx

from civicgrid_common.calendar.working_days import CHINA_TZ, local_date
from civicgrid_common.clock import Clock, utc_now

from civicgrid_notifications.adapters.channels import (NoAnswer, Outgoing, SendResult, finished,
                                                       post_for_json, provider_client)

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://dysmsapi.aliyuncs.com/"
API_VERSION = "2017-05-25"
DEFAULT_REGION = "cn-hangzhou"
DEFAULT_TIMEOUT = 15.0
DEFAULT_DAILY_LIMIT = 10
QUERY_PAGE_SIZE = 50  # QuerySendDetails' largest page
QUERY_PAGES = 4  # a day's records looked through: a number gets at most DEFAULT_DAILY_LIMIT of ours

# The answer a receipt endpoint gives Aliyun's SmsReport push (any numeric code is accepted;
# a non-200 status or no answer makes Aliyun push again after 1, 5 and 10 minutes).
RECEIPT_ACK: Mapping[str, Any] = {"code": 0, "msg": "接收成功"}

_RETRY_CODES = frozenset({
    "isv.BUSINESS_LIMIT_CONTROL",  # flow control: per number per minute / hour / day
    "isv.AMOUNT_NOT_ENOUGH",  # the account's balance is not enough
    "isv.OUT_OF_SERVICE",  # 业务停机: documented as "余额不足" (balance)
    "SignatureNonceUsed",  # a new nonce on the next attempt
    "InvalidTimeStamp.Expired",  # this host's clock: configuration
    "ServiceUnavailable",
})
_CREDENTIAL_CODES = frozenset({
    "SignatureDoesNotMatch", "IncompleteSignature", "InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive",
    "isp.RAM_PERMISSION_DENY",
})
_GONE_CODES = frozenset({"isv.MOBILE_NUMBER_ILLEGAL"})
_SAFE_CODE = re.compile(r"^[A-Za-z0-9._-]{1,80}$")
_NUMBER = re.compile(r"^(?:\+|00)?[0-9]{6,20}$")


# --- the signature -------------------------------------------------------------------------------

def percent_encode(value: str) -> str:
    """Aliyun's percentEncode: UTF-8, then RFC 3986 (only A-Z a-z 0-9 - _ . ~ stay as they are),
    so a space is %20 (not +), * is %2A and ~ is kept; hex digits upper-case."""
    return quote(str(value), safe="-_.~", encoding="utf-8", errors="strict")


def canonicalized_query(params: Mapping[str, str]) -> str:
    """Every parameter but Signature, sorted by name, each `percentEncode(name)=percentEncode(value)`,
    joined with &."""
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()) if k != "Signature")


def string_to_sign(params: Mapping[str, str], *, method: str = "POST") -> str:
    """`HTTPMethod & percentEncode("/") & percentEncode(CanonicalizedQueryString)`."""
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonicalized_query(params))}"


def rpc_signature(params: Mapping[str, str], access_key_secret: str, *, method: str = "POST") -> str:
    """Aliyun's RPC signature v1.0: Base64(HMAC-SHA1(AccessKeySecret + "&", UTF-8(StringToSign)))."""
    digest = hmac.new(f"{access_key_secret}&".encode("utf-8"), string_to_sign(params, method=method).encode("utf-8"),
                      hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


# --- phone numbers -------------------------------------------------------------------------------

def normalise_number(number: str) -> str:
    """The number as digits, a mainland China prefix (+86, 0086, 86 before 11 digits) dropped:
    13812341234, +8613812341234 and 008613812341234 are one number."""
    digits = number.strip()
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("00"):
        digits = digits[2:]
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


def mask_number(number: str) -> str:
    """138****1234: the first three and the last four digits, the rest hidden."""
    digits = normalise_number(number) if isinstance(number, str) else ""
    if len(digits) < 8 or not digits.isdigit():
        return "****"
    return f"{digits[:3]}****{digits[-4:]}"


# --- the daily quota -----------------------------------------------------------------------------

@runtime_checkable
class SmsQuota(Protocol):
    """A counter of SMS per phone number and day (China's). `take` answers True and counts one
    when the number may get another message that day, False when its limit is reached. A
    shared store (the database, Redis) implements it for several sender processes."""

    async def take(self, number: str, day: date) -> bool: ...


class InMemorySmsQuota:
    """SmsQuota in this process's memory: at most `limit` messages per number per day. Days
    before yesterday are forgotten as new days come."""

    def __init__(self, limit: int = DEFAULT_DAILY_LIMIT) -> None:
        if limit < 0:
            raise ValueError("the daily SMS limit is not negative")
        self.limit = limit
        self._counts: dict[tuple[str, date], int] = {}
        self._latest: date | None = None

    async def take(self, number: str, day: date) -> bool:
        if self._latest is None or day > self._latest:
            self._latest = day
            horizon = day - timedelta(days=1)
            self._counts = {key: n for key, n in self._counts.items() if key[1] >= horizon}
        key = (number, day)
        used = self._counts.get(key, 0)
        if used >= self.limit:
            return False
        self._counts[key] = used + 1
        return True

    def used(self, number: str, day: date) -> int:
        return self._counts.get((number, day), 0)

    def __repr__(self) -> str:  # the counts are keyed by phone numbers
        return f"InMemorySmsQuota(limit={self.limit})"


# --- answers -------------------------------------------------------------------------------------

def classify_answer(status: int, body: Mapping[str, Any] | None, *, number: str = "") -> SendResult:
    """The outcome of SendSms's answer (latency not filled in). `body` is the parsed JSON
    object, None when the answer was not one."""
    if 300 <= status < 400:
        return SendResult("failed", status_code=status, error=f"redirect ({status}) not followed: check the SMS endpoint")
    code = body.get("Code") if isinstance(body, Mapping) else None
    if not isinstance(code, str) or not code:
        if status >= 500:
            return SendResult("retry", status_code=status, error=f"aliyun answered {status}")
        return SendResult("failed", status_code=status, error=f"aliyun answered {status} without a readable Code")
    shown = code if _SAFE_CODE.fullmatch(code) else "(unreadable code)"
    if code == "OK" and 200 <= status < 300:
        biz_id = body.get("BizId")
        return SendResult("sent", provider_id=str(biz_id) if biz_id not in (None, "") else None, status_code=status)
    if code in _GONE_CODES:
        return SendResult("gone", status_code=status, error=f"aliyun {shown}: {mask_number(number)} is not a valid mobile number")
    if code in _CREDENTIAL_CODES:
        return SendResult("retry", status_code=status, error=f"aliyun {shown}: the AccessKey was refused; check the SMS credentials")
    if code in _RETRY_CODES or code.startswith("Throttling") or code.startswith("isp.") or status >= 500:
        return SendResult("retry", status_code=status, error=f"aliyun {shown}")
    return SendResult("failed", status_code=status, error=f"aliyun {shown}")


# --- the sender ----------------------------------------------------------------------------------

class AliyunSmsSender:
    """The channel adapter of "sms": one SendSms per message.

    `Outgoing.address` is the phone number (one; mainland numbers with or without +86);
    `Outgoing.fields` are SmsText's rendering: `sign_name`, `template_code`, `params` (the
    template's variables; sent as TemplateParam when there are any), `preview` (not sent).

    `quota` counts messages per number and China day; None builds an InMemorySmsQuota of
    `daily_limit` (a quota given carries its own limit). `client` replaces the sender's own
    httpx client (and is then the caller's to close); `clock` gives the Timestamp and the day;
    `nonce` the SignatureNonce (a UUID by default)."""

    channel = "sms"

    def __init__(self, access_key_id: str, access_key_secret: str, *, endpoint: str = DEFAULT_ENDPOINT,
                 region_id: str = DEFAULT_REGION, quota: SmsQuota | None = None, daily_limit: int = DEFAULT_DAILY_LIMIT,
                 client: httpx.AsyncClient | None = None, timeout: float = DEFAULT_TIMEOUT, clock: Clock = utc_now,
                 nonce: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        if not access_key_id or not access_key_secret:
            raise ValueError("the Aliyun SMS sender needs an AccessKey id and secret")
        self.access_key_id = access_key_id
        self._secret = access_key_secret
        self.endpoint = endpoint
        self.region_id = region_id
        self.quota: SmsQuota = quota if quota is not None else InMemorySmsQuota(daily_limit)
        self.timeout = timeout
        self._clock = clock
        self._nonce = nonce
        self._given_client = client
        self._own_client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:  # never the secret
        return f"AliyunSmsSender(access_key_id={self.access_key_id!r}, endpoint={self.endpoint!r})"

    def _client(self) -> httpx.AsyncClient:
        if self._given_client is not None:
            return self._given_client
        if self._own_client is None:
            self._own_client = provider_client(self.timeout)
        return self._own_client

    def build_params(self, message: Outgoing, *, at: datetime) -> dict[str, str]:
        """Every parameter of the request but Signature. Raises ValueError (naming no personal
        data) for fields or an address that cannot be sent."""
        fields = message.fields
        sign_name, template_code, variables = fields.get("sign_name"), fields.get("template_code"), fields.get("params")
        if not isinstance(sign_name, str) or not sign_name:
            raise ValueError("the SMS has no sign_name")
        if not isinstance(template_code, str) or not template_code:
            raise ValueError("the SMS has no template_code")
        if variables is None:
            variables = {}
        if not isinstance(variables, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in variables.items()):
            raise ValueError("the SMS params are not a mapping of names to texts")
        number = message.address
        if not isinstance(number, str) or not _NUMBER.fullmatch(number.strip()):
            raise ValueError("the recipient is not one mobile number")
        params = {
            **self._common("SendSms", at),
            "PhoneNumbers": number.strip(),
            "SignName": sign_name,
            "TemplateCode": template_code,
            "OutId": message.delivery_id,
        }
        if variables:
            params["TemplateParam"] = json.dumps(dict(variables), ensure_ascii=False, separators=(",", ":"))
        return params

    def _common(self, action: str, at: datetime) -> dict[str, str]:
        return {
            "AccessKeyId": self.access_key_id,
            "Action": action,
            "Format": "JSON",
            "RegionId": self.region_id,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self._nonce(),
            "SignatureVersion": "1.0",
            "Timestamp": at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": API_VERSION,
        }

    async def already_sent(self, number: str, out_id: str, days: Sequence[date]) -> bool | None:
        """Did Aliyun take an SMS with this OutId for `number` on one of `days` (China dates)?
        SendSms is not idempotent, so before a retry after an answer that may have been lost the
        sender asks QuerySendDetails (the number's records of a day, 50 a page, at most
        QUERY_PAGES pages a day; a record that failed at the carrier, SendStatus 2, does not
        count). None when it cannot tell."""
        for day in days:
            for page in range(1, QUERY_PAGES + 1):
                params = {**self._common("QuerySendDetails", self._clock()), "PhoneNumber": number.strip(),
                          "SendDate": day.strftime("%Y%m%d"), "PageSize": str(QUERY_PAGE_SIZE),
                          "CurrentPage": str(page)}
                try:
                    status, body = await post_for_json(self._client(), self.endpoint, self.signed_body(params),
                                                       timeout=self.timeout,
                                                       content_type="application/x-www-form-urlencoded")
                except NoAnswer:
                    return None
                if status != 200 or not body or body.get("Code") != "OK":
                    return None
                records = (body.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
                if not isinstance(records, list):
                    return None
                if any(isinstance(r, Mapping) and r.get("OutId") == out_id and r.get("SendStatus") != 2
                       for r in records):
                    return True
                if len(records) < QUERY_PAGE_SIZE:
                    break
        return False

    def signed_body(self, params: Mapping[str, str]) -> bytes:
        """The form body: the canonicalized query (already percent-encoded) and the Signature."""
        signature = rpc_signature(params, self._secret, method="POST")
        return f"{canonicalized_query(params)}&Signature={percent_encode(signature)}".encode("ascii")

    async def send(self, message: Outgoing) -> SendResult:
        started = time.perf_counter()
        if message.channel != self.channel:
            return self._done(message, started, SendResult("failed", error=f"the sms adapter got a {message.channel} message"))
        now = self._clock()
        try:
            params = self.build_params(message, at=now)
        except ValueError as exc:
            return self._done(message, started, SendResult("failed", error=f"cannot build the SMS: {exc}"))
        number = normalise_number(params["PhoneNumbers"])
        day = local_date(now)
        try:
            allowed = await self.quota.take(number, day)
        except Exception as exc:  # noqa: BLE001 - the quota's store is down: try again later
            return self._done(message, started, SendResult("retry", error=f"the SMS quota check failed ({type(exc).__name__})"))
        if not allowed:
            return self._done(message, started, SendResult(
                "failed", error=f"daily SMS limit reached for {mask_number(number)} on {day.isoformat()} (China time); "
                                "no request made"))
        result = await self._post(self.signed_body(params), number)
        return self._done(message, started, result)

    async def _post(self, body: bytes, number: str) -> SendResult:
        try:
            status, parsed = await post_for_json(self._client(), self.endpoint, body, timeout=self.timeout,
                                                 content_type="application/x-www-form-urlencoded")
        except NoAnswer as exc:
            return SendResult("retry", error=exc.reason)
        return classify_answer(status, parsed, number=number)

    def _done(self, message: Outgoing, started: float, result: SendResult) -> SendResult:
        return finished(log, "sms", message, started, result)

    async def close(self) -> None:
        """Close the sender's own client (a client given to it is the caller's to close)."""
        client, self._own_client = self._own_client, None
        if client is not None:
            await client.aclose()


# --- delivery receipts ---------------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class SmsReceipt:
    """One status report of Aliyun's SmsReport push. `out_id` is our delivery id (the OutId
    sent), `biz_id` the BizId SendSms answered. Times are Aliyun's `yyyy-MM-dd HH:mm:ss`, read as
    China time (the documentation does not name the zone), None when absent or unreadable."""

    phone_number: str  # personal data: kept out of repr
    send_time: datetime | None
    report_time: datetime | None
    success: bool
    err_code: str | None  # DELIVERED when received; the carrier's code otherwise
    err_msg: str | None
    sms_size: int | None  # the number of SMS the message took
    biz_id: str
    out_id: str | None

    def __repr__(self) -> str:
        return (f"SmsReceipt(out_id={self.out_id!r}, biz_id={self.biz_id!r}, success={self.success!r}, "
                f"err_code={self.err_code!r})")


def _receipt_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return datetime.strptime(value.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        return None


def _optional_text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def parse_sms_receipt(payload: bytes | str | Any) -> list[SmsReceipt]:
    """The receipts of one SmsReport push: its body (bytes or text: a JSON array of reports) or
    the parsed JSON (a list, or one report object, as a queue message carries). Raises
    ValueError naming the item and the field, never a value (the numbers are personal data).
    The endpoint then answers RECEIPT_ACK."""
    if isinstance(payload, (bytes, bytearray, str)):
        try:
            payload = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            raise ValueError("the SMS receipt is not JSON") from None
    if isinstance(payload, Mapping):
        payload = [payload]
    if not isinstance(payload, list):
        raise ValueError("the SMS receipt is not a JSON array of reports")
    receipts = []
    for i, item in enumerate(payload):
        if not isinstance(item, Mapping):
            raise ValueError(f"report {i} of the SMS receipt is not an object")
        success = item.get("success")
        if isinstance(success, str) and success.lower() in ("true", "false"):
            success = success.lower() == "true"
        if not isinstance(success, bool):
            raise ValueError(f"report {i} of the SMS receipt has no boolean success")
        biz_id, phone = item.get("biz_id"), item.get("phone_number")
        if biz_id in (None, "") or not isinstance(biz_id, (str, int)):
            raise ValueError(f"report {i} of the SMS receipt has no biz_id")
        if not isinstance(phone, str):
            raise ValueError(f"report {i} of the SMS receipt has no phone_number")
        size = item.get("sms_size")
        try:
            sms_size = int(size) if size not in (None, "") else None
        except (TypeError, ValueError):
            sms_size = None
        receipts.append(SmsReceipt(
            phone_number=phone, send_time=_receipt_time(item.get("send_time")),
            report_time=_receipt_time(item.get("report_time")), success=success,
            err_code=_optional_text(item.get("err_code")), err_msg=_optional_text(item.get("err_msg")),
            sms_size=sms_size, biz_id=str(biz_id), out_id=_optional_text(item.get("out_id"))))
    return receipts
