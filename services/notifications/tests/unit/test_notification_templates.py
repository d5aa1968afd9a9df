"""Message templates: rendering per locale and channel in Jinja's sandbox, and the validation that
refuses a template, every problem at once, naming each field."""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from civicgrid_common.problems import Refusal

from civicgrid_notifications.domain import templates as templates_module
from civicgrid_notifications.domain.templates import (
    Channel,
    RenderFailed,
    Template,
    TemplateRejected,
    china_date,
    china_time,
    validate_template,
)

ACCEPTED = {
    "id": "0195f3a2-7c1e-7d3a-9b1a-2f4c5d6e7f80",
    "type": "civicgrid.intake.case.accepted.v1",
    "subject": "case-20260304-0001",
    "time": "2026-03-04T10:00:00Z",
    "data": {
        "case_number": "320104202603040000001",
        "accepted_at": "2026-03-04T10:00:00Z",
        "due_date": "2026-03-18",
        "time_limit_working_days": 10,
        "affair_name": "最低生活保障",
        "note": "<b>请携带</b> 户口簿 & 身份证",
        "location": {"community": "320104001001"},
    },
}


def event(**data: Any) -> dict[str, Any]:
    """The accepted event with some of its data changed (None: removed)."""
    e = copy.deepcopy(ACCEPTED)
    for key, value in data.items():
        if value is None:
            e["data"].pop(key, None)
        else:
            e["data"][key] = value
    return e


def raw_template(**zh_cn: Any) -> dict[str, Any]:
    """A template of every channel; keyword arguments replace zh-CN channels (None: drop one)."""
    variants: dict[str, Any] = {
        "zh-CN": {
            "in_app": {
                "title": "事项已受理：{{ affair_name }}",
                "body": "您的事项已受理，受理号 {{ case_number }}，预计 {{ due_date }} 办结。",
                "link": "/cases/{{ event.subject }}",
            },
            "email": {
                "subject": "【受理通知】{{ affair_name }}（{{ case_number }}）",
                "text": "{{ recipient.name | default('您好') }}：\n您的事项已于 {{ accepted_at | china_time }} 受理。\n"
                        "备注：{{ note }}",
                "html": "<p>您的事项已于 {{ accepted_at | china_time }} 受理。</p><p>备注：{{ note }}</p>",
            },
            "sms": {
                "sign_name": "玄武区政务",
                "template_code": "SMS_123456789",
                "params": {"case_number": "{{ case_number }}", "due_date": "{{ due_date }}"},
                "preview": "您的事项已受理，受理号 {{ case_number }}，预计 {{ due_date }} 办结。",
            },
            "wechat": {
                "template_id": "Yq3kLrT8xW2-abcDEF_123",
                "page": "pages/case/detail?id={{ event.subject }}",
                "data": {"thing1": "{{ affair_name }}", "character_string2": "{{ case_number }}",
                         "date3": "{{ due_date }}"},
            },
            "webhook": {},
        },
        "en": {
            "in_app": {
                "title": "Accepted: case {{ case_number }}",
                "body": "Your case {{ case_number }} was accepted and is due by {{ due_date }}.",
            },
        },
    }
    for channel, text in zh_cn.items():
        if text is None:
            variants["zh-CN"].pop(channel)
        else:
            variants["zh-CN"][channel] = text
    return {"name": "case.accepted", "variants": variants}


def rejected(raw: Any, samples: Any = (ACCEPTED,)) -> dict[str, str]:
    """The refusal's errors: JSON Pointer -> detail."""
    with pytest.raises(TemplateRejected) as caught:
        validate_template(raw, list(samples))
    assert caught.value.refusal is Refusal.INVALID
    assert caught.value.problem().status == 422
    return {e["pointer"]: e["detail"] for e in caught.value.errors}


@pytest.fixture(scope="module")
def template() -> Template:
    return validate_template(raw_template(), [ACCEPTED])


# ---------------------------------------------------------------------------- rendering


