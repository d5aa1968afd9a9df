"""The SMS (Aliyun SendSms) and WeChat (subscribe message) adapters against local servers of each
API's documented shape (the local stack's stand-ins, deploy/local/standins/), on 127.0.0.1:0 (no
database, no Kafka, nothing outside loopback).

The Aliyun stand-in recomputes the RPC signature with its own implementation of the documented
algorithm (not the adapter's), refuses a wrong secret as Aliyun does (SignatureDoesNotMatch),
checks every common and business parameter and answers per scenario. The WeChat stand-in issues
stable access tokens (counting the fetches), checks the token and the JSON of each
subscribe/send (refusing with WeChat's errcodes what WeChat would refuse) and answers per
scenario."""
from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import uuid
from datetime import date, datetime, timezone
from typing import Any

import httpx
import pytest

from standins.aliyun_sms import ACCESS_KEY_ID, ACCESS_KEY_SECRET, ALLOWED, aliyun_serving, pct, reference_signature
from standins.wechat import APP_ID, APP_SECRET, MSGID, wechat_serving
from settable_clock import Clock

from civicgrid_common.calendar.working_days import CHINA_TZ

from civicgrid_notifications.adapters.channels import ChannelAdapter, Outgoing
from civicgrid_notifications.adapters.sms import (
    RECEIPT_ACK, AliyunSmsSender, InMemorySmsQuota, SmsQuota, mask_number, parse_sms_receipt, percent_encode,
    rpc_signature, string_to_sign,
)
from civicgrid_notifications.adapters.wechat import WechatSubscribeSender

T0 = datetime(2026, 3, 4, 2, 15, tzinfo=timezone.utc)  # 10:15 China time

NUMBER = "13812341234"
MASKED = "138****1234"
SMS_FIELDS = {"sign_name": "鼓楼街道", "template_code": "SMS_123456789",
              "params": {"case_number": "JY-2026-000123", "name": "张 伟*~+/&="},
              "preview": "【鼓楼街道】张 伟*~+/&=,您的申请JY-2026-000123已受理。"}

OPENID = "oB_hN41zbT1OvATDONK5LccFIwwA"
WECHAT_FIELDS = {"template_id": "R8A42w9nhUj3HDenswaQcMEBAz-i211U1uRggj8U6pQ",
                 "data": {"thing1": "低保申请已受理", "character_string2": "JY-2026-000123", "time3": "2026-03-04 10:15"},
                 "page": "pages/case/detail?id=c_1"}


def our_logs(caplog) -> str:
    """What this process logged, but the fakes' own server logs (uvicorn's: the provider's side)."""
    return "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records if not r.name.startswith("uvicorn"))


def sms(delivery_id: str = "dlv_sms_0001", number: str = NUMBER, **fields: Any) -> Outgoing:
    return Outgoing(delivery_id, "sms", number, {**SMS_FIELDS, **fields})


def wechat(delivery_id: str = "dlv_wx_0001", openid: str = OPENID, **fields: Any) -> Outgoing:
    return Outgoing(delivery_id, "wechat", openid, {**WECHAT_FIELDS, **fields})


# Aliyun's worked example of the RPC signature (ECS DescribeRegions; Alibaba Cloud's "签名机制" /
# "Signature mechanism" page, reposted at https://developer.aliyun.com/ask/210168): AccessKey id
# testid, secret testsecret, key "testsecret&", signature CT9X0VtwR86fNWSnsc6v8YGOjuE=. (The
# repost renders the %26 separators of its StringToSign as "&"; with %26 it reproduces exactly.)
DOC_PARAMS = {"TimeStamp": "2016-02-23T12:46:24Z", "Format": "XML", "AccessKeyId": "testid",
              "Action": "DescribeRegions", "SignatureMethod": "HMAC-SHA1",
              "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf", "Version": "2014-05-26",
              "SignatureVersion": "1.0"}
DOC_STRING_TO_SIGN = ("GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML"
                      "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
                      "%26SignatureVersion%3D1.0%26TimeStamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26")
DOC_SIGNATURE = "CT9X0VtwR86fNWSnsc6v8YGOjuE="


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def aliyun():
    async with aliyun_serving() as fake:
        yield fake


@pytest.fixture
async def sms_sender(aliyun, clock):
    sender = AliyunSmsSender(ACCESS_KEY_ID, ACCESS_KEY_SECRET, endpoint=aliyun.url, clock=clock, timeout=5)
    yield sender
    await sender.close()


