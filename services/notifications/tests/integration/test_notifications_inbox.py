"""The rule book and the in-app inbox on the real database: an event tells whom the rules say,
once, however often it is handed in; each person sees only what is theirs; admins edit the
rules field by field."""
from __future__ import annotations

import copy

from delivery_steps import steps_of
from notification_events import event

from civicgrid_notifications.domain.seed import sample_events

MISSING = "civicgrid.grid.daily_report.missing.v1"
STARTED = "civicgrid.approval.approval.started.v1"
ALERT = "civicgrid.statistics.alert.raised.v1"


def sample(event_type: str, n: int = 0) -> dict:
    return copy.deepcopy(sample_events()[event_type][n]["data"])


async def test_the_demo_districts_rule_book_is_seeded_and_only_its_admin_reads_it(api, token):
    r = await api.get("/v1/rule-book", headers=token("admin", "320104"))
    assert r.status_code == 200, r.text
    book = r.json()
    assert {rule["id"] for rule in book["rules"]} >= {"daily-report-missing", "approval-green-channel",
                                                      "community-alert", "department-task-civil-affairs"}
    assert all(rule["version"] == 1 for rule in book["rules"])
    assert (await api.get("/v1/rule-book", headers=token("leader", "320104"))).status_code == 403
    assert (await api.get("/v1/rule-book", headers=token("admin", "320105"))).status_code == 403


async def test_a_missing_daily_report_reaches_the_grids_workers_once(notifications_app, api, token, hand_in):
    e = event(MISSING, sample(MISSING))
    told = await hand_in(e)
    assert len(told.recorded) == 1
    again = await hand_in(e)  # redelivered after a crash, say
    assert again.recorded == () and again.repeated == 1
    [(step, data)] = await steps_of(notifications_app.state.store, told.recorded[0])  # one step, once
    assert step == "delivered" and data["channel"] == "in_app" and data["attempts"] == 0
    assert data["recipient_kind"] == "role" and data["department"] is None and data["cause_id"] == e.id
    assert "320104001001003" not in str(data)  # the recipient as a kind, not who

    worker = token("grid_worker", "320104001001003")
    r = await api.get("/v1/inbox", headers=worker)
    assert r.status_code == 200, r.text
    inbox = r.json()
    assert inbox["unread"] == 1 and len(inbox["items"]) == 1
    item = inbox["items"][0]
    assert "320104001001003" in item["title"] and "日报" in item["title"]
    assert "18:00" not in item["body"] and "17:00" in item["body"]  # the check's instant, China time
    assert item["link"] == "/grids/320104001001003/daily-reports/2026-03-04"

    for outsider in (token("grid_worker", "320104001001004"), token("community_reviewer", "320104001001"),
                     token("grid_worker", "320104001002")):
        assert (await api.get("/v1/inbox", headers=outsider)).json()["items"] == []


async def test_reading_an_item_is_the_readers_alone(api, token, hand_in):
    await hand_in(event(ALERT, sample(ALERT)))
    street_leader, district_leader = token("leader", "320104001"), token("leader", "320104")
    [item] = (await api.get("/v1/inbox", headers=street_leader)).json()["items"]
    assert "诉求激增" in item["title"]
    r = await api.post(f"/v1/inbox/{item['id']}/read", headers=street_leader)
    assert r.status_code == 200, r.text
    first = r.json()["read_at"]
    assert (await api.post(f"/v1/inbox/{item['id']}/read", headers=street_leader)).json()["read_at"] == first
    mine = (await api.get("/v1/inbox", headers=street_leader)).json()
    assert mine["unread"] == 0 and mine["items"][0]["read_at"] == first
    assert (await api.get("/v1/inbox?unread_only=true", headers=street_leader)).json()["items"] == []
    theirs = (await api.get("/v1/inbox", headers=district_leader)).json()
    assert theirs["unread"] == 1 and theirs["items"][0]["read_at"] is None
    # Not theirs to see: the same answer as no such item.
    other = await api.post(f"/v1/inbox/{item['id']}/read", headers=token("leader", "320104002"))
    assert other.status_code == 404