def test_renders_every_channel_in_chinese(template: Template) -> None:
    in_app = template.render(Channel.IN_APP, ACCEPTED)
    assert in_app.locale == "zh-CN" and in_app.template == "case.accepted"
    assert in_app.fields == {
        "title": "事项已受理：最低生活保障",
        "body": "您的事项已受理，受理号 320104202603040000001，预计 2026-03-18 办结。",
        "link": "/cases/case-20260304-0001",
    }
    sms = template.render("sms", ACCEPTED).fields
    assert sms["sign_name"] == "玄武区政务" and sms["template_code"] == "SMS_123456789"
    assert sms["params"] == {"case_number": "320104202603040000001", "due_date": "2026-03-18"}
    wechat = template.render("wechat", ACCEPTED).fields
    assert wechat["data"] == {"thing1": "最低生活保障", "character_string2": "320104202603040000001",
                              "date3": "2026-03-18"}
    assert wechat["page"] == "pages/case/detail?id=case-20260304-0001"
    assert template.render("webhook", ACCEPTED).fields == {}


def test_renders_english_and_falls_back_to_chinese(template: Template) -> None:
    english = template.render(Channel.IN_APP, ACCEPTED, locale="en")
    assert english.locale == "en"
    assert english.fields["body"] == "Your case 320104202603040000001 was accepted and is due by 2026-03-18."
    assert template.render(Channel.IN_APP, ACCEPTED, locale="en-GB").locale == "en"  # its language
    # a locale without a variant, and a variant without the channel, fall back to zh-CN
    french = template.render(Channel.IN_APP, ACCEPTED, locale="fr")
    assert french.locale == "zh-CN" and french.fields["title"] == "事项已受理：最低生活保障"
    sms_in_english = template.render(Channel.SMS, ACCEPTED, locale="en")
    assert sms_in_english.locale == "zh-CN" and sms_in_english.fields["params"]["due_date"] == "2026-03-18"


def test_the_recipient_and_china_time(template: Template) -> None:
    named = template.render(Channel.EMAIL, ACCEPTED, recipient={"kind": "applicant", "name": "张三"})
    assert named.fields["text"].startswith("张三：\n您的事项已于 2026-03-04 18:00 受理。")
    unnamed = template.render(Channel.EMAIL, ACCEPTED, recipient={"kind": "applicant"})
    assert unnamed.fields["text"].startswith("您好：")
    assert china_time("2026-03-04T10:00:00Z") == "2026-03-04 18:00"
    assert china_time("2026-03-04T23:30:00+00:00") == "2026-03-05 07:30"
    assert china_date("2026-03-04T17:00:00Z") == "2026-03-05"  # already the 5th in China
    assert china_date("2026-03-18") == "2026-03-18"
    with pytest.raises(ValueError, match="UTC offset"):
        china_time("2026-03-04T10:00:00")  # whose 10:00?


def test_html_is_escaped_in_the_email_html_only(template: Template) -> None:
    email = template.render(Channel.EMAIL, ACCEPTED).fields
    assert "<p>备注：&lt;b&gt;请携带&lt;/b&gt; 户口簿 &amp; 身份证</p>" in email["html"]
    assert email["html"].startswith("<p>")  # the template's own markup stays
    assert email["text"].endswith("备注：<b>请携带</b> 户口簿 & 身份证")  # plain text: as it is
    plain = validate_template(raw_template(in_app={"title": "{{ note }}", "body": "{{ note }}"}), [ACCEPTED])
    assert plain.render(Channel.IN_APP, ACCEPTED).fields["body"] == "<b>请携带</b> 户口簿 & 身份证"
    # `safe` does not exist: data cannot be let through unescaped
    errors = rejected(raw_template(email={"subject": "s", "text": "t", "html": "{{ note | safe }}"}))
    assert "No filter named 'safe'" in errors["#/variants/zh-CN/email/html"]


def test_a_missing_variable_at_render_names_it(template: Template) -> None:
    with pytest.raises(RenderFailed) as caught:
        template.render(Channel.IN_APP, event(case_number=None))
    assert caught.value.code == "undefined_variable"
    assert "'case_number' is undefined" in caught.value.detail
    assert caught.value.path == ("variants", "zh-CN", "in_app", "body")


def test_text_longer_than_its_limit_at_render_raises(template: Template) -> None:
    with pytest.raises(RenderFailed) as caught:
        template.render(Channel.SMS, event(case_number="3" * 36))
    assert caught.value.code == "too_long"
    assert caught.value.path == ("variants", "zh-CN", "sms", "params", "case_number")
    assert "36 characters; the limit is 35" in caught.value.detail


def test_a_channel_without_text_is_not_rendered() -> None:
    only_inbox = validate_template(raw_template(email=None, sms=None, wechat=None, webhook=None), [ACCEPTED])
    assert only_inbox.channels == (Channel.IN_APP,)
    assert only_inbox.has_text_for(Channel.WEBHOOK) and not only_inbox.has_text_for(Channel.SMS)
    with pytest.raises(RenderFailed) as caught:
        only_inbox.render(Channel.SMS, ACCEPTED)
    assert caught.value.code == "channel_not_in_template"