# --- the signature -----------------------------------------------------------------------------------

def test_the_signature_reproduces_aliyuns_documented_example():
    assert string_to_sign(DOC_PARAMS, method="GET") == DOC_STRING_TO_SIGN
    assert rpc_signature(DOC_PARAMS, "testsecret", method="GET") == DOC_SIGNATURE
    assert reference_signature(DOC_PARAMS, "testsecret", "GET") == DOC_SIGNATURE  # the fake's own is right too
    assert rpc_signature(DOC_PARAMS, "testsecret", method="POST") != DOC_SIGNATURE  # the method is signed
    assert rpc_signature(DOC_PARAMS, "otherSecret", method="GET") != DOC_SIGNATURE


def test_percent_encoding_follows_aliyuns_special_cases():
    assert percent_encode("a b*c~d") == "a%20b%2Ac~d"  # space %20 (not +), * %2A, ~ kept
    assert percent_encode("+/&=:") == "%2B%2F%26%3D%3A"
    assert percent_encode("张") == "%E5%BC%A0"  # UTF-8, upper-case hex
    assert percent_encode("A-z_0.9") == "A-z_0.9"
    for text in ("张 伟*~+/&=", "{\"a\":\"b c\"}", "~!@#$%^&*()"):
        assert percent_encode(text) == pct(text)


def test_the_adapters_are_channel_adapters():
    assert isinstance(AliyunSmsSender(ACCESS_KEY_ID, ACCESS_KEY_SECRET), ChannelAdapter)
    assert isinstance(WechatSubscribeSender(APP_ID, APP_SECRET), ChannelAdapter)
    assert isinstance(InMemorySmsQuota(), SmsQuota)
    assert ACCESS_KEY_SECRET not in repr(AliyunSmsSender(ACCESS_KEY_ID, ACCESS_KEY_SECRET))
    assert APP_SECRET not in repr(WechatSubscribeSender(APP_ID, APP_SECRET))
    assert mask_number(NUMBER) == MASKED and mask_number("+86" + NUMBER) == MASKED and mask_number("12") == "****"


# --- SendSms -----------------------------------------------------------------------------------------

async def test_an_sms_is_sent_signed_with_every_parameter_and_outid_the_delivery_id(aliyun, sms_sender):
    first = await sms_sender.send(sms("dlv_sms_0001"))
    second = await sms_sender.send(sms("dlv_sms_0002"))
    assert aliyun.problems == [] and aliyun.rejected == 0
    assert (first.outcome, first.provider_id, first.status_code) == ("sent", "9006197469364984^1", 200)
    assert second.provider_id == "9006197469364984^2" and first.latency_ms > 0
    params = aliyun.requests[0]
    assert params["OutId"] == "dlv_sms_0001" and aliyun.requests[1]["OutId"] == "dlv_sms_0002"
    assert params["PhoneNumbers"] == NUMBER
    assert params["SignName"] == "鼓楼街道" and params["TemplateCode"] == "SMS_123456789"
    assert json.loads(params["TemplateParam"]) == SMS_FIELDS["params"]
    assert params["Timestamp"] == "2026-03-04T02:15:00Z"
    assert aliyun.requests[0]["SignatureNonce"] != aliyun.requests[1]["SignatureNonce"]
    assert uuid.UUID(params["SignatureNonce"])
    assert set(params) == ALLOWED  # every parameter, none more


async def test_a_template_without_variables_sends_no_template_param(aliyun, sms_sender):
    result = await sms_sender.send(sms(params={}))
    assert result.outcome == "sent" and aliyun.problems == []
    assert "TemplateParam" not in aliyun.requests[0]


async def test_a_wrong_secret_is_refused_as_aliyun_does(aliyun, clock):
    sender = AliyunSmsSender(ACCESS_KEY_ID, "not-the-secret", endpoint=aliyun.url, clock=clock, timeout=5)
    try:
        result = await sender.send(sms())
    finally:
        await sender.close()
    assert aliyun.rejected == 1 and aliyun.requests == []
    assert (result.outcome, result.status_code) == ("retry", 400)  # configuration, as a failed SMTP login
    assert "SignatureDoesNotMatch" in result.error and "not-the-secret" not in result.error