async def test_the_inbox_pages_newest_first(api, token, hand_in):
    for n in range(5):
        await hand_in(event(MISSING, {**sample(MISSING), "date": f"2026-03-0{n + 2}"}))
    worker = token("grid_worker", "320104001001003")
    first = (await api.get("/v1/inbox?limit=2", headers=worker)).json()
    assert [i["link"][-10:] for i in first["items"]] == ["2026-03-06", "2026-03-05"]
    second = (await api.get(f"/v1/inbox?limit=2&before={first['next_before']}", headers=worker)).json()
    assert [i["link"][-10:] for i in second["items"]] == ["2026-03-04", "2026-03-03"]
    last = (await api.get(f"/v1/inbox?limit=2&before={second['next_before']}", headers=worker)).json()
    assert [i["link"][-10:] for i in last["items"]] == ["2026-03-02"] and last["next_before"] is None


async def test_a_green_channel_case_tells_the_streets_reviewers_urgently(api, token, hand_in):
    await hand_in(event(STARTED, sample(STARTED, 1)))  # green channel, at the community's review
    [street] = (await api.get("/v1/inbox", headers=token("street_reviewer", "320104001"))).json()["items"]
    assert street["urgent"] is True and street["title"].startswith("【绿色通道】")
    [community] = (await api.get("/v1/inbox", headers=token("community_reviewer", "320104001001"))).json()["items"]
    assert community["urgent"] is False and "（无受理号）" in community["title"]


