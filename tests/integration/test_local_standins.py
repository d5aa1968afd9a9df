"""The local stack's stand-ins run as `make up` runs them: each command of localstack.py's
STANDINS, on a free port of 127.0.0.1 and keeping what it takes under tmp_path instead of
.local/ (the running stack's are left alone), takes one message from notifications' adapter
configured with the settings deploy/local/services.yaml gives notifications, keeps it where the
README says, and `make status`'s check (localstack.port_open) sees it up, then down once it is
stopped. Only loopback: no database, no broker, no provider."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

import localstack
import yaml
from standins import wechat

from civicgrid_notifications.adapters.channels import Outgoing
from civicgrid_notifications.adapters.email import SmtpSender
from civicgrid_notifications.adapters.sms import AliyunSmsSender
from civicgrid_notifications.adapters.wechat import WechatSubscribeSender

ROOT = Path(__file__).resolve().parents[2]
OPENID = "oB_hN41zbT1OvATDONK5LccFIwwA"


def notifications_env() -> dict[str, str]:
    manifest = yaml.safe_load((ROOT / "deploy" / "local" / "services.yaml").read_text())["services"]
    [entry] = [s for s in manifest if s["name"] == "notifications"]
    return {k: str(v) for k, v in entry["local_env"].items()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def standin_command(name: str, port: int, keep: Path) -> list[str]:
    """STANDINS[name]'s command, on `port`, keeping what it takes at `keep` (its --log or --dir)."""
    _, command = localstack.STANDINS[name]
    command = list(command)
    command[command.index("--port") + 1] = str(port)
    where = "--log" if "--log" in command else "--dir"
    command[command.index(where) + 1] = str(keep)
    return command


@contextlib.contextmanager
def running(name: str, keep: Path, out: Path):
    """The stand-in `name` started as start_standins starts it; its port once it answers."""
    port = free_port()
    with open(out, "ab") as log:
        proc = subprocess.Popen(standin_command(name, port, keep), cwd=ROOT, env=dict(os.environ), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not localstack.port_open("127.0.0.1", port):
            assert proc.poll() is None, f"{name} exited {proc.returncode}: {out.read_text(errors='replace')}"
            assert time.monotonic() < deadline, f"{name} did not listen: {out.read_text(errors='replace')}"
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()  # stop_pid's SIGTERM
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    assert not localstack.port_open("127.0.0.1", port), f"{name} still listens after SIGTERM"


async def test_the_wechat_stand_in_takes_a_message_and_keeps_it_as_a_json_line(tmp_path):
    env, log = notifications_env(), tmp_path / "wechat" / "received.jsonl"
    with running("wechat", log, tmp_path / "wechat.out") as port:
        assert env["CIVICGRID_WECHAT_ENDPOINT"].endswith(f":{localstack.WECHAT_PORT}")
        sender = WechatSubscribeSender(env["CIVICGRID_WECHAT_APP_ID"], env["CIVICGRID_WECHAT_APP_SECRET"],
                                       base_url=f"http://127.0.0.1:{port}", timeout=5)
        try:
            result = await sender.send(Outgoing("dlv_wx_stack", "wechat", OPENID, {
                "template_id": "QH-case-accepted-01", "page": "pages/case/detail?number=JY-2026-000123",
                "data": {"character_string1": "JY-2026-000123", "thing2": "事项已受理", "date3": "2026年03月18日"}}))
        finally:
            await sender.close()
    assert (result.outcome, result.provider_id) == ("sent", str(wechat.MSGID)), result
    [line] = [json.loads(text) for text in log.read_text(encoding="utf-8").splitlines()]
    assert line["msgid"] == wechat.MSGID and line["touser"] == OPENID and line["template_id"] == "QH-case-accepted-01"
    assert line["data"]["thing2"] == {"value": "事项已受理"} and line["page"].startswith("pages/case/detail")
    assert line["received_at"]


async def test_the_mailbox_takes_a_message_over_smtp_and_keeps_it_as_an_eml_file(tmp_path):
    env, mail = notifications_env(), tmp_path / "mail"
    assert (env["CIVICGRID_SMTP_HOST"], env["CIVICGRID_SMTP_PORT"]) == ("127.0.0.1", str(localstack.SMTP_PORT))
    with running("mailbox", mail, tmp_path / "mailbox.out") as port:
        sender = SmtpSender(env["CIVICGRID_SMTP_HOST"], port, sender_address=env["CIVICGRID_MAIL_FROM"],
                            start_tls=False, local_hostname="tests", timeout=5)
        result = await sender.send(Outgoing("dlv_mail_stack", "email", "zhang.wei@example.cn", {
            "subject": "您的事项已受理，受理号 JY-2026-000123", "text": "您好：\n您的事项已受理。\n"}))
    assert (result.outcome, result.status_code) == ("sent", 250), result
    [kept] = sorted(mail.glob("*.eml"))
    parsed = BytesParser(policy=policy.default).parsebytes(kept.read_bytes())
    assert parsed["From"] == env["CIVICGRID_MAIL_FROM"] == "civicgrid 秦淮区 <noreply@civicgrid.local>"
    assert parsed["X-Civicgrid-Envelope-From"] == "noreply@civicgrid.local"  # the address alone on MAIL FROM
    assert parsed["Subject"] == "您的事项已受理，受理号 JY-2026-000123"


async def test_the_sms_stand_in_still_runs_from_its_file_and_keeps_what_it_takes(tmp_path):
    env, log = notifications_env(), tmp_path / "sms" / "received.jsonl"
    with running("aliyun-sms", log, tmp_path / "sms.out") as port:
        sender = AliyunSmsSender(env["CIVICGRID_SMS_ACCESS_KEY_ID"], env["CIVICGRID_SMS_ACCESS_KEY_SECRET"],
                                 endpoint=f"http://127.0.0.1:{port}/", timeout=5)
        try:
            result = await sender.send(Outgoing("dlv_sms_stack", "sms", "13812341234", {
                "sign_name": "秦淮政务服务", "template_code": "SMS_305000002", "params": {"case_number": "JY-1"}}))
        finally:
            await sender.close()
    assert result.outcome == "sent", result
    [line] = [json.loads(text) for text in log.read_text(encoding="utf-8").splitlines()]
    assert (line["out_id"], line["template_param"]) == ("dlv_sms_stack", {"case_number": "JY-1"})