@pytest.mark.parametrize(("scenario", "outcome", "code"), [
    ("limit", "retry", "isv.BUSINESS_LIMIT_CONTROL"),
    ("throttling", "retry", "Throttling.User"),
    ("amount", "retry", "isv.AMOUNT_NOT_ENOUGH"),
    ("illegal", "gone", "isv.MOBILE_NUMBER_ILLEGAL"),
    ("template", "failed", "isv.TEMPLATE_MISSING_PARAMETERS"),
    ("500", "retry", None),
    ("redirect", "failed", None),
])
async def test_aliyuns_answers_have_their_outcomes(aliyun, sms_sender, scenario, outcome, code):
    aliyun.answers = [scenario]
    result = await sms_sender.send(sms())
    assert aliyun.problems == [] and len(aliyun.requests) == 1
    assert result.outcome == outcome, result
    assert result.provider_id is None
    if code:
        assert code in result.error
    assert NUMBER not in result.error and "非法手机号" not in result.error  # no number, no provider text
    if scenario == "illegal":
        assert MASKED in result.error
    if scenario == "500":
        assert result.status_code == 500
    if scenario == "redirect":
        assert result.status_code == 302 and "redirect" in result.error


async def test_a_hanging_aliyun_is_a_timeout_to_retry(aliyun, clock):
    aliyun.answers = ["hang"]
    sender = AliyunSmsSender(ACCESS_KEY_ID, ACCESS_KEY_SECRET, endpoint=aliyun.url, clock=clock, timeout=0.5)
    try:
        result = await sender.send(sms())
    finally:
        await sender.close()
    assert result.outcome == "retry" and "timeout" in result.error
    assert 400 <= result.latency_ms < 5000
    assert len(aliyun.requests) == 1


async def test_an_unreachable_endpoint_is_a_connection_error_to_retry(clock):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    sender = AliyunSmsSender(ACCESS_KEY_ID, ACCESS_KEY_SECRET, endpoint=f"http://127.0.0.1:{port}/", clock=clock,
                             timeout=2)
    try:
        result = await sender.send(sms())
    finally:
        await sender.close()
    assert result.outcome == "retry" and "connection error" in result.error


async def test_an_address_that_is_not_one_number_fails_without_a_request(aliyun, sms_sender):
    for address in (f"{NUMBER},13900001111", "not a number", ""):
        result = await sms_sender.send(sms(number=address))
        assert result.outcome == "failed" and "not one mobile number" in result.error
    result = await sms_sender.send(sms(template_code=""))
    assert result.outcome == "failed" and "template_code" in result.error
    assert aliyun.requests == [] and aliyun.rejected == 0


async def test_the_daily_quota_refuses_the_eleventh_message_to_a_number_without_a_request(aliyun, sms_sender, clock):
    results = [await sms_sender.send(sms(f"dlv_{i}")) for i in range(10)]
    assert [r.outcome for r in results] == ["sent"] * 10 and len(aliyun.requests) == 10
    eleventh = await sms_sender.send(sms("dlv_10"))
    assert eleventh.outcome == "failed" and "daily SMS limit" in eleventh.error and "no request" in eleventh.error
    assert MASKED in eleventh.error and NUMBER not in eleventh.error
    assert len(aliyun.requests) == 10  # no request made
    again = await sms_sender.send(sms("dlv_11", number="+86" + NUMBER))  # the same number, written otherwise
    assert again.outcome == "failed" and len(aliyun.requests) == 10
    other = await sms_sender.send(sms("dlv_12", number="13900001111"))  # another number is not limited
    assert other.outcome == "sent" and len(aliyun.requests) == 11
    clock.now = datetime(2026, 3, 4, 15, 59, 59, tzinfo=timezone.utc)  # 23:59:59 China time: the same day
    assert (await sms_sender.send(sms("dlv_13"))).outcome == "failed"
    clock.advance(seconds=1)  # midnight in China: a new day
    assert (await sms_sender.send(sms("dlv_14"))).outcome == "sent" and len(aliyun.requests) == 12