async def test_a_rule_is_versioned_and_an_unchanged_one_records_nothing(api, token, hand_in):
    admin = token("admin", "320104")
    rule = {"event_type": MISSING, "recipients": [{"kind": "role", "role": "community_reviewer",
                                                   "jurisdiction_field": "grid"}],
            "channels": ["in_app"], "template": "daily-report-missing"}
    r = await api.put("/v1/rules/missing-to-reviewers", json=rule, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1 and r.json()["changed"] is True
    again = (await api.put("/v1/rules/missing-to-reviewers", json=rule, headers=admin)).json()
    assert again["version"] == 1 and again["changed"] is False
    changed = (await api.put("/v1/rules/missing-to-reviewers", json={**rule, "urgent": True}, headers=admin)).json()
    assert changed["version"] == 2
    await hand_in(event(MISSING, sample(MISSING)))
    [item] = (await api.get("/v1/inbox", headers=token("community_reviewer", "320104001001"))).json()["items"]
    assert item["urgent"] is True
    assert (await api.delete("/v1/rules/missing-to-reviewers", headers=admin)).status_code == 204
    await hand_in(event(MISSING, {**sample(MISSING), "date": "2026-03-05"}))
    assert len((await api.get("/v1/inbox", headers=token("community_reviewer", "320104001001"))).json()["items"]) == 1


async def test_a_bad_rule_is_refused_field_by_field_and_changes_nothing(api, token):
    admin = token("admin", "320104")
    before = (await api.get("/v1/rule-book", headers=admin)).json()
    bad = {"event_type": MISSING, "recipients": [{"kind": "applicant"}], "channels": ["in_app"],
           "template": "daily-report-missing"}
    r = await api.put("/v1/rules/bad", json=bad, headers=admin)
    assert r.status_code == 422, r.text
    pointers = {e.get("pointer") for e in r.json()["errors"]}
    # an applicant is told by SMS, WeChat or email (not in an inbox), and a daily report has no case to find one by
    assert {"#/channels", "#/recipients/0/kind"} <= pointers, r.json()
    r = await api.put("/v1/rules/bad", json={**bad, "channels": ["fax"]}, headers=admin)
    assert r.status_code == 422 and "#/channels/0" in {e.get("pointer") for e in r.json()["errors"]}, r.text
    for i, channel in enumerate(("sms", "email", "wechat")):  # staff are not texted, mailed or messaged by us
        staff = {**bad, "recipients": [{"kind": "role", "role": "community_reviewer", "jurisdiction_field": "grid"}],
                 "channels": ["in_app"] * i + [channel]}
        r = await api.put("/v1/rules/bad", json=staff, headers=admin)
        assert r.status_code == 422 and {e.get("pointer") for e in r.json()["errors"]} == {f"#/channels/{i}"}, r.text
        assert "applicants only" in r.text
    unknown = await api.put("/v1/rules/bad", json={**bad, "recipients": [{"kind": "user", "subject": "u1"}],
                                                    "channels": ["in_app"], "template": "no-such-template"},
                            headers=admin)
    assert unknown.status_code == 422, unknown.text
    assert "template" in unknown.text
    not_consumed = await api.put("/v1/rules/bad", json={**bad, "event_type": "civicgrid.intake.complaint.received.v1",
                                                         "recipients": [{"kind": "user", "subject": "u1"}],
                                                         "channels": ["in_app"]}, headers=admin)
    assert not_consumed.status_code == 422 and "event_type" in not_consumed.text
    assert (await api.get("/v1/rule-book", headers=admin)).json() == before


async def test_a_template_that_does_not_render_on_its_samples_is_refused_naming_the_field(api, token):
    admin = token("admin", "320104")
    r = await api.put("/v1/templates/broken", headers=admin, json={
        "event_types": [MISSING],
        "variants": {"zh-CN": {"in_app": {"title": "网格 {{ grid_code }}", "body": "{{ date }}"}}}})
    assert r.status_code == 422, r.text
    assert "variants/zh-CN/in_app/title" in r.text and "grid_code" in r.text
    escape = await api.put("/v1/templates/broken", headers=admin, json={
        "event_types": [MISSING],
        "variants": {"zh-CN": {"in_app": {"title": "{{ ''.__class__.__mro__ }}", "body": "x"}}}})
    assert escape.status_code == 422, escape.text
    ok = await api.put("/v1/templates/fine", headers=admin, json={
        "event_types": [MISSING],
        "variants": {"zh-CN": {"in_app": {"title": "网格 {{ grid }}", "body": "{{ date }}"}}}})
    assert ok.status_code == 200, ok.text
    assert ok.json()["version"] == 1


async def test_an_event_its_template_cannot_render_is_a_dead_letter_and_tells_the_others(
        notifications_app, api, token, hand_in):
    data = sample(MISSING)
    del data["check_at"]  # what the daily-report-missing template shows
    told = await hand_in(event(MISSING, data))
    assert told.recorded == ()
    [dead] = (await api.get("/v1/deliveries/dead-letters", headers=token("admin", "320104"))).json()
    assert dead["rule_id"] == "daily-report-missing" and dead["channel"] == "in_app"
    assert "check_at" in dead["last_error"]
    [(step, data)] = await steps_of(notifications_app.state.store, dead["id"])
    assert (step, data["reason"], data["attempts"]) == ("dead_lettered", "not_renderable", 0)
    assert (await api.get("/v1/inbox", headers=token("grid_worker", "320104001001003"))).json()["items"] == []
    # Fixed in the rule book, not resent: an in-app delivery is not replayed.
    assert (await api.post(f"/v1/deliveries/{dead['id']}/replay", headers=token("admin", "320104"))).status_code == 409
    await hand_in(event(ALERT, sample(ALERT)))  # other events still tell their readers
    assert len((await api.get("/v1/inbox", headers=token("leader", "320104"))).json()["items"]) == 1


async def test_the_same_message_to_the_same_people_from_another_event_is_told_once_within_the_window(
        notifications_app, api, token, hand_in, clock):
    # Two events that say the same (a grid flagged twice, by a check run again, say): one item.
    first = await hand_in(event(MISSING, sample(MISSING)))
    second = await hand_in(event(MISSING, sample(MISSING)))
    assert len(first.recorded) == 1 and second.recorded == () and second.repeated == 1
    workers = token("grid_worker", sample(MISSING)["grid"])
    assert len((await api.get("/v1/inbox", headers=workers)).json()["items"]) == 1
    # Another message is told at once; the same one again after the window (10 min) is told again.
    other = await hand_in(event(MISSING, {**sample(MISSING), "date": "2026-03-05"}))
    assert len(other.recorded) == 1
    clock.advance(minutes=11)
    later = await hand_in(event(MISSING, sample(MISSING)))
    assert len(later.recorded) == 1
    assert len((await api.get("/v1/inbox", headers=workers)).json()["items"]) == 3