def test_each_source_is_compiled_once(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str] = []
    real = templates_module._compile

    def counting(source: str, **kwargs: Any) -> Any:
        compiled.append(source)
        return real(source, **kwargs)

    monkeypatch.setattr(templates_module, "_compile", counting)
    t = validate_template(raw_template(), [ACCEPTED, event(case_number="320104202603040000002")])
    after_validation = len(compiled)
    for _ in range(3):
        t.render(Channel.EMAIL, ACCEPTED)
        t.render(Channel.IN_APP, ACCEPTED, locale="en")
    assert len(compiled) == after_validation
    assert len(compiled) == len(set(compiled))


# ---------------------------------------------------------------------------- validation


def test_an_undefined_variable_names_it_and_the_sample() -> None:
    without_due_date = event(due_date=None)
    errors = rejected(raw_template(), samples=[ACCEPTED, without_due_date])
    detail = errors["#/variants/zh-CN/in_app/body"]
    assert "'due_date' is undefined" in detail
    assert "sample 1 (civicgrid.intake.case.accepted.v1)" in detail
    assert "#/variants/zh-CN/sms/params/due_date" in errors and "#/variants/en/in_app/body" in errors
    # a nested member that is missing is named too
    errors = rejected(raw_template(in_app={"title": "t", "body": "{{ location.street }}"}))
    assert "no attribute 'street'" in errors["#/variants/zh-CN/in_app/body"]


def test_an_unnamed_recipient_must_be_provided_for() -> None:
    errors = rejected(raw_template(in_app={"title": "{{ recipient.name }}，您好", "body": "b"}))
    assert "no attribute 'name'" in errors["#/variants/zh-CN/in_app/title"]


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__ }}",
    "{{ event['__class__'] }}",
])
def test_the_sandbox_refuses_private_attributes_as_a_field_error(source: str) -> None:
    errors = rejected(raw_template(in_app={"title": source, "body": "b"}))
    detail = errors["#/variants/zh-CN/in_app/title"]
    assert "sandbox" in detail and "__class__" in detail


@pytest.mark.parametrize(("source", "words"), [
    ("{{ ''|attr('__class__') }}", "unsafe"),  # found only when rendering
    ("{{ '{:>99999999}'.format(1) }}", "unsafe"),  # str.format pads: not a method a template calls
    ("{{ 'x' * 10000000 }}", "more than"),
    ("{{ case_number | join(case_number) | join(case_number) | join(case_number) }}", "join would build"),
    ("{{ '%99999999s' % 1 }}", "% is not available"),
    ("{{ event.data.update({'a': 1}) }}", "unsafe"),  # the data is immutable
])
def test_the_sandbox_refuses_what_could_escape_or_exhaust_it(source: str, words: str) -> None:
    detail = rejected(raw_template(email={"subject": "s", "text": source}))["#/variants/zh-CN/email/text"]
    assert "sandbox" in detail and words in detail


@pytest.mark.parametrize(("source", "words"), [
    ("{% set a = case_number %}{{ a }}", "{% set %} is not available"),
    ("{% macro m() %}x{% endmacro %}{{ m() }}", "{% macro %} is not available"),
    ("{% include 'other' %}", "{% include %} is not available"),
    ("{% for a in [1, 2] %}{% for b in [1, 2] %}x{% endfor %}{% endfor %}", "loops do not nest"),
    ("{{ range(10) | list }}", "'range' is undefined"),
    ("{{ 'x' | center(100) }}", "No filter named 'center'"),
])
def test_only_plain_tags_and_bounded_filters_are_available(source: str, words: str) -> None:
    detail = rejected(raw_template(email={"subject": "s", "text": source}))["#/variants/zh-CN/email/text"]
    assert words in detail


def test_an_sms_param_longer_than_35_is_refused_with_its_path() -> None:
    errors = rejected(raw_template(sms={
        "sign_name": "玄武区政务", "template_code": "SMS_123456789",
        "params": {"affair": "{{ affair_name }}（受理号 {{ case_number }}，{{ due_date }}）"}}))
    rendered = "最低生活保障（受理号 320104202603040000001，2026-03-18）"
    assert errors["#/variants/zh-CN/sms/params/affair"].startswith(
        f"renders to {len(rendered)} characters; the limit is 35")
    assert len(errors) == 1