async def test_an_injected_quota_is_asked_with_the_china_day(aliyun, clock):
    asked: list[tuple[str, date]] = []

    class Refusing:
        async def take(self, number: str, day: date) -> bool:
            asked.append((number, day))
            return False

    class Broken:
        async def take(self, number: str, day: date) -> bool:
            raise ConnectionError("the store is down")

    clock.now = datetime(2026, 3, 4, 17, 0, tzinfo=timezone.utc)  # 01:00 on the 5th in China
    for quota, outcome in ((Refusing(), "failed"), (Broken(), "retry")):
        sender = AliyunSmsSender(ACCESS_KEY_ID, ACCESS_KEY_SECRET, endpoint=aliyun.url, clock=clock, quota=quota)
        assert (await sender.send(sms(number="+86" + NUMBER))).outcome == outcome
        await sender.close()
    assert asked == [(NUMBER, date(2026, 3, 5))]
    assert aliyun.requests == []


async def test_no_phone_number_is_logged(aliyun, sms_sender, caplog):
    caplog.set_level(logging.DEBUG)
    aliyun.answers = ["ok", "illegal", "limit", "500"]
    results = [await sms_sender.send(sms(f"dlv_log_{i}")) for i in range(4)]
    quota = InMemorySmsQuota(0)
    limited = AliyunSmsSender(ACCESS_KEY_ID, ACCESS_KEY_SECRET, endpoint=aliyun.url, quota=quota)
    results.append(await limited.send(sms("dlv_log_quota")))
    await limited.close()
    assert [r.outcome for r in results] == ["sent", "gone", "retry", "retry", "failed"]
    logged = our_logs(caplog)
    assert "dlv_log_1" in logged and "HTTP Request: POST" in logged  # the log is there, and says what happened
    assert NUMBER not in logged and ACCESS_KEY_SECRET not in logged
    assert "张 伟" not in logged and "非法手机号" not in logged
    assert all(NUMBER not in (r.error or "") for r in results)
    assert NUMBER not in repr(sms()) and NUMBER not in repr(quota)


# --- delivery receipts (SmsReport) ------------------------------------------------------------------

async def test_a_receipt_ties_back_to_the_delivery_by_out_id(aliyun, sms_sender):
    result = await sms_sender.send(sms("dlv_sms_receipt"))
    sent = aliyun.requests[0]
    # The documented SmsReport push: a JSON array of reports (help.aliyun.com/document_detail/101867).
    push = json.dumps([
        {"phone_number": sent["PhoneNumbers"], "send_time": "2026-03-04 10:15:00", "report_time": "2026-03-04 10:15:03",
         "success": True, "err_code": "DELIVERED", "err_msg": "用户接收成功", "sms_size": "1",
         "biz_id": result.provider_id, "out_id": sent["OutId"]},
        {"phone_number": "13900001111", "send_time": "2026-03-04 10:16:00", "report_time": "2026-03-04 10:16:09",
         "success": False, "err_code": "MK:0001", "err_msg": "停机", "sms_size": "2", "biz_id": "12345^0",
         "out_id": ""},
    ], ensure_ascii=False).encode()
    delivered, failed = parse_sms_receipt(push)
    assert delivered.out_id == "dlv_sms_receipt" and delivered.biz_id == result.provider_id
    assert delivered.success is True and delivered.err_code == "DELIVERED" and delivered.sms_size == 1
    assert delivered.report_time == datetime(2026, 3, 4, 10, 15, 3, tzinfo=CHINA_TZ)
    assert delivered.send_time == datetime(2026, 3, 4, 2, 15, tzinfo=timezone.utc)
    assert failed.success is False and failed.err_code == "MK:0001" and failed.out_id is None and failed.sms_size == 2
    assert NUMBER not in repr(delivered) and "13900001111" not in repr(failed)
    assert RECEIPT_ACK == {"code": 0, "msg": "接收成功"}


def test_a_queue_message_and_bad_receipts():
    [one] = parse_sms_receipt({"phone_number": NUMBER, "success": "false", "biz_id": "9^1", "out_id": "dlv_x",
                               "send_time": "bad", "err_code": "UNKNOWN"})
    assert one.success is False and one.send_time is None and one.out_id == "dlv_x"
    for bad in (b"not json", b'{"a": 1}', b"[1]", json.dumps([{"phone_number": NUMBER, "biz_id": "1", "success": "maybe"}]),
                json.dumps([{"phone_number": NUMBER, "success": True}])):
        with pytest.raises(ValueError) as caught:
            parse_sms_receipt(bad)
        assert NUMBER not in str(caught.value)


