"""An applicant who chose email and WeChat at the window is told there, on the stack `make up`
runs: the accepted case's mail in the stack's SMTP server (.local/mail/), its WeChat message at
the WeChat stand-in (.local/wechat/received.jsonl), no SMS. In China's night (quiet hours,
22:00-08:00 by default) a WeChat message and an SMS wait for the morning and an email does not:
the test checks whichever the clock says."""
from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from datetime import datetime, timezone

import asyncpg
import httpx
import pytest
from intake_cases import accepted_case, mailbox_messages

from civicgrid_common.identity.tokens import mint_local_token
from civicgrid_common.paths import local_state_dir
from civicgrid_common.settings import PlatformSettings

from civicgrid_notifications.config import NotificationsSettings
from civicgrid_notifications.domain.quiet_hours import QuietHours

pytestmark = pytest.mark.integration

INTAKE = "http://127.0.0.1:8001"
STREET, COMMUNITY = "320104001", "320104001001"
WECHAT_LOG = local_state_dir() / "wechat" / "received.jsonl"
ACCEPTED = "civicgrid.intake.case.accepted.v1"


async def deliveries(case_id: str) -> dict[str, asyncpg.Record]:
    conn = await asyncpg.connect(PlatformSettings(service_name="notifications").dsn())
    try:
        rows = await conn.fetch("SELECT channel, status, next_attempt_at, provider_id FROM notification_deliveries "
                                "WHERE recipient = $1 AND event_type = $2", f"applicant:{case_id}", ACCEPTED)
    finally:
        await conn.close()
    return {r["channel"]: r for r in rows}


def wechat_taken(openid: str) -> list[dict]:
    if not WECHAT_LOG.exists():
        return []
    lines = [json.loads(line) for line in WECHAT_LOG.read_text().splitlines() if line.strip()]
    return [line for line in lines if line["touser"] == openid]


async def settled(case_id: str, timeout: float = 60) -> dict[str, asyncpg.Record]:
    """The three deliveries once none is being sent or due now (a held one waits for the morning)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await deliveries(case_id)
        now = datetime.now(timezone.utc)
        busy = [r for r in found.values() if r["status"] == "sending"
                or (r["status"] == "pending" and r["next_attempt_at"] <= now)]
        if (len(found) == 3 and not busy) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


async def test_an_applicant_who_chose_email_and_wechat_is_told_there_and_not_by_sms():
    clerk = {"Authorization": f"Bearer {mint_local_token('window_clerk', STREET, subject='wc-e2e-channels')}"}
    address = f"e2e-{uuid.uuid4().hex[:12]}@example.com"
    openid = "oE2e" + secrets.token_hex(12)  # 28 characters, as a mini program's openid
    mobile = f"139{uuid.uuid4().int % 10**8:08d}"
    async with httpx.AsyncClient(base_url=INTAKE, timeout=30) as intake:
        try:
            await intake.get("/healthz")
        except httpx.ConnectError:
            pytest.fail(f"the local stack has nothing on {INTAKE}; run `make up`", pytrace=False)
        case_id = await accepted_case(intake, clerk, COMMUNITY, phone=mobile, contact_channels={
            "channels": ["email", "wechat"], "email": address, "wechat_openid": openid})
        case_number = (await intake.get(f"/v1/cases/{case_id}", headers=clerk)).json()["receipt"]["case_number"]

    found = await settled(case_id)
    assert set(found) == {"sms", "email", "wechat"}, found
    [mail] = mailbox_messages(address)
    assert case_number in mail["Subject"] and found["email"]["status"] == "sent"
    assert case_number in mail.get_body(("plain",)).get_content()

    quiet = QuietHours.parse(NotificationsSettings().quiet_hours)
    held = quiet.held_until(datetime.now(timezone.utc), channel="wechat", urgent=False) if quiet else None
    if held is None:
        # the WeChat message at the stand-in with the case number; the SMS skipped: not chosen
        [taken] = wechat_taken(openid)
        assert taken["data"]["character_string1"] == {"value": case_number}
        assert (found["wechat"]["status"], found["wechat"]["provider_id"]) == ("sent", str(taken["msgid"]))
        assert found["sms"]["status"] == "skipped"
    else:
        # China's night: both wait for the morning; nothing reached a phone
        assert wechat_taken(openid) == []
        for channel in ("sms", "wechat"):
            assert (found[channel]["status"], found[channel]["next_attempt_at"]) == ("pending", held), channel