def test_wechat_values_are_bounded_by_their_kind() -> None:
    too_long = "{{ affair_name }}（{{ case_number }}）"
    errors = rejected(raw_template(wechat={"template_id": "Yq3kLrT8xW2", "data": {
        "thing1": too_long, "character_string2": "{{ case_number }}{{ time_limit_working_days }}",
        "phrase3": "{{ case_number }}"}}))
    assert "the limit is 20" in errors["#/variants/zh-CN/wechat/data/thing1"]
    assert "#/variants/zh-CN/wechat/data/character_string2" not in errors  # 23 characters: a string takes 32
    assert "21 characters; the limit is 20" in errors["#/variants/zh-CN/wechat/data/phrase3"]


def test_every_problem_is_refused_together() -> None:
    raw = raw_template(
        in_app={"title": "{{ case_number", "body": "第一行\n{% if %}", "link": "javascript:alert(1)", "icon": "x"},
        email={"text": "您好"},
        sms={"sign_name": "【玄武】", "template_code": "123", "params": {"bad-name": "{{ case_number }}"}},
        wechat={"template_id": "Yq3kLrT8xW2", "data": {}},
        webhook=None,
        fax={"text": "x"},
    )
    raw["variants"]["en"]["webhook"] = {}
    raw["variants"]["en"]["email"] = {"subject": "x" * 401, "text": "t"}
    raw["owner"] = "someone"
    errors = rejected(raw)
    assert "syntax error on line 1" in errors["#/variants/zh-CN/in_app/title"]
    assert "syntax error on line 2" in errors["#/variants/zh-CN/in_app/body"]
    assert "link" in errors["#/variants/zh-CN/in_app/link"]
    assert "not a member of the in_app text" in errors["#/variants/zh-CN/in_app/icon"]
    assert errors["#/variants/zh-CN/email/subject"] == "required"
    assert "signature" in errors["#/variants/zh-CN/sms/sign_name"]
    assert "SMS_123456789" in errors["#/variants/zh-CN/sms/template_code"]
    assert "variable name" in errors["#/variants/zh-CN/sms/params/bad-name"]
    assert "1 to 20 entries" in errors["#/variants/zh-CN/wechat/data"]
    assert "not a channel" in errors["#/variants/zh-CN/fax"]
    assert "zh-CN is the fallback" in errors["#/variants/en/webhook"]
    assert "401 characters long; at most 400" in errors["#/variants/en/email/subject"]
    assert "not a member of a template" in errors["#/owner"]


def test_locales_and_names_are_checked() -> None:
    no_chinese = {"name": "case.accepted", "variants": {"en": raw_template()["variants"]["en"]}}
    assert "required" in rejected(no_chinese)["#/variants/zh-CN"]
    unknown_locale = raw_template()
    unknown_locale["variants"]["zh-TW"] = unknown_locale["variants"].pop("en")
    assert "not a locale" in rejected(unknown_locale)["#/variants/zh-TW"]
    three = raw_template()
    three["variants"]["fr"] = three["variants"]["en"]
    assert "at most 2 locales" in rejected(three)["#/variants"]
    assert "template name" in rejected({**raw_template(), "name": "Case Accepted"})["#/name"]
    assert rejected("not a template")["#"]


def test_plain_fields_are_not_templates() -> None:
    errors = rejected(raw_template(sms={"sign_name": "{{ street }}", "template_code": "SMS_123456789"},
                                   wechat={"template_id": "{{ x }}", "data": {"thing1": "好"}}))
    assert "#/variants/zh-CN/sms/sign_name" in errors and "#/variants/zh-CN/wechat/template_id" in errors


def test_to_dict_round_trips(template: Template) -> None:
    stored = json.loads(json.dumps(template.to_dict(), ensure_ascii=False))
    assert validate_template(stored, [ACCEPTED]) == template
    assert Template.from_dict(stored) == template
    assert Template.from_dict(stored).render(Channel.IN_APP, ACCEPTED) == template.render(Channel.IN_APP, ACCEPTED)
    assert stored["variants"]["zh-CN"]["webhook"] == {} and "link" not in stored["variants"]["en"]["in_app"]


def test_samples_must_be_events() -> None:
    with pytest.raises(TypeError):
        validate_template(raw_template(), [{"type": "civicgrid.intake.case.accepted.v1"}])