# --- subscribe messages (the WeChat stand-in, deploy/local/standins/wechat.py) -----------------------

@pytest.fixture
async def wx():
    async with wechat_serving() as fake:
        yield fake


@pytest.fixture
async def wechat_sender(wx, clock):
    sender = WechatSubscribeSender(APP_ID, APP_SECRET, base_url=wx.url, clock=clock, timeout=5)
    yield sender
    await sender.close()


async def test_a_subscribe_message_is_sent_with_its_msgid(wx, wechat_sender):
    result = await wechat_sender.send(wechat())
    assert wx.problems == [] and wx.refused_tokens == 0
    assert (result.outcome, result.provider_id, result.status_code) == ("sent", str(MSGID), 200)
    [sent] = wx.sends
    assert sent["token"] == wx.issued[0] and wx.token_fetches == 1
    assert sent["body"] == {
        "touser": OPENID, "template_id": WECHAT_FIELDS["template_id"], "page": "pages/case/detail?id=c_1",
        "data": {"thing1": {"value": "低保申请已受理"}, "character_string2": {"value": "JY-2026-000123"},
                 "time3": {"value": "2026-03-04 10:15"}},
        "miniprogram_state": "formal", "lang": "zh_CN"}


async def test_a_message_without_a_page_sends_none(wx, wechat_sender):
    fields = {k: v for k, v in WECHAT_FIELDS.items() if k != "page"}
    result = await wechat_sender.send(Outgoing("dlv_wx_nopage", "wechat", OPENID, fields))
    assert result.outcome == "sent" and wx.problems == []
    assert "page" not in wx.sends[0]["body"]


async def test_the_token_is_cached_across_sends_until_shortly_before_it_expires(wx, wechat_sender, clock):
    for i in range(3):
        assert (await wechat_sender.send(wechat(f"dlv_wx_{i}"))).outcome == "sent"
    assert wx.token_fetches == 1 and {s["token"] for s in wx.sends} == {wx.issued[0]}
    clock.advance(seconds=7200 - 120 - 1)
    assert (await wechat_sender.send(wechat("dlv_wx_late"))).outcome == "sent"
    assert wx.token_fetches == 1
    clock.advance(seconds=2)  # within two minutes of expires_in: renewed before use
    assert (await wechat_sender.send(wechat("dlv_wx_renewed"))).outcome == "sent"
    assert wx.token_fetches == 2 and wx.sends[-1]["token"] == wx.issued[1]
    assert wx.refused_tokens == 0


async def test_concurrent_sends_fetch_the_token_once(wx, wechat_sender):
    results = await asyncio.gather(*(wechat_sender.send(wechat(f"dlv_wx_c{i}")) for i in range(6)))
    assert [r.outcome for r in results] == ["sent"] * 6
    assert wx.token_fetches == 1 and len(wx.sends) == 6


async def test_an_expired_token_is_refreshed_once_and_the_send_retried(wx, wechat_sender):
    wx.answers = ["expire"]
    result = await wechat_sender.send(wechat())
    assert result.outcome == "sent" and result.provider_id == str(MSGID)
    assert wx.token_fetches == 2 and [s["token"] for s in wx.sends] == wx.issued  # the old token, then the new
    assert (await wechat_sender.send(wechat("dlv_wx_next"))).outcome == "sent"
    assert wx.token_fetches == 2  # the new token is cached in turn


async def test_a_token_refused_again_after_its_refresh_is_a_retry_without_a_loop(wx, wechat_sender):
    wx.answers = ["expire", "expire"]
    result = await wechat_sender.send(wechat())
    assert result.outcome == "retry" and "42001" in result.error
    assert wx.token_fetches == 2 and len(wx.sends) == 2


@pytest.mark.parametrize(("scenario", "outcome"), [
    ("43101", "gone"), ("40003", "gone"), ("45009", "retry"), ("-1", "retry"), ("500", "retry"),
    ("47003", "failed"), ("40037", "failed"),
])
async def test_wechats_answers_have_their_outcomes(wx, wechat_sender, scenario, outcome):
    wx.answers = [scenario]
    result = await wechat_sender.send(wechat())
    assert wx.problems == [] and len(wx.sends) == 1 and wx.token_fetches == 1
    assert result.outcome == outcome, result
    assert result.provider_id is None
    assert (scenario in result.error) if scenario != "500" else result.status_code == 500
    assert OPENID not in result.error and "rid" not in result.error  # errcodes only, never errmsg


async def test_a_hanging_wechat_is_a_timeout_to_retry(wx, clock):
    wx.answers = ["hang"]
    sender = WechatSubscribeSender(APP_ID, APP_SECRET, base_url=wx.url, clock=clock, timeout=0.5)
    try:
        result = await sender.send(wechat())
    finally:
        await sender.close()
    assert result.outcome == "retry" and "timeout" in result.error and result.latency_ms < 5000


async def test_a_wrong_app_secret_gets_no_token_and_no_send(wx, clock):
    sender = WechatSubscribeSender(APP_ID, "wrong-secret", base_url=wx.url, clock=clock, timeout=5)
    try:
        result = await sender.send(wechat())
    finally:
        await sender.close()
    assert result.outcome == "retry" and "40125" in result.error and "wrong-secret" not in result.error
    assert wx.sends == [] and wx.token_fetches == 0


async def test_a_message_that_cannot_be_built_fails_without_a_request(wx, wechat_sender):
    for outgoing in (wechat(openid="not an openid"), wechat(data={}), wechat(template_id="")):
        assert (await wechat_sender.send(outgoing)).outcome == "failed"
    assert wx.sends == [] and wx.token_fetches == 0


async def test_no_openid_secret_or_token_is_logged(wx, wechat_sender, caplog):
    caplog.set_level(logging.DEBUG)
    wx.answers = ["ok", "expire", "ok", "43101", "500"]
    results = [await wechat_sender.send(wechat(f"dlv_wx_log_{i}")) for i in range(4)]
    assert [r.outcome for r in results] == ["sent", "sent", "gone", "retry"]
    assert len(wx.issued) == 2
    logged = our_logs(caplog)
    assert "dlv_wx_log_2" in logged and "access_token=***" in logged  # httpx's request line, redacted
    assert OPENID not in logged and APP_SECRET not in logged
    assert all(token not in logged for token in wx.issued)
    assert "低保申请已受理" not in logged
    assert all(OPENID not in (r.error or "") for r in results)


# --- the WeChat stand-in itself: what the local stack's WeChat keeps and refuses ----------------------

async def test_the_stand_in_keeps_each_message_it_takes_as_a_json_line(tmp_path, clock):
    log = tmp_path / "wechat" / "received.jsonl"
    async with wechat_serving(received_log=log) as fake:
        sender = WechatSubscribeSender(APP_ID, APP_SECRET, base_url=fake.url, clock=clock, timeout=5)
        try:
            first = await sender.send(wechat("dlv_wx_kept_1"))
            fake.answers = ["43101"]
            refused = await sender.send(wechat("dlv_wx_refused"))
            no_page = {k: v for k, v in WECHAT_FIELDS.items() if k != "page"}
            second = await sender.send(Outgoing("dlv_wx_kept_2", "wechat", OPENID, no_page))
        finally:
            await sender.close()
    assert (first.outcome, refused.outcome, second.outcome) == ("sent", "gone", "sent") and fake.problems == []
    assert (first.provider_id, second.provider_id) == (str(MSGID), str(MSGID + 1))
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert lines == fake.taken and len(lines) == 2  # the refused message is not kept
    sent_data = {name: {"value": value} for name, value in WECHAT_FIELDS["data"].items()}
    assert {k: v for k, v in lines[0].items() if k != "received_at"} == {
        "msgid": MSGID, "touser": OPENID, "template_id": WECHAT_FIELDS["template_id"], "data": sent_data,
        "page": "pages/case/detail?id=c_1"}
    assert lines[1]["msgid"] == MSGID + 1 and lines[1]["page"] is None
    assert all(datetime.fromisoformat(line["received_at"]).tzinfo is not None for line in lines)
    assert "低保申请已受理" in log.read_text(encoding="utf-8")  # kept as text, not escaped


async def test_the_stand_in_answers_token_requests_as_wechat_does(wx):
    async def token(payload=None, **kw) -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            answer = await client.post(wx.url + "/cgi-bin/stable_token", json=payload, **kw)
        assert answer.status_code == 200  # WeChat answers its errors with 200 too
        return answer.json()

    good = {"grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET, "force_refresh": False}
    refusals = {
        40013: {**good, "appid": "wx00000000000000ff"},
        40125: {**good, "secret": "not-the-secret"},
        41002: {k: v for k, v in good.items() if k != "appid"},
        41004: {k: v for k, v in good.items() if k != "secret"},
        40002: {**good, "grant_type": "authorization_code"},
    }
    for errcode, payload in refusals.items():
        answer = await token(payload)
        assert answer["errcode"] == errcode and "access_token" not in answer, answer
        assert re.search(r" rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$", answer["errmsg"])
    assert (await token(content=b"grant_type=client_credential&appid=x"))["errcode"] == 41002  # JSON only
    assert wx.token_fetches == 0 and wx.valid == set()
    issued = await token(good)
    assert set(issued) == {"access_token", "expires_in"} and issued["expires_in"] == 7200
    again = await token(good)
    assert again["access_token"] != issued["access_token"] and wx.valid == {issued["access_token"], again["access_token"]}
    forced = await token({**good, "force_refresh": True})  # invalidates the earlier tokens
    assert wx.valid == {forced["access_token"]} and "force_refresh used" in wx.problems


@pytest.mark.parametrize(("change", "errcode", "detail"), [
    ({"touser": "oB_hN41zbT1OvATDONK5Lcc"}, 40003, "invalid openid"),  # 23 characters: not an openid
    ({"template_id": ""}, 40037, "invalid template_id"),
    ({"page": 5}, 41030, "invalid page"),
    ({"data": {}}, 47001, "data format error"),
    ({"data": {"thing1": "低保申请已受理"}}, 47003, "data.thing1.value invalid"),  # not {"value": text}
    ({"data": {"thing1": {"value": "一二三四五六七八九十一二三四五六七八九十一"}}}, 47003, "data.thing1.value invalid"),
    ({"data": {"thing1": {"value": " "}}}, 47003, "data.thing1.value is empty"),
    ({"data": {"phrase2": {"value": "已受理ok"}}}, 47003, "data.phrase2.value invalid"),
    ({"data": {"character_string2": {"value": "JY 2026"}}}, 47003, "data.character_string2.value invalid"),
    ({"data": {"number3": {"value": "12a"}}}, 47003, "data.number3.value invalid"),
])
async def test_the_stand_in_refuses_a_send_wechat_would_refuse(wx, change, errcode, detail):
    async with httpx.AsyncClient() as client:
        issued = await client.post(wx.url + "/cgi-bin/stable_token", json={
            "grant_type": "client_credential", "appid": APP_ID, "secret": APP_SECRET})
        token = issued.json()["access_token"]
        body = {"touser": OPENID, "template_id": WECHAT_FIELDS["template_id"],
                "data": {"thing1": {"value": "低保申请已受理"}, "phrase2": {"value": "已受理"},
                         "number3": {"value": "12.5"}}, **change}
        url = wx.url + "/cgi-bin/message/subscribe/send"
        refused = (await client.post(url, params={"access_token": token}, json=body)).json()
        assert refused["errcode"] == errcode and detail in refused["errmsg"] and "msgid" not in refused
        assert wx.taken == []
        for params, code in (({}, 41001), ({"access_token": "86_not_issued"}, 40001)):
            assert (await client.post(url, params=params, json=body)).json()["errcode"] == code
        assert wx.refused_tokens == 2
        not_json = await client.post(url, params={"access_token": token}, content=b"touser=x",
                                     headers={"content-type": "application/json"})
        assert not_json.json()["errcode"] == 47001
        fixed = {**body, **{k: v for k, v in WECHAT_FIELDS.items() if k != "data"}, "touser": OPENID,
                 "data": {"thing1": {"value": "低保申请已受理"}}}
        taken = (await client.post(url, params={"access_token": token}, json=fixed)).json()
    assert taken == {"errcode": 0, "errmsg": "ok", "msgid": MSGID} and len(wx.taken) == 1


async def test_what_the_stand_in_refuses_has_the_adapters_outcome(wx, wechat_sender):
    too_long = await wechat_sender.send(wechat(data={"thing1": "一二三四五六七八九十" * 3}))
    short_openid = await wechat_sender.send(wechat(openid="oB_hN41zbT1Ov"))  # the adapter lets it go
    assert (too_long.outcome, short_openid.outcome) == ("failed", "gone")
    assert "47003" in too_long.error and "40003" in short_openid.error
    assert wx.taken == [] and len(wx.sends) == 2
